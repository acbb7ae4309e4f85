"""Calibrated error bars in the app: Compare's ± σ and S/N views, the coverage chips from
the model card, the FITS extensions; the UNet without a calibration says so; maps on
COSMOS in RA/Dec, north up; a pixel side for data that state none."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from lensviz import cosmos, plots
from lensviz.errorbars import coverage, default_error_models, linear_errorbars
from lensviz.evaluation import wiener_predictor
from lensviz.nn.errorbars import errorbar_predictor, load_sigma_net
from lensviz.nn.inference import load_model
from tests.app.apptools import (
    CARD_COVERAGE,
    challenge_pair,
    chart_specs,
    first_sample,
    no_errors,
    panel_titles,
    plotly_array,
    power_law_spectrum,
    texts,
    upload,
)
from tests.app.test_fields import choose_cosmos
from ui import cache
from ui.downloads import kappa_fits
from ui.text import percent


def z_of(spec: dict, panel: int = 0) -> np.ndarray:
    heat = [t for t in spec["data"] if t["type"] == "heatmap"][panel]
    return plotly_array(heat["z"])


def show_errorbars(at, view: str | None = None):
    at.toggle(key="compare_errorbars").set_value(True).run()
    if view is not None:
        at.segmented_control(key="compare_errorbar_view").set_value(view).run()
    no_errors(at)
    return at


def test_every_method_gets_its_calibrated_sigma_a_coverage_chip_and_fits_extensions(
    calibrated, calibrated_dir
):
    at = show_errorbars(calibrated)
    cells = chart_specs(at, "compare_errorbars")
    assert [panel_titles(c) for c in cells] == [["UNet σ̂"], ["Wiener σ̂"], ["KS93 σ̂"]]
    eps, kappa = first_sample()
    model = load_model(calibrated_dir / "tinyfield.keras")
    _, std, hw95 = errorbar_predictor(model, load_sigma_net(calibrated_dir / "tinyfield.keras"))(
        eps, 0.5
    )
    sel = at.session_state["_selection"]
    np.testing.assert_allclose(z_of(cells[0]), sel.masked(std), rtol=1e-5)  # grey: no data
    wiener_std, _ = linear_errorbars(eps, default_error_models()["wiener"], power_law_spectrum())
    np.testing.assert_allclose(z_of(cells[1]), sel.masked(wiener_std), rtol=1e-5)
    # One colour scale from 0 for every σ̂ map, its bar under the first.
    axes = [c["layout"]["coloraxis"] for c in cells]
    assert {(a["cmin"], a["cmax"]) for a in axes} == {(0.0, axes[0]["cmax"])}
    assert [a["showscale"] for a in axes] == [True, False, False]
    # A chip per method, from the model card at the nearest depth; Wiener's misses its
    # target (60 % at ±σ) and is orange.
    chips = [m for m in texts(at.markdown) if "-badge[" in m]
    assert len(chips) == 3
    unet, wiener, ks93 = chips
    c68, c95, _ = CARD_COVERAGE["unet"]
    held = f"UNet: ±σ holds {percent(c68)} · ±2σ {percent(c95)} at"
    assert unet.startswith(":green-badge[") and held in unet
    assert wiener.startswith(":orange-badge[") and "Wiener: ±σ holds 60 %" in wiener
    assert "KS93: ±σ holds 68 %" in ks93  # the depth rule's σ: "ks93_rule"
    # With a truth: this sample's coverage, as lensviz.errorbars.coverage counts it.
    unet_kappa = cache.unet_kappa(sel)
    within = coverage(kappa, unet_kappa, std, ~sel.sample_mask)
    line = next(c for c in texts(at.caption) if c.startswith("On this sample: "))
    assert f"UNet {percent(within)} within ±σ" in line
    # The S/N view: κ̂/σ̂ on one diverging scale of ±5.
    show_errorbars(at, "S/N = κ̂ / σ̂")
    snr = chart_specs(at, "compare_errorbars")
    assert [panel_titles(c) for c in snr] == [["UNet κ̂/σ̂"], ["Wiener κ̂/σ̂"], ["KS93 κ̂/σ̂"]]
    np.testing.assert_allclose(z_of(snr[0]), sel.masked(unet_kappa / std), rtol=1e-4)
    assert (snr[0]["layout"]["coloraxis"]["cmin"], snr[0]["layout"]["coloraxis"]["cmax"]) == (
        -5.0,
        5.0,
    )
    # The FITS download carries them: STD and HW95 beside κ.
    helps = [b.proto.help for b in at.get("download_button") if b.proto.label == "κ as FITS"]
    assert all("STD (κ ± STD holds 68.3 %)" in h for h in helps)
    raw = kappa_fits(sel, "UNet", unet_kappa, std, hw95)
    with fits.open(io.BytesIO(raw)) as hdul:
        mask = ["MASK"] if sel.sample_mask.any() else []
        assert sorted(h.name for h in hdul) == sorted(["PRIMARY", "STD", "HW95", *mask])
        np.testing.assert_allclose(hdul["STD"].data, std, rtol=1e-6)
        np.testing.assert_allclose(hdul["HW95"].data, 2.5 * std, rtol=1e-5)  # the q95 / q68


def test_a_unet_without_a_calibration_says_so_in_one_line(app):
    show_errorbars(app)
    cells = chart_specs(app, "compare_errorbars")
    assert [panel_titles(c) for c in cells] == [["Wiener σ̂"], ["KS93 σ̂"]]
    assert (
        "UNet (tiny (shipped)): its error bars are not calibrated (calibration belongs to "
        "the model it was fitted on)." in texts(app.caption)
    )
    # No card or benchmark measured these: the chips say so rather than invent coverage.
    chips = [m for m in texts(app.markdown) if "-badge[" in m]
    assert chips and all(c.startswith(":gray-badge[") and "not measured" in c for c in chips)
    # Without the toggle nothing is computed and the downloads carry κ alone.
    app.toggle(key="compare_errorbars").set_value(False).run()
    assert chart_specs(app, "compare_errorbars") == []


def test_cosmos_maps_read_ra_dec_north_up_and_the_unet_says_what_its_error_bar_means(
    calibrated,
):
    at = choose_cosmos(calibrated)
    no_errors(at)
    header = at.caption[0].value
    assert "90.1′ × 90.1′ around RA 150." in header and "Dec +2.2" in header
    first = chart_specs(at, "compare_kappa")[0]
    layout = first["layout"]
    assert "RA, Dec [deg]" in [a["text"] for a in layout["annotations"]]
    x_range, y_range = layout["xaxis"]["range"], layout["yaxis"]["range"]
    assert x_range[0] > x_range[1] > 149  # RA falls to the right: east left
    assert y_range[0] < y_range[1]  # Dec grows upwards: north up
    heat = next(t for t in first["data"] if t["type"] == "heatmap")
    wcs = cosmos.load_cosmos().grid.wcs
    ra, _ = wcs.pixel_to_world_values(np.arange(256), np.full(256, 127.5))
    np.testing.assert_allclose(plotly_array(heat["x"]), ra, atol=1e-9)
    # As stored, in pixels: row 0 at the top, column 0 on the left.
    at.sidebar.toggle(key="north_up").set_value(False).run()
    at.sidebar.radio(key="map_axes").set_value("px").run()
    layout = chart_specs(at, "compare_kappa")[0]["layout"]
    assert layout["xaxis"]["range"] == [-0.5, 255.5] and layout["yaxis"]["range"] == [255.5, -0.5]
    # Real data: a line under the UNet's σ̂ map says what it means.
    show_errorbars(at)
    assert (
        texts(at.caption).count(
            "UNet ±σ: on simulated fields at this depth, κ̂ ± σ̂ held the true κ in 68 % of the "
            "pixels; on the sky it holds as far as the sky is like those simulations."
        )
        == 1
    )


def test_data_without_a_pixel_side_get_a_field_that_every_method_and_the_link_follow(app):
    # The built-in set states its 0.5′: no field.
    assert not [n for n in app.sidebar.number_input if n.key == "pixel_arcmin"]
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(0))
    upload(app, [("EPSILON_a.npy", eps_bytes), ("KAPPA_a.npy", kappa_bytes)])
    no_errors(app)
    field = app.sidebar.number_input(key="pixel_arcmin")
    assert field.value == pytest.approx(0.5)
    field.set_value(0.25).run()
    no_errors(app)
    sel = app.session_state["_selection"]
    assert sel.pixel_arcmin == 0.25 and sel.grid.origin == "given"
    # Wiener takes the κ spectrum at 0.25′ pixels; the axes span 128 × 0.25′.
    wiener = z_of(chart_specs(app, "compare_kappa")[2])
    expected = wiener_predictor(power_law_spectrum())(sel.eps[:1], pixel_arcmin=0.25)[0]
    np.testing.assert_allclose(wiener, expected, rtol=1e-5, atol=1e-7)
    assert chart_specs(app, "compare_kappa")[0]["layout"]["xaxis"]["range"] == [0.0, 32.0]
    assert app.query_params["pixel"] == "0.25"
    assert "32′ × 32′" in app.caption[0].value


def test_the_map_axes_and_sky_helpers_agree_with_the_plots(calibrated):
    at = choose_cosmos(calibrated)
    sel = at.session_state["_selection"]
    assert sel.axes.unit == "sky" and sel.axes.flip_x and sel.axes.y_up
    # Another page's simulations get arcmin axes for RA/Dec (they have no sky).
    teaching = sel.axes_for((128, 128), 0.5)
    assert teaching.unit == "arcmin" and teaching.extent == (0.0, 64.0, 0.0, 64.0)
    assert plots.sky_problem(sel.grid.wcs, sel.shape) is None
    # A crop of the field has no WCS (another reference pixel): arcmin, as stored.
    tile = sel.tile(0, 0)
    assert tile.grid.wcs is None and tile.axes.unit == "arcmin" and not tile.axes.flip_x
    assert cache.UNCALIBRATED.startswith("its error bars are not calibrated")
