"""DICEE: where the above-mean masks of the truth and of each prediction agree (report Fig. 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import metrics, plots
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import current, require_truth


def confusion_table(
    truth: np.ndarray, preds: dict[str, np.ndarray], codes: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Counts of each class, DICEE and the two thresholds, one row per method."""
    rows = {}
    for name, p in preds.items():
        counts = np.bincount(codes[name].ravel(), minlength=len(metrics.CONFUSION_CODES))
        row = {cls: int(counts[metrics.CONFUSION_CODES[cls]]) for cls in ("TP", "TN", "FP", "FN")}
        row["DICEE"] = metrics.dicee(truth, p)
        # Rounded so that a mean of −1e-10 (KS93) does not print as −0.00000.
        row["threshold mean(T)"] = round(float(np.mean(truth, dtype=np.float64)), 6) + 0.0
        row["threshold mean(P)"] = round(float(np.mean(p, dtype=np.float64)), 6) + 0.0
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


sel = current()
require_truth(sel, "The DICEE page")
st.markdown(
    "Each map is cut at its **own mean**: G = T > mean(T) for the truth, A = P > mean(P) for "
    "the prediction. DICEE = 1 − TP / (TP + ½FP + ½FN), so 0 is a perfect overlap; true "
    "negatives do not count."
)

truth = sel.sample_kappa
preds = cache.kappa_maps(sel)
codes = {name: metrics.dicee_confusion(truth, p) for name, p in preds.items()}

figure_grid(plots.confusion_cells(codes, axes=sel.axes), "dicee_fig")
table = confusion_table(truth, preds, codes)
fmt = st.column_config.NumberColumn
st.dataframe(
    table,
    key="dicee_table",
    column_config={
        "DICEE": fmt(format="%.4f", help="1 − TP / (TP + (FP + FN)/2); lower is better"),
        "threshold mean(T)": fmt(format="%.5f", help="The true map's mean: its mask threshold"),
        "threshold mean(P)": fmt(format="%.5f", help="The prediction's mean: its mask threshold"),
    },
)
st.caption(
    "Because each map is thresholded at its own mean, DICEE ignores the missing "
    "mean of the KS93 and Wiener maps (mass-sheet degeneracy) and any overall scale "
    "of the prediction."
)
