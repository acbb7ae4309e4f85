"""Evaluate: score many samples of the current data: UNet, Wiener, raw and smoothed KS93.

The maps are scored in chunks (one ``st.cache_data`` entry per chunk, keyed by the data,
the model file and its version, and the chunk), so the progress bar moves and a larger N
reuses what was already scored. A click on a row of the per-sample table opens that
sample on Compare.
"""

import math

import numpy as np
import pandas as pd
import streamlit as st

from lensviz.depth import ks93_sigma
from lensviz.evaluation import HIGHER_IS_BETTER
from lensviz.metrics import METRIC_NAMES
from lensviz.plots import METRIC_LABELS, metric_histograms
from lensviz.plots.depth import depth_figure
from ui import cache
from ui.sidebar import Selection, current, open_sample, require_truth
from ui.text import HUGE_WMAPE, METRIC_DECIMALS, best_method, count, format_number

CHUNK = 16  # maps scored per step of the progress bar (and per cache entry)
DEPTHS = ("5", "10", "30", "100", "300", "inf")  # depth specs of the "against depth" section
DEPTH_MAPS = (8, 24, 48, 96, 150)  # choices of maps per depth
DEPTHS_HELP = (
    "Simulates and scores the chosen number of maps at each of "
    f"{', '.join(DEPTHS)} galaxies per arcmin² (inf: no shape noise); about a "
    "second per 10 maps on 2 CPU cores, cached afterwards."
)


def smoothed_name(sigma_px: float | None) -> str:
    if sigma_px is None:
        return "KS93 smoothed (depth rule)"
    return f"KS93 smoothed (σ {sigma_px:g} px)"


def score_all(sel: Selection, n: int, sigma_px: float | None, with_unet: bool) -> dict:
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


DECIMALS = METRIC_DECIMALS  # one number of decimals per metric, in every table
#: What the summary table shows: label → summary statistic.
STATISTICS = {"mean ± s.e.": "mean", "median": "median", "std over maps": "std"}


def summary_table(summary: dict, statistic: str, n: int) -> pd.DataFrame:
    """Methods as rows, metrics as columns: ``statistic`` of each metric over the maps.

    ``"mean"`` cells read ``"3.75 ± 0.30"`` (bootstrap s.e.; just ``"3.75"`` for one map).
    The best method of each metric gets a ★ (for the mean and the median; never on a
    value that is not finite). Every metric has its own number of decimals
    (:data:`DECIMALS`).
    """
    table = {}
    for met in METRIC_NAMES:
        d = DECIMALS[met]
        values = {meth: summary[meth][met][statistic] for meth in summary}
        best = best_method(values, met in HIGHER_IS_BETTER)
        column = {}
        for meth, value in values.items():
            cell = format_number(value, d)
            if statistic == "mean" and n > 1 and math.isfinite(value):
                cell += f" ± {format_number(summary[meth][met]['sem_boot'], d)}"
            if statistic != "std" and meth == best:
                cell += " ★"
            column[meth] = cell
        table[METRIC_LABELS.get(met, met)] = column
    return pd.DataFrame(table).rename_axis("method")


def per_sample_table(sel: Selection, per_map: dict, metric: str) -> pd.DataFrame:
    """One row per map: its index, name, the metric of each method and the best method."""
    n = len(next(iter(per_map.values()))[metric])
    df = pd.DataFrame({"sample": np.arange(n), "name": list(sel.names[:n])})
    for meth, scores in per_map.items():
        df[meth] = scores[metric]
    values = df[list(per_map)].to_numpy()
    pick = np.argmax if metric in HIGHER_IS_BETTER else np.argmin
    df["best"] = np.asarray(list(per_map))[pick(values, axis=1)]
    return df


def _huge_wmape(summary: dict) -> bool:
    means = [summary[meth]["wmape"]["mean"] for meth in summary]
    return not all(math.isfinite(v) and v < HUGE_WMAPE for v in means)


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


def statistic_ui(n: int) -> str:
    if n == 1:
        return "mean"
    label = st.segmented_control(
        "Show", list(STATISTICS), default="mean ± s.e.", key="eval_statistic", required=True
    )
    return STATISTICS[label or "mean ± s.e."]


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
if not sel.is_tile:
    st.caption(
        f"Whole {sel.shape[0]} × {sel.shape[1]} fields are scored whole: the UNet on "
        "overlapping 128 × 128 tiles blended into one map, KS93 and Wiener zero-padded by "
        f"{sel.ks93_pad} px per side. Every pixel counts, the masked ones too."
    )

n = settings_ui(len(sel.eps))
sigma = None  # KS93 smoothed by the depth rule, map by map, as everywhere in lensviz
st.caption(
    "“KS93 smoothed” smooths each map with the σ of the depth rule "
    "(`lensviz.depth.ks93_sigma`: the σ with the lowest RMSE on simulated calibration maps "
    "at the depth that the map's Δε implies; seeds disjoint from the built-in test set), "
    f"never tuned on the data scored here; for this sample σ = "
    f"{ks93_sigma(sel.sample_eps[..., 2]):.2g} px."
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

st.subheader(f"Summary over {count(n, 'map')}")
statistic = statistic_ui(n)
# A static table: every column shows at any width (an interactive grid scrolls them away).
st.table(summary_table(summary, statistic, n))
if n == 1:
    st.caption(
        "One map: no standard error and no spread; score more maps to compare the methods fairly."
    )
else:
    st.caption(
        "± s.e.: standard deviation of the mean over 1000 bootstrap resamples of the maps "
        "(the same resamples for every method); ★: the best method of each metric. WMAPE "
        "explodes where κ ≈ 0, so compare its median too."
    )
if _huge_wmape(summary):
    st.caption(
        "**WMAPE is huge (or –) here**: it divides each pixel's error by the true |κ| "
        "there, and these true maps have pixels at or very near 0 (the tails of an "
        "analytic profile, for instance). The challenge's scorer does the same; compare "
        "the methods by RMSE and r on such maps."
    )

st.subheader("Distributions")
if n == 1:
    st.caption("A distribution needs at least two maps.")
else:
    st.plotly_chart(metric_histograms(per_map), key="eval_hist", theme=None)
    st.caption(
        "Step outlines of the per-map metrics, one colour and dash per method, on "
        "shared bins; the long tails are cut at the 98th percentile (counted above "
        "each panel)."
    )

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
    column_config={
        meth: st.column_config.NumberColumn(format=f"%.{DECIMALS[metric]}f") for meth in per_map
    },
)
rows = event.selection.rows if event is not None else []
if rows:
    open_on_compare(int(table.iloc[rows[0]]["sample"]))

st.subheader("Against survey depth")
st.caption(
    "How each method does from a few galaxies per arcmin² to no shape noise: the same "
    "simulated fields (held-out test seeds) observed at each depth, scored with the "
    "sidebar's UNet, Wiener, and KS93 smoothed by the depth rule."
)
if st.toggle("Score at every depth", key="eval_depths", help=DEPTHS_HELP):
    n_depth = st.select_slider("Maps per depth", DEPTH_MAPS, DEPTH_MAPS[1], key="eval_depth_n")
    bar = st.progress(0.0, text="Scoring depths…")
    try:
        by_depth = cache.metrics_by_depth(
            sel,
            DEPTHS,
            n_depth,
            on_depth=lambda i, spec: bar.progress(i / len(DEPTHS), text=f"Depth {spec}…"),
        )
    except (ValueError, OSError) as exc:
        st.error(f"Could not score the depths: {exc}")
        st.stop()
    bar.empty()
    st.plotly_chart(
        depth_figure(by_depth, ("rmse", "r", "dicee", "dpeaks")), theme=None, key="eval_depth_fig"
    )
    st.caption(
        "Mean ± bootstrap standard error over the maps of each depth. The UNet's training "
        "range is in its model card (weights/lite.md for the shipped one); outside it, "
        "expect it to lose to KS93 and Wiener."
    )
