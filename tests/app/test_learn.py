"""The Learn page: the shear profile, KS93 in Fourier space, noise, mass sheet, Wiener,
the loss lab and error bars."""

from __future__ import annotations

import numpy as np
import pytest

from lensviz.lab import findings, load_lab
from tests.app.apptools import new_session, no_errors, specs
from ui import cache


def test_defaults_and_noise_slider_changes_the_numbers(app, open_page):
    open_page(app, "Learn")
    no_errors(app)
    assert len(app.get("plotly_chart")) >= 6
    before = {m.label: (m.value, m.help) for m in app.metric}
    assert before["Galaxies per pixel"][0] == "7.50"  # 30 per arcmin² × 0.25 arcmin²
    app.select_slider(key="learn_ngal").set_value(3).run()
    no_errors(app)
    after = {m.label: (m.value, m.help) for m in app.metric}
    assert after["Galaxies per pixel"][0] == "0.75"
    raw = "RMSE · KS93 raw"
    assert float(after[raw][0]) > float(before[raw][0])  # fewer galaxies, noisier KS93
    # Every method responds: its RMSE or its Pearson r (shown as the metric's help) moves.
    # (The tiny untrained UNet's output is nearly flat, so its RMSE may not move at 4 digits.)
    methods = [k for k in before if k.startswith("RMSE")]
    assert len(methods) == 3
    assert all(before[k] != after[k] for k in methods), (before, after)


def test_mass_sheet_leaves_the_shear_unchanged(app, open_page):
    open_page(app, "Learn")
    app.slider(key="learn_sheet").set_value(0.1).run()
    no_errors(app)
    values = {m.label: m.value for m in app.metric}
    assert float(values["Largest shear difference"]) < 1e-6
    assert abs(float(values["Mean of KS93 κ"])) < 1e-6
    assert float(values["Mean κ + κ₀"]) == pytest.approx(float(values["Mean κ"]) + 0.1, abs=2e-4)


def test_wiener_section_and_regions(app, open_page):
    open_page(app, "Learn")
    no_errors(app)
    assert any(h.value.startswith("5 · The Wiener filter") for h in app.header)
    assert any(r"\frac{S(k)}{S(k)+N}" in x.value for x in app.latex)
    spec = specs(app)
    assert "signal S(k)" in spec and "noise N (this sample)" in spec
    table = app.dataframe[-1].value  # the page's one table
    assert list(table.index)[:2] == ["UNet", "Wiener"]
    assert list(table.columns)[0] == "core (r < 5′)"
    app.slider(key="learn_core_radius").set_value(10.0).run()
    no_errors(app)
    wider = app.dataframe[-1].value
    assert list(wider.columns)[0] == "core (r < 10′)"
    np.testing.assert_allclose(wider["whole map"], table["whole map"])  # regions only


def test_without_weights_the_unet_is_left_out(no_weights, open_page):
    at = new_session()
    open_page(at, "Learn")
    assert not at.exception
    assert not any(m.label == "RMSE · UNet" for m in at.metric)


def test_the_loss_lab_section_says_what_the_lab_showed(app, open_page, lab):
    open_page(app, "Learn")
    no_errors(app)
    assert any(h.value.startswith("6 · What the training loss buys") for h in app.header)
    expected = findings(load_lab(lab / "lab.json"))
    shown = "\n".join(m.value for m in app.markdown)
    assert all(line in shown for line in expected)  # every finding, with its numbers
    assert "learn_lab_pareto" in {c.key for c in app.get("plotly_chart")}


def test_without_a_lab_the_section_says_so(app, open_page):
    open_page(app, "Learn")
    no_errors(app)
    assert any("benchmarks.loss_lab" in i.value for i in app.info)


def test_the_error_bar_section_sets_the_calibrated_band_beside_the_dropout_spread(
    calibrated, open_page
):
    at = calibrated
    open_page(at, "Learn")
    no_errors(at)
    assert any(h.value.startswith("7 · Error bars") for h in at.header)
    assert "learn_errorbars_reliability" not in {c.key for c in at.get("plotly_chart")}
    at.toggle(key="learn_errorbars").set_value(True).run()
    no_errors(at)
    sel = at.session_state["_selection"]
    kappa, std, _ = cache.unet_errorbars(sel)
    mean, spread = cache.unet_sigma(sel, "mc_dropout", cache.MC_PASSES)
    truth = sel.sample_kappa
    shown = {m.label: m.value for m in at.metric}
    held = np.mean(np.abs(truth - kappa) <= std)
    assert shown["Calibrated ±σ̂ holds"] == f"{100 * held:.0f} %"
    assert shown["Dropout ±σ holds"] == f"{100 * np.mean(np.abs(truth - mean) <= spread):.0f} %"
    assert "learn_errorbars_reliability" in {c.key for c in at.get("plotly_chart")}


def test_the_error_bar_check_says_why_without_a_calibration(app, open_page):
    open_page(app, "Learn")
    app.toggle(key="learn_errorbars").set_value(True).run()
    no_errors(app)
    assert any("its error bars are not calibrated" in i.value for i in app.info)
