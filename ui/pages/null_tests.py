"""Null tests: what in a mass map stands above the noise, without a true κ to compare with.

Real data (the COSMOS field) have no truth. Two tests of :mod:`lensviz.nulltests` tell
signal from noise instead, for the UNet, Wiener and KS93 alike: the B modes (the map of
the 45°-rotated data, which gravity leaves empty) and noise maps from randomised galaxy
orientations, which give each pixel's noise and each peak's significance. Any sample
works, the simulated ones too, where the truth shows what the tests miss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import plots
from lensviz.depth import depth_label, effective_n_gal
from lensviz.nulltests import (
    B_OUTLIER_SIGMA,
    DETECTION_FALSE_ALARM,
    GAUSSIAN_OUTLIER_SHARE,
    peak_region,
    with_errorbars,
)
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import Selection, current
from ui.text import count, format_duration, percent, sky_position

#: A peak is called a detection when at most this share of the noise maps reach its height.
FALSE_ALARM = DETECTION_FALSE_ALARM
#: |B| / noise rms beyond this is rare for Gaussian noise: B_GAUSSIAN_SHARE (0.27 %) of pixels.
B_SIGMA = B_OUTLIER_SIGMA
B_GAUSSIAN_SHARE = GAUSSIAN_OUTLIER_SHARE
PEAKS_LISTED = 5  # rows per method in the peak table


def realisations_ui() -> int:
    default, why = cache.default_noise_realisations()
    options = sorted({*cache.NOISE_REALISATIONS, default})
    return int(
        st.select_slider(
            "Noise realisations",
            options,
            default,
            key="null_n_noise",
            help="Maps of the same galaxies with random orientations: no lensing signal, "
            "the same shape noise. More maps give a finer false-alarm rate (1 / number) "
            "and a steadier 5 % decision, and take proportionally longer (the UNet runs on "
            f"every one). {why}.",
        )
    )


def run_tests(sel: Selection, n_noise: int) -> dict[str, dict] | None:
    """The null tests of the selected sample, with a progress bar by method the first time."""
    bar = st.progress(0.0, text=f"Reconstructing {n_noise} noise maps with each method…")

    def on_method(i: int, n: int, name: str, seconds: float) -> None:
        bar.progress(
            i / n,
            text=f"{name}: {n_noise} noise maps, about {format_duration(max(seconds, 1.0))} "
            f"(method {i + 1} of {n}; the results are kept for every session)…",
        )

    try:
        results = cache.null_test_results(sel, n_noise, on_method=on_method)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the null tests: {exc}")
        return None
    finally:
        bar.empty()
    return results


def snr_maps(sel: Selection, results: dict[str, dict]) -> tuple[dict, dict]:
    """E and B maps over each method's noise rms, NaN where there is no data."""
    snr_e, snr_b = {}, {}
    for name, r in results.items():
        rms = np.where(r["noise_rms"] > 0, r["noise_rms"], np.nan)
        snr_e[name] = sel.masked(r["kappa"] / rms)
        snr_b[name] = sel.masked(r["kappa_b"] / rms)
    return snr_e, snr_b


def detections(results: dict[str, dict]) -> dict[str, list[tuple[int, int, float]]]:
    """Each method's detections (false-alarm rate ≤ :data:`FALSE_ALARM`): (y, x, S/N)."""
    return {
        name: [(p.y, p.x, p.snr) for p in r["peaks"] if p.detected] for name, r in results.items()
    }


def e_over_b_table(results: dict[str, dict]) -> pd.DataFrame:
    rows = {}
    for name, r in results.items():
        mean, std = r["e_over_b_null"]
        rows[name] = {
            "E/B, footprint": r["e_over_b"],
            "E/B, interior": r["e_over_b_interior"],
            "E/B of pure noise": f"{mean:.2f} ± {std:.2f}",
            f"|B| > {B_SIGMA:g} noise rms": r["b_outlier_share"],
            "detections": sum(p.detected for p in r["peaks"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def peaks_with_errorbars(sel: Selection, results: dict[str, dict]) -> tuple[dict, dict]:
    """Each method's peaks with their heights' calibrated error bars
    (:func:`lensviz.nulltests.with_errorbars`) where the method has them; and for the
    others, why not."""
    bars = cache.errorbars(sel, results)
    peaks, missing = {}, {}
    for name, r in results.items():
        if isinstance(bars[name], str):
            peaks[name], missing[name] = r["peaks"], bars[name]
        else:
            peaks[name] = with_errorbars(r["peaks"], *bars[name])
    return peaks, missing


def _interval(p) -> str:
    lo, hi = p.false_alarm_interval
    return f"{percent(p.false_alarm)} ({percent(lo).removesuffix(' %')}–{percent(hi)})"


def peak_table(sel: Selection, peaks: dict[str, list]) -> pd.DataFrame:
    """The :data:`PEAKS_LISTED` highest peaks of each method: where (pixels, arcmin, RA/Dec
    with a WCS), the height with its calibrated error bars, S/N and the false-alarm rate
    with its 68.3 % binomial interval."""
    rows, wcs = [], sel.grid.wcs
    for name, found in peaks.items():
        highest = sorted(found, key=lambda p: -p.height)[:PEAKS_LISTED]
        for rank, p in enumerate(highest, start=1):
            arcmin, radec = sky_position(p.y, p.x, sel.pixel_arcmin, wcs)
            row = {"method": name, "rank": rank, "(y, x) px": f"({p.y}, {p.x})"}
            row["(x, y) arcmin"] = arcmin
            if radec is not None:
                row["RA, Dec"] = radec
            row["κ ± σ̂ (95.4 %)"] = (
                f"{p.height:.3f}"
                if p.std is None
                else f"{p.height:.3f} ± {p.std:.3f} (± {p.hw95:.3f})"
            )
            row["S/N"] = p.snr
            row["false alarm"] = _interval(p)
            rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def unet_b_sentence(results: dict[str, dict]) -> str:
    """What the UNet's B map says about it, when there is one."""
    if "UNet" not in results:
        return ""
    share = float(results["UNet"]["b_outlier_share"])
    if share <= 5 * B_GAUSSIAN_SHARE:
        return (
            f" Here its B map looks like noise ({share:.1%} of its pixels beyond "
            f"±{B_SIGMA:g} noise rms; Gaussian noise: {B_GAUSSIAN_SHARE:.1%})."
        )
    return (
        f" Here {share:.1%} of its B pixels lie beyond ±{B_SIGMA:g} noise rms (Gaussian "
        f"noise: {B_GAUSSIAN_SHARE:.1%}): it draws structure from shear patterns that "
        "gravity does not make, so some of its E structure is of its own making too."
    )


def trust_text(sel: Selection, results: dict[str, dict], n_noise: int) -> str:
    """What a reconstruction of these data can and cannot tell, with this sample's numbers."""
    eps = sel.sample_eps
    n_gal = float(effective_n_gal(eps[..., 2], sel.sigma_e, sel.pixel_arcmin))
    per_pixel = n_gal * sel.pixel_arcmin**2
    footprint = 1.0 - float(sel.sample_mask.mean())
    region = peak_region(~sel.sample_mask)
    ks93_name = next(n for n in results if n.startswith("KS93"))
    ks93_noise = float(np.median(results[ks93_name]["noise_rms"][region])) if region.any() else 0.0
    pixels = f"{sel.pixel_arcmin:.3g}′ pixels"
    return f"""
**What these data can tell.** {depth_label(n_gal)} over {footprint:.0%} of the field, about
{per_pixel:.1f} galaxies per {pixels}. The noise of the {ks93_name} map is κ ≈
{ks93_noise:.3f} rms per pixel inside the footprint: only the largest mass concentrations,
massive clusters of 10¹⁴–10¹⁵ solar masses, rise above it.

- **Trust the detections**, the peaks that at most {FALSE_ALARM:.0%} of the {n_noise}
  noise maps reach anywhere in the field. Their positions are good to a few pixels.
  A lower peak may be real, but noise can make it as well. A rate near {FALSE_ALARM:.0%}
  is uncertain itself: its interval says how far another set of noise maps could move it.
- **A height holds within its error bar**, κ ± σ̂ in 68 % of cases and within the wider
  95.4 % band in 95 %, as calibrated on simulated fields at this depth: for each method's
  own map (its smoothing, Wiener's power spectrum, the UNet's training simulations), and
  on the sky as far as the sky is like those simulations.
- **Do not trust** the field's mean (a uniform sheet of mass makes no shear), or anything
  in the grey areas (no galaxies: there the maps are interpolated from around).
- **B modes.** Gravity makes none, so the B maps show noise and systematics (an
  imperfect PSF correction, for instance). B at the E level means no signal is seen.
  E/B is near 1 for pure noise (the table gives the spread).
- **The UNet** learned simulated ΛCDM clusters (a warning under the page's title says
  when these data lie outside what it saw). On real data its map leans on that prior.
  Believe the peaks that pass the test with KS93 and Wiener too, and treat its
  amplitudes as estimates made for simulations.
  {unet_b_sentence(results)}
"""


# === Page ===

sel = current()
st.markdown(
    "Without a true κ, two tests tell signal from noise. **B modes:** rotate every galaxy "
    "by 45° and E turns into B, which gravity does not make, so the map of the rotated "
    "data must look like noise. **Noise maps:** give every galaxy a random orientation, "
    "which keeps the shape noise and destroys the lensing, and reconstruct many such "
    "realisations. Their spread is each pixel's noise, and their highest peaks say how "
    "often noise alone makes a peak that high."
)
if sel.has_truth:
    st.caption(
        "This sample has a true κ: compare the detections with it on Compare and Peaks. "
        "The tests are made for real data, such as the COSMOS field (sidebar)."
    )

n_noise = realisations_ui()
results = run_tests(sel, n_noise)
if results is None:
    st.stop()

st.subheader("Maps in units of their noise")
snr_e, snr_b = snr_maps(sel, results)
figure_grid(plots.significance_cells(snr_e, snr_b, detections(results), axes=sel.axes), "null_snr")
st.caption(
    f"Top of each cell: the method's map divided by its noise rms per pixel, from {n_noise} "
    "noise maps (S/N). Bottom: the same for the 45°-rotated data, the B modes, which should "
    "look like noise. One scale for every panel. Circles: the detections, peaks that at most "
    f"{FALSE_ALARM:.0%} of the noise maps reach anywhere in the field, 4 px or more from "
    "the footprint's edge; the six of highest S/N carry it. Grey: no galaxies. A pixel's "
    "S/N compares it with noise maps, which are white: a method that answers coherent "
    "patterns more strongly than white noise has a B map beyond ±3 (the table below "
    "counts it), so judge a peak by its false-alarm rate, not by its S/N."
)

st.subheader("E against B")
table = e_over_b_table(results)
st.table(
    table.style.format(
        {
            "E/B, footprint": "{:.2f}",
            "E/B, interior": "{:.2f}",
            f"|B| > {B_SIGMA:g} noise rms": "{:.1%}",
        }
    )
)
st.caption(
    "E/B: rms of the map over that of the B map, inside the footprint, or in its interior, "
    "8 px away from every edge and hole, where no method extrapolates. E/B of pure noise: "
    "the same ratio for pairs of noise maps, mean ± standard deviation. |B| > "
    f"{B_SIGMA:g} noise rms: the share of B pixels that far out, "
    f"{B_GAUSSIAN_SHARE:.1%} for Gaussian noise. Detections: peaks "
    f"that at most {FALSE_ALARM:.0%} of the noise maps reach anywhere in the field "
    f"(a global test). The resolution is 1/{n_noise}."
)

st.subheader("The most significant peaks")
peaks, uncalibrated = peaks_with_errorbars(sel, results)
st.table(peak_table(sel, peaks).style.format({"S/N": "{:.1f}"}))
st.caption(
    f"The {count(PEAKS_LISTED, 'highest peak')} of each method, the highest first. "
    "(y, x) = (row, column); (x, y) arcmin from the map's first corner, as on the map axes"
    + (", and the right ascension and declination of the pixel" if sel.grid.wcs else "")
    + ". κ ± σ̂: the peak's height and its calibrated error bar (68.3 %), in brackets the "
    "half-width of the 95.4 % band. False alarm: the share of noise maps whose highest "
    "peak in the field is at least as high, and its 68.3 % binomial (Wilson) interval over "
    f"the {n_noise} noise maps: a detection is at most {FALSE_ALARM:.0%}."
)
for name, why in uncalibrated.items():
    short = cache.UNCALIBRATED if why.startswith(cache.UNCALIBRATED) else f"none: {why}"
    st.caption(f"{name}: heights without error bars, {short}.")

st.subheader("What can be trusted")
st.markdown(trust_text(sel, results, n_noise))
