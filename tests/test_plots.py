"""The figures of lensviz.plots: whiskers, map rows, residuals, confusion colours, PNG
export, uncertainty rows, reliability plots and region outlines (moved from the app
tests)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lensviz import metrics, plots
from lensviz.inversion import ks93inv
from lensviz.nn.uncertainty import calibration


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
    m = np.zeros((4, 6))
    m[0, 0] = 1.0  # top-left pixel at the top of the scale
    img = Image.open(io.BytesIO(plots.map_png(m, zrange=(0.0, 1.0), upscale=2)))
    assert img.size == (12, 8) and img.mode == "RGB"
    lut = plots.colormap_lut()
    assert img.getpixel((0, 0)) == tuple(lut[-1]) and img.getpixel((11, 7)) == tuple(lut[0])


def test_masked_pixels_are_grey_in_figures_and_pngs():
    m = np.zeros((4, 6))
    m[1, 2] = np.nan  # as lensviz.fields.masked marks them
    img = Image.open(io.BytesIO(plots.map_png(m, zrange=(0.0, 1.0))))
    grey = (166, 166, 166)
    assert plots.MASK_COLOR == "#a6a6a6" and img.getpixel((2, 1)) == grey
    assert img.getpixel((3, 1)) != grey
    fig = plots.map_row({"κ": m})  # plotly leaves NaN transparent over a grey background
    assert fig.layout.plot_bgcolor == plots.MASK_COLOR


def test_uncertainty_row_standardises_the_residual():
    mean = np.full((8, 8), 0.1)
    std = np.full((8, 8), 0.02)
    std[0, 0] = 0.0
    truth = mean - 0.04  # mean is 2σ too high
    fig = plots.uncertainty_row(mean, std, truth=truth, zrange=(0.0, 0.2))
    assert [a.text for a in fig.layout.annotations] == [
        "UNet mean",
        "σ per pixel",
        "(mean − true) / σ",
    ]
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
    fig = plots.reliability_figure(
        cal["expected"], cal["observed"], z=cal["z"], points={"±1σ": (cal["expected_1sigma"], 1.0)}
    )
    assert list(fig.data[0].x) == [0, 1] and list(fig.data[0].y) == [0, 1]
    np.testing.assert_allclose(fig.data[1].y, 1.0)  # zero error: always covered
    assert fig.data[2].text == ("±1σ",)
    with pytest.raises(ValueError, match="1-D"):
        plots.reliability_figure([0.1, 0.2], [0.1])


def test_outline_regions_draws_on_every_requested_panel():
    fig = plots.map_row({"a": np.zeros((16, 16)), "b": np.zeros((16, 16))})
    plots.outline_regions(fig, center=(8, 6), radius=3, border=2, shape=(16, 16), panels=(1, 2))
    circles = [s for s in fig.layout.shapes if s.type == "circle"]
    assert [(c.xref, c.x0, c.x1, c.y0, c.y1) for c in circles] == [
        ("x", 3, 9, 5, 11),
        ("x2", 3, 9, 5, 11),
    ]
    assert sum(s.type == "rect" for s in fig.layout.shapes) == 2
    with pytest.raises(ValueError, match="shape"):
        plots.outline_regions(fig, border=2)


# === Readability (issue 12) ===


def test_log_ticks_are_full_numbers_on_the_1_2_5_sequence():
    vals, text = plots.log_ticks([12.0, 140.0])
    assert vals == [10.0, 20.0, 50.0, 100.0, 200.0]
    assert text == ["10", "20", "50", "100", "200"]
    vals, text = plots.log_ticks([1e-5, 0.2])  # wide: powers of ten, all in one style
    assert vals == [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]
    assert text[0] == "10<sup>−5</sup>" and text[-1] == "10<sup>0</sup>"
    assert plots.log_ticks([3.1, 5.5])[0] == [4.0, 5.0]  # within a decade: integers
    assert plots.log_ticks([0.0, -1.0, None]) == ([], [])


def test_metric_curves_grid_has_full_tick_labels_and_room_for_the_modebar():
    history = [
        {
            "epoch": e,
            "val_wmape": 5.0 / e,
            "val_dicee": 0.4,
            "val_dpeaks": 150 / e,
            "val_rmse": 0.02 / e,
        }
        for e in (1, 2, 3)
    ]
    fig = plots.metric_curves(history, before={"dpeaks": 300.0})
    assert fig.layout.yaxis3.type == "log" and fig.layout.yaxis3.ticktext[:3] == (
        "50",
        "100",
        "200",
    )
    assert fig.layout.yaxis2.type == "linear"  # DICEE does not vary: no log axis
    assert fig.layout.xaxis3.domain[1] < fig.layout.xaxis4.domain[0]  # 2 × 2 grid
    assert fig.layout.margin.t >= 60


def test_histograms_are_step_outlines_on_shared_bins():
    rng = np.random.default_rng(0)
    per_map = {
        k: {m: rng.normal(1 + i, 0.2, 30) for m in ("wmape", "rmse")}
        for i, k in enumerate(("UNet", "KS93 raw"))
    }
    fig = plots.metric_histograms(per_map, metrics=("wmape", "rmse"))
    assert all(t.type == "scatter" and t.line.shape == "hv" for t in fig.data)
    assert len({t.line.dash for t in fig.data}) == 2  # one dash pattern per method
    first = [t for t in fig.data if t.xaxis == "x"]
    assert first[0].x.tolist() == first[1].x.tolist()  # shared bins
    assert first[0].y.sum() == 30 and first[0].y[0] == 0 and first[0].y[-1] == 0


def test_weight_component_with_zero_coefficient_is_faded():
    maps = {k: np.zeros((8, 8)) for k in ("focal", "peaks")}
    fig = plots.weight_components_grid(maps, np.zeros((8, 8)), coeffs={"focal": 1.0, "peaks": 0.0})
    opacity = {t.name: t.opacity for t in fig.data}
    assert opacity["focal  (a = 1)"] == 1.0 and opacity["peaks  (a = 0: off)"] == 0.2


def test_peaks_figure_spans_the_map_and_keeps_labels_inside_and_apart():
    truth = np.zeros((128, 128))
    true_peaks = np.array([[64, 64], [66, 70], [2, 125], [125, 3]])
    fig = plots.peaks_figure(truth, {"m": truth}, true_peaks, {"m": np.array([[64, 66]])})
    assert tuple(fig.layout.xaxis.range) == (-0.5, 127.5)
    assert tuple(fig.layout.yaxis.range) == (127.5, -0.5)
    crosses = next(t for t in fig.data if t.name == "true peaks (crosses)")
    spots = list(crosses.textposition)
    assert "right" not in spots[2] and "top" not in spots[2]  # the corner at (2, 125)
    assert "left" not in spots[3] and "bottom" not in spots[3]  # the corner at (125, 3)
    # Label boxes (about 12 × 8 map px beside 3.5 px crosses) do not overlap each other.
    centres = []
    for (y, x), spot in zip(true_peaks, spots):
        vertical, horizontal = spot.split()
        dy = {"top": -1, "middle": 0, "bottom": 1}[vertical]
        dx = {"left": -1, "center": 0, "right": 1}[horizontal]
        centres.append((x + dx * 9.5, y + dy * 7.5))
    for i in range(len(centres)):
        for j in range(i):
            (xi, yi), (xj, yj) = centres[i], centres[j]
            assert abs(xi - xj) >= 12 - 1e-9 or abs(yi - yj) >= 8 - 1e-9, (spots, i, j)


def test_map_figure_png_has_axes_and_a_colour_bar():
    m = np.zeros((128, 128))
    m[0, 0] = 1.0
    img = Image.open(
        io.BytesIO(
            plots.map_figure_png(m, title="UNet κ", zrange=(0.0, 1.0), pixel_arcmin=0.5, upscale=4)
        )
    )
    assert img.mode == "RGB" and img.width > 512 + 150 and img.height > 512 + 80
    assert img.info["dpi"][0] == pytest.approx(150, abs=1)
    lut = plots.colormap_lut()
    pixels = np.asarray(img)
    # The map's top-left pixel (row 0 at the top) has the top colour of the scale.
    ys, xs = np.nonzero((pixels == lut[-1]).all(axis=-1))
    assert ys.min() < 80  # near the top: the map pixel and the top of the colour bar
    assert plots.nice_ticks(0.0, 64.0) == [0.0, 20.0, 40.0, 60.0]
    with pytest.raises(ValueError, match="2-D"):
        plots.map_figure_png(np.zeros(5))


def test_significance_grid_puts_e_over_b_on_one_scale_and_labels_the_top_peaks():
    e = {"UNet": np.zeros((40, 60)), "KS93 (σ 4 px)": np.ones((40, 60))}
    b = {"KS93 (σ 4 px)": -np.ones((40, 60)), "UNet": np.zeros((40, 60))}
    peaks = {"UNet": [(5, 59, 7.0), (20, 30, 3.0), (30, 10, 5.0)]}  # one on the edge
    fig = plots.significance_grid(e, b, peaks, labels=2)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["UNet · E", "KS93 · E", "UNet · B (45°)", "KS93 · B (45°)"]  # short
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 4 and {t.coloraxis for t in heat} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-5.0, 5.0)
    (circles,) = [t for t in fig.data if t.type == "scatter"]
    assert list(circles.x) == [59, 30, 10] and list(circles.y) == [5, 20, 30]
    assert list(circles.text) == ["7.0", "", "5.0"]  # the two highest S/N are labelled
    # A peak at the edge does not widen the axes: they span the map exactly.
    assert tuple(fig.layout.xaxis.range) == (-0.5, 59.5)
    assert tuple(fig.layout.yaxis4.range) == (39.5, -0.5)
    with pytest.raises(ValueError, match="same methods"):
        plots.significance_grid(e, {"UNet": b["UNet"]})
