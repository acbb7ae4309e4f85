"""AppTests of issue 5 in the app: Wiener beside UNet and KS93, the UNet-uncertainty toggle
on Compare, Wiener on Peaks and DICEE, and the Wiener section of Learn; plus checks of the
new figures.

As in ``test_app_pages.py`` the app runs in-process on the built-in simulated set with a
tiny untrained UNet, and the weights folder is pointed at a temporary one by
monkeypatching ``ui.shared``. The app looks for the Wiener filter's κ power
spectrum beside the shipped weights (``shared.power_spectrum_path``), so the fixture
writes one there: a seeded power law, which keeps these tests independent of the shipped
``weights/kappa_power.npz``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import shared
from lensviz import metrics, plots
from lensviz.evaluation import wiener_predictor
from lensviz.inversion import PowerSpectrum
from lensviz.nn.uncertainty import calibration

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120
TTA = "8 symmetries (test-time augmentation)"


# === Fixtures ===


def power_law_spectrum() -> PowerSpectrum:
    """S(k) ∝ (k + 0.02)⁻², per pixel, on the binning of ``estimate_power_spectrum``."""
    edges = np.linspace(0.0, np.sqrt(0.5) + 1e-9, 49)
    k = 0.5 * (edges[1:] + edges[:-1])
    return PowerSpectrum(edges, 2e-6 * (k + 0.02) ** -2, {"command": "test power law"})


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A tiny untrained UNet (with decoder dropout) and a κ power spectrum beside it."""
    from lensviz.nn.model import UNetConfig, build_unet, save_model

    folder = tmp_path_factory.mktemp("weights5")
    config = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=2)
    save_model(build_unet(config), folder / "tiny.keras")
    power_law_spectrum().save(folder / shared.POWER_SPECTRUM_FILE)
    return folder


@pytest.fixture(scope="module")
def with_weights(weights_dir, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(shared, "SHIPPED_WEIGHTS_DIR", weights_dir)
    mp.setattr(shared, "USER_WEIGHTS_DIR", tmp_path_factory.mktemp("no_user_weights5"))
    yield weights_dir
    mp.undo()


@pytest.fixture
def without_spectrum(weights_dir, tmp_path, monkeypatch):
    """The tiny UNet alone: no power spectrum beside it."""
    folder = tmp_path / "model_only"
    folder.mkdir()
    (folder / "tiny.keras").write_bytes((weights_dir / "tiny.keras").read_bytes())
    monkeypatch.setattr(shared, "SHIPPED_WEIGHTS_DIR", folder)
    monkeypatch.setattr(shared, "USER_WEIGHTS_DIR", tmp_path / "none")


def open_page(page: str, at: AppTest | None = None) -> AppTest:
    if at is None:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
    at.switch_page(f"ui/pages/{page}.py").run()
    return at


def specs(at: AppTest) -> str:
    """The figures' JSON, re-encoded with raw Unicode (plotly escapes it unless orjson is
    installed, so a raw "−" would be found in one environment and not in another)."""
    return "\n".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False)
                     for c in at.get("plotly_chart"))


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def first_sample():
    """The sample the app shows on defaults: built-in set, seed 0, index 0."""
    eps, kappa, _ = shared.builtin_set(0)
    return eps[0], kappa[0]


# === Compare: Wiener ===


def test_compare_defaults_show_wiener_in_maps_and_metrics(with_weights):
    at = open_page("compare")
    no_errors(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["UNet", "Wiener", "KS93 (σ 3 px)"]
    # The Wiener row scores the package's Wiener filter with this spectrum.
    eps, kappa = first_sample()
    expected = wiener_predictor(power_law_spectrum())(eps[None])[0]
    assert table.loc["Wiener", "RMSE"] == pytest.approx(float(metrics.rmse(kappa, expected)),
                                                         rel=1e-5)
    assert table.loc["Wiener", "DPEAKS"] == metrics.dpeaks(kappa, expected)
    spec = specs(at)
    assert "Wiener − true" in spec  # its residual panel
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads.count("κ as .npy") == 3  # UNet, Wiener, KS93


def test_compare_padding_and_true_mean_apply_to_wiener(with_weights):
    at = open_page("compare")
    at.toggle(key="ks93_pad_widget").set_value(True).run()
    no_errors(at)
    assert list(at.dataframe[0].value.index) == ["UNet", "Wiener (padded)",
                                                 "KS93 (σ 3 px, padded)"]
    before = at.dataframe[0].value
    at.toggle(key="compare_add_mean").set_value(True).run()
    no_errors(at)
    assert at.dataframe[0].value.equals(before)  # display only


def test_compare_without_spectrum_leaves_wiener_out_and_says_why(without_spectrum):
    at = open_page("compare")
    no_errors(at)
    assert list(at.dataframe[0].value.index) == ["UNet", "KS93 (σ 3 px)"]
    assert any("Wiener filter is left out" in c.value for c in at.caption)


# === Compare: UNet uncertainty ===


def test_uncertainty_is_off_by_default(with_weights):
    at = open_page("compare")
    assert at.toggle(key="compare_uncertainty").value is False
    assert "σ per pixel" not in specs(at)
    assert not [m for m in at.metric if "within" in m.label]


def test_uncertainty_tta_shows_sigma_map_and_coverage(with_weights):
    at = open_page("compare")
    at.toggle(key="compare_uncertainty").set_value(True).run()
    at.radio(key="compare_unc_method").set_value(TTA).run()
    no_errors(at)
    assert at.slider(key="compare_unc_passes").disabled  # T is for Monte-Carlo dropout only
    spec = specs(at)
    assert "σ per pixel" in spec and "(mean − true)" in spec  # plotly escapes the "/"
    assert "calibrated (diagonal)" in spec  # the reliability plot
    # The numbers are those of lensviz.nn.uncertainty on the same sample and model.
    from lensviz.nn.model import load_model
    from lensviz.nn.uncertainty import predict_tta

    eps, kappa = first_sample()
    mean, std = predict_tta(load_model(with_weights / "tiny.keras"), eps)
    cal = calibration(kappa, mean, std)
    cards = {m.label: m for m in at.metric}
    one, two = cards["True pixels within ±1σ"], cards["True pixels within ±2σ"]
    assert one.value == f"{100 * cal['within_1sigma']:.1f} %"
    assert two.value == f"{100 * cal['within_2sigma']:.1f} %"
    assert "68.3 %" in one.delta and "95.4 %" in two.delta
    assert cards["Mean σ"].value == f"{cal['mean_sigma']:.4f}"
    assert any("8 rotations and flips" in c.value for c in at.caption)


def test_uncertainty_mc_dropout_with_few_passes(with_weights):
    at = open_page("compare")
    at.toggle(key="compare_uncertainty").set_value(True).run()
    assert at.radio(key="compare_unc_method").value == "Monte-Carlo dropout"
    assert at.slider(key="compare_unc_passes").value == shared.MC_PASSES
    at.slider(key="compare_unc_passes").set_value(3).run()
    no_errors(at)
    assert "mean of T = 3 passes" in specs(at)
    within = {m.label: float(m.value.rstrip(" %")) for m in at.metric if "within" in m.label}
    assert set(within) == {"True pixels within ±1σ", "True pixels within ±2σ"}
    assert 0 <= within["True pixels within ±1σ"] <= within["True pixels within ±2σ"] <= 100
    caption = " ".join(c.value for c in at.caption)
    assert "BatchNorm" in caption and "not a full posterior" in caption
    # Same arguments: served from the cache, so the numbers do not change on a rerun.
    at.run()
    assert {m.label: float(m.value.rstrip(" %")) for m in at.metric
            if "within" in m.label} == within


def test_uncertainty_without_truth_shows_sigma_but_no_coverage(with_weights):
    import io

    rng = np.random.default_rng(5)
    eps = np.stack([0.05 * rng.standard_normal((128, 128)),
                    0.05 * rng.standard_normal((128, 128)),
                    np.full((128, 128), 0.05)]).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, eps)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.sidebar.radio(key="source").set_value(shared.SOURCES[1]).run()
    at.sidebar.file_uploader(key="upload").set_value(
        [("eps_only.npy", buf.getvalue(), "application/octet-stream")]).run()
    open_page("compare", at)
    at.toggle(key="compare_uncertainty").set_value(True).run()
    at.radio(key="compare_unc_method").set_value(TTA).run()
    no_errors(at)
    spec = specs(at)
    assert "σ per pixel" in spec and "(mean − true)" not in spec
    assert not [m for m in at.metric if "within" in m.label]
    assert list(at.dataframe) == []  # no metrics without truth
    assert [b.proto.label for b in at.get("download_button")].count("κ as .npy") == 3


# === Peaks and DICEE ===


def test_peaks_and_dicee_show_wiener_as_a_third_method(with_weights):
    at = open_page("peaks")
    no_errors(at)
    assert len([m for m in at.metric if m.label == "DPEAKS"]) == 3
    assert [s.value for s in at.subheader] == ["UNet", "Wiener", "KS93 (σ 3 px)"]
    open_page("dicee", at)
    no_errors(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["UNet", "Wiener", "KS93 (σ 3 px)"]
    assert (table[["TP", "TN", "FP", "FN"]].sum(axis=1) == 128 * 128).all()
    assert table.loc["Wiener", "threshold mean(P)"] == pytest.approx(0.0, abs=1e-6)


# === Learn ===


def test_learn_wiener_section_renders(with_weights):
    at = open_page("learn")
    no_errors(at)
    assert any(h.value.startswith("5 · The Wiener filter") for h in at.header)
    assert any(r"\frac{S(k)}{S(k)+N}" in x.value for x in at.latex)
    spec = specs(at)
    assert "signal S(k)" in spec and "noise N (this sample)" in spec
    table = at.dataframe[-1].value  # the page's one table
    assert list(table.index)[:2] == ["UNet", "Wiener"]
    assert list(table.columns)[0] == "core (r < 5′)"
    at.slider(key="learn_core_radius").set_value(10.0).run()
    no_errors(at)
    wider = at.dataframe[-1].value  # the page's one table
    assert list(wider.columns)[0] == "core (r < 10′)"
    np.testing.assert_allclose(wider["whole map"], table["whole map"])  # regions only


# === Figures ===


def test_uncertainty_row_standardises_the_residual():
    mean = np.full((8, 8), 0.1)
    std = np.full((8, 8), 0.02)
    std[0, 0] = 0.0
    truth = mean - 0.04  # mean is 2σ too high
    fig = plots.uncertainty_row(mean, std, truth=truth, zrange=(0.0, 0.2))
    assert [a.text for a in fig.layout.annotations] == ["UNet mean", "σ per pixel",
                                                        "(mean − true) / σ"]
    z = np.asarray(fig.data[2].z, dtype=float)
    assert np.isnan(z[0, 0])  # σ = 0: undefined
    np.testing.assert_allclose(z.ravel()[1:], 2.0, rtol=1e-5)
    assert (fig.layout.coloraxis3.cmin, fig.layout.coloraxis3.cmax) == (-3.0, 3.0)
    assert fig.layout.coloraxis2.cmin == 0.0
    assert len(plots.uncertainty_row(mean, std).data) == 2  # no truth: no z panel
    with pytest.raises(ValueError, match="shape"):
        plots.uncertainty_row(mean, std[:4])


def test_reliability_figure_has_the_diagonal_and_the_points():
    cal = calibration(np.zeros((16, 16)), np.zeros((16, 16)), np.ones((16, 16)))
    fig = plots.reliability_figure(cal["expected"], cal["observed"], z=cal["z"],
                                   points={"±1σ": (cal["expected_1sigma"], 1.0)})
    assert list(fig.data[0].x) == [0, 1] and list(fig.data[0].y) == [0, 1]
    np.testing.assert_allclose(fig.data[1].y, 1.0)  # zero error: always covered
    assert fig.data[2].text == ("±1σ",)
    with pytest.raises(ValueError, match="1-D"):
        plots.reliability_figure([0.1, 0.2], [0.1])


def test_outline_regions_draws_on_every_requested_panel():
    fig = plots.map_row({"a": np.zeros((16, 16)), "b": np.zeros((16, 16))})
    plots.outline_regions(fig, center=(8, 6), radius=3, border=2, shape=(16, 16),
                          panels=(1, 2))
    circles = [s for s in fig.layout.shapes if s.type == "circle"]
    assert [(c.xref, c.x0, c.x1, c.y0, c.y1) for c in circles] == [
        ("x", 3, 9, 5, 11), ("x2", 3, 9, 5, 11)]
    assert sum(s.type == "rect" for s in fig.layout.shapes) == 2
    with pytest.raises(ValueError, match="shape"):
        plots.outline_regions(fig, border=2)
