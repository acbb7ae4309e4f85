"""Peaks: the true top 5 and each prediction's top 3 (report Fig. 1), with the DPEAKS breakdown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import constants, metrics, plots
from lensviz.inversion import gaussian_smooth
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import current, require_truth

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
