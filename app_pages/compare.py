"""Compare: ε, then the true κ, the UNet κ and KS93 side by side, residuals, metrics, downloads."""

from __future__ import annotations

import functools
import io
import re

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import shared
from lensviz import metrics, plots

_METRIC_COLUMNS = {  # score() key → (column, help)
    "wmape": ("WMAPE", "Weighted mean absolute percentage error (lower is better)"),
    "dicee": ("DICEE", "DICE error of the above-mean masks (lower is better)"),
    "dpeaks": ("DPEAKS", "Summed Manhattan distance of the top-3 peaks, px (lower is better)"),
    "rmse": ("RMSE", "Root-mean-square error (lower is better)"),
    "r": ("r", "Pearson correlation with the true κ (higher is better)"),
}
_METRIC_FORMATS = {"WMAPE": "%.3f", "DICEE": "%.3f", "DPEAKS": "%d", "RMSE": "%.4f",
                   "r": "%.3f"}
_PNG_UPSCALE = 4  # 128 px maps → 512 px images


def whiskers_ui() -> bool:
    return st.toggle("Shear whiskers", key="compare_whiskers",
                     help="Sticks along the mean ellipticity of 8×8-pixel blocks "
                     "(inverse-variance weighted); length ∝ |ε|. Around a mass "
                     "concentration they line up tangentially.")


def add_mean_ui(has_truth: bool) -> bool:
    return st.toggle("Add the true mean to KS93 (display only)", key="compare_add_mean",
                     disabled=not has_truth,
                     help="KS93 cannot see a uniform mass sheet, so its maps have mean 0. "
                     "This shifts the KS93 map by the true mean in the figures; the "
                     "metrics always use the KS93 map as it is.")


def metrics_table(truth: np.ndarray, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per method, the challenge metrics plus RMSE and r."""
    rows = {name: {col: float(metrics.score(truth, p)[key][0])
                   for key, (col, _) in _METRIC_COLUMNS.items()}
            for name, p in preds.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def npy_bytes(m: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(m, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower().replace("σ", "sigma")).strip("_")


def downloads_ui(preds: dict[str, np.ndarray], sample: str, zrange) -> None:
    """``.npy`` (float32, exact values) and PNG (colour scale of the figure) per prediction."""
    cols = st.columns(len(preds))
    for col, (name, m) in zip(cols, preds.items(), strict=True):
        stem = f"{_slug(sample)}_{_slug(name)}"
        col.markdown(f"**{name}**")
        col.download_button(
            "κ as .npy", functools.partial(npy_bytes, m), file_name=f"{stem}.npy",
            mime="application/octet-stream", key=f"dl_npy_{stem}", on_click="ignore",
            icon=":material/download:", help="float32 array of shape (128, 128), row 0 first")
        col.download_button(
            f"κ as PNG ({_PNG_UPSCALE * m.shape[0]} px)",
            functools.partial(plots.map_png, m, zrange=zrange, upscale=_PNG_UPSCALE),
            file_name=f"{stem}.png", mime="image/png", key=f"dl_png_{stem}",
            on_click="ignore", icon=":material/image:",
            help=f"Viridis, colour limits {zrange[0]:.3g} … {zrange[1]:.3g} as in the figure")


sel = shared.current()
st.title("Compare")
st.caption(f"{sel.source} · sample {sel.index}: **{sel.sample_name}** · model: {sel.model_name}")

st.subheader("Measured ellipticities")
show_whiskers = whiskers_ui()
st.plotly_chart(plots.ellipticity_panels(sel.sample_eps, whiskers=show_whiskers),
                key="compare_eps", theme=None)
st.caption("ε1 > 0: galaxies stretched along x; ε2 > 0: along the x = y diagonal. "
           "Δε is the per-pixel measurement error (shape noise / √galaxies; "
           "1 where a pixel has no galaxy).")

st.subheader("Convergence κ")
c_ks, c_display = st.columns([2, 1])
sigma_px, pad = shared.ks93_options_ui(c_ks)
with c_display:
    add_mean = add_mean_ui(sel.has_truth)
preds = shared.predictions(sel, sigma_px, pad)
ks_name = shared.ks93_label(sigma_px, pad)

truth = sel.sample_kappa
if truth is not None:
    shown = dict(preds)
    if add_mean:
        shown[ks_name] = preds[ks_name] + np.float32(truth.mean())
    zrange = plots.robust_range(truth)
    st.plotly_chart(plots.comparison_grid(truth, shown, zrange=zrange), key="compare_kappa",
                    theme=None)
    st.caption(
        "Top: one colour scale for every map (0.5–99.5 % of the true κ). Bottom: prediction "
        "− true, red where the prediction is too high, blue where it is too low. Zoom any "
        "panel to zoom all. KS93 maps have mean 0: a uniform sheet of mass produces no "
        f"shear (the mass-sheet degeneracy); the true map has mean {truth.mean():.4f}"
        + (", added to KS93 here for display." if add_mean else "."))

    st.subheader("Metrics")
    st.dataframe(metrics_table(truth, preds), key="compare_metrics", column_config={
        col: st.column_config.NumberColumn(col, help=help_, format=_METRIC_FORMATS[col])
        for col, help_ in _METRIC_COLUMNS.values()})
    st.caption("Metrics of this one sample, computed on the predictions as they are (KS93 "
               "with mean 0). Peaks for DPEAKS are found after a σ = 3 px smoothing.")
else:
    st.warning("This data has no true κ (ε only): the true map, the residuals and the "
               "metrics are unavailable. Upload an EPSILON + KAPPA pair, or an .npz/.h5 "
               "with a 'kappa' dataset, to see them.")
    zrange = plots.robust_range(list(preds.values()))
    st.plotly_chart(plots.map_row(preds, zrange=zrange), key="compare_kappa", theme=None)
    st.caption("One colour scale for all panels; zoom one panel to zoom all. KS93 maps have "
               "mean 0 (the mass-sheet degeneracy).")

st.subheader("Downloads")
downloads_ui(preds, sel.sample_name, zrange)
