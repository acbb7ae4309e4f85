"""The Peaks page: true and predicted peaks, and the DPEAKS breakdown per method."""

from __future__ import annotations

import re

from tests.app.apptools import no_errors
from ui import cache


def test_breakdown_sums_to_dpeaks_for_each_method(app, open_page):
    open_page(app, "Peaks")
    no_errors(app)
    dpeaks = [m for m in app.metric if m.label == "DPEAKS"]
    assert [s.value for s in app.subheader] == [
        "UNet",
        "Wiener",
        "KS93 (σ 4 px)",
        "Peak heights with their error bars",
    ]
    assert len(dpeaks) == 3
    sums = [c.value for c in app.caption if re.fullmatch(r"\d+( \+ \d+)* = \d+ px", c.value)]
    assert len(sums) == 3
    for card, line in zip(dpeaks, sums):
        parts = [int(v) for v in re.findall(r"\d+", line)]
        assert sum(parts[:-1]) == parts[-1]
        assert card.value == f"{parts[-1]} px"
    table = app.table[0].value  # rank by rank, method by method
    assert list(table.index) == ["UNet"] * 3 + ["Wiener"] * 3 + ["KS93 (σ 4 px)"] * 3
    assert list(table["rank"]) == [1, 2, 3] * 3
    for i, card in enumerate(dpeaks):
        rows = table.iloc[3 * i : 3 * i + 3]
        assert rows["|Δy| + |Δx|"].sum() == int(card.value.split()[0])


def test_each_predicted_peak_has_its_height_with_calibrated_error_bars(calibrated, open_page):
    open_page(calibrated, "Peaks")
    no_errors(calibrated)
    sel = calibrated.session_state["_selection"]
    table = calibrated.table[-1].value  # the heights, method by method
    assert list(dict.fromkeys(table.index)) == ["UNet", "Wiener", "KS93 (σ 4 px)"]
    assert list(table.columns) == [
        "rank",
        "(y, x) px",
        "(x, y) arcmin",
        "κ̂ ± σ̂ (95.4 %)",
        "true κ",
        "truth within",
    ]
    _, std, hw95 = cache.unet_errorbars(sel)
    kappa = cache.unet_kappa(sel)
    for _, row in table.loc[["UNet"]].iterrows():
        y, x = (int(v) for v in row["(y, x) px"].strip("()").split(", "))
        assert row["κ̂ ± σ̂ (95.4 %)"] == (
            f"{kappa[y, x]:.3f} ± {std[y, x]:.3f} (± {hw95[y, x]:.3f})"
        )
        assert row["(x, y) arcmin"] == f"({(x + 0.5) * 0.5:.1f}′, {(y + 0.5) * 0.5:.1f}′)"
        err = abs(sel.sample_kappa[y, x] - kappa[y, x])
        expected = "±σ̂" if err <= std[y, x] else ("95.4 %" if err <= hw95[y, x] else "neither")
        assert row["truth within"] == expected
