"""Draw docs/depth.png from the shipped model card: each metric against survey depth.

Run from the repository root after regenerating the card (``python -m lensviz card``)::

    python docs/make_depth_figure.py

It needs plotly's static-image engine (``pip install kaleido``), which drives the system's
Chromium; the app does not.
"""

import json
from pathlib import Path

from lensviz.plots.depth import depth_figure

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    card = json.loads((ROOT / "weights" / "lite.json").read_text())
    depths = card["evaluation"]["depths"]
    labels = {
        "unet": "UNet (shipped)",
        **{name: f"UNet {name}" for name in card.get("variants", {})},
        "wiener": "Wiener",
        "ks93_smoothed": "KS93 smoothed",
        "ks93_raw": "KS93 raw",
    }
    fig = depth_figure(depths, ("rmse", "r", "dicee"), methods=labels, height=380)
    fig.update_layout(
        width=1100,
        title=dict(
            text=f"Held-out simulated fields, {card['evaluation']['test_set']['n_maps_per_depth']} "
            "maps per depth (mean ± bootstrap s.e.)",
            x=0.0,
            y=0.98,
            font=dict(size=14),
        ),
    )
    out = ROOT / "docs" / "depth.png"
    fig.write_image(out, scale=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
