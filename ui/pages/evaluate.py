"""Evaluate: score many samples of the current data: UNet, Wiener, raw and smoothed KS93.

The maps are scored in chunks (one ``st.cache_data`` entry per chunk, keyed by the data,
the model file and its version, and the chunk), so the progress bar moves and a larger N
reuses what was already scored. A click on a row of the per-sample table opens that
sample on Compare.
"""

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import constants
from lensviz.evaluation import HIGHER_IS_BETTER
from lensviz.metrics import METRIC_NAMES
from lensviz.plots import METRIC_LABELS, metric_histograms
from ui import cache
from ui.sidebar import Selection, current, open_sample, require_truth

CHUNK = 16  # maps scored per step of the progress bar (and per cache entry)
ROW_PX = 35  # height of a dataframe row, to show the whole summary without scrolling


def smoothed_name(sigma_px: float) -> str:
    return f"KS93 smoothed (σ {sigma_px:g} px)"


def score_all(sel: Selection, n: int, sigma_px: float, with_unet: bool) -> dict:
    """Score the first ``n`` maps chunk by chunk, with a progress bar; merged per-map dict."""
    bar = st.progress(0.0, text=f"Scoring {n} maps…")
    parts = []
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        parts.append(
            cache.metric_scores(
                sel, start, stop, sigma_px, smoothed_name(sigma_px), with_unet=with_unet
            )
        )
        bar.progress(stop / n, text=f"Scored {stop} of {n} maps")
    bar.empty()
    return {
        meth: {met: np.concatenate([p[meth][met] for p in parts]) for met in parts[0][meth]}
        for meth in parts[0]
    }


# === Tables ===


def summary_table(summary: dict) -> pd.DataFrame:
    """One row per (metric, method): mean, bootstrap s.e., median, std; ★ on the best mean."""
    rows = []
    for met in METRIC_NAMES:
        means = {meth: summary[meth][met]["mean"] for meth in summary}
        best = (max if met in HIGHER_IS_BETTER else min)(means, key=means.__getitem__)
        for meth in summary:
            s = summary[meth][met]
            rows.append(
                {
                    "metric": METRIC_LABELS.get(met, met),
                    "method": meth,
                    "mean": s["mean"],
                    "± s.e. (bootstrap)": s["sem_boot"],
                    "median": s["median"],
                    "std": s["std"],
                    "best mean": "★" if meth == best and len(summary) > 1 else "",
                }
            )
    return pd.DataFrame(rows)


def per_sample_table(sel: Selection, per_map: dict, metric: str) -> pd.DataFrame:
    n = len(next(iter(per_map.values()))[metric])
    df = pd.DataFrame({"sample": np.arange(n), "name": list(sel.names[:n])})
    for meth, scores in per_map.items():
        df[meth] = scores[metric]
    values = df[list(per_map)].to_numpy()
    pick = np.argmax if metric in HIGHER_IS_BETTER else np.argmin
    df["best"] = np.asarray(list(per_map))[pick(values, axis=1)]
    return df


# === Widgets ===


def settings_ui(n_total: int) -> int:
    default = min(n_total, 64)
    if n_total == 1:
        st.caption("The data holds one sample.")
        return 1
    return int(
        st.slider(
            "Samples to score (the first N of the current data)", 1, n_total, default, key="eval_n"
        )
    )


def metric_pick_ui() -> str:
    return st.selectbox(
        "Metric in the per-sample table",
        METRIC_NAMES,
        format_func=lambda m: METRIC_LABELS.get(m, m),
        key="eval_metric",
    )


def _pick_key() -> str:
    return f"eval_pick_{st.session_state.get('eval_pick_round', 0)}"


def open_on_compare(index: int) -> None:
    # A fresh table key next time, so that coming back does not re-open the sample.
    st.session_state.eval_pick_round = st.session_state.get("eval_pick_round", 0) + 1
    open_sample(index)


# === Page ===

sel = current()
st.markdown(
    "Scores many samples of the current data with each method and summarises the "
    "challenge metrics (WMAPE, DICEE, DPEAKS; lower is better) plus RMSE and the Pearson "
    "correlation r (higher is better)."
)
require_truth(sel, "Evaluate")

n = settings_ui(len(sel.eps))
sigma, sigma_table = cache.calibrated_ks93_sigma()
st.caption(
    f"“KS93 smoothed” uses σ = {sigma:g} px ({sigma * constants.PIXEL_ARCMIN:g}′), the σ "
    f"with the lowest mean RMSE on {cache.CALIBRATION_MAPS} simulated calibration maps "
    "(seeds disjoint from the built-in test set), never tuned on the data scored here."
)

with_unet = False
if sel.model_path is None:
    st.info("No UNet weights available: only KS93 is scored.")
else:
    try:
        with_unet = cache.unet_model(sel) is not None
    except (ValueError, OSError) as exc:
        st.error(f"Could not load the UNet {sel.model_name!r}: {exc}. Only KS93 is scored.")

spectrum = cache.power_spectrum_path()
if spectrum is not None:
    st.caption(
        "“Wiener”: the filter S/(S+N) on the KS93 E mode, with the κ power spectrum S "
        f"of simulated maps (`{spectrum.name}`) and each sample's noise N from its Δε."
    )
try:
    per_map = score_all(sel, n, sigma, with_unet)
except (ValueError, OSError) as exc:
    st.error(f"Could not score the data: {exc}")
    st.stop()
summary = cache.metric_summary(sel, per_map, sigma)

st.subheader(f"Summary over {n} maps")
table = summary_table(summary)
st.dataframe(
    table,
    hide_index=True,
    key="eval_summary",
    height=ROW_PX * (len(table) + 1) + 3,
    column_config={
        c: st.column_config.NumberColumn(format="%.4g")
        for c in ("mean", "± s.e. (bootstrap)", "median", "std")
    },
)
st.caption(
    "± s.e.: standard deviation of the mean over 1000 bootstrap resamples of the maps "
    "(the same resamples for every method); std: spread over maps. WMAPE explodes "
    "where κ ≈ 0, so compare its median too."
)

st.subheader("Distributions")
st.plotly_chart(metric_histograms(per_map), key="eval_hist")

st.subheader("Per sample")
metric = metric_pick_ui()
st.caption(
    "Click a row (the box at its left) to open that sample on Compare. Click a column "
    "header to sort."
)
table = per_sample_table(sel, per_map, metric)
event = st.dataframe(
    table,
    hide_index=True,
    key=_pick_key(),
    on_select="rerun",
    selection_mode="single-row",
    column_config={meth: st.column_config.NumberColumn(format="%.4g") for meth in per_map},
)
rows = event.selection.rows if event is not None else []
if rows:
    open_on_compare(int(table.iloc[rows[0]]["sample"]))
