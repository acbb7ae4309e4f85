"""Evaluate: score many samples of the current data: UNet, Wiener, raw and smoothed KS93.

The maps are scored in chunks (one ``st.cache_data`` entry per chunk, keyed by the data,
the model file and its version, and the chunk), so the progress bar moves and a larger N
reuses what was already scored. A click on a row of the per-sample table opens that
sample on Compare.
"""

import os

import numpy as np
import pandas as pd
import streamlit as st

from ui import shared
from lensviz import constants
from lensviz.evaluation import (
    HIGHER_IS_BETTER,
    default_power_spectrum,
    ks93_predictor,
    score_methods,
    summarize,
    wiener_predictor,
)
from lensviz.metrics import METRIC_NAMES
from lensviz.plots import METRIC_LABELS, metric_histograms

CHUNK = 16  # maps scored per step of the progress bar (and per cache entry)
ROW_PX = 35  # height of a dataframe row, to show the whole summary without scrolling


# === Cached computations ===


@st.cache_data(max_entries=512, show_spinner=False)
def score_chunk(data_key: str, model_path: str | None, mtime: float, start: int, stop: int,
                sigma_px: float, wiener: tuple[str, float] | None, _eps: np.ndarray,
                _kappa: np.ndarray, _model=None) -> dict[str, dict[str, np.ndarray]]:
    """Per-map metrics of maps ``start:stop`` for each method (UNet first when given)."""
    predictors = {}
    if _model is not None:
        from lensviz.nn.model import predict_kappa

        predictors["UNet"] = lambda eps: predict_kappa(_model, eps)
    if wiener is not None:  # (power-spectrum file, its mtime)
        predictors["Wiener"] = wiener_predictor(wiener[0])
    predictors["KS93 raw"] = ks93_predictor(0.0)
    predictors[smoothed_name(sigma_px)] = ks93_predictor(sigma_px)
    return score_methods(_eps[start:stop], _kappa[start:stop], predictors)


@st.cache_data(max_entries=32, show_spinner=False)
def summary_of(data_key: str, model_path: str | None, mtime: float, n: int, sigma_px: float,
               wiener: tuple[str, float] | None, _per_map: dict) -> dict:
    """Mean, median, std and bootstrap s.e. of every metric (see ``summarize``)."""
    return summarize(_per_map)


def smoothed_name(sigma_px: float) -> str:
    return f"KS93 smoothed (σ {sigma_px:g} px)"


def score_all(sel: shared.Selection, n: int, sigma_px: float, model,
              wiener: tuple[str, float] | None) -> dict:
    """Score the first ``n`` maps chunk by chunk, with a progress bar; merged per-map dict."""
    path = sel.model_path if model is not None else None
    mtime = os.path.getmtime(path) if path else 0.0
    bar = st.progress(0.0, text=f"Scoring {n} maps…")
    parts = []
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        parts.append(score_chunk(sel.key, path, mtime, start, stop, sigma_px, wiener,
                                 sel.eps, sel.kappa, _model=model))
        bar.progress(stop / n, text=f"Scored {stop} of {n} maps")
    bar.empty()
    return {meth: {met: np.concatenate([p[meth][met] for p in parts]) for met in parts[0][meth]}
            for meth in parts[0]}


# === Tables ===


def summary_table(summary: dict) -> pd.DataFrame:
    """One row per (metric, method): mean, bootstrap s.e., median, std; ★ on the best mean."""
    rows = []
    for met in METRIC_NAMES:
        means = {meth: summary[meth][met]["mean"] for meth in summary}
        best = (max if met in HIGHER_IS_BETTER else min)(means, key=means.__getitem__)
        for meth in summary:
            s = summary[meth][met]
            rows.append({"metric": METRIC_LABELS.get(met, met), "method": meth,
                         "mean": s["mean"], "± s.e. (bootstrap)": s["sem_boot"],
                         "median": s["median"], "std": s["std"],
                         "best mean": "★" if meth == best and len(summary) > 1 else ""})
    return pd.DataFrame(rows)


def per_sample_table(sel: shared.Selection, per_map: dict, metric: str) -> pd.DataFrame:
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
    return int(st.slider("Samples to score (the first N of the current data)", 1, n_total,
                         default, key="eval_n"))


def metric_pick_ui() -> str:
    return st.selectbox("Metric in the per-sample table", METRIC_NAMES,
                        format_func=lambda m: METRIC_LABELS.get(m, m), key="eval_metric")


def _pick_key() -> str:
    return f"eval_pick_{st.session_state.get('eval_pick_round', 0)}"


def open_on_compare(index: int) -> None:
    # A fresh table key next time, so that coming back does not re-open the sample.
    st.session_state.eval_pick_round = st.session_state.get("eval_pick_round", 0) + 1
    shared.open_sample(index)


# === Page ===

sel = shared.current()
st.title("Evaluate")
st.markdown(
    "Scores many samples of the current data with each method and summarises the "
    "challenge metrics (WMAPE, DICEE, DPEAKS; lower is better) plus RMSE and the Pearson "
    "correlation r (higher is better).")
shared.require_truth(sel, "Evaluate")

n = settings_ui(len(sel.eps))
sigma, sigma_table = shared.calibrated_ks93_sigma()
st.caption(
    f"Data: {sel.source} · model: {sel.model_name} · “KS93 smoothed” uses σ = {sigma:g} px "
    f"({sigma * constants.PIXEL_ARCMIN:g}′), the σ with the lowest mean RMSE on "
    f"{shared.CALIBRATION_MAPS} simulated calibration maps (seeds disjoint from the "
    "built-in test set), never tuned on the data scored here.")

model = None
if sel.model_path is None:
    st.info("No UNet weights available: only KS93 is scored.")
else:
    try:
        model = shared.model_for(sel)
    except (ValueError, OSError) as exc:
        st.error(f"Could not load the UNet {sel.model_name!r}: {exc}. Only KS93 is scored.")

spectrum = default_power_spectrum()
wiener = (str(spectrum), spectrum.stat().st_mtime) if spectrum is not None else None
if wiener is not None:
    st.caption("“Wiener”: the filter S/(S+N) on the KS93 E mode, with the κ power spectrum S "
               f"of simulated maps (`{spectrum.name}`) and each sample's noise N from its Δε.")
try:
    per_map = score_all(sel, n, sigma, model, wiener)
except ValueError as exc:
    st.error(f"Could not score the data: {exc}")
    st.stop()
mtime = os.path.getmtime(sel.model_path) if model is not None else 0.0
summary = summary_of(sel.key, sel.model_path if model is not None else None, mtime, n, sigma,
                     wiener, per_map)

st.subheader(f"Summary over {n} maps")
table = summary_table(summary)
st.dataframe(table, hide_index=True, key="eval_summary", height=ROW_PX * (len(table) + 1) + 3,
             column_config={c: st.column_config.NumberColumn(format="%.4g")
                            for c in ("mean", "± s.e. (bootstrap)", "median", "std")})
st.caption("± s.e.: standard deviation of the mean over 1000 bootstrap resamples of the maps "
           "(the same resamples for every method); std: spread over maps. WMAPE explodes "
           "where κ ≈ 0, so compare its median too.")

st.subheader("Distributions")
st.plotly_chart(metric_histograms(per_map), key="eval_hist")

st.subheader("Per sample")
metric = metric_pick_ui()
st.caption("Click a row (the box at its left) to open that sample on Compare. Click a column "
           "header to sort.")
table = per_sample_table(sel, per_map, metric)
event = st.dataframe(
    table, hide_index=True, key=_pick_key(), on_select="rerun", selection_mode="single-row",
    column_config={meth: st.column_config.NumberColumn(format="%.4g") for meth in per_map})
rows = event.selection.rows if event is not None else []
if rows:
    open_on_compare(int(table.iloc[rows[0]]["sample"]))
