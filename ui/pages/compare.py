"""Compare: the true κ and the UNet, Wiener and KS93 κ with their residuals, the metrics
with the best method starred, each method's calibrated error bars (± σ and S/N, with
the coverage measured at this depth; behind a toggle), the measured ellipticities, the
UNet's own uncalibrated spread (behind a toggle) and the downloads.

Tiles and whole fields alike; pixels without galaxies are grey in every map
(:meth:`ui.sidebar.Selection.masked`), the downloads keep the values. On a fresh server
the UNet's cell fills in after the others, while TensorFlow loads.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import plots
from lensviz.depth import depth_label, effective_n_gal
from lensviz.errorbars import COVERAGE_68, COVERAGE_95, coverage
from lensviz.evaluation import HIGHER_IS_BETTER
from lensviz.reliability import coverage_at
from ui import cache
from ui.downloads import kappa_fits, npy_bytes, slug
from ui.layout import figure_grid
from ui.sidebar import current
from ui.text import (
    HUGE_WMAPE,
    WIENER_NAME,
    best_method,
    format_number,
    ks93_label,
    percent,
    wiener_label,
)

_METRIC_COLUMNS = {  # score() key → (column, help)
    "wmape": ("WMAPE", "Weighted mean absolute percentage error (lower is better)"),
    "dicee": ("DICEE", "DICE error of the above-mean masks (lower is better)"),
    "dpeaks": ("DPEAKS", "Summed Manhattan distance of the top-3 peaks, px (lower is better)"),
    "rmse": ("RMSE", "Root-mean-square error (lower is better)"),
    "r": ("r", "Pearson correlation with the true κ (higher is better)"),
}
_METRIC_DECIMALS = {"WMAPE": 3, "DICEE": 3, "DPEAKS": 0, "RMSE": 4, "r": 3}
_PNG_SIDE_PX = 512  # figures' maps at least this many pixels a side (128 px maps × 4)


def whiskers_ui() -> bool:
    return st.toggle(
        "Shear whiskers",
        key="compare_whiskers",
        help="Sticks along the mean ellipticity of 8×8-pixel blocks "
        "(inverse-variance weighted); length ∝ |ε|. Around a mass "
        "concentration they line up tangentially.",
    )


def add_mean_ui() -> bool:
    return st.toggle(
        "Add the true mean to KS93 & Wiener",
        key="compare_add_mean",
        help="KS93 and the Wiener filter cannot see a uniform mass sheet, so "
        "their maps have mean 0. This shifts them by the true mean in the "
        "figures only (display); the metrics always use the maps as they are.",
    )


def uncertainty_ui(usable: bool) -> tuple[bool, str, int]:
    """The uncertainty toggle and, when it is on, the method and number of passes."""
    on = st.toggle(
        "The UNet's own spread (uncalibrated)",
        key="compare_uncertainty",
        disabled=not usable,
        help="Per-pixel spread of the UNet map over several stochastic or transformed "
        "passes: how much the model's answer moves, not an error bar. On held-out "
        "simulations it covers the true κ in only 4–7 % of the pixels at ±1σ; the "
        "calibrated error bars above hold 68 %. Runs only while this is on.",
    )
    if not on:
        return False, "", 0
    c_method, c_passes = st.columns(2)
    label = c_method.radio(
        "Method",
        list(cache.UNCERTAINTY_METHODS),
        key="compare_unc_method",
        horizontal=True,
        help="Monte-Carlo dropout: T passes with the decoder's dropout "
        "active. 8 symmetries: predict on the 8 spin-2-correct "
        "rotations/flips of ε and transform the maps back.",
    )
    method = cache.UNCERTAINTY_METHODS[label]
    passes = c_passes.slider(
        "Monte-Carlo passes T",
        2,
        cache.MC_MAX_PASSES,
        cache.MC_PASSES,
        key="compare_unc_passes",
        disabled=method != "mc_dropout",
        help="More passes: a less noisy σ, proportionally slower.",
    )
    return True, method, int(passes)


def coverage_ui(cal: dict) -> None:
    """Observed coverage of ±1σ and ±2σ against the Gaussian, mean σ against the RMSE."""
    c1, c2 = st.columns(2)
    for col, k in ((c1, 1), (c2, 2)):
        observed, expected = cal[f"within_{k}sigma"], cal[f"expected_{k}sigma"]
        col.metric(
            f"True pixels within ±{k}σ",
            f"{100 * observed:.1f} %",
            delta=f"{100 * (observed - expected):+.1f} pts vs Gaussian {100 * expected:.1f} %",
            delta_color="off",
            help=f"Fraction of pixels with |true − mean| ≤ {k}σ on this sample",
        )
    c1.metric(
        "Mean σ",
        f"{cal['mean_sigma']:.4f}",
        help="σ averaged over the pixels: how large the UNet says its error is",
    )
    c2.metric(
        "RMSE of the mean",
        f"{cal['rmse']:.4f}",
        help="Root-mean-square of true − mean: how large the error actually is",
    )


def uncertainty_section(sel, truth, zrange, method: str, passes: int) -> None:
    """The UNet mean, its σ map and, with truth, z, coverage numbers and reliability plot."""
    try:
        mean, std = cache.unet_sigma(sel, method, passes)
    except (ValueError, OSError) as exc:
        st.error(f"Could not compute the UNet uncertainty ({method}): {exc}")
        return
    what = (
        f"mean of T = {passes} passes" if method == "mc_dropout" else "mean over the 8 symmetries"
    )
    figure_grid(
        plots.uncertainty_cells(
            mean, std, truth=truth, zrange=zrange, mean_title=f"UNet: {what}", axes=sel.axes
        ),
        "compare_uncertainty_maps",
    )
    st.caption(
        "First: the UNet map averaged over the passes, on the colour scale above. "
        "Second: its per-pixel σ, on its own scale."
        + (
            " Third: z = (mean − true) / σ; the saturated colours, |z| > 2, mark the "
            "pixels where the truth lies outside ±2σ."
            if truth is not None
            else ""
        )
    )
    if truth is not None:
        cal = cache.uncertainty_calibration(truth, mean, std)
        c_num, c_fig = st.columns([1, 1], gap="medium")
        with c_num:
            coverage_ui(cal)
            st.caption(
                "A calibrated Gaussian σ covers 68.3 % of the true pixels at ±1σ and "
                "95.4 % at ±2σ. Fewer means σ is too small (the map is over-"
                "confident); one sample's pixels are correlated, so judge calibration "
                "over many samples (`python -m lensviz calibrate`)."
            )
        c_fig.plotly_chart(
            plots.reliability_figure(
                cal["expected"],
                cal["observed"],
                z=cal["z"],
                name="UNet σ on this sample",
                points={
                    "±1σ": (cal["expected_1sigma"], cal["within_1sigma"]),
                    "±2σ": (cal["expected_2sigma"], cal["within_2sigma"]),
                },
            ),
            key="compare_reliability",
            theme=None,
        )
    if method == "mc_dropout":
        st.caption(
            "Monte-Carlo dropout keeps the decoder's dropout layers active at prediction "
            "time (BatchNorm stays in inference mode, with its learned statistics) and "
            "takes the mean and standard deviation of T passes. σ measures the model's own "
            "uncertainty, how much the prediction depends on which decoder units are "
            "dropped; it is an approximation, not a full posterior of κ given the galaxy "
            "shapes, and it is only as good as its calibration."
        )
    else:
        st.caption(
            "The physics is unchanged by the 8 rotations and flips of the square (with ε "
            "transformed as a spin-2 field); the UNet learned that only approximately. σ "
            "over the 8 transformed predictions measures how far it is from that symmetry, "
            "not the noise of the data: not a posterior either."
        )
    st.download_button(
        "σ as .npy",
        functools.partial(npy_bytes, std),
        file_name=f"{slug(sel.sample_name)}_unet_sigma_{method}.npy",
        mime="application/octet-stream",
        key="dl_npy_unet_sigma",
        on_click="ignore",
        icon=":material/download:",
        help=f"float32 per-pixel σ of shape {std.shape}, row 0 first",
    )


# === Calibrated error bars ===

#: The S/N colour scale of the error-bar view: ±SNR_RANGE.
SNR_RANGE = 5.0
_VIEWS = ("± σ", "S/N = κ̂ / σ̂")
#: What the UNet's ±σ means on real data (one line under its panel).
UNET_ON_REAL_DATA = (
    "UNet ±σ: on simulated fields at this depth, κ̂ ± σ̂ held the true κ in 68 % of the "
    "pixels; on the sky it holds as far as the sky is like those simulations."
)


def errorbars_ui() -> str | None:
    """The error-bar toggle and, when it is on, the view; None while it is off."""
    on = st.toggle(
        "Calibrated error bars",
        key="compare_errorbars",
        help="Each method's σ̂: κ̂ ± σ̂ holds the true κ in 68.3 % of the pixels, and a "
        "second, wider band (±2σ, the calibrated 95.4 % half-width) in 95.4 %, on "
        "held-out simulations at every depth (split-conformal calibration, "
        "lensviz.errorbars). Computed only while this is on.",
    )
    if not on:
        return None
    return st.segmented_control(
        "View", _VIEWS, default=_VIEWS[0], key="compare_errorbar_view", required=True
    )


def coverage_method(sel, name: str) -> str | None:
    """The method of :data:`lensviz.reliability.METHODS` whose measured coverage applies
    to a map of the page, or None (KS93 at a smoothing the benchmark did not measure)."""
    if name == "UNet":
        return "unet"
    if name.startswith(WIENER_NAME):
        return "wiener"
    if sel.ks93_rule:
        return "ks93_rule"
    return "ks93_raw" if sel.ks93_sigma_px == 0 else None


def coverage_chips(sel, names) -> None:
    """One chip per method: the coverage of its ±σ and ±2σ bands measured at the depth
    nearest this sample's, on data like it (masked tiles or 384² fields)."""
    tables = cache.coverage_tables(sel)
    n_gal = float(effective_n_gal(sel.sample_eps[..., 2], sel.sigma_e, sel.pixel_arcmin))
    kind = "masked_tiles" if sel.is_tile else "fields_384"
    where = "masked 128² tiles" if sel.is_tile else "whole 384² fields"
    with st.container(horizontal=True, gap="small"):
        for name in names:
            short = name.split(" (")[0]
            method = coverage_method(sel, name)
            table, source = tables.get(method, ({}, ""))
            found = coverage_at(table, n_gal, method, kind) if method else None
            if found is None:
                why = (
                    f"measured for raw KS93 and the depth rule's σ, not σ {sel.ks93_sigma_px:g} px"
                    if method is None
                    else "no model card or benchmark on this server measured it yet "
                    "(python -m benchmarks.bench_errorbars)"
                    + (" for this model" if method == "unet" else "")
                )
                st.badge(f"{short}: coverage not measured", color="gray", help=why)
                continue
            held = (
                abs(found.coverage_68 - COVERAGE_68) <= 0.03
                and abs(found.coverage_95 - COVERAGE_95) <= 0.015
            )
            st.badge(
                f"{short}: ±σ holds {percent(found.coverage_68)} · ±2σ "
                f"{percent(found.coverage_95)} at {depth_label(found.n_gal)}",
                icon=":material/check:" if held else ":material/warning:",
                color="green" if held else "orange",
                help=f"Shares of the pixels of held-out simulated {where} at "
                f"{depth_label(found.n_gal)} (the measured depth nearest this sample's "
                f"{depth_label(n_gal)}) whose true κ lies within κ̂ ± σ̂ (target 68.3 %) and "
                f"within the calibrated 95.4 % band (target 95.4 %); mean σ̂ "
                f"{found.mean_std:.4f}. From {source}.",
            )


def errorbar_cells(sel, preds, bars, view: str) -> tuple[list, dict[int, str]]:
    """The σ̂ maps on one scale, or κ̂/σ̂ on one diverging scale; and the caption under the
    UNet's cell on real data."""
    names = [n for n in preds if not isinstance(bars.get(n, ""), str)]
    # Titles name the method without its settings ("KS93 σ̂"): the κ cells have them.
    short = {n: n.split(" (")[0] for n in names}
    if view == _VIEWS[0]:
        std = {f"{short[n]} σ̂": sel.masked(bars[n][0]) for n in names}
        cells = plots.sigma_cells(std, axes=sel.axes)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = {f"{short[n]} κ̂/σ̂": sel.masked(preds[n] / bars[n][0]) for n in names}
        cells = plots.map_cells(
            snr,
            colorscale=plots.RESIDUAL_COLORSCALE,
            zrange=(-SNR_RANGE, SNR_RANGE),
            colorbar_title="S/N = κ̂ / σ̂",
            label="S/N",
            axes=sel.axes,
        )
    captions = {}
    if "UNet" in names and not sel.has_truth:
        captions[names.index("UNet")] = UNET_ON_REAL_DATA
    return cells, captions


def errorbars_section(sel, preds: dict[str, np.ndarray]) -> dict[str, tuple]:
    """Each method's calibrated error bars while the toggle is on: its σ̂ (or S/N) map, a
    coverage chip, and with a truth this sample's coverage; returns ``{method: (std,
    hw95)}`` for the downloads (empty while off)."""
    view = errorbars_ui()
    if view is None:
        return {}
    bars = cache.errorbars(sel, preds)
    shown = {n: b for n, b in bars.items() if not isinstance(b, str)}
    if shown:
        cells, captions = errorbar_cells(sel, preds, bars, view)
        figure_grid(cells, "compare_errorbars", captions=captions)
        coverage_chips(sel, list(shown))
    for name, why in bars.items():
        if not isinstance(why, str):
            continue
        if name == "UNet" and why.startswith(cache.UNCALIBRATED):
            st.caption(
                f"UNet ({sel.model_name}): {cache.UNCALIBRATED}.",
                help=why.removeprefix(cache.UNCALIBRATED + ": "),
            )
        else:
            st.caption(f"{name}: no error bars: {why}.")
    if shown and sel.has_truth:
        truth, footprint = sel.sample_kappa, ~sel.sample_mask
        held = [
            f"{n.split(' (')[0]} {percent(coverage(truth, preds[n], std, footprint))} within "
            f"±σ, {percent(coverage(truth, preds[n], hw95, footprint))} within ±2σ"
            for n, (std, hw95) in shown.items()
        ]
        st.caption(
            "On this sample: "
            + "; ".join(held)
            + ". One sample's pixels are correlated: the chips give the coverage over "
            "many held-out maps."
        )
    st.caption(
        "σ̂ is each method's own calibrated error, so the methods compare on one scale: "
        "smaller is sharper. ±2σ is the calibrated 95.4 % band (κ̂ ± kappa_hw95), which "
        "near cluster cores is wider than twice σ̂, where the errors have heavy tails."
        if view == _VIEWS[0]
        else "κ̂ / σ̂: how many of its own error bars each map stands from 0. Where the "
        "truth is known, compare with the residuals above."
    )
    return shown


def residual_range(truth: np.ndarray, preds: dict[str, np.ndarray]) -> tuple[float, float]:
    """Colour limits of the residuals: from the Wiener residual.

    KS93's residual depends on the smoothing slider (at σ = 0 it is mostly noise), so it
    must not rescale the others, and the UNet's is drawn last on a fresh server; without
    a Wiener map the limits are half the true map's colour range.
    """
    wiener = [p - truth for name, p in preds.items() if name.startswith(WIENER_NAME)]
    if wiener:
        return plots.symmetric_range(wiener)
    lo, hi = plots.robust_range(truth)
    return -(hi - lo) / 2, (hi - lo) / 2


def metrics_table(sel, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per method, the challenge metrics plus RMSE and r (cached per method)."""
    scores = cache.sample_metrics(sel, preds)
    rows = {
        name: {col: s[key] for key, (col, _) in _METRIC_COLUMNS.items()}
        for name, s in scores.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def starred(table: pd.DataFrame):
    """The metrics table for display: each metric's best method starred (★), as on
    Evaluate; "–" where a metric is not finite."""
    keys = {col: key for key, (col, _) in _METRIC_COLUMNS.items()}
    formats = {}
    for col in table.columns:
        best = best_method(table[col].to_dict(), keys[col] in HIGHER_IS_BETTER)
        top = None if best is None else table.loc[best, col]

        def fmt(v, d=_METRIC_DECIMALS[col], top=top):
            return format_number(v, d) + (" ★" if top is not None and v == top else "")

        formats[col] = fmt
    return table.style.format(formats)


def downloads_ui(sel, preds: dict[str, np.ndarray], zrange, bars: dict | None = None) -> None:
    """``.npy`` (float32, exact values everywhere), FITS (κ and, on masked data, a MASK
    extension; with the error bars shown, STD and HW95) and a figure PNG (axes, colour
    bar, arcmin; pixels without data grey) per prediction."""
    bars = bars or {}
    sample = sel.sample_name
    masked = sel.sample_mask.any()
    upscale = max(1, _PNG_SIDE_PX // max(sel.shape))
    cols = st.columns(len(preds))
    for col, (name, m) in zip(cols, preds.items(), strict=True):
        stem = f"{slug(sample)}_{slug(name)}"
        col.markdown(f"**{name}**")
        col.download_button(
            "κ as .npy",
            functools.partial(npy_bytes, m),
            file_name=f"{stem}.npy",
            mime="application/octet-stream",
            key=f"dl_npy_{stem}",
            on_click="ignore",
            icon=":material/download:",
            help=f"float32 array of shape {m.shape}, row 0 first; values everywhere, "
            "the pixels without galaxies included (Δε ≥ 1 in the data)",
        )
        std, hw95 = bars.get(name, (None, None))
        col.download_button(
            "κ as FITS",
            functools.partial(kappa_fits, sel, name, m, std, hw95),
            file_name=f"{stem}.fits",
            mime="application/fits",
            key=f"dl_fits_{stem}",
            on_click="ignore",
            icon=":material/download:",
            help="κ as float32 in the primary image (row 0 is the first row), with the "
            "WCS of a FITS input"
            + (", a MASK extension: 1 where there were no galaxies" if masked else "")
            + (
                ", and the calibrated error bars: STD (κ ± STD holds 68.3 %) and HW95 (95.4 %)"
                if std is not None
                else " (with the error bars shown above: STD and HW95 extensions)"
            ),
        )
        col.download_button(
            "κ figure (PNG)",
            functools.partial(
                plots.map_figure_png,
                sel.masked(m),
                title=f"{name} κ · {sample}",
                zrange=zrange,
                pixel_arcmin=sel.pixel_arcmin,
                upscale=upscale,
            ),
            file_name=f"{stem}.png",
            mime="image/png",
            key=f"dl_png_{stem}",
            on_click="ignore",
            icon=":material/image:",
            help=f"A slide-ready figure: the map ({upscale * m.shape[1]} px wide), axes in "
            f"arcmin, a colour bar with the figure's limits {zrange[0]:.3g} … "
            f"{zrange[1]:.3g}",
        )


@st.fragment
def ellipticity_section(sel) -> None:
    """ε panels and the whiskers toggle (a fragment: the toggle redraws only this)."""
    show_whiskers = whiskers_ui()
    eps = sel.sample_eps
    noiseless = not np.any(eps[..., 2][~sel.sample_mask])
    figure_grid(
        plots.ellipticity_cells(eps, whiskers=show_whiskers, delta_e=not noiseless, axes=sel.axes),
        "compare_eps",
    )
    st.caption(
        "ε1 > 0: galaxies stretched along x; ε2 > 0: along the x = y diagonal. "
        + (
            "**No shape noise in these data**: ε is the reduced shear g itself and its "
            "error Δε is 0 in every pixel with galaxies, so there is no Δε map to show."
            if noiseless
            else "Δε is the per-pixel measurement error (shape noise / √galaxies; "
            "1 where a pixel has no galaxy)."
        )
    )


def _shown(sel, preds: dict[str, np.ndarray], truth, add_mean: bool) -> dict[str, np.ndarray]:
    """The maps as drawn: masked, KS93 and Wiener shifted by the true mean on request."""
    linear = (ks93_label(sel.ks93_sigma_px, sel.ks93_pad), wiener_label(sel.ks93_pad))
    shown = {name: sel.masked(p) for name, p in preds.items()}
    if add_mean and truth is not None:
        for name in shown:
            if name in linear:
                shown[name] = shown[name] + np.float32(truth.mean())
    return shown


def _cells(sel, preds, truth, zrange, residuals, add_mean) -> list:
    shown = _shown(sel, preds, truth, add_mean)
    if truth is None:
        return plots.map_cells(shown, zrange=zrange, axes=sel.axes)
    return plots.comparison_cells(
        truth, shown, zrange=zrange, residual_zrange=residuals, axes=sel.axes
    )


def maps_grid(sel, zrange_of, add_mean: bool) -> dict[str, np.ndarray]:
    """The κ grid; returns every method's map.

    On a server that has not loaded TensorFlow yet, the truth, Wiener and KS93 are drawn
    first and the UNet's cell is left empty until the UNet has run.
    """
    truth = sel.sample_kappa
    later = sel.model_path is not None and not cache.unet_loaded()
    if not later:
        preds = cache.kappa_maps(sel)
        zrange = zrange_of(preds)
        residuals = None if truth is None else residual_range(truth, preds)
        figure_grid(_cells(sel, preds, truth, zrange, residuals, add_mean), "compare_kappa")
        return preds, zrange
    linear = cache.linear_kappa_maps(sel)
    zrange = zrange_of(linear)
    residuals = None if truth is None else residual_range(truth, linear)
    cells = _cells(sel, linear, truth, zrange, residuals, add_mean)
    unet_at = 0 if truth is None else 1
    slot = figure_grid(cells, "compare_kappa", slots=(unet_at,))[unet_at]
    slot.info(
        "The UNet runs once TensorFlow has loaded (the first time on this server: "
        "about 10 s); KS93 and Wiener are already here.",
        icon=":material/hourglass_top:",
    )
    unet = cache.unet_kappa_or_note(sel)
    if unet is None:
        slot.empty()
        return linear, zrange
    preds = {"UNet": unet} | linear
    cell = _cells(sel, {"UNet": unet}, truth, zrange, residuals, add_mean)[unet_at]
    slot.plotly_chart(cell, key=f"compare_kappa_{unet_at}", theme=None)
    return preds, zrange


@st.fragment
def kappa_section(sel) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """Maps, residuals and metrics with truth, or the maps alone (a fragment: the
    true-mean toggle redraws only this); returns the maps and their colour range."""
    truth = sel.sample_kappa
    grey = " Grey: pixels without galaxies (masked or outside the survey)."
    grey = grey if sel.sample_mask.any() else ""

    def zrange_of(preds):
        if truth is not None:
            return plots.robust_range(truth)
        return plots.robust_range([sel.masked(p) for p in preds.values()])

    if truth is None:
        st.info(
            "This data has no true κ (real data, or ε only): the residuals and the "
            "metrics need one. The **Null tests** page tells signal from noise instead: "
            "the B-mode test, and the peaks that stand above maps of pure noise.",
            icon=":material/info:",
        )
        preds, zrange = maps_grid(sel, zrange_of, False)
        st.caption(
            "One colour scale for all maps (its bar under the first); the panels of a map "
            "zoom together. KS93 and Wiener maps have mean 0 (the mass-sheet degeneracy)." + grey
        )
        return preds, zrange
    add_mean = add_mean_ui()
    preds, zrange = maps_grid(sel, zrange_of, add_mean)
    st.caption(
        "Top of each cell: the map, on one colour scale for every map (0.5–99.5 % of the "
        "true κ; bar under the true map). Bottom: prediction − true, red where the "
        "prediction is too high, blue where it is too low, on a scale set by the Wiener "
        "residual (bar under the first residual), so the KS93 settings do not change how "
        "the other errors look; raw KS93 saturates. A map and its residual zoom together. "
        "KS93 and Wiener maps have mean 0: a uniform sheet of mass produces no shear (the "
        "mass-sheet degeneracy); the true map has mean "
        f"{truth.mean():.4f}" + (", added to them here for display." if add_mean else ".") + grey
    )
    st.subheader("Metrics")
    # A static table: it redraws much faster than an interactive grid on each slider move.
    table = metrics_table(sel, preds)
    st.table(starred(table))
    st.caption(
        "★: the best method of each metric. "
        + " · ".join(f"{col}: {help_}" for col, help_ in _METRIC_COLUMNS.values())
    )
    wmape = table["WMAPE"].to_numpy()
    if not np.all(np.isfinite(wmape) & (wmape < HUGE_WMAPE)):
        st.caption(
            "**WMAPE is huge (or –) here** because it divides each pixel's error by the "
            "true |κ| there, and this true map has pixels at or very near 0 (the tails of "
            "an analytic profile, for instance). The challenge's scorer does the same; "
            "compare the methods by RMSE and r on such maps."
        )
    st.caption(
        "Metrics of this one sample, computed on the predictions as they are (KS93 "
        "and Wiener with mean 0). Peaks for DPEAKS are found after a σ = 3 px "
        "smoothing. Wiener: the filter S/(S+N) on the KS93 E mode (so it follows the "
        "zero-padding toggle), S the κ power spectrum of simulated maps, N this "
        "sample's shape noise from its Δε."
    )
    return preds, zrange


@st.fragment
def trust_section(sel, zrange) -> None:
    """The uncertainty toggle and, when on, the σ maps (a fragment: its widgets redraw
    only this)."""
    show, method, passes = uncertainty_ui(sel.model_path is not None and sel.is_tile)
    if show:
        uncertainty_section(sel, sel.sample_kappa, zrange, method, passes)
    elif sel.model_path is None:
        st.caption("Needs UNet weights.")
    elif not sel.is_tile:
        st.caption(
            "The uncertainty passes run on single 128 × 128 tiles, not on whole fields. "
            "On a field, the Null tests page measures each pixel's noise from maps of "
            "randomised galaxy orientations."
        )


sel = current()

st.subheader("Convergence κ")
preds, zrange = kappa_section(sel)

st.subheader("Error bars")
bars = errorbars_section(sel, preds)

st.subheader("Measured ellipticities")
ellipticity_section(sel)

st.subheader("The UNet's own spread")
trust_section(sel, zrange)

st.subheader("Downloads")
downloads_ui(sel, preds, zrange, bars)
