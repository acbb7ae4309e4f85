"""Peaks: the true top 5 and each prediction's top 3 (report Fig. 1), with the DPEAKS
breakdown, and each predicted peak's height with its calibrated error bars against the
true κ there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import constants, metrics, plots
from lensviz.inversion import gaussian_smooth
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import current, require_truth
from ui.text import sky_position

N_TRUE_SHOWN = 5  # crosses on the truth, as in the report's Fig. 1
N_PRED = constants.N_PEAKS_METRIC  # DPEAKS compares the top 3, matched by rank
SIGMA = constants.PEAK_SMOOTH_SIGMA_PX


def _position(pos: np.ndarray, height: float) -> str:
    return f"({pos[0]}, {pos[1]})" if np.isfinite(height) else "none → (0, 0)"


def ranking_table(true_pos, true_h, pred_pos, pred_h) -> pd.DataFrame:
    """Rank by rank: positions (y, x), smoothed heights and the Manhattan distance."""
    rows = []
    for i in range(N_PRED):
        dy, dx = (abs(int(a) - int(b)) for a, b in zip(true_pos[i], pred_pos[i], strict=True))
        rows.append(
            {
                "rank": i + 1,
                "true (y, x)": _position(true_pos[i], true_h[i]),
                "true height": true_h[i],
                "predicted (y, x)": _position(pred_pos[i], pred_h[i]),
                "predicted height": pred_h[i],
                "|Δy| + |Δx|": dy + dx,
            }
        )
    return pd.DataFrame(rows).set_index("rank")


def valid(pos: np.ndarray, height: np.ndarray) -> np.ndarray:
    return pos[np.isfinite(height)]


def heights_table(sel, preds, found, bars) -> pd.DataFrame:
    """Each method's predicted peaks: where they are, the method's own κ̂ there with its
    calibrated error bars (σ̂, and the 95.4 % half-width), the true κ there and whether
    the bands hold it. Methods without error bars show κ̂ alone."""
    rows, truth = [], sel.sample_kappa
    for name, (pos, height) in found.items():
        std_hw = None if isinstance(bars[name], str) else bars[name]
        for rank, (y, x) in enumerate(valid(pos, height), start=1):
            y, x = int(y), int(x)
            kappa, true = float(preds[name][y, x]), float(truth[y, x])
            arcmin, radec = sky_position(y, x, sel.pixel_arcmin, sel.grid.wcs)
            row = {"method": name, "rank": rank, "(y, x) px": f"({y}, {x})"}
            row["(x, y) arcmin"] = arcmin
            if radec is not None:
                row["RA, Dec"] = radec
            if std_hw is None:
                row["κ̂ ± σ̂ (95.4 %)"], held = f"{kappa:.3f}", "–"
            else:
                std, hw = float(std_hw[0][y, x]), float(std_hw[1][y, x])
                row["κ̂ ± σ̂ (95.4 %)"] = f"{kappa:.3f} ± {std:.3f} (± {hw:.3f})"
                err = abs(true - kappa)
                held = "±σ̂" if err <= std else ("95.4 %" if err <= hw else "neither")
            row["true κ"] = true
            row["truth within"] = held
            rows.append(row)
    return pd.DataFrame(rows).set_index("method")


sel = current()
require_truth(sel, "The Peaks page")
st.markdown(
    f"As the challenge scores DPEAKS, every map is first smoothed with a Gaussian of "
    f"σ = {SIGMA:g} px; peaks are strict 8-neighbour maxima away from the border, ranked by "
    f"height. DPEAKS sums |Δy| + |Δx| over the top {N_PRED}, matched by rank (true peak 1 "
    "with predicted peak 1, and so on); a missing peak counts as position (0, 0)."
)

truth = sel.sample_kappa
preds = cache.kappa_maps(sel)
true_pos, true_h = metrics.find_peaks(truth, n=N_TRUE_SHOWN)
found = {name: metrics.find_peaks(p, n=N_PRED) for name, p in preds.items()}

figure_grid(
    plots.peaks_cells(
        gaussian_smooth(truth, SIGMA),
        {name: sel.masked(gaussian_smooth(p, SIGMA)) for name, p in preds.items()},
        valid(true_pos, true_h),
        {name: valid(*found[name]) for name in preds},
        truth_title=f"true κ (σ {SIGMA:g} px)",
        axes=sel.axes,
    ),
    "peaks_fig",
)
st.caption(
    f"Crosses T1–T{N_TRUE_SHOWN}: the highest true peaks. Circles P1–P{N_PRED}: each "
    "prediction's highest peaks (the true crosses are repeated on every map). Each map "
    "has its own colour scale (the UNet, Wiener and KS93 maps differ in amplitude)."
    + (
        " Grey: pixels without galaxies; the metric still counts peaks there, as the "
        "challenge scores whole maps."
        if sel.sample_mask.any()
        else ""
    )
)

tables = {
    name: ranking_table(true_pos, true_h, pos, height) for name, (pos, height) in found.items()
}
for col, (name, table) in zip(st.columns(len(preds)), tables.items(), strict=True):
    total = int(table["|Δy| + |Δx|"].sum())
    with col:
        st.subheader(name)
        st.metric(
            "DPEAKS",
            f"{metrics.dpeaks(truth, preds[name]):g} px",
            help=f"Sum of |Δy| + |Δx| over the top {N_PRED} peaks",
        )
        st.caption(" + ".join(str(v) for v in table["|Δy| + |Δx|"]) + f" = {total} px")

# One full-width static table, method by method: every column fits at 1000 px and more,
# and a static table redraws much faster than an interactive grid on each slider move.
ranks = pd.concat([t.reset_index().assign(method=name) for name, t in tables.items()])
columns = [
    "rank",
    "true (y, x)",
    "predicted (y, x)",
    "|Δy| + |Δx|",
    "true height",
    "predicted height",
]
st.table(
    ranks.set_index("method")[columns].style.format(
        {"true height": "{:.3f}", "predicted height": "{:.3f}"}, na_rep="–"
    )
)
st.caption("Heights are those of the σ = 3 px smoothed maps; (y, x) = (row, column).")

st.subheader("Peak heights with their error bars")
bars = cache.errorbars(sel, preds)
st.table(heights_table(sel, preds, found, bars).style.format({"true κ": "{:.3f}"}))
st.caption(
    "At each predicted peak above: the method's own map κ̂ (not smoothed) with its "
    "calibrated error bar σ̂ (κ̂ ± σ̂ holds the true κ in 68.3 % of the pixels of held-out "
    "simulations at this depth) and, in brackets, the half-width of the 95.4 % band; the "
    "true κ there and the narrowest band that holds it. The 68.3 % is a share over all "
    "pixels; peaks sit where errors are largest (cluster cores), so a few peaks say "
    "little about it. (x, y) arcmin from the map's first corner, as on the map axes."
)
for name, why in bars.items():
    if isinstance(why, str):
        what = cache.UNCALIBRATED if why.startswith(cache.UNCALIBRATED) else f"none: {why}"
        st.caption(f"{name}: heights without error bars, {what}.")
