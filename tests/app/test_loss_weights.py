"""The Loss-weights page: the MultiFocal components, their combination and the losses."""

from __future__ import annotations

import json

from lensviz import constants
from lensviz.inversion import gaussian_smooth, ks93
from lensviz.loss_weights import multifocal_loss
from tests.app.apptools import chart_specs, first_sample, metric_values, no_errors


def test_renders_with_unet_wiener_and_ks93_losses(app, open_page):
    open_page(app, "Loss weights")
    no_errors(app)
    assert app.title[0].value == "Loss weights"
    values = metric_values(app)
    losses = [k for k in values if k.startswith("MultiFocal loss")]
    assert losses == [
        "MultiFocal loss · UNet",
        "MultiFocal loss · Wiener",
        "MultiFocal loss · KS93 (σ 4 px)",
    ]
    assert app.get("plotly_chart")
    # The card is lensviz's MultiFocal loss of the KS93 map, with the report's weights.
    eps, kappa = first_sample()
    ks = gaussian_smooth(ks93(eps[..., 0], eps[..., 1])[0], 4.0)  # the depth rule at 30
    expected = multifocal_loss(kappa, ks, constants.MULTIFOCAL_COEFFS)
    assert values["MultiFocal loss · KS93 (σ 4 px)"] == f"{expected:.3e}"


def test_peaks_coefficient_changes_the_combined_map_and_reset_restores(app, open_page):
    open_page(app, "Loss weights")
    before = metric_values(app)
    assert app.slider(key="lw_coeff_peaks").value == 3.0  # the report's value
    app.slider(key="lw_coeff_peaks").set_value(0.0).run()
    after = metric_values(app)
    no_errors(app)
    loss_labels = [k for k in before if k.startswith("MultiFocal loss")]
    assert after["Mean combined weight w"] != before["Mean combined weight w"]
    assert all(after[k] != before[k] for k in loss_labels)
    # A component parameter changes the maps too, and the reset restores everything.
    app.slider(key="lw_edge_width").set_value(12).run()
    assert metric_values(app)["Mean combined weight w"] != after["Mean combined weight w"]
    app.button(key="lw_reset").click().run()
    assert app.slider(key="lw_coeff_peaks").value == 3.0
    assert app.slider(key="lw_edge_width").value == 5
    assert metric_values(app) == before


def test_a_component_at_zero_is_drawn_faded(app, open_page):
    open_page(app, "Loss weights")
    app.slider(key="lw_coeff_edges").set_value(0.0).run()
    no_errors(app)
    opacity = {
        t["name"]: t.get("opacity", 1.0)
        for cell in chart_specs(app, "lw_grid")
        for t in cell["data"]
        if t["type"] == "heatmap"
    }
    edges = next(k for k in opacity if k.startswith("edges"))
    focal = next(k for k in opacity if k.startswith("focal"))
    assert opacity[edges] < 0.5 and opacity[focal] == 1.0


def test_all_zero_coefficients_is_an_error_not_a_crash(app, open_page):
    open_page(app, "Loss weights")
    for name in ("focal", "local", "peaks", "structure", "edges"):
        app.slider(key=f"lw_coeff_{name}").set_value(0.0)
    app.run()
    assert not app.exception
    assert any("coefficient" in e.value for e in app.error)


# === What these weights did in training (the loss lab) ===


def _chart(at, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == key)


def _ringed(spec: dict) -> set[str]:
    return {
        t["name"] for t in spec["data"] if t.get("marker", {}).get("line", {}).get("width") == 3
    }


def test_without_a_lab_the_section_says_how_to_make_one(app, open_page):
    open_page(app, "Loss weights")
    no_errors(app)
    assert any("benchmarks.loss_lab" in i.value for i in app.info)
    assert "lw_lab_pareto" not in {c.key for c in app.get("plotly_chart")}


def test_the_lab_variant_closest_to_the_sliders_is_ringed(app, open_page, lab):
    open_page(app, "Loss weights")
    no_errors(app)
    spec = _chart(app, "lw_lab_pareto")
    names = {t["name"] for t in spec["data"]}
    assert {"MSE", "MultiFocal", "mf_no_peaks", "ft_dicee", "UNet shipped"} <= names
    assert _ringed(spec) == {"MultiFocal"}  # the report's coefficients are the MultiFocal run
    app.slider(key="lw_coeff_peaks").set_value(0.0).run()
    no_errors(app)
    assert _ringed(_chart(app, "lw_lab_pareto")) == {"mf_no_peaks"}
    assert any("**mf_no_peaks**" in c.value and "distance 0.00" in c.value for c in app.caption)
    # another depth of the lab: the same models, that depth's scores
    app.segmented_control(key="lw_lab_depth").set_value("no shape noise").run()
    no_errors(app)
    assert "no shape noise" in _chart(app, "lw_lab_pareto")["layout"]["annotations"][0]["text"]


def test_a_lab_models_maps_beside_the_mse_models(app, open_page, lab):
    open_page(app, "Loss weights")
    app.toggle(key="lw_lab_maps").set_value(True).run()
    no_errors(app)
    assert app.selectbox(key="lw_lab_model").value == "closest to your sliders"
    cells = chart_specs(app, "lw_lab_grid")
    # the truth, the MSE model over its residual, the variant over its, their difference
    assert len(cells) == 4
    assert any("MultiFocal − MSE" in json.dumps(c, ensure_ascii=False) for c in cells)
    app.selectbox(key="lw_lab_model").set_value("mf_no_peaks").run()
    no_errors(app)
    caption = next(c.value for c in app.caption if "held-out maps" in c.value)
    assert "mf_no_peaks − MSE" in caption and "±" in caption
