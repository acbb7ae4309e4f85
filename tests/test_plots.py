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


def titles(fig) -> list[str]:
    """The titles above a cell's map panels, top to bottom."""
    return [
        a.text
        for a in fig.layout.annotations
        if a.xref.endswith("domain") and a.yanchor == "bottom"
    ]


def test_map_cells_square_pixels_row_zero_on_top_one_scale_one_bar():
    cells = plots.map_cells({"a": np.zeros((8, 8)), "b": np.ones((8, 8))}, zrange=(0.0, 1.0))
    assert len(cells) == 2
    for fig in cells:
        lay = fig.layout
        assert lay.yaxis.scaleanchor == "x" and tuple(lay.yaxis.range) == (7.5, -0.5)
        assert tuple(lay.xaxis.range) == (-0.5, 7.5)
        assert (lay.coloraxis.cmin, lay.coloraxis.cmax) == (0.0, 1.0)
    assert [titles(c) for c in cells] == [["a"], ["b"]]
    # One colour bar, horizontal, under the first cell.
    assert [c.layout.coloraxis.showscale for c in cells] == [True, False]
    assert cells[0].layout.coloraxis.colorbar.orientation == "h"
    assert cells[0].layout.height > cells[1].layout.height  # the bar's room
    with pytest.raises(ValueError, match="one shape"):
        plots.map_cells({"a": np.zeros((8, 8)), "b": np.zeros((8, 9))})


def test_comparison_cells_put_each_residual_under_its_map_with_linked_zoom():
    t = np.zeros((16, 16))
    cells = plots.comparison_cells(
        t,
        {"UNet": np.full((16, 16), 0.5), "KS93 (σ 4 px)": np.linspace(-1, 3, 256).reshape(16, 16)},
    )
    assert [titles(c) for c in cells] == [
        ["true κ"],
        ["UNet", "UNet − true"],
        ["KS93 (σ 4 px)", "KS93 − true"],
    ]
    unet = cells[1].layout
    assert unet.xaxis2.matches == "x" and unet.yaxis2.matches == "y"
    assert unet.yaxis.domain[0] > unet.yaxis2.domain[1]  # the map above its residual
    residual = [t for t in cells[2].data if t.coloraxis == "coloraxis2"][0]
    np.testing.assert_allclose(np.asarray(residual.z), np.linspace(-1, 3, 256).reshape(16, 16))
    scale = cells[1].layout.coloraxis2
    assert scale.cmin == -scale.cmax  # symmetric
    # κ bar under the truth, Δκ bar under the first residual only.
    assert cells[0].layout.coloraxis.showscale
    assert [c.layout.coloraxis2.showscale for c in cells[1:]] == [True, False]


def test_residuals_are_symmetric_and_confusion_colours_match_the_report():
    codes = np.arange(4, dtype=np.uint8).repeat(4).reshape(4, 4)
    (fig,) = plots.confusion_cells({"m": codes})
    scale = fig.data[0].colorscale  # two stops per code: [c/4, colour], [(c+1)/4, colour]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-0.5, 3.5)
    for cls, code in metrics.CONFUSION_CODES.items():
        colour = plots.CONFUSION_COLORS[cls][0]
        assert scale[2 * code] == (code / 4, colour) and scale[2 * code + 1][1] == colour
    legend = {t.name.split(":")[0]: t.marker.color for t in fig.data[1:]}
    assert legend == {"TP": "#2ca02c", "TN": "#ffffff", "FP": "#1f5fd6", "FN": "#d62728"}
    assert fig.layout.showlegend
    second = plots.confusion_cells({"a": codes, "b": codes})[1]
    assert len(second.data) == 1 and not second.layout.showlegend  # one legend per grid


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
    # Plotly leaves NaN transparent over a grey rectangle of exactly the map's extent;
    # around the map (a zoomed-out view) the plot is white: grey only means no data.
    (fig,) = plots.map_cells({"κ": m})
    (rect,) = fig.layout.shapes
    assert rect.fillcolor == plots.MASK_COLOR and rect.layer == "below"
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (-0.5, 5.5, -0.5, 3.5)
    assert fig.layout.plot_bgcolor == plots.PAD_COLOR != plots.MASK_COLOR


def test_uncertainty_cells_standardise_the_residual():
    mean = np.full((8, 8), 0.1)
    std = np.full((8, 8), 0.02)
    std[0, 0] = 0.0
    truth = mean - 0.04  # mean is 2σ too high
    cells = plots.uncertainty_cells(mean, std, truth=truth, zrange=(0.0, 0.2))
    assert [titles(c) for c in cells] == [["UNet mean"], ["σ per pixel"], ["(mean − true) / σ"]]
    z = np.asarray(cells[2].data[0].z, dtype=float)
    assert np.isnan(z[0, 0])  # σ = 0: undefined
    np.testing.assert_allclose(z.ravel()[1:], 2.0, rtol=1e-5)
    assert (cells[2].layout.coloraxis.cmin, cells[2].layout.coloraxis.cmax) == (-3.0, 3.0)
    assert cells[1].layout.coloraxis.cmin == 0.0
    assert all(c.layout.coloraxis.showscale for c in cells)  # each on its own scale
    assert len(plots.uncertainty_cells(mean, std)) == 2  # no truth: no z panel
    with pytest.raises(ValueError, match="shape"):
        plots.uncertainty_cells(mean, std[:4])


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
    # Another uncertainty of the same map: a dotted curve under the points.
    narrow = calibration(np.ones((16, 16)), np.zeros((16, 16)), np.full((16, 16), 0.1))
    fig = plots.reliability_figure(
        cal["expected"],
        cal["observed"],
        others={"dropout": (narrow["expected"], narrow["observed"])},
    )
    assert [t.name for t in fig.data] == ["calibrated (diagonal)", "observed", "dropout"]
    assert fig.data[2].line.dash == "dot"
    np.testing.assert_allclose(fig.data[2].y, 0.0)  # errors of 1 beyond ±3 × 0.1: never


def test_outline_regions_draws_on_every_requested_panel():
    (fig,) = plots.comparison_cells(np.zeros((16, 16)), {"a": np.zeros((16, 16))})[1:]
    plots.outline_regions(fig, center=(8, 6), radius=3, border=2, shape=(16, 16), panels=(1, 2))
    circles = [s for s in fig.layout.shapes if s.type == "circle"]
    assert [(c.xref, c.x0, c.x1, c.y0, c.y1) for c in circles] == [
        ("x", 3, 9, 5, 11),
        ("x2", 3, 9, 5, 11),
    ]
    frames = [s for s in fig.layout.shapes if s.type == "rect" and s.line.dash == "dot"]
    assert len(frames) == 2
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
    cells = plots.weight_component_cells(
        maps, np.zeros((8, 8)), coeffs={"focal": 1.0, "peaks": 0.0}
    )
    opacity = {t.name: t.opacity for c in cells for t in c.data}
    assert opacity["focal  (a = 1)"] == 1.0 and opacity["peaks  (a = 0: off)"] == 0.2


#: The narrowest map panel of the app's grid, screen px (a cell of CELL_MIN_PX, margins).
NARROWEST_PANEL_PX = plots.CELL_MIN_PX - 48


def label_boxes(trace, nx: int) -> list:
    """Screen boxes (x0, x1, y0, y1) of a trace of labels on the narrowest panel: a bold
    13 px label is 8 px a character + 4 wide, 14 px high, centred on its point."""
    scale = NARROWEST_PANEL_PX / nx
    return [
        (
            x * scale - (8 * len(t) + 4) / 2,
            x * scale + (8 * len(t) + 4) / 2,
            y * scale - 7,
            y * scale + 7,
        )
        for x, y, t in zip(trace.x, trace.y, trace.text)
    ]


def marker_boxes(trace, radius: float, nx: int) -> list:
    scale = NARROWEST_PANEL_PX / nx
    return [
        (x * scale - radius, x * scale + radius, y * scale - radius, y * scale + radius)
        for x, y in zip(trace.x, trace.y)
    ]


def overlapping(boxes) -> list:
    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i)
        if boxes[i][1] > boxes[j][0] + 1e-6
        and boxes[i][0] < boxes[j][1] - 1e-6
        and boxes[i][3] > boxes[j][2] + 1e-6
        and boxes[i][2] < boxes[j][3] - 1e-6
    ]


def test_peaks_cells_span_the_map_and_keep_labels_inside_and_apart():
    truth = np.zeros((128, 128))
    # A crowded cluster core: peaks 8–12 px apart, each circle beside a cross.
    true_peaks = np.array([[64, 64], [64, 76], [2, 125], [125, 3], [76, 64]])
    circles = np.array([[60, 70], [72, 72], [54, 58]])
    cells = plots.peaks_cells(truth, {"m": truth}, true_peaks, {"m": circles})
    assert len(cells) == 2
    for fig in cells:
        assert tuple(fig.layout.xaxis.range) == (-0.5, 127.5)
        assert tuple(fig.layout.yaxis.range) == (127.5, -0.5)
    traces = {t.name: t for t in cells[1].data}
    t_labels, p_labels = traces["true peak labels"], traces["predicted peak labels"]
    assert list(t_labels.text) == ["T1", "T2", "T3", "T4", "T5"]
    assert list(p_labels.text) == ["P1", "P2", "P3"]
    labels = label_boxes(t_labels, 128) + label_boxes(p_labels, 128)
    markers = marker_boxes(traces["true peaks (crosses)"], 5.5, 128)
    markers += marker_boxes(traces["predicted peaks (circles)"], 12.0, 128)
    assert not overlapping(labels)
    assert not [
        (i, j) for i, b in enumerate(labels) for j, m in enumerate(markers) if overlapping([b, m])
    ]
    size = NARROWEST_PANEL_PX
    assert all(b[0] >= -1 and b[1] <= size + 1 and b[2] >= -1 and b[3] <= size + 1 for b in labels)
    # Each label stays near its marker (within about three label heights).
    crosses = traces["true peaks (crosses)"]
    scale = NARROWEST_PANEL_PX / 128
    gaps = np.hypot(np.subtract(t_labels.x, crosses.x), np.subtract(t_labels.y, crosses.y)) * scale
    assert gaps.max() < 45


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


def test_significance_cells_put_e_over_b_on_one_scale_and_label_the_top_peaks_apart():
    e = {"UNet": np.zeros((256, 256)), "KS93 (σ 4 px)": np.ones((256, 256))}
    b = {"KS93 (σ 4 px)": -np.ones((256, 256)), "UNet": np.zeros((256, 256))}
    # Close detections on a 256-px field (twice the map pixels per screen pixel): the
    # labels must still not pile up; one on the edge.
    peaks = {"UNet": [(5, 255, 7.0), (120, 190, 26.7), (124, 196, 3.0), (128, 186, 5.0)]}
    cells = plots.significance_cells(e, b, peaks, labels=3)
    assert [titles(c) for c in cells] == [
        ["UNet · E", "UNet · B (45°)"],
        ["KS93 · E", "KS93 · B (45°)"],
    ]  # short titles
    heat = [t for c in cells for t in c.data if t.type == "heatmap"]
    assert len(heat) == 4 and {t.coloraxis for t in heat} == {"coloraxis"}
    assert {(c.layout.coloraxis.cmin, c.layout.coloraxis.cmax) for c in cells} == {(-5.0, 5.0)}
    assert [c.layout.coloraxis.showscale for c in cells] == [True, False]
    circles, labels = [t for t in cells[0].data if t.type == "scatter"]
    assert list(circles.x) == [255, 190, 196, 186] and list(circles.y) == [5, 120, 124, 128]
    assert list(labels.text) == ["26.7", "7.0", "5.0"]  # the three highest, highest first
    boxes = label_boxes(labels, 256)
    rings = marker_boxes(circles, 8.0, 256)
    assert not overlapping(boxes)
    assert not any(overlapping([box, ring]) for box in boxes for ring in rings)
    # A peak at the edge does not widen the axes: they span the map exactly.
    assert tuple(cells[0].layout.xaxis.range) == (-0.5, 255.5)
    assert tuple(cells[1].layout.yaxis2.range) == (255.5, -0.5)
    with pytest.raises(ValueError, match="same methods"):
        plots.significance_cells(e, {"UNet": b["UNet"]})
