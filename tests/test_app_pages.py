"""AppTests of the Compare, Loss-weights, Peaks and DICEE pages, and checks of their figures.

The app runs in-process (``AppTest``) on the built-in simulated set with a tiny untrained
UNet. ``ui/shared.py`` reads ``LENSVIZ_WEIGHTS_DIR`` once, at import; since AppTest
executes ``app.py`` in this process, ``from ui import shared`` there returns the very
module imported here, so the fixtures point it at the tiny weights by monkeypatching
``shared.SHIPPED_WEIGHTS_DIR`` (and an empty ``USER_WEIGHTS_DIR``) instead of relying on
the environment, which another test module may have set first.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import shared
from lensviz import metrics, plots
from lensviz.inversion import ks93inv

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ("compare", "loss_weights", "peaks", "dicee")
TRUTH_PAGES = ("loss_weights", "peaks", "dicee")
TIMEOUT = 90


# === Fixtures ===


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A folder with one tiny untrained UNet (a few thousand parameters)."""
    from lensviz.nn.model import UNetConfig, build_unet, save_model

    folder = tmp_path_factory.mktemp("weights")
    config = UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0, n_decoder_dropout=2)
    save_model(build_unet(config), folder / "tiny.keras")
    return folder


@pytest.fixture(scope="module")
def with_weights(tiny_weights, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(shared, "SHIPPED_WEIGHTS_DIR", tiny_weights)
    mp.setattr(shared, "USER_WEIGHTS_DIR", tmp_path_factory.mktemp("no_user_weights"))
    yield tiny_weights
    mp.undo()


@pytest.fixture
def without_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "SHIPPED_WEIGHTS_DIR", tmp_path / "none")
    monkeypatch.setattr(shared, "USER_WEIGHTS_DIR", tmp_path / "none_either")


def open_page(page: str, at: AppTest | None = None) -> AppTest:
    if at is None:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
    at.switch_page(f"ui/pages/{page}.py").run()
    return at


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def challenge_pair(rng: np.random.Generator) -> tuple[bytes, bytes]:
    """A challenge-style sample: EPSILON (3,128,128) and KAPPA (128,128), float16."""
    yy, xx = np.mgrid[0:128, 0:128]
    kappa = 0.3 * np.exp(-((yy - 50) ** 2 + (xx - 70) ** 2) / (2 * 6.0**2)) - 0.01
    g1, g2 = ks93inv(kappa)
    eps = np.stack([g1 + 0.05 * rng.standard_normal(g1.shape),
                    g2 + 0.05 * rng.standard_normal(g2.shape),
                    np.full(g1.shape, 0.05)])
    return npy_bytes(eps.astype(np.float16)), npy_bytes(kappa.astype(np.float16))


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.sidebar.radio(key="source").set_value(shared.SOURCES[1]).run()
    at.sidebar.file_uploader(key="upload").set_value(
        [(name, data, "application/octet-stream") for name, data in files]).run()
    return at


# === Every page on defaults ===


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_defaults(with_weights, page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == {"compare": "Compare", "loss_weights": "Loss weights",
                                 "peaks": "Peaks", "dicee": "DICEE"}[page]
    assert at.get("plotly_chart"), "the page drew no figure"


@pytest.mark.parametrize("page", PAGES)
def test_page_without_weights_says_why(without_weights, page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert any("No UNet weights" in i.value for i in at.info)
    assert any("UNet views are disabled" in w.value for w in at.sidebar.warning)


# === Interactions change the output ===


def test_loss_weights_peaks_coefficient_changes_combined_map(with_weights):
    at = open_page("loss_weights")
    before = metric_values(at)
    assert at.slider(key="lw_coeff_peaks").value == 3.0  # the report's value
    at.slider(key="lw_coeff_peaks").set_value(0.0).run()
    after = metric_values(at)
    assert not at.exception
    loss_labels = [k for k in before if k.startswith("MultiFocal loss")]
    assert len(loss_labels) == 2  # UNet and KS93
    assert after["Mean combined weight w"] != before["Mean combined weight w"]
    assert all(after[k] != before[k] for k in loss_labels)
    # A component parameter changes the maps too, and the reset restores everything.
    at.slider(key="lw_edge_width").set_value(12).run()
    assert metric_values(at)["Mean combined weight w"] != after["Mean combined weight w"]
    at.button(key="lw_reset").click().run()
    assert at.slider(key="lw_coeff_peaks").value == 3.0
    assert at.slider(key="lw_edge_width").value == 5
    assert metric_values(at) == before


def test_loss_weights_all_zero_coefficients_is_an_error_not_a_crash(with_weights):
    at = open_page("loss_weights")
    for name in ("focal", "local", "peaks", "structure", "edges"):
        at.slider(key=f"lw_coeff_{name}").set_value(0.0)
    at.run()
    assert not at.exception
    assert any("coefficient" in e.value for e in at.error)


def test_compare_smoothing_changes_ks93_metrics_and_persists(with_weights):
    at = open_page("compare")
    table = at.dataframe[0].value
    assert list(table.columns) == ["WMAPE", "DICEE", "DPEAKS", "RMSE", "r"]
    assert list(table.index) == ["UNet", "KS93 (σ 3 px)"]
    at.slider(key="ks93_sigma_widget").set_value(0.0).run()
    raw = at.dataframe[0].value
    assert list(raw.index) == ["UNet", "KS93 (σ 0 px)"]
    assert raw.iloc[1]["RMSE"] > table.iloc[1]["RMSE"]  # raw KS93 is mostly noise
    assert raw.iloc[1]["r"] < table.iloc[1]["r"]
    np.testing.assert_array_equal(raw.iloc[0].to_numpy(), table.iloc[0].to_numpy())  # UNet
    # The setting follows the user to the other pages.
    open_page("dicee", at)
    assert list(at.dataframe[0].value.index) == ["UNet", "KS93 (σ 0 px)"]
    assert at.slider(key="ks93_sigma_widget").value == 0.0


def test_compare_whiskers_and_true_mean_toggles(with_weights):
    at = open_page("compare")
    assert "shear whiskers" not in at.get("plotly_chart")[0].proto.spec
    at.toggle(key="compare_whiskers").set_value(True).run()
    assert "shear whiskers" in at.get("plotly_chart")[0].proto.spec
    metrics_before = at.dataframe[0].value
    at.toggle(key="compare_add_mean").set_value(True).run()
    assert not at.exception
    # Display only: the metrics still score the mean-zero KS93 map.
    assert at.dataframe[0].value.equals(metrics_before)


def test_peaks_breakdown_sums_to_dpeaks(with_weights):
    at = open_page("peaks")
    dpeaks = [m for m in at.metric if m.label == "DPEAKS"]
    assert len(dpeaks) == 2
    sums = [c.value for c in at.caption if re.fullmatch(r"\d+( \+ \d+)* = \d+ px", c.value)]
    assert len(sums) == 2
    for card, line in zip(dpeaks, sums):
        parts = [int(v) for v in re.findall(r"\d+", line)]
        assert sum(parts[:-1]) == parts[-1]
        assert card.value == f"{parts[-1]} px"
    table = at.dataframe[0].value
    assert list(table.index) == [1, 2, 3]
    assert table["|Δy| + |Δx|"].sum() == int(dpeaks[0].value.split()[0])


def test_dicee_counts_and_value(with_weights):
    at = open_page("dicee")
    table = at.dataframe[0].value
    counts = table[["TP", "TN", "FP", "FN"]].sum(axis=1)
    assert (counts == 128 * 128).all()
    tp, fp, fn = table["TP"], table["FP"], table["FN"]
    np.testing.assert_allclose(table["DICEE"], 1 - tp / (tp + 0.5 * fp + 0.5 * fn))
    assert table["threshold mean(P)"].iloc[1] == pytest.approx(0.0, abs=1e-6)  # KS93: mean 0


# === Uploads ===


def test_uploaded_challenge_pair_works_on_every_page(with_weights):
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(7))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    # Both files are called 00087_00323.npy, as in EPSILON/ and KAPPA/.
    upload(at, [("00087_00323.npy", kappa_bytes), ("00087_00323.npy", eps_bytes)])
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert any("upload: " in c.value and "1 samples" in c.value for c in at.sidebar.caption)
    for page in PAGES:
        open_page(page, at)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
    # The truth is the uploaded κ: its single peak sits at (50, 70).
    open_page("peaks", at)
    assert at.dataframe[0].value.loc[1, "true (y, x)"] == "(50, 70)"


def test_epsilon_only_upload_stops_truth_pages_with_an_error(with_weights):
    eps_bytes, _ = challenge_pair(np.random.default_rng(8))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    upload(at, [("only_eps.npy", eps_bytes)])
    assert any("no κ truth" in c.value for c in at.sidebar.caption)
    for page in TRUTH_PAGES:
        open_page(page, at)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert any("needs the true κ map" in e.value for e in at.error), page
    open_page("compare", at)
    assert not at.exception
    assert any("no true κ" in w.value for w in at.warning)
    assert not at.dataframe  # no metrics without truth
    assert at.get("plotly_chart")  # but ε and the predictions are shown


def test_bad_upload_shows_an_error_and_the_session_keeps_working(with_weights):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    upload(at, [("wrong.npy", npy_bytes(np.zeros((2, 64, 64), np.float32)))])
    assert not at.exception
    assert any("Could not use the upload" in e.value and "(2, 64, 64)" in e.value
               for e in at.sidebar.error)
    open_page("compare", at)  # falls back to the built-in set
    assert not at.exception
    assert at.dataframe


def test_read_upload_accepts_a_challenge_pair_in_either_order():
    eps_bytes, kappa_bytes = challenge_pair(np.random.default_rng(9))
    for files in ((("e.npy", eps_bytes), ("k.npy", kappa_bytes)),
                  (("k.npy", kappa_bytes), ("e.npy", eps_bytes))):
        eps, kappa, names = shared.read_upload(files)
        assert eps.shape == (1, 128, 128, 3) and eps.dtype == np.float32
        assert kappa.shape == (1, 128, 128)
        assert len(names) == 1


def _h5_bytes_corrupt() -> bytes:
    return b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.mark.parametrize("files, error, message", [
    ((("eps.npy", npy_bytes(np.zeros((3, 64, 64), np.float16))),),
     ValueError, "(3, 64, 64)"),
    ((("eps.npy", npy_bytes(np.full((3, 128, 128), np.nan, np.float32))),),
     ValueError, "NaN"),
    ((("eps.npy", npy_bytes(np.array([{"a": 1}], dtype=object))),),
     ValueError, "eps.npy"),
    ((("eps.npy", pickle.dumps(np.zeros((3, 128, 128)))),), ValueError, "eps.npy"),
    ((("eps.npy", npy_bytes(np.zeros((3, 128, 128), np.int32))),), TypeError, "int32"),
    ((("data.h5", _h5_bytes_corrupt()),), ValueError, "data.h5"),
    ((("e.npy", npy_bytes(np.zeros((3, 128, 128), np.float16))),
      ("k.npy", npy_bytes(np.zeros((64, 64), np.float16)))), ValueError, "(64, 64)"),
    ((("a.npy", b"1"), ("b.npy", b"2"), ("c.npy", b"3")), ValueError, "got 3 files"),
])
def test_read_upload_rejects_bad_files_clearly(files, error, message):
    with pytest.raises(error) as info:
        shared.read_upload(files)
    assert message in str(info.value)


# === Figures (lensviz.plots) ===


def test_whiskers_are_tangential_around_a_mass_concentration():
    yy, xx = np.mgrid[0:128, 0:128]
    kappa = np.exp(-((yy - 64) ** 2 + (xx - 64) ** 2) / (2 * 6.0**2))
    g1, g2 = ks93inv(kappa)
    trace = plots.shear_whiskers(g1, g2, step=8)
    x = np.asarray(trace.x, dtype=float).reshape(-1, 3)[:, :2]
    y = np.asarray(trace.y, dtype=float).reshape(-1, 3)[:, :2]
    centre = np.stack([x.mean(1), y.mean(1)], axis=1) - 64.0
    stick = np.stack([x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]], axis=1)
    r = np.hypot(*centre.T)
    ring = (r > 12) & (r < 40) & (np.hypot(*stick.T) > 0.5)
    assert ring.sum() > 20
    cos = np.abs((centre * stick).sum(1))[ring] / (r[ring] * np.hypot(*stick[ring].T))
    assert np.median(cos) < 0.1  # perpendicular to the radius: tangential


def test_map_row_links_zoom_square_pixels_row_zero_on_top():
    fig = plots.map_row({"a": np.zeros((8, 8)), "b": np.ones((8, 8))}, zrange=(0.0, 1.0))
    lay = fig.layout
    assert lay.yaxis.autorange == "reversed" and lay.yaxis2.autorange == "reversed"
    assert lay.yaxis.scaleanchor == "x" and lay.yaxis2.scaleanchor == "x2"
    assert lay.xaxis2.matches == "x" and lay.yaxis2.matches == "y"
    assert [t.coloraxis for t in fig.data] == ["coloraxis", "coloraxis"]
    assert (lay.coloraxis.cmin, lay.coloraxis.cmax) == (0.0, 1.0)
    assert [a.text for a in lay.annotations] == ["a", "b"]


def test_residuals_are_symmetric_and_confusion_colours_match_the_report():
    t = np.zeros((16, 16))
    fig = plots.residual_row(t, {"m": np.linspace(-1, 3, 256).reshape(16, 16)})
    assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
    codes = np.arange(4, dtype=np.uint8).repeat(4).reshape(4, 4)
    fig = plots.confusion_figure({"m": codes})
    scale = fig.data[0].colorscale  # two stops per code: [c/4, colour], [(c+1)/4, colour]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-0.5, 3.5)
    for cls, code in metrics.CONFUSION_CODES.items():
        colour = plots.CONFUSION_COLORS[cls][0]
        assert scale[2 * code] == (code / 4, colour) and scale[2 * code + 1][1] == colour
    legend = {t.name.split(":")[0]: t.marker.color for t in fig.data[1:]}
    assert legend == {"TP": "#2ca02c", "TN": "#ffffff", "FP": "#1f5fd6", "FN": "#d62728"}


def test_map_png_round_trip():
    from PIL import Image

    m = np.zeros((4, 6))
    m[0, 0] = 1.0  # top-left pixel at the top of the scale
    img = Image.open(io.BytesIO(plots.map_png(m, zrange=(0.0, 1.0), upscale=2)))
    assert img.size == (12, 8) and img.mode == "RGB"
    lut = plots.colormap_lut()
    assert img.getpixel((0, 0)) == tuple(lut[-1]) and img.getpixel((11, 7)) == tuple(lut[0])
