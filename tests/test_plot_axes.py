"""Map axes (lensviz.plots.sky): pixels, arcmin and RA/Dec, and the north-up view, against
the WCS that astropy reads and hand-computed positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from lensviz import cosmos, plots
from lensviz.plots.sky import MAX_SKY_ERROR_PX, map_axes, sky_problem


def tan_wcs(ra: float, dec: float, shape=(64, 64), side_deg=0.01, angle_deg=0.0, swap=False):
    """A gnomonic WCS centred on the map, RA along +column, Dec along +row (rotated by
    ``angle_deg``; ``swap``: Dec on the first axis)."""
    ny, nx = shape
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    header = fits.Header()
    types = ("DEC--TAN", "RA---TAN") if swap else ("RA---TAN", "DEC--TAN")
    values = (dec, ra) if swap else (ra, dec)
    for i, (t, v, crpix) in enumerate(zip(types, values, ((nx + 1) / 2, (ny + 1) / 2)), start=1):
        header[f"CTYPE{i}"], header[f"CRVAL{i}"], header[f"CRPIX{i}"] = t, v, crpix
        header[f"CUNIT{i}"] = "deg"
    header["CD1_1"], header["CD1_2"] = side_deg * c, -side_deg * s
    header["CD2_1"], header["CD2_2"] = side_deg * s, side_deg * c
    return WCS(header)


def test_arcmin_axes_put_pixel_centres_half_a_pixel_in_from_the_corner():
    axes = map_axes((4, 8), "arcmin", 0.5)
    assert axes.x.tolist() == [0.25 + 0.5 * i for i in range(8)]
    assert axes.extent == (0.0, 4.0, 0.0, 2.0)
    assert axes.x_range == [0.0, 4.0] and axes.y_range == [2.0, 0.0]  # row 0 at the top
    assert axes.scaleratio == pytest.approx(1.0)
    assert axes.heatmap_coords() == dict(x0=0.25, dx=0.5, y0=0.25, dy=0.5)
    assert "′" in axes.hover and axes.title == "x, y [arcmin]"
    # The same pixels as the pixel axes, whatever the unit.
    px = map_axes((4, 8))
    assert px.extent == (-0.5, 7.5, -0.5, 3.5) and px.y_range == [3.5, -0.5]
    assert axes.columns([-0.5, 3.0, 7.5]).tolist() == [0.0, 1.75, 4.0]
    with pytest.raises(ValueError, match="positive pixel side"):
        map_axes((4, 8), "arcmin")
    with pytest.raises(ValueError, match="unit must be one of"):
        map_axes((4, 8), "deg")


def test_cells_place_heatmaps_markers_and_outlines_on_the_axes():
    axes = map_axes((16, 16), "arcmin", 0.5)
    (cell,) = plots.map_cells({"κ": np.zeros((16, 16))}, axes=axes)
    heat = cell.data[0]
    assert (heat.x0, heat.dx) == (0.25, 0.5) and "x %{x:.2f}′" in heat.hovertemplate
    assert list(cell.layout.xaxis.range) == [0.0, 8.0]
    assert list(cell.layout.yaxis.range) == [8.0, 0.0]
    assert "x, y [arcmin]" in [a.text for a in cell.layout.annotations]
    rect = cell.layout.shapes[0]  # the grey under the map spans it exactly
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (0.0, 8.0, 0.0, 8.0)
    # A peak at (row 4, column 10) is drawn at (x, y) = (5.25′, 2.25′).
    kappa = np.zeros((16, 16))
    kappa[4, 10] = 1.0
    (peaks,) = plots.peaks_cells(kappa, {}, [[4, 10]], {}, axes=axes)
    crosses = next(t for t in peaks.data if t.name == "true peaks (crosses)")
    assert (crosses.x[0], crosses.y[0]) == (5.25, 2.25)
    assert "′" in crosses.hovertemplate
    plots.outline_regions(cell, center=(4, 10), radius=2, panels=(1,), axes=axes)
    circle = cell.layout.shapes[-1]
    assert (circle.x0, circle.x1, circle.y0, circle.y1) == (4.25, 6.25, 1.25, 3.25)
    with pytest.raises(ValueError, match="axes of a"):
        plots.map_cells({"κ": np.zeros((8, 8))}, axes=axes)


def test_cosmos_gets_ra_dec_of_its_wcs_and_turns_north_up_east_left():
    field = cosmos.load_cosmos()
    wcs = field.grid.wcs
    shape = field.eps.shape[:2]
    assert sky_problem(wcs, shape) is None
    axes = map_axes(shape, "sky", wcs=wcs)
    # Along the middle row and column the axes are the WCS's RA and Dec.
    ra, _ = wcs.pixel_to_world_values(np.arange(256), np.full(256, 127.5))
    _, dec = wcs.pixel_to_world_values(np.full(256, 127.5), np.arange(256))
    np.testing.assert_allclose(axes.x, ra, atol=1e-9)
    np.testing.assert_allclose(axes.y, dec, atol=1e-9)
    # Anywhere else they miss it by a small fraction of a pixel (0.352′).
    ra_c, dec_c = wcs.pixel_to_world_values(0.0, 0.0)
    miss = np.hypot((axes.x[0] - ra_c) * math.cos(math.radians(dec_c)), axes.y[0] - dec_c)
    assert miss * 60 / cosmos.COSMOS_PIXEL_ARCMIN < 0.1
    assert axes.scaleratio == pytest.approx(1 / math.cos(math.radians(2.23)), rel=1e-3)
    assert axes.title == "RA, Dec [deg]" and "Dec" in axes.hover
    assert not axes.flip_x and not axes.y_up  # as stored: RA grows to the right
    # North up, east left: the columns run along +RA and the rows along +Dec, so the
    # image is mirrored left to right and turned upside down.
    up = map_axes(shape, "sky", wcs=wcs, north_up=True)
    assert up.flip_x and up.y_up
    assert up.x_range[0] > up.x_range[1]  # RA falls from left to right: east left
    assert up.y_range[0] < up.y_range[1]  # Dec grows upwards: north up
    # In arcmin too: the same flips.
    flipped = map_axes(shape, "arcmin", cosmos.COSMOS_PIXEL_ARCMIN, wcs, north_up=True)
    assert flipped.x_range == [flipped.extent[1], flipped.extent[0]]


def test_a_rotated_or_swapped_wcs_gets_no_sky_axes_and_says_why():
    assert sky_problem(None, (64, 64)) == "the data have no sky coordinates (no WCS)"
    assert sky_problem(tan_wcs(150.0, 2.0, angle_deg=0.2), (64, 64)) is None
    rotated = tan_wcs(150.0, 2.0, angle_deg=30.0)
    assert "rotated by 30°" in sky_problem(rotated, (64, 64))
    with pytest.raises(ValueError, match="no RA/Dec axes for this map"):
        map_axes((64, 64), "sky", wcs=rotated)
    with pytest.raises(ValueError, match="no north-up view for this map"):
        map_axes((64, 64), "arcmin", 0.6, rotated, north_up=True)
    assert sky_problem(tan_wcs(150.0, 2.0, swap=True), (64, 64)) is not None
    # Near a pole the separable axes miss by more than half a pixel.
    near_pole = tan_wcs(150.0, 88.0, shape=(256, 256), side_deg=0.02)
    assert sky_problem(near_pole, (256, 256)) is not None
    assert MAX_SKY_ERROR_PX == 0.5


def test_a_field_across_ra_zero_is_continuous_and_labelled_modulo_360():
    wcs = tan_wcs(0.1, -1.0, shape=(64, 64), side_deg=0.01)
    axes = map_axes((64, 64), "sky", wcs=wcs)
    assert np.all(np.diff(axes.x) > 0)  # no jump from 359.9 to 0
    ticks = axes.x_ticks()
    assert ticks, "a field across RA 0 needs its own tick labels"
    assert all(0 <= float(t) < 360 for t in ticks["ticktext"])
    assert map_axes((64, 64), "sky", wcs=tan_wcs(150.0, 2.0)).x_ticks() == {}


def test_whiskers_follow_the_axes():
    rng = np.random.default_rng(0)
    e1, e2 = rng.normal(0, 0.1, (2, 16, 16))
    axes = map_axes((16, 16), "arcmin", 2.0)
    (cell,) = plots.map_cells({"κ": np.zeros((16, 16))}, axes=axes)
    plots.add_whiskers(cell, e1, e2, step=8, axes=axes)
    sticks = np.asarray(cell.data[-1].x, dtype=float)
    centres = np.nanmean(sticks.reshape(-1, 3)[:, :2], axis=1)
    np.testing.assert_allclose(sorted(set(np.round(centres, 6))), [8.0, 24.0])  # (3.5+½)·2′
