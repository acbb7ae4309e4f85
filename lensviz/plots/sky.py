"""Map axes: where a map's pixels go in a figure, and how its axes read.

Every map figure of :mod:`lensviz.plots.maps` is drawn on a :class:`MapAxes`, made by
:func:`map_axes` from the map's shape, its pixel side and, when known, its World
Coordinate System. Traces are built in pixel coordinates (x = column, y = row) and the
axes place them (:meth:`MapAxes.columns`, :meth:`MapAxes.rows`), so markers, whiskers
and outlines land on the same pixels in every unit.

Units (:data:`UNITS`)
    ``"px"``
        x = column, y = row, at the pixel centres 0 … n − 1.
    ``"arcmin"``
        Offsets from the map's first corner, the outer edge of pixel (0, 0): pixel
        centres at ``(i + ½) · pixel_arcmin``, x along the columns and y along the rows,
        as in the PNG export (:func:`lensviz.plots.png.map_figure_png`).
    ``"sky"``
        x = right ascension and y = declination [degrees] of the pixel centres, read by
        ``astropy.wcs.WCS.pixel_to_world_values`` along the map's middle row (RA) and
        middle column (Dec). A figure's axes are separable, so this holds only for a
        WCS whose RA runs along the columns and Dec along the rows:
        :func:`sky_problem` says when the separable coordinates miss the WCS by more
        than :data:`MAX_SKY_ERROR_PX` anywhere on the map (a rotated or swapped WCS,
        a field near a pole); then only pixels and arcmin are offered. On the COSMOS
        grid (1.5°, Dec +2°) they miss by 0.07 px at most. A field across RA = 0 gets
        its RA continued past 360° and labelled modulo 360.
Orientation
    By default row 0 is at the top and column 0 at the left, as numpy prints an array
    and as ``imshow`` draws it. ``north_up=True`` flips the axes, where a WCS allows it
    (:func:`sky_problem`), so that north (increasing Dec) points up and east
    (increasing RA) to the left, as the sky is seen from below. On COSMOS, whose
    columns run along +RA and rows along +Dec, that mirrors the image left to right
    and turns it upside down.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["MAX_SKY_ERROR_PX", "UNITS", "MapAxes", "map_axes", "nice_ticks", "sky_problem"]

#: The units of map axes: name → how the app names it.
UNITS = {"arcmin": "arcmin", "px": "pixels", "sky": "RA, Dec"}
#: The most, in pixels, that separable RA/Dec axes may miss the WCS anywhere on the map.
MAX_SKY_ERROR_PX = 0.5
_GRID = 9  # points per side where the separable coordinates are checked against the WCS


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 × 10ᵏ) within ``[lo, hi]``.

    Examples
    --------
    >>> nice_ticks(0.0, 64.0)
    [0.0, 20.0, 40.0, 60.0]
    >>> nice_ticks(-0.013, 0.21)
    [0.0, 0.05, 0.1, 0.15, 0.2]
    """
    if not hi > lo:
        return [float(lo)]
    raw = (hi - lo) / max(n, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return [round(float(np.round(t / step) * step), 12) + 0.0 for t in ticks]


def _along(coords: np.ndarray, index) -> np.ndarray:
    """``coords`` (one value per pixel centre) at fractional pixel positions ``index``,
    linear between centres and continued with the end slopes beyond them (the map's
    outer edges lie half a pixel out). NaN stays NaN (the gaps of a line trace)."""
    i = np.asarray(index, dtype=np.float64)
    n = len(coords)
    if n == 1:
        return np.full_like(i, coords[0])
    out = np.interp(i, np.arange(n), coords)
    lo, hi = i < 0, i > n - 1
    out[lo] = coords[0] + (coords[1] - coords[0]) * i[lo]
    out[hi] = coords[-1] + (coords[-1] - coords[-2]) * (i[hi] - (n - 1))
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class MapAxes:
    """Where the pixels of a ``(ny, nx)`` map go in a figure, and how its axes read.

    Attributes
    ----------
    unit : str
        ``"px"``, ``"arcmin"`` or ``"sky"`` (:data:`UNITS`).
    x, y : ndarray, shapes (nx,) and (ny,)
        The plot coordinate of every column's and every row's centre (monotonic).
    flip_x : bool
        Columns increase to the left (east left on a map whose RA grows with column).
    y_up : bool
        Rows increase upwards (north up on a map whose Dec grows with row).
    """

    unit: str
    x: np.ndarray
    y: np.ndarray
    flip_x: bool = False
    y_up: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the maps these axes place."""
        return len(self.y), len(self.x)

    def columns(self, col) -> np.ndarray:
        """Plot x of (fractional) columns; NaN stays NaN."""
        return _along(self.x, col)

    def rows(self, row) -> np.ndarray:
        """Plot y of (fractional) rows; NaN stays NaN."""
        return _along(self.y, row)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(x0, x1, y0, y1)``: the plot coordinates of the map's outer pixel edges,
        column −½, column nx − ½, row −½, row ny − ½."""
        ny, nx = self.shape
        x0, x1 = self.columns([-0.5, nx - 0.5])
        y0, y1 = self.rows([-0.5, ny - 0.5])
        return float(x0), float(x1), float(y0), float(y1)

    @property
    def x_range(self) -> list[float]:
        """The x axis range, left to right: column 0 on the left unless :attr:`flip_x`."""
        x0, x1, _, _ = self.extent
        return [x1, x0] if self.flip_x else [x0, x1]

    @property
    def y_range(self) -> list[float]:
        """The y axis range, bottom to top: row 0 at the top unless :attr:`y_up`."""
        _, _, y0, y1 = self.extent
        return [y0, y1] if self.y_up else [y1, y0]

    @property
    def scaleratio(self) -> float:
        """Screen length of a y unit over that of an x unit, for square pixels: the x
        units per column over the y units per row (1/cos Dec on the sky)."""
        x0, x1, y0, y1 = self.extent
        ny, nx = self.shape
        return (abs(x1 - x0) / nx) / (abs(y1 - y0) / ny)

    @property
    def title(self) -> str:
        """The axes' unit for people, e.g. ``"x, y [arcmin]"`` or ``"RA, Dec [deg]"``."""
        return {"px": "x, y [px]", "arcmin": "x, y [arcmin]", "sky": "RA, Dec [deg]"}[self.unit]

    @property
    def hover(self) -> str:
        """A plotly hover-template part naming a point's position in this unit."""
        if self.unit == "sky":
            return "RA %{x:.4f}°, Dec %{y:+.4f}°"
        if self.unit == "arcmin":
            return "x %{x:.2f}′, y %{y:.2f}′"
        return "x %{x:.0f}, y %{y:.0f} px"

    def heatmap_coords(self) -> dict:
        """The coordinates of a ``go.Heatmap`` of a map on these axes: ``x0``/``dx``
        when the pixels are evenly spaced, else the arrays."""
        if self.unit == "sky":
            return dict(x=self.x, y=self.y)
        return dict(
            x0=float(self.x[0]),
            dx=float(self.x[1] - self.x[0]) if len(self.x) > 1 else 1.0,
            y0=float(self.y[0]),
            dy=float(self.y[1] - self.y[0]) if len(self.y) > 1 else 1.0,
        )

    def x_ticks(self) -> dict:
        """Explicit x ticks where plotly's own would mislead: RA past 360° (a field
        across RA = 0), labelled modulo 360. Empty otherwise."""
        if self.unit != "sky" or (self.x.min() >= 0 and self.x.max() < 360):
            return {}
        x0, x1, _, _ = self.extent
        values = nice_ticks(min(x0, x1), max(x0, x1), 4)
        return dict(tickvals=values, ticktext=[f"{v % 360:g}" for v in values])


def _celestial(wcs):
    """The celestial part of an astropy WCS and its (RA, Dec) world-axis order, or None."""
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    cel = wcs.celestial
    return cel, (cel.wcs.lng, cel.wcs.lat)


def _world(cel, order, cols, rows) -> tuple[np.ndarray, np.ndarray]:
    world = cel.pixel_to_world_values(np.asarray(cols, float), np.asarray(rows, float))
    return np.asarray(world[order[0]], float), np.asarray(world[order[1]], float)


def _sky_lines(wcs, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RA [deg] of every column along the middle row (unwrapped: continuous across
    RA = 0) and Dec of every row along the middle column."""
    cel, order = _celestial(wcs)
    ny, nx = shape
    ra, _ = _world(cel, order, np.arange(nx), np.full(nx, (ny - 1) / 2))
    _, dec = _world(cel, order, np.full(ny, (nx - 1) / 2), np.arange(ny))
    return np.degrees(np.unwrap(np.radians(ra))), dec


def sky_problem(wcs, shape: tuple[int, int]) -> str | None:
    """Why a map of ``shape`` cannot have RA/Dec axes and be turned north up, or None.

    A figure's axes are separable: RA must run along the columns and Dec along the rows.
    The separable coordinates (RA along the middle row, Dec along the middle column) are
    compared with the WCS on a 9 × 9 grid of points from edge to edge; a miss of more
    than :data:`MAX_SKY_ERROR_PX` anywhere is a problem.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or None
    shape : (ny, nx)

    Returns
    -------
    str or None
        E.g. ``"the data have no sky coordinates (no WCS)"``, or ``"its RA and Dec do
        not run along the pixel axes (rotated by 30°)"``.
    """
    if _celestial(wcs) is None:
        return "the data have no sky coordinates (no WCS)"
    cel, order = _celestial(wcs)
    ny, nx = shape
    ra, dec = _sky_lines(wcs, shape)
    cols = np.linspace(-0.5, nx - 0.5, _GRID)
    rows = np.linspace(-0.5, ny - 0.5, _GRID)
    cc, rr = np.meshgrid(cols, rows)
    true_ra, true_dec = _world(cel, order, cc.ravel(), rr.ravel())
    if not (np.all(np.isfinite(true_ra)) and np.all(np.isfinite(true_dec))):
        return "its WCS has no sky position for some pixels"
    if (nx > 1 and not np.all(np.diff(ra) != 0)) or (ny > 1 and not np.all(np.diff(dec) != 0)):
        return "its RA and Dec do not run along the pixel axes"
    side = float(np.sqrt(abs(np.linalg.det(cel.pixel_scale_matrix))))  # deg per pixel
    d_ra = (true_ra - _along(ra, cc.ravel()) + 180.0) % 360.0 - 180.0
    d_dec = true_dec - _along(dec, rr.ravel())
    miss = np.hypot(d_ra * np.cos(np.radians(true_dec)), d_dec) / side
    if miss.max() > MAX_SKY_ERROR_PX:
        m = cel.pixel_scale_matrix
        lat = order[1]
        angle = math.degrees(math.atan2(m[lat, 0], m[lat, 1]))  # of the Dec axis from +row
        return (
            "its RA and Dec do not run along the pixel axes (the WCS is rotated by "
            f"{angle:.0f}°, or the field reaches too near a pole)"
        )
    return None


def map_axes(
    shape: tuple[int, int],
    unit: str = "px",
    pixel_arcmin: float | None = None,
    wcs=None,
    north_up: bool = False,
) -> MapAxes:
    """The axes of a ``(ny, nx)`` map in ``unit``, optionally turned north up.

    Parameters
    ----------
    shape : (ny, nx)
    unit : str
        ``"px"``, ``"arcmin"`` (needs ``pixel_arcmin``) or ``"sky"`` (needs a ``wcs``
        that :func:`sky_problem` accepts).
    pixel_arcmin : float, optional
        Pixel side [arcmin].
    wcs : astropy.wcs.WCS, optional
        The map's World Coordinate System (``PixelGrid.wcs``).
    north_up : bool
        Flip the axes so that north points up and east left (needs such a ``wcs``).

    Raises
    ------
    ValueError
        An unknown unit, a missing pixel side, or a WCS that cannot give sky axes or
        the north-up orientation (the message says why, :func:`sky_problem`).

    Examples
    --------
    >>> a = map_axes((4, 8), "arcmin", 0.5)
    >>> a.x[:2].tolist(), a.extent, a.y_range
    ([0.25, 0.75], (0.0, 4.0, 0.0, 2.0), [2.0, 0.0])
    """
    ny, nx = (int(n) for n in shape)
    if ny < 1 or nx < 1:
        raise ValueError(f"a map shape must be positive (ny, nx), got {tuple(shape)}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
    needs_sky = unit == "sky" or north_up
    if needs_sky:
        problem = sky_problem(wcs, (ny, nx))
        if problem is not None:
            what = "RA/Dec axes" if unit == "sky" else "north-up view"
            raise ValueError(f"no {what} for this map: {problem}")
    if unit == "sky":
        x, y = _sky_lines(wcs, (ny, nx))
    elif unit == "arcmin":
        if pixel_arcmin is None or not (math.isfinite(pixel_arcmin) and pixel_arcmin > 0):
            raise ValueError(f"arcmin axes need a positive pixel side, got {pixel_arcmin!r}")
        x = (np.arange(nx) + 0.5) * float(pixel_arcmin)
        y = (np.arange(ny) + 0.5) * float(pixel_arcmin)
    else:
        x, y = np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64)
    flip_x = y_up = False
    if north_up:
        ra, dec = _sky_lines(wcs, (ny, nx))
        # East (growing RA) to the left: reverse the columns where RA grows with them.
        flip_x = bool(nx > 1 and ra[-1] > ra[0])
        # North (growing Dec) up: rows upwards where Dec grows with them.
        y_up = bool(ny > 1 and dec[-1] > dec[0])
    return MapAxes(unit, np.asarray(x, np.float64), np.asarray(y, np.float64), flip_x, y_up)
