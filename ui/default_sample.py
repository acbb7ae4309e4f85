"""Choose the built-in sample the app opens on: ``python -m ui.default_sample``.

The rule: on the built-in set (seed 0), for each sample and each challenge metric
(WMAPE, DICEE, DPEAKS), take the difference UNet − KS93 (smoothed by the depth rule,
:func:`lensviz.depth.ks93_sigma`, the app's default),
measure how far it is from the median difference over the samples in units of the
median absolute deviation, and sum these over the three metrics. The sample with the
smallest sum is the one where the UNet's advantage (or disadvantage) is most typical on
every metric at once. The result goes into :data:`ui.sidebar.DEFAULT_SAMPLE` by hand;
this module prints the table that justifies it.
"""

from __future__ import annotations

import numpy as np

from lensviz import constants
from lensviz.evaluation import ks93_depth_predictor, score_methods
from lensviz.nn.inference import unet_predictor
from lensviz.simulate import simulate_batch
from ui.cache import BUILTIN_SAMPLES

METRICS = ("wmape", "dicee", "dpeaks")


def typicality(diffs: dict[str, np.ndarray]) -> np.ndarray:
    """Σ over metrics of |d − median(d)| / MAD(d) per sample (smaller: more typical)."""
    total = 0.0
    for d in diffs.values():
        med = np.median(d)
        mad = np.median(np.abs(d - med)) or 1.0
        total = total + np.abs(d - med) / mad
    return np.asarray(total)


def main() -> None:
    eps, kappa = simulate_batch(BUILTIN_SAMPLES, constants.TEST_SEED_START)
    weights = constants.WEIGHTS_DIR / constants.DEFAULT_WEIGHTS_FILE
    scores = score_methods(
        eps, kappa, {"UNet": unet_predictor(weights), "KS93": ks93_depth_predictor()}
    )
    diffs = {m: scores["UNet"][m] - scores["KS93"][m] for m in METRICS}
    total = typicality(diffs)
    print(f"UNet ({weights.name}) − KS93 (σ by the depth rule) per sample")
    print("sample " + " ".join(f"{m:>9}" for m in METRICS) + "  typicality")
    for i in range(BUILTIN_SAMPLES):
        print(f"{i:6d} " + " ".join(f"{diffs[m][i]:9.3f}" for m in METRICS) + f"  {total[i]:9.2f}")
    print("median " + " ".join(f"{np.median(diffs[m]):9.3f}" for m in METRICS))
    print(f"most typical sample: {int(np.argmin(total))}")


if __name__ == "__main__":
    main()
