"""The Compare page: maps, residuals, metrics, uncertainty and downloads."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from lensviz import metrics, plots
from lensviz.evaluation import wiener_predictor
from lensviz.nn.inference import load_model
from lensviz.nn.uncertainty import calibration, predict_tta
from tests.app.apptools import (
    chart_specs,
    first_sample,
    new_session,
    no_errors,
    npy_bytes,
    panel_titles,
    power_law_spectrum,
    shown_table,
    specs,
    texts,
    upload,
)
from ui import cache
from ui.downloads import kappa_fits

TTA = "8 symmetries (test-time augmentation)"


def test_defaults_show_unet_wiener_and_ks93_in_maps_and_metrics(app):
    no_errors(app)
    assert app.title[0].value == "Compare"
    # The κ comparison and the metrics first, the noise-like ε maps after them.
    assert texts(app.subheader)[:4] == [
        "Convergence κ",
        "Metrics",
        "Error bars",
        "Measured ellipticities",
    ]
    cells = chart_specs(app, "compare_kappa")
    titles = [panel_titles(c) for c in cells]
    assert titles == [
        ["true κ"],
        ["UNet", "UNet − true"],
        ["Wiener", "Wiener − true"],
        ["KS93 (σ 4 px)", "KS93 − true"],
    ]
    table = app.table[0].value
    assert list(table.columns) == ["WMAPE", "DICEE", "DPEAKS", "RMSE", "r"]
    assert list(table.index) == ["UNet", "Wiener", "KS93 (σ 4 px)"]
    # The Wiener row scores the package's Wiener filter with this spectrum.
    eps, kappa = first_sample()
    expected = wiener_predictor(power_law_spectrum())(eps[None])[0]
    assert table.loc["Wiener", "RMSE"] == pytest.approx(
        float(metrics.rmse(kappa, expected)), rel=1e-5
    )
    assert table.loc["Wiener", "DPEAKS"] == metrics.dpeaks(kappa, expected)
    # Each metric's best method is starred, as on Evaluate.
    shown = shown_table(app.table[0])
    for col in table.columns:
        best = table[col].idxmax() if col == "r" else table[col].idxmin()
        assert shown.loc[best, col].endswith(" ★"), (col, shown[col].to_dict())
    assert sum(v.endswith("★") for v in shown["RMSE"]) == 1
    downloads = [b.proto.label for b in app.get("download_button")]
    assert downloads.count("κ as .npy") == 3  # UNet, Wiener, KS93


def test_without_weights_says_why(no_weights):
    at = new_session()
    assert any("No UNet weights" in i.value for i in at.info)
    assert any("UNet views are disabled" in w.value for w in at.sidebar.warning)


def test_without_spectrum_leaves_wiener_out_and_says_why(no_spectrum):
    at = new_session()
    assert list(at.table[0].value.index) == ["UNet", "KS93 (σ 4 px)"]
    assert any("Wiener filter is left out" in c for c in texts(at.caption))


def test_sidebar_smoothing_changes_ks93_only_and_not_the_residual_scale(app):
    table = app.table[0].value
    scale = _residual_scale(app)
    app.sidebar.toggle(key="ks93_auto").set_value(False).run()  # the slider instead of the rule
    app.sidebar.slider(key="ks93_sigma").set_value(0.0).run()
    no_errors(app)
    raw = app.table[0].value
    assert list(raw.index) == ["UNet", "Wiener", "KS93 (σ 0 px)"]
    assert raw.iloc[2]["RMSE"] > table.iloc[2]["RMSE"]  # raw KS93 is mostly noise
    assert raw.iloc[2]["r"] < table.iloc[2]["r"]
    np.testing.assert_array_equal(raw.iloc[0].to_numpy(), table.iloc[0].to_numpy())  # UNet
    # The residual colour scale comes from the Wiener residual only.
    assert _residual_scale(app) == scale
    _, kappa = first_sample()
    assert scale[1] < np.abs(kappa).max()


def _residual_scale(at) -> tuple[float, float]:
    scales = {
        (c["layout"]["coloraxis2"]["cmin"], c["layout"]["coloraxis2"]["cmax"])
        for c in chart_specs(at, "compare_kappa")[1:]
    }
    assert len(scales) == 1  # one scale for every residual
    return scales.pop()


def test_padding_and_true_mean_apply_to_wiener_and_ks93(app):
    app.sidebar.toggle(key="ks93_pad").set_value(True).run()
    no_errors(app)
    assert list(app.table[0].value.index) == [
        "UNet",
        "Wiener (padded)",
        "KS93 (σ 4 px, padded)",
    ]
    before = app.table[0].value
    app.toggle(key="compare_add_mean").set_value(True).run()
    no_errors(app)
    assert app.table[0].value.equals(before)  # display only


def test_whiskers_toggle(app):
    def names(at):
        return [t.get("name", "") for t in chart_specs(at, "compare_eps")[0]["data"]]

    assert not any("whiskers" in n for n in names(app))
    app.toggle(key="compare_whiskers").set_value(True).run()
    assert any(n.startswith("whiskers: longest |ε|") for n in names(app))


def test_no_shape_noise_says_so_instead_of_a_delta_e_map(app):
    app.sidebar.selectbox(key="sim_depth").set_value("noise-free").run()
    no_errors(app)
    titles = [panel_titles(c)[0] for c in chart_specs(app, "compare_eps")]
    assert titles == ["ε1", "ε2"]
    assert any("No shape noise in these data" in c for c in texts(app.caption))
    app.sidebar.selectbox(key="sim_depth").set_value("lsst").run()
    assert len(chart_specs(app, "compare_eps")) == 3


def test_grey_means_no_data_and_the_outside_of_a_map_is_white(app):
    for cell in chart_specs(app, "compare_kappa"):
        layout = cell["layout"]
        assert layout["plot_bgcolor"] == plots.PAD_COLOR != plots.MASK_COLOR
        # A grey rectangle under each map, exactly its extent: NaN pixels show it. The
        # axes are in arcmin by default: 128 pixels of 0.5′.
        rects = [sh for sh in layout["shapes"] if sh["fillcolor"] == plots.MASK_COLOR]
        assert len(rects) == len(panel_titles(cell))
        assert all((r["x0"], r["x1"], r["layer"]) == (0.0, 64.0, "below") for r in rects)
        assert layout["xaxis"]["range"] == [0.0, 64.0]


def test_the_unet_cell_fills_in_after_the_others_on_a_fresh_server(app, monkeypatch):
    monkeypatch.setattr(cache, "unet_loaded", lambda: False)
    app.sidebar.number_input(key="sample_index").set_value(3).run()
    no_errors(app)
    cells = chart_specs(app, "compare_kappa")
    assert [panel_titles(c)[0] for c in cells] == [
        "true κ",
        "UNet",
        "Wiener",
        "KS93 (σ 4 px)",
    ]
    assert not any("TensorFlow has loaded" in i for i in texts(app.info))  # replaced
    assert list(app.table[0].value.index) == ["UNet", "Wiener", "KS93 (σ 4 px)"]


def test_kappa_fits_downloads_carry_ascii_names(app):
    """The "κ as FITS" buttons' files (the callables the buttons hold) open, with the
    method and sample in the header, for KS93 ("σ") and for COSMOS."""
    for source in ("Built-in simulated set", "Real data: COSMOS"):
        app.sidebar.radio(key="source").set_value(source).run()
        no_errors(app)
        sel = app.session_state["_selection"]
        preds = cache.kappa_maps(sel)
        name = next(n for n in preds if n.startswith("KS93"))
        raw = kappa_fits(sel, name, preds[name])
        with fits.open(io.BytesIO(raw)) as hdul:
            hdul.verify("exception")
            header = hdul[0].header
            np.testing.assert_array_equal(hdul[0].data, preds[name])
            assert header["METHOD"].startswith("KS93 (") and "px" in header["METHOD"]
            assert header["DATA"] == sel.sample_name
            assert str(header).isascii()
        unet = kappa_fits(sel, "UNet", preds["UNet"])
        with fits.open(io.BytesIO(unet)) as hdul:
            assert hdul[0].header["MODEL"] == "tiny.keras"  # the file name, not its path


def test_uncertainty_is_off_by_default(app):
    assert app.toggle(key="compare_uncertainty").value is False
    assert "σ per pixel" not in specs(app)
    assert not [m for m in app.metric if "within" in m.label]


def test_uncertainty_tta_shows_sigma_map_and_coverage(app, weights):
    app.toggle(key="compare_uncertainty").set_value(True).run()
    app.radio(key="compare_unc_method").set_value(TTA).run()
    no_errors(app)
    assert app.slider(key="compare_unc_passes").disabled  # T is for MC dropout only
    spec = specs(app)
    assert "σ per pixel" in spec and "(mean − true)" in spec
    assert "calibrated (diagonal)" in spec  # the reliability plot
    # The numbers are those of lensviz.nn.uncertainty on the same sample and model.
    eps, kappa = first_sample()
    mean, std = predict_tta(load_model(weights[0] / "tiny.keras"), eps)
    cal = calibration(kappa, mean, std)
    cards = {m.label: m for m in app.metric}
    one, two = cards["True pixels within ±1σ"], cards["True pixels within ±2σ"]
    assert one.value == f"{100 * cal['within_1sigma']:.1f} %"
    assert two.value == f"{100 * cal['within_2sigma']:.1f} %"
    assert "68.3 %" in one.delta and "95.4 %" in two.delta
    assert cards["Mean σ"].value == f"{cal['mean_sigma']:.4f}"
    assert any("8 rotations and flips" in c for c in texts(app.caption))


def test_uncertainty_mc_dropout_with_few_passes(app):
    app.toggle(key="compare_uncertainty").set_value(True).run()
    assert app.radio(key="compare_unc_method").value == "Monte-Carlo dropout"
    assert app.slider(key="compare_unc_passes").value == cache.MC_PASSES
    app.slider(key="compare_unc_passes").set_value(3).run()
    no_errors(app)
    assert "mean of T = 3 passes" in specs(app)
    within = {m.label: float(m.value.rstrip(" %")) for m in app.metric if "within" in m.label}
    assert set(within) == {"True pixels within ±1σ", "True pixels within ±2σ"}
    assert 0 <= within["True pixels within ±1σ"] <= within["True pixels within ±2σ"] <= 100
    caption = " ".join(texts(app.caption))
    assert "BatchNorm" in caption and "not a full posterior" in caption
    app.run()  # same arguments: served from the cache, the numbers do not change
    assert {
        m.label: float(m.value.rstrip(" %")) for m in app.metric if "within" in m.label
    } == within


def test_epsilon_only_upload_shows_maps_and_sigma_without_truth(app):
    rng = np.random.default_rng(5)
    eps = np.stack(
        [
            0.05 * rng.standard_normal((128, 128)),
            0.05 * rng.standard_normal((128, 128)),
            np.full((128, 128), 0.05),
        ]
    ).astype(np.float32)
    upload(app, [("eps_only.npy", npy_bytes(eps))])
    no_errors(app)
    assert any("no true κ" in i for i in texts(app.info))
    assert list(app.table) == []  # no metrics without truth
    app.toggle(key="compare_uncertainty").set_value(True).run()
    app.radio(key="compare_unc_method").set_value(TTA).run()
    no_errors(app)
    spec = specs(app)
    assert "σ per pixel" in spec and "(mean − true)" not in spec
    assert not [m for m in app.metric if "within" in m.label]
    assert [b.proto.label for b in app.get("download_button")].count("κ as .npy") == 3
