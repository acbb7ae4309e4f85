"""Plotly figures of maps: κ, residuals, ε with shear whiskers, weights, peaks, DICEE, S/N.

Every function takes numpy arrays and returns plotly figures (one per cell of the app's
grid, see below); none reads files or knows the app. PNG export is in
:mod:`lensviz.plots.png`.

Conventions
    Maps are ``(ny, nx)`` arrays indexed ``[row, column] = [y, x]`` (see
    :mod:`lensviz.constants`). They are drawn with x along the columns and y along the
    rows, **row 0 at the top** (the y axis points down, as in an image and in
    ``imshow``), with square pixels, on axes in pixels, arcmin or RA/Dec, and turned
    north up where a WCS allows (``axes=``, :mod:`lensviz.plots.sky`). NaN pixels
    (masked or empty, :func:`lensviz.fields.masked`) are drawn grey
    (:data:`MASK_COLOR`), in the figures and in the PNGs, so that no one reads κ where
    there was no data. Peak positions are ``(row, column)`` pairs, as returned by
    :func:`lensviz.metrics.find_peaks`.
Cells
    The app lays its map figures out in a responsive grid (:data:`CELL_MIN_PX`), so the
    figure functions return one figure per cell: a map, or a column of maps that belong
    together (a prediction over its residual, an E map over its B map), whose panels
    share their zoom. Maps of one quantity share one colour scale, whose horizontal bar
    sits under the first cell that uses it. Panels span exactly their map; outside it
    the plot is white (:data:`PAD_COLOR`), so grey always means no data.
Shear whiskers
    Headless sticks at the centres of ``step × step`` blocks, of length ∝ |ε| and angle
    ``φ = ½ atan2(ε2, ε1)`` from the +x axis towards +y (row). ε1 > 0 is a stretch along
    x (columns), ε2 > 0 along the x = y diagonal. With lensviz's KS93 convention a mass
    concentration gives tangential sticks around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from lensviz.metrics import CONFUSION_CODES
from lensviz.plots.sky import MapAxes, map_axes

__all__ = [
    "KAPPA_COLORSCALE",
    "RESIDUAL_COLORSCALE",
    "WEIGHT_COLORSCALE",
    "SIGMA_COLORSCALE",
    "CONFUSION_COLORS",
    "MASK_COLOR",
    "PAD_COLOR",
    "CELL_MIN_PX",
    "robust_range",
    "symmetric_range",
    "map_cells",
    "comparison_cells",
    "uncertainty_cells",
    "sigma_cells",
    "outline_regions",
    "shear_whiskers",
    "add_whiskers",
    "ellipticity_cells",
    "weight_component_cells",
    "peaks_cells",
    "confusion_cells",
    "significance_cells",
]

KAPPA_COLORSCALE = "Viridis"  # κ maps
RESIDUAL_COLORSCALE = "RdBu_r"  # signed maps: blue negative, white 0, red positive
WEIGHT_COLORSCALE = "Cividis"  # loss weights in [0, 1]
SIGMA_COLORSCALE = "Inferno"  # per-pixel uncertainty σ ≥ 0 (sequential)
MASK_COLOR = "#a6a6a6"  # NaN pixels: masked or empty (in no colour scale used here)
PAD_COLOR = "#ffffff"  # outside the map: a zoomed-out view, the space around a small field
#: The position in a hover template, in pixels; a cell writes it in its axes' unit.
_XY = "x %{x}, y %{y}"
Z_RANGE = 3.0  # colour limits ±Z_RANGE of the standardised residual (mean − true) / σ

#: DICEE confusion classes (report Fig. 2): code of :data:`lensviz.metrics.CONFUSION_CODES`
#: → (colour, legend label).
CONFUSION_COLORS = {
    "TP": ("#2ca02c", "TP: both above their mean"),
    "TN": ("#ffffff", "TN: both below"),
    "FP": ("#1f5fd6", "FP: only the prediction above"),
    "FN": ("#d62728", "FN: only the truth above"),
}

#: The app's grid gives every cell at least this width [screen px]: with the margins
#: below, square panels of at least 200 px.
CELL_MIN_PX = 250
_LEFT_PX, _RIGHT_PX = 42, 6  # cell margins: y tick labels on the left
_CELL_PANEL_PX = 225  # nominal panel side: the heights assume cells 273 px wide
_MAX_ASPECT = 1.5  # a taller field's panels are as tall as a 1.5:1 one
_TOP_PX = 54  # above the first panel: its title, below the modebar
_TITLE_PX = 24  # above every other panel: its title
_AXIS_PX = 44  # below the last panel: x tick labels and the axis title
_BAR_PX = 58  # one horizontal colour bar with its title and tick labels
_BAR_TICKS_PX, _BAR_THICKNESS_PX = 17, 11  # within it: the tick labels, then the bar
_LEGEND_ROW_PX = 22
_TITLE_FONT = 15
_CROSS_PX, _CIRCLE_PX, _DETECTION_PX = 11, 18, 16  # marker sizes [screen px]
_PEAK_CROSS = "#ff2020"
_PEAK_CIRCLE = "#00e5ff"
_LABEL_FONT = dict(color="white", size=13, weight="bold", shadow="1px 1px 2px black")


# === Colour ranges ===


def robust_range(maps, lo: float = 0.5, hi: float = 99.5) -> tuple[float, float]:
    """``(zmin, zmax)``: the ``lo``-th and ``hi``-th percentiles of all finite values.

    One outlier pixel then does not wash out the rest of the map. Falls back to
    ``(v − 1, v + 1)`` for constant input and ``(0, 1)`` when nothing is finite.
    """
    values = _finite_values(maps)
    if values.size == 0:
        return 0.0, 1.0
    zmin, zmax = (float(v) for v in np.percentile(values, [lo, hi]))
    if not zmax > zmin:
        zmin, zmax = float(values.min()), float(values.max())
    if not zmax > zmin:
        zmin, zmax = zmin - 1.0, zmax + 1.0
    return zmin, zmax


def symmetric_range(maps, q: float = 99.5) -> tuple[float, float]:
    """``(−a, a)`` with ``a`` the ``q``-th percentile of ``|maps|``: for diverging scales."""
    values = np.abs(_finite_values(maps))
    a = float(np.percentile(values, q)) if values.size else 1.0
    if not a > 0:
        a = float(values.max()) if values.size and values.max() > 0 else 1.0
    return -a, a


def _finite_values(maps) -> np.ndarray:
    if isinstance(maps, np.ndarray):
        parts = [maps]
    else:
        parts = [np.asarray(m) for m in maps]
    values = (
        np.concatenate([np.ravel(p).astype(np.float64) for p in parts]) if parts else (np.zeros(0))
    )
    return values[np.isfinite(values)]


# === Building blocks: one cell of the app's grid ===


def _check_map(m, what: str = "map") -> np.ndarray:
    a = np.asarray(m)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (ny, nx) map, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


class _Cell:
    """One figure of the app's grid: a column of map panels of one shape.

    Panels share their zoom, have square pixels and span exactly the map, on ``axes``
    (:class:`~lensviz.plots.sky.MapAxes`: pixels, arcmin or RA/Dec, row 0 at the top
    unless turned north up; default pixels). Traces are added in pixels and placed on
    the axes by :meth:`add`. The map's extent is grey underneath, so NaN
    pixels (no data) are grey; outside it the plot is white (:data:`PAD_COLOR`), the
    look of everything that is not the map. Traces are collected with :meth:`add` and
    the figure is built once by :meth:`figure` (one validation pass: much faster than
    ``make_subplots`` and per-axis updates). Heights assume panels :data:`_CELL_PANEL_PX`
    wide; narrower cells shrink the panels and keep them square.

    ``extent`` ``(x0, x1, y0, y1)`` replaces the pixel extent for maps on other axes (the
    Fourier plane); ``y_up`` then draws y increasing upwards, as in a maths figure.
    """

    def __init__(
        self,
        titles: Sequence[str],
        shape: tuple[int, int],
        x_title: str | None = None,
        extent: tuple[float, float, float, float] | None = None,
        y_up: bool = False,
        axes: MapAxes | None = None,
    ):
        ny, nx = shape
        ticks: dict = {}
        if extent is not None:  # other axes than a map's (the Fourier plane)
            self.axes = None
            x0, x1, e0, e1 = extent
            x_range, y_range, ratio = [x0, x1], ([e0, e1] if y_up else [e1, e0]), 1.0
            x_title = x_title or "x, y"
        else:
            self.axes = map_axes(shape) if axes is None else axes
            if self.axes.shape != (ny, nx):
                raise ValueError(f"axes of a {self.axes.shape} map for a map of {(ny, nx)}")
            x0, x1, e0, e1 = self.axes.extent
            x_range, y_range, ratio = self.axes.x_range, self.axes.y_range, self.axes.scaleratio
            x_title = x_title or self.axes.title
            ticks = self.axes.x_ticks()
        n = len(titles)
        self.titles = list(titles)
        self.shape = (ny, nx)
        self.traces: list = []
        self.panel_px = _CELL_PANEL_PX * min(ny / nx, _MAX_ASPECT)
        gap = _TITLE_PX + 12
        self.area_px = n * self.panel_px + (n - 1) * gap
        axis = dict(
            showgrid=False,
            zeroline=False,
            showline=True,
            linecolor="#888",
            mirror=True,
            constrain="domain",
            autorange=False,
        )
        self.layout: dict = {}
        annotations, shapes = [], []
        for i, title in enumerate(self.titles):
            s = "" if i == 0 else str(i + 1)
            y1 = 1.0 - i * (self.panel_px + gap) / self.area_px
            y0 = max(0.0, y1 - self.panel_px / self.area_px)
            last = i == n - 1
            self.layout[f"xaxis{s}"] = dict(
                axis,
                domain=[0.0, 1.0],
                anchor=f"y{s}",
                range=x_range,
                showticklabels=last,
                ticks="outside" if last else "",
                **ticks,
                **({} if i == 0 else {"matches": "x"}),
            )
            self.layout[f"yaxis{s}"] = dict(
                axis,
                domain=[y0, y1],
                anchor=f"x{s}",
                scaleanchor=f"x{s}",
                scaleratio=ratio,
                # Spare height (a cell narrower than assumed) goes under each panel, so
                # the first maps of a row of cells line up.
                constraintoward="top",
                range=y_range,
                ticks="outside",
                **({} if i == 0 else {"matches": "y"}),
            )
            # On the axis domain, which square pixels may shrink: the title stays just
            # above its map whatever the cell's width.
            annotations.append(
                dict(
                    text=title,
                    x=0.5,
                    y=1.0,
                    xref=f"x{s} domain",
                    yref=f"y{s} domain",
                    xanchor="center",
                    yanchor="bottom",
                    yshift=4,
                    showarrow=False,
                    font=dict(size=_TITLE_FONT, color="#262730"),
                )
            )
            shapes.append(
                dict(
                    type="rect",
                    xref=f"x{s}",
                    yref=f"y{s}",
                    x0=min(x0, x1),
                    x1=max(x0, x1),
                    y0=min(e0, e1),
                    y1=max(e0, e1),
                    fillcolor=MASK_COLOR,
                    line_width=0,
                    layer="below",
                )
            )
        # The unit, right-aligned under the last panel's tick labels (an axis title in
        # a cell this narrow would sit on the middle tick label).
        s = "" if n == 1 else str(n)
        annotations.append(
            dict(
                text=x_title,
                x=1.0,
                y=0.0,
                xref=f"x{s} domain",
                yref=f"y{s} domain",
                xanchor="right",
                yanchor="top",
                yshift=-24,
                showarrow=False,
                font=dict(size=12, color="#555"),
            )
        )
        self.layout.update(annotations=annotations, shapes=shapes, plot_bgcolor=PAD_COLOR)

    def add(self, trace, panel: int = 1) -> None:
        """Add a trace (a plotly trace object) to panel ``panel``, counted from 1 (top).

        On a map's axes the trace is given in pixels (x = column, y = row) and placed
        here: a heatmap gets the axes' coordinates, a scatter its points converted
        (:meth:`MapAxes.columns`, :meth:`MapAxes.rows`), and the position in a hover
        template (:data:`_XY`) is written in the axes' unit.
        """
        s = "" if panel == 1 else str(panel)
        trace.update(xaxis=f"x{s}", yaxis=f"y{s}")
        axes = self.axes
        if axes is not None:
            if isinstance(trace, go.Heatmap) and trace.x is None and trace.x0 is None:
                trace.update(**axes.heatmap_coords())
            elif isinstance(trace, go.Scatter) and trace.x is not None:
                trace.update(
                    x=axes.columns(np.asarray(trace.x, dtype=float)),
                    y=axes.rows(np.asarray(trace.y, dtype=float)),
                )
        template = getattr(trace, "hovertemplate", None)
        if template and _XY in template:
            trace.update(hovertemplate=template.replace(_XY, axes.hover if axes else _XY))
        self.traces.append(trace)

    def figure(
        self,
        coloraxes: Mapping[str, dict] | None = None,
        bars: Mapping[str, str] | None = None,
        legend_rows: int = 0,
    ) -> go.Figure:
        """The figure.

        Parameters
        ----------
        coloraxes : mapping of layout name → colour axis
            ``{"coloraxis": dict(colorscale=…, cmin=…, cmax=…)}``.
        bars : mapping of colour-axis name → colour-bar title
            Drawn as horizontal bars under the panels, in this order; the other colour
            axes get none.
        legend_rows : int
            Rows of legend entries under the panels (0: no legend).
        """
        bars = dict(bars or {})
        legend_px = legend_rows * _LEGEND_ROW_PX
        top, bottom = _TOP_PX, _AXIS_PX + len(bars) * _BAR_PX + legend_px
        height = round(self.area_px) + top + bottom
        annotations = list(self.layout["annotations"])
        layout = dict(
            self.layout,
            height=height,
            margin=dict(l=_LEFT_PX, r=_RIGHT_PX, t=top, b=bottom),
            showlegend=legend_rows > 0,
            legend=dict(
                orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0, xanchor="left"
            ),
            annotations=annotations,
        )
        for name, axis in (coloraxes or {}).items():
            axis = dict(axis, showscale=name in bars)
            if name in bars:
                # A bar's block, from the bottom: tick labels, the bar, its title (an
                # annotation: plotly draws a horizontal bar's own title over the bar).
                k = list(bars).index(name)
                block_px = legend_px + (len(bars) - 1 - k) * _BAR_PX + 2
                axis["colorbar"] = dict(
                    orientation="h",
                    thickness=_BAR_THICKNESS_PX,
                    len=1.0,
                    x=0.5,
                    xanchor="center",
                    y=block_px / height,  # the bottom of its tick labels
                    yref="container",
                    yanchor="bottom",
                    ypad=0,
                    ticks="outside",
                    ticklen=3,
                    tickfont=dict(size=11),
                    nticks=6,
                )
                plot_px = height - top - bottom
                annotations.append(
                    dict(
                        text=bars[name],
                        x=0.5,
                        xref="paper",
                        xanchor="center",
                        y=(block_px + _BAR_TICKS_PX + _BAR_THICKNESS_PX + 4 - bottom) / plot_px,
                        yref="paper",
                        yanchor="bottom",
                        showarrow=False,
                        font=dict(size=13, color="#262730"),
                    )
                )
            layout[name] = axis
        return go.Figure(data=self.traces, layout=layout)


def _heatmap(
    m: np.ndarray,
    name: str,
    coloraxis: str | None = "coloraxis",
    label: str = "κ",
    fmt: str = ".4f",
    **kwargs,
) -> go.Heatmap:
    return go.Heatmap(
        z=m,
        coloraxis=coloraxis,
        name=name,
        hovertemplate=f"{name}<br>{_XY}<br>{label} %{{z:{fmt}}}<extra></extra>",
        **kwargs,
    )


def _titles_for(
    maps: Mapping[str, np.ndarray] | Sequence[np.ndarray], titles: Sequence[str] | None
) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(maps, Mapping):
        arrays, names = list(maps.values()), list(maps.keys())
    else:
        arrays, names = list(maps), [f"map {i}" for i in range(len(maps))]
    if titles is not None:
        if len(titles) != len(arrays):
            raise ValueError(f"got {len(titles)} titles for {len(arrays)} maps")
        names = list(titles)
    if not arrays:
        raise ValueError("need at least one map to draw")
    arrays = [_check_map(a, repr(n)) for a, n in zip(arrays, names, strict=True)]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"the maps must have one shape, got {sorted(shapes)}")
    return arrays, names


# === Rows of maps ===


def map_cells(
    maps: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    colorbar_title: str = "κ",
    label: str = "κ",
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """Maps on one colour scale, one cell each; the first carries the colour bar.

    Parameters
    ----------
    maps : mapping of title → (ny, nx) array, or a sequence of arrays
        In order.
    titles : sequence of str, optional
        Panel titles (default: the mapping's keys).
    colorscale : str
        A plotly colour-scale name.
    zrange : (float, float), optional
        Colour limits; default :func:`robust_range` of all maps.
    colorbar_title, label : str
        Colour-bar title and the quantity's name in the hover text.
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        One per map, for the app's grid (:data:`CELL_MIN_PX`).
    """
    arrays, names = _titles_for(maps, titles)
    zmin, zmax = robust_range(arrays) if zrange is None else zrange
    out = []
    for i, (m, name) in enumerate(zip(arrays, names, strict=True)):
        cell = _Cell([name], m.shape, axes=axes)
        cell.add(_heatmap(m, name, label=label))
        axis = dict(colorscale=colorscale, cmin=zmin, cmax=zmax)
        out.append(
            cell.figure({"coloraxis": axis}, bars={"coloraxis": colorbar_title} if i == 0 else {})
        )
    return out


def comparison_cells(
    truth,
    preds: Mapping[str, np.ndarray],
    *,
    zrange: tuple[float, float] | None = None,
    residual_zrange: tuple[float, float] | None = None,
    truth_title: str = "true κ",
    label: str = "κ",
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """The true map, then each prediction over its residual, one cell each.

    Every map shares one colour scale, whose bar is under the true map; every residual
    ``prediction − truth`` shares one diverging symmetric scale, whose bar is under the
    first residual. The two panels of a cell share their zoom.

    Parameters
    ----------
    truth : (ny, nx) array
    preds : mapping of method name → (ny, nx) array
    zrange : (float, float), optional
        Map colour limits; default :func:`robust_range` of the truth.
    residual_zrange : (float, float), optional
        Residual colour limits; default :func:`symmetric_range` of all residuals.
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        ``1 + len(preds)`` cells.
    """
    t = _check_map(truth, "truth")
    maps = {name: _check_map(p, name) for name, p in preds.items()}
    if not maps:
        raise ValueError("need at least one prediction to compare with the truth")
    # Residual titles name the method without its settings ("KS93 − true"): the map
    # above carries them.
    short = {name: name.split(" (")[0] for name in maps}
    if len(set(short.values())) < len(short):  # two methods of one name: full names
        short = {name: name for name in maps}
    res = {name: p - t for name, p in maps.items()}
    zmin, zmax = robust_range(t) if zrange is None else zrange
    rmin, rmax = symmetric_range(list(res.values())) if residual_zrange is None else residual_zrange
    kappa_axis = dict(colorscale=KAPPA_COLORSCALE, cmin=zmin, cmax=zmax)
    res_axis = dict(colorscale=RESIDUAL_COLORSCALE, cmin=rmin, cmax=rmax)
    first = _Cell([truth_title], t.shape, axes=axes)
    first.add(_heatmap(t, truth_title, label=label))
    out = [first.figure({"coloraxis": kappa_axis}, bars={"coloraxis": label})]
    for i, (name, m) in enumerate(maps.items()):
        title = f"{short[name]} − true"
        cell = _Cell([name, title], t.shape, axes=axes)
        cell.add(_heatmap(m, name, label=label))
        cell.add(_heatmap(res[name], title, coloraxis="coloraxis2", label=f"Δ{label}"), 2)
        bars = {"coloraxis2": f"Δ{label} (prediction − true)"} if i == 0 else {}
        out.append(cell.figure({"coloraxis": kappa_axis, "coloraxis2": res_axis}, bars=bars))
    return out


# === Uncertainty and regions ===


def _placeholder_free(colorscale: str) -> list[list]:
    """A named plotly colour scale as stops, with colours ``#000001`` … ``#000040`` nudged.

    Streamlit uses those exact colours as placeholders for its theme and replaces them
    in the browser, even with ``theme=None``: Inferno and Magma start at ``#000004``,
    which would be drawn lavender. The red channel of such a stop is raised by 1.
    """
    stops = []
    for v, c in pcolors.get_colorscale(colorscale):
        if isinstance(c, str) and c.lower().startswith("#0000") and c != "#000000":
            c = "#01" + c[3:]
        stops.append([v, c])
    return stops


def uncertainty_cells(
    mean,
    std,
    *,
    truth=None,
    zrange: tuple[float, float] | None = None,
    std_range: tuple[float, float] | None = None,
    mean_title: str = "UNet mean",
    std_title: str = "σ per pixel",
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """A prediction, its per-pixel σ and, with the truth, the standardised residual.

    One cell each, each on its own colour scale with its bar under it: the mean κ
    (:data:`KAPPA_COLORSCALE`), σ (:data:`SIGMA_COLORSCALE`, from 0) and, when ``truth``
    is given, ``z = (mean − truth) / σ`` on a diverging scale fixed at ±:data:`Z_RANGE`
    (red: the prediction is too high; where σ = 0, z is undefined and left blank). For a
    calibrated Gaussian σ, 68.3 % of the pixels have |z| ≤ 1 and 95.4 % have |z| ≤ 2.

    Parameters
    ----------
    mean, std : (ny, nx) array
        E.g. from :func:`lensviz.nn.uncertainty.predict_uncertainty`.
    truth : (ny, nx) array, optional
    zrange : (float, float), optional
        κ colour limits of the mean; default :func:`robust_range` of the mean.
    std_range : (float, float), optional
        σ colour limits; default ``(0, 99.5th percentile of σ)``.
    mean_title, std_title : str
        Titles of the first two panels.
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
    """
    m = _check_map(mean, "mean")
    s = _check_map(std, "std")
    if s.shape != m.shape:
        raise ValueError(f"std must have the shape of mean {m.shape}, got {s.shape}")
    zmin, zmax = robust_range(m) if zrange is None else zrange
    smin, smax = (0.0, robust_range(s, 0.0, 99.5)[1]) if std_range is None else std_range
    if not smax > smin:
        smax = smin + 1e-6
    cells = [
        (mean_title, m, dict(colorscale=KAPPA_COLORSCALE, cmin=zmin, cmax=zmax), "κ", ".4f"),
        (
            std_title,
            s,
            dict(colorscale=_placeholder_free(SIGMA_COLORSCALE), cmin=smin, cmax=smax),
            "σ",
            ".4f",
        ),
    ]
    if truth is not None:
        t = _check_map(truth, "truth")
        if t.shape != m.shape:
            raise ValueError(f"truth must have the shape of mean {m.shape}, got {t.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, (m - t) / np.where(s > 0, s, 1.0), np.nan).astype(np.float32)
        z_axis = dict(colorscale=RESIDUAL_COLORSCALE, cmin=-Z_RANGE, cmax=Z_RANGE)
        cells.append(("(mean − true) / σ", z, z_axis, "z", ".2f"))
    out = []
    for title, a, axis, label, fmt in cells:
        cell = _Cell([title], m.shape, axes=axes)
        cell.add(_heatmap(a, title, label=label, fmt=fmt))
        out.append(cell.figure({"coloraxis": axis}, bars={"coloraxis": label}))
    return out


def sigma_cells(
    std: Mapping[str, np.ndarray],
    *,
    std_range: tuple[float, float] | None = None,
    label: str = "σ̂",
    colorbar_title: str = "σ̂ (half-width of the 68.3 % band)",
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """Per-pixel error bars of several maps on one colour scale from 0, one cell each.

    Parameters
    ----------
    std : mapping of title → (ny, nx) array
        E.g. each method's ``kappa_std`` (:mod:`lensviz.errorbars`).
    std_range : (float, float), optional
        Colour limits; default ``(0, 99.5th percentile of all maps)``, so that the
        methods compare at a glance.
    label, colorbar_title : str
        The quantity in the hover text and on the colour bar (under the first cell).
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        :data:`SIGMA_COLORSCALE`, NaN (no data) grey.
    """
    arrays, _ = _titles_for(std, None)
    lo, hi = (0.0, robust_range(arrays, 0.0, 99.5)[1]) if std_range is None else std_range
    if not hi > lo:
        hi = lo + 1e-6
    return map_cells(
        std,
        colorscale=_placeholder_free(SIGMA_COLORSCALE),
        zrange=(lo, hi),
        colorbar_title=colorbar_title,
        label=label,
        axes=axes,
    )


def outline_regions(
    fig: go.Figure,
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    border: int | None = None,
    shape: tuple[int, int] | None = None,
    panels: Sequence[int] = (1,),
    color: str = "white",
    axes: MapAxes | None = None,
) -> go.Figure:
    """Outline a disc and/or an edge band on map panels of a figure of this module.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        Modified in place and returned.
    center : (row, column), optional
        Centre of the disc, pixels.
    radius : float, optional
        Radius of the disc, pixels (dashed circle).
    border : int, optional
        Width of the edge band, pixels (dotted rectangle ``border`` pixels inside the
        map edge); needs ``shape``.
    shape : (ny, nx), optional
        Map shape, for the edge band.
    panels : sequence of int
        Panels numbered from 1, top to bottom (axes ``x``/``y``, ``x2``/``y2``, …).
    color : str
    axes : MapAxes, optional
        The axes the figure was drawn on (default pixels); the outlines are given in
        pixels and placed on them.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if border is not None and shape is None:
        raise ValueError("border needs the map shape (ny, nx)")

    def box(c0, c1, r0, r1) -> dict:
        if axes is None:
            return dict(x0=c0, x1=c1, y0=r0, y1=r1)
        (x0, x1), (y0, y1) = axes.columns([c0, c1]), axes.rows([r0, r1])
        return dict(x0=float(x0), x1=float(x1), y0=float(y0), y1=float(y1))

    for n in panels:
        s = "" if n == 1 else str(n)
        ref = dict(xref=f"x{s}", yref=f"y{s}")
        if center is not None and radius is not None:
            y0, x0 = (float(v) for v in center)
            fig.add_shape(
                type="circle",
                **box(x0 - radius, x0 + radius, y0 - radius, y0 + radius),
                line=dict(color=color, width=2, dash="dash"),
                **ref,
            )
        if border is not None:
            ny, nx = shape
            fig.add_shape(
                type="rect",
                **box(border - 0.5, nx - border - 0.5, border - 0.5, ny - border - 0.5),
                line=dict(color=color, width=1.5, dash="dot"),
                **ref,
            )
    return fig


# === Ellipticities and shear whiskers ===


def shear_whiskers(
    e1,
    e2,
    *,
    weight=None,
    step: int = 8,
    length: float | None = None,
    color: str = "black",
    name: str | None = None,
) -> go.Scatter:
    """Headless sticks showing the (block-averaged) shear orientation and amplitude.

    Parameters
    ----------
    e1, e2 : (ny, nx) arrays
        Ellipticity or shear components (ε1 > 0: stretched along x, the columns).
    weight : (ny, nx) array, optional
        Per-pixel weights for the block average, e.g. the inverse variance ``1/Δε²``
        (pixels without galaxies then count for nothing). Uniform by default.
    step : int
        Block side in pixels; one stick per block, at its centre.
    length : float, optional
        Stick length in pixels of the largest block mean |ε|; default ``0.9 · step``.
    color : str
    name : str, optional
        Legend label; by default it states the |ε| of the longest stick.

    Returns
    -------
    plotly.graph_objects.Scatter
        One line trace (segments separated by ``None``), in pixel coordinates
        x = column, y = row.
    """
    e1 = _check_map(e1, "e1").astype(np.float64)
    e2 = _check_map(e2, "e2").astype(np.float64)
    if e1.shape != e2.shape:
        raise ValueError(f"e1 and e2 must have the same shape, got {e1.shape} and {e2.shape}")
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a positive integer number of pixels, got {step!r}")
    step = int(step)
    w = np.ones_like(e1) if weight is None else _check_map(weight, "weight").astype(np.float64)
    if w.shape != e1.shape:
        raise ValueError(f"weight must have the shape of e1 {e1.shape}, got {w.shape}")
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    ny, nx = (s // step * step for s in e1.shape)
    if ny == 0 or nx == 0:
        raise ValueError(f"step {step} is larger than the map {e1.shape}")

    def blocks(a):
        return a[:ny, :nx].reshape(ny // step, step, nx // step, step).sum(axis=(1, 3))

    wsum = blocks(w)
    safe = np.where(wsum > 0, wsum, 1.0)
    g1 = np.where(wsum > 0, blocks(w * e1) / safe, 0.0)
    g2 = np.where(wsum > 0, blocks(w * e2) / safe, 0.0)
    amp = np.hypot(g1, g2)
    gmax = float(amp.max()) if amp.size else 0.0
    scale = (0.9 * step if length is None else float(length)) / (gmax if gmax > 0 else 1.0)
    phi = 0.5 * np.arctan2(g2, g1)
    half = 0.5 * scale * amp
    yc, xc = np.mgrid[0 : ny // step, 0 : nx // step]
    xc = xc * step + (step - 1) / 2.0
    yc = yc * step + (step - 1) / 2.0
    dx, dy = half * np.cos(phi), half * np.sin(phi)
    nan = np.full(xc.size, np.nan)
    xs = np.stack([(xc - dx).ravel(), (xc + dx).ravel(), nan], axis=1).ravel()
    ys = np.stack([(yc - dy).ravel(), (yc + dy).ravel(), nan], axis=1).ravel()
    if name is None:
        name = f"shear whiskers ({step}×{step} px blocks; longest |ε| = {gmax:.3f})"
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color=color, width=2),
        name=name,
        hoverinfo="skip",
        connectgaps=False,
    )


def add_whiskers(
    fig: go.Figure,
    e1,
    e2,
    *,
    weight=None,
    step: int = 8,
    panels: Sequence[int] = (1,),
    color: str = "black",
    axes: MapAxes | None = None,
) -> go.Figure:
    """Overlay :func:`shear_whiskers` on some panels of a figure of this module (in place;
    no legend entry: say what the sticks are next to the figure).

    ``panels`` numbers the panels from 1, top to bottom (axes ``x``/``y``, ``x2``/``y2``, …);
    ``axes`` are those the figure was drawn on (default pixels).
    """
    trace = shear_whiskers(e1, e2, weight=weight, step=step, color=color)
    if axes is not None:
        trace.update(
            x=axes.columns(np.asarray(trace.x, float)), y=axes.rows(np.asarray(trace.y, float))
        )
    for n in panels:
        s = "" if n == 1 else str(n)
        fig.add_trace(go.Scatter(trace).update(showlegend=False, xaxis=f"x{s}", yaxis=f"y{s}"))
    return fig


def ellipticity_cells(
    eps,
    *,
    whiskers: bool = False,
    step: int = 8,
    titles: Sequence[str] = ("ε1", "ε2", "Δε"),
    delta_e: bool = True,
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """ε1, ε2 and Δε, one cell each, optionally with shear whiskers on every panel.

    Parameters
    ----------
    eps : (ny, nx, 3) array
        One sample, channels ``(e1, e2, Δε)``.
    whiskers : bool
        Overlay :func:`shear_whiskers`, block-averaged with inverse-variance weights
        ``1/Δε²``; the ε1 cell's legend gives the longest stick's |ε|.
    step : int
        Whisker block size, pixels.
    titles : sequence of 3 str
    delta_e : bool
        Draw the Δε cell (leave it out when Δε is 0 everywhere: no shape noise).
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        ε1 and ε2 share a diverging symmetric scale (bar under ε1); Δε has its own.
    """
    e = np.asarray(eps)
    if e.ndim != 3 or e.shape[-1] != 3:
        raise ValueError(f"eps must be one (ny, nx, 3) sample, got shape {e.shape}")
    e1, e2, de = (e[..., i].astype(np.float32) for i in range(3))
    trace = None
    if whiskers:
        with np.errstate(divide="ignore"):
            inv_var = np.where(de > 0, 1.0 / np.square(de.astype(np.float64)), 0.0)
        trace = shear_whiskers(e1, e2, weight=inv_var, step=step, color="#111111")
        longest = trace.name.split("= ")[-1].rstrip(")")
        trace.update(name=f"whiskers: longest |ε| {longest}")
    emin, emax = symmetric_range([e1, e2])
    dmin, dmax = robust_range(de, 0.0, 99.5)
    eps_axis = {"coloraxis": dict(colorscale=RESIDUAL_COLORSCALE, cmin=emin, cmax=emax)}
    specs = [(titles[0], e1, "ε1", eps_axis, {"coloraxis": "ε1, ε2"})]
    specs.append((titles[1], e2, "ε2", eps_axis, {}))
    if delta_e:
        de_axis = {"coloraxis": dict(colorscale="Greys", cmin=dmin, cmax=dmax)}
        specs.append((titles[2], de, "Δε", de_axis, {"coloraxis": "Δε"}))
    out = []
    for i, (title, a, label, axis, bars) in enumerate(specs):
        cell = _Cell([title], a.shape, axes=axes)
        cell.add(_heatmap(a, title, label=label, fmt=".3f"))
        if trace is not None:
            cell.add(go.Scatter(trace).update(showlegend=i == 0))
        out.append(cell.figure(axis, bars=bars, legend_rows=int(trace is not None and i == 0)))
    return out


# === MultiFocal weights (report Fig. 3) ===


def _peak_markers(
    peaks,
    *,
    symbol: str,
    color: str,
    size: int,
    name: str,
    prefix: str = "",
    showlegend: bool = True,
    line_width: float = 3,
) -> go.Scatter:
    """Markers at peaks ``(n, 2)`` of (row, column); the hover names them ``{prefix}1``, …
    (labels on the map are a separate trace, placed by :func:`_place_labels`)."""
    p = np.asarray(peaks, dtype=float).reshape(-1, 2)
    labels = [f"{prefix}{i + 1}" for i in range(len(p))]
    marker = dict(symbol=symbol, color=color, size=size)
    if symbol.endswith("-open"):
        marker["line"] = dict(width=line_width, color=color)
    else:
        marker["line"] = dict(width=1.5, color="black")
    return go.Scatter(
        x=p[:, 1],
        y=p[:, 0],
        mode="markers",
        marker=marker,
        cliponaxis=False,
        name=name,
        showlegend=showlegend,
        legendgroup=name,
        customdata=labels,
        hovertemplate="%{customdata}: " + _XY + "<extra>" + name + "</extra>",
    )


def weight_component_cells(
    components: Mapping[str, np.ndarray],
    combined,
    *,
    coeffs: Mapping[str, float] | None = None,
    peaks=None,
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """The MultiFocal weight components and their combination (report Fig. 3), one
    cell each; the first carries the colour bar.

    Parameters
    ----------
    components : mapping of component name → (ny, nx) weight in [0, 1]
        Usually :func:`lensviz.loss_weights.weight_maps` (focal, local, peaks, structure,
        edges), then ``combined`` last.
    combined : (ny, nx) array
        :func:`lensviz.loss_weights.combine_weights` of the components.
    coeffs : mapping of component name → coefficient, optional
        Shown in the panel titles; a component with coefficient 0 is drawn faded
        (opacity 0.2) and titled "off".
    peaks : (n, 2) array of (row, column), optional
        Marked as red crosses on every panel (the report marks the 10 highest peaks).
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
    """
    maps = dict(components)
    off = {k for k in maps if coeffs and k in coeffs and coeffs[k] == 0}
    titles = [
        (f"{k}  (a = 0: off)" if k in off else f"{k}  (a = {coeffs[k]:g})")
        if coeffs and k in coeffs
        else k
        for k in maps
    ]
    maps["combined"] = combined
    titles.append("combined  Σaw / Σa")
    arrays, _ = _titles_for(maps, titles)
    n_peaks = 0 if peaks is None else len(np.asarray(peaks).reshape(-1, 2))
    axis = {"coloraxis": dict(colorscale=WEIGHT_COLORSCALE, cmin=0.0, cmax=1.0)}
    out = []
    for i, (name, m, t) in enumerate(zip(maps, arrays, titles, strict=True)):
        cell = _Cell([t], m.shape, axes=axes)
        # A component with coefficient 0 takes no part in the combination: faded.
        cell.add(_heatmap(m, t, label="w", fmt=".3f", opacity=0.2 if name in off else 1.0))
        if n_peaks:
            cell.add(
                _peak_markers(
                    peaks,
                    symbol="x",
                    color=_PEAK_CROSS,
                    size=8,
                    name=f"top-{n_peaks} true peaks",
                    showlegend=False,
                )
            )
        out.append(cell.figure(axis, bars={"coloraxis": "weight"} if i == 0 else {}))
    return out


# === Peaks (report Fig. 1) ===


#: Directions (columns right, rows down) tried in turn for a peak label, and the
#: distances, in label half-sizes beyond the marker, at which they are tried.
_LABEL_DIRECTIONS = ((1, -1), (-1, 1), (-1, -1), (1, 1), (1, 0), (-1, 0), (0, -1), (0, 1))
_LABEL_DISTANCES = (1.0, 1.7, 2.4)


def _map_px(screen_px: float, shape: tuple[int, int]) -> float:
    """Screen pixels in map pixels, on the narrowest panel a cell of the grid has."""
    return screen_px * shape[1] / (CELL_MIN_PX - _LEFT_PX - _RIGHT_PX)


def _label_box(text: str, shape: tuple[int, int]) -> tuple[float, float]:
    """Width and height in map pixels of a bold 13 px label (about 8 px a character)."""
    return _map_px(8.0 * len(text) + 4.0, shape), _map_px(14.0, shape)


def _place_labels(
    points, labels: Sequence[str], shape: tuple[int, int], taken: list, first: tuple, marker: float
) -> list[tuple[float, float]]:
    """Greedy label placement: for each point, the first position around it (direction
    ``first``, then the others of :data:`_LABEL_DIRECTIONS`, at each distance of
    :data:`_LABEL_DISTANCES` in turn) whose box stays inside the map and overlaps no box
    in ``taken``, else the inside position that overlaps them least. The chosen boxes are
    added to ``taken``. Boxes are ``(x0, x1, y0, y1)`` in map pixels, sized for the
    narrowest panel of the grid; ``marker`` is the marker's radius in screen pixels.
    Returns the labels' centres ``(x, y)``.
    """
    order = [first, *[d for d in _LABEL_DIRECTIONS if d != first]]
    r = _map_px(marker, shape)

    def overlap(box) -> float:
        return sum(
            max(0.0, min(box[1], b[1]) - max(box[0], b[0]))
            * max(0.0, min(box[3], b[3]) - max(box[2], b[2]))
            for b in taken
        )

    centres = []
    for (y, x), label in zip(np.asarray(points, dtype=float).reshape(-1, 2), labels, strict=True):
        w, h = _label_box(label, shape)
        best = None
        for k in _LABEL_DISTANCES:
            for dx, dy in order:
                # Diagonal spots keep the box's corner, not its centre, at the distance.
                cx = x + dx * (r + k * w / 2)
                cy = y + dy * (r + k * h / 2)
                box = (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)
                inside = (
                    box[0] >= -0.5
                    and box[1] <= shape[1] - 0.5
                    and box[2] >= -0.5
                    and box[3] <= shape[0] - 0.5
                )
                score = (not inside, overlap(box))
                if best is None or score < best[0]:
                    best = (score, (cx, cy), box)
                if score == (False, 0.0):
                    break
            if best[0] == (False, 0.0):
                break
        taken.append(best[2])
        centres.append(best[1])
    return centres


def _labels_trace(centres, texts: Sequence[str]) -> go.Scatter:
    """Labels drawn at their placed centres (:func:`_place_labels`)."""
    xy = np.asarray(centres, dtype=float).reshape(-1, 2)
    return go.Scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="text",
        text=list(texts),
        textposition="middle center",
        textfont=_LABEL_FONT,
        cliponaxis=False,
        showlegend=False,
        hoverinfo="skip",
    )


def _marker_boxes(points, radius: float, shape: tuple[int, int]) -> list:
    r = _map_px(radius, shape)
    return [(x - r, x + r, y - r, y + r) for y, x in np.asarray(points, dtype=float).reshape(-1, 2)]


def peaks_cells(
    truth,
    preds: Mapping[str, np.ndarray],
    true_peaks,
    pred_peaks: Mapping[str, np.ndarray],
    *,
    truth_title: str = "true κ",
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """True peaks as crosses and each prediction's peaks as circles over them (Fig. 1).

    Parameters
    ----------
    truth : (ny, nx) array
        The map the true peaks were found on (usually the σ = 3 px smoothed κ).
    preds : mapping of method name → (ny, nx) array
        The maps the predicted peaks were found on.
    true_peaks : (n, 2) array of (row, column)
        Ranked true peaks (the challenge figure shows 5), labelled T1, T2, …
    pred_peaks : mapping of method name → (m, 2) array of (row, column)
        Ranked predicted peaks (3), labelled P1, P2, …; missing peaks left out.
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        One cell per map, each on its own colour scale (peaks are about positions, and
        KS93 and the UNet differ in amplitude), without a colour bar. The labels are
        placed so that they stay inside the map and overlap neither each other nor the
        markers, on panels as narrow as the grid's cells get.
    """
    t = _check_map(truth, "truth")
    true_peaks = np.asarray(true_peaks, dtype=float).reshape(-1, 2)
    out = []
    for i, (name, m) in enumerate([(truth_title, t), *preds.items()]):
        m = _check_map(m, name)
        zmin, zmax = robust_range(m, 0.0, 100.0)
        cell = _Cell([name], m.shape, axes=axes)
        cell.add(
            _heatmap(
                m,
                name,
                coloraxis=None,
                colorscale=KAPPA_COLORSCALE,
                zmin=zmin,
                zmax=zmax,
                showscale=False,
            )
        )
        circles = (
            np.asarray(pred_peaks[name], dtype=float).reshape(-1, 2)
            if i > 0 and name in pred_peaks
            else np.zeros((0, 2))
        )
        t_labels = [f"T{k + 1}" for k in range(len(true_peaks))]
        p_labels = [f"P{k + 1}" for k in range(len(circles))]
        taken = _marker_boxes(true_peaks, _CROSS_PX / 2, m.shape)
        taken += _marker_boxes(circles, _CIRCLE_PX / 2 + 3, m.shape)
        t_at = _place_labels(true_peaks, t_labels, m.shape, taken, (-1, 1), _CROSS_PX / 2)
        p_at = _place_labels(circles, p_labels, m.shape, taken, (1, -1), _CIRCLE_PX / 2 + 3)
        cell.add(
            _peak_markers(
                true_peaks,
                symbol="x",
                color=_PEAK_CROSS,
                size=_CROSS_PX,
                name="true peaks (crosses)",
                prefix="T",
                showlegend=False,
            )
        )
        if len(true_peaks):
            cell.add(_labels_trace(t_at, t_labels).update(name="true peak labels"))
        if len(circles):
            # A dark halo under each circle keeps it visible on bright peaks.
            cell.add(
                _peak_markers(
                    circles,
                    symbol="circle-open",
                    color="black",
                    size=_CIRCLE_PX,
                    name="halo",
                    showlegend=False,
                    line_width=6,
                ).update(hoverinfo="skip", hovertemplate=None)
            )
            cell.add(
                _peak_markers(
                    circles,
                    symbol="circle-open",
                    color=_PEAK_CIRCLE,
                    size=_CIRCLE_PX,
                    name="predicted peaks (circles)",
                    prefix="P",
                    showlegend=False,
                )
            )
            cell.add(_labels_trace(p_at, p_labels).update(name="predicted peak labels"))
        out.append(cell.figure())
    return out


# === DICEE confusion maps (report Fig. 2) ===


def confusion_cells(
    codes: Mapping[str, np.ndarray], *, axes: MapAxes | None = None
) -> list[go.Figure]:
    """DICEE confusion maps: TP green, TN white, FP blue, FN red; the legend of the
    classes under the first cell.

    Parameters
    ----------
    codes : mapping of method name → (ny, nx) uint8 array
        Codes of :func:`lensviz.metrics.dicee_confusion` (0 TN, 1 TP, 2 FP, 3 FN).
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
    """
    arrays, names = _titles_for({k: np.asarray(v, np.float32) for k, v in codes.items()}, None)
    by_code = sorted((code, cls) for cls, code in CONFUSION_CODES.items())
    ncode = len(by_code)
    scale, labels = [], np.empty(ncode, dtype=object)
    for code, cls in by_code:
        colour = CONFUSION_COLORS[cls][0]
        scale += [[code / ncode, colour], [(code + 1) / ncode, colour]]
        labels[code] = cls
    out = []
    for i, (m, name) in enumerate(zip(arrays, names, strict=True)):
        cell = _Cell([name], m.shape, axes=axes)
        text = labels[np.clip(m.astype(int), 0, ncode - 1)]
        cell.add(
            go.Heatmap(
                z=m,
                zmin=-0.5,
                zmax=ncode - 0.5,
                colorscale=scale,
                showscale=False,
                text=text,
                name=name,
                hovertemplate=f"{name}<br>{_XY}: %{{text}}<extra></extra>",
            )
        )
        if i == 0:
            for cls in ("TP", "TN", "FP", "FN"):
                colour, label = CONFUSION_COLORS[cls]
                cell.add(
                    go.Scatter(
                        x=[None],
                        y=[None],
                        mode="markers",
                        name=label,
                        marker=dict(
                            symbol="square", size=14, color=colour, line=dict(width=1, color="#444")
                        ),
                    )
                )
        out.append(cell.figure(legend_rows=4 if i == 0 else 0))
    return out


# === Null tests ===


def significance_cells(
    snr_e: Mapping[str, np.ndarray],
    snr_b: Mapping[str, np.ndarray],
    peaks: Mapping[str, Sequence[tuple[int, int, float]]] | None = None,
    *,
    zmax: float = 5.0,
    labels: int = 6,
    axes: MapAxes | None = None,
) -> list[go.Figure]:
    """Maps in units of their noise: each method's E map over its B map, one cell each.

    Parameters
    ----------
    snr_e : mapping of method name → (ny, nx) array
        Each method's map divided by its noise rms per pixel (from noise realisations,
        :mod:`lensviz.nulltests`): S/N. NaN pixels (no data) are grey.
    snr_b : mapping of method name → (ny, nx) array
        The same for the map of the 45°-rotated data (the B modes): noise alone.
    peaks : mapping of method name → sequence of (row, column, S/N), optional
        Peaks to circle on the E map (the detections).
    zmax : float, optional
        Colour limits ±zmax: one diverging scale for every panel (bar under the first).
    labels : int, optional
        Label with its S/N only this many peaks per panel, those of highest S/N (placed
        by :func:`_place_labels`: no label over another or over a circle); the others show
        it on hover.
    axes : MapAxes, optional
        Where the pixels go and how the axes read (:func:`lensviz.plots.sky.map_axes`);
        default pixels, row 0 at the top.

    Returns
    -------
    list of plotly.graph_objects.Figure
        In units of the noise the methods compare directly, whatever their amplitudes.
    """
    names = list(snr_e)
    if not names or set(snr_b) != set(names):
        raise ValueError(f"need E and B maps of the same methods, got {names} and {list(snr_b)}")
    # Titles name the method without its settings ("KS93 · E"); the page has them.
    short = [n.split(" (")[0] for n in names]
    short = short if len(set(short)) == len(short) else names
    axis = {"coloraxis": dict(colorscale=RESIDUAL_COLORSCALE, cmin=-zmax, cmax=zmax)}
    out = []
    for i, (name, title) in enumerate(zip(names, short, strict=True)):
        e = _check_map(snr_e[name], name)
        cell = _Cell([f"{title} · E", f"{title} · B (45°)"], e.shape, axes=axes)
        cell.add(_heatmap(e, f"{name} E", label="S/N", fmt=".2f"))
        cell.add(_heatmap(_check_map(snr_b[name], name), f"{name} B", label="S/N", fmt=".2f"), 2)
        found = [] if peaks is None else list(peaks.get(name, ()))
        if found:
            yx = np.array([(y, x) for y, x, _ in found], dtype=float)
            top = np.argsort([-snr for *_, snr in found])[:labels].tolist()  # highest first
            texts = [f"{found[k][2]:.1f}" for k in top]
            taken = _marker_boxes(yx, _DETECTION_PX / 2, e.shape)
            at = _place_labels(yx[top], texts, e.shape, taken, (1, -1), _DETECTION_PX / 2)
            cell.add(
                _peak_markers(
                    yx,
                    symbol="circle-open",
                    color=_PEAK_CIRCLE,
                    size=_DETECTION_PX,
                    name="detection",
                    showlegend=False,
                ).update(customdata=[f"S/N {snr:.2f}" for *_, snr in found])
            )
            cell.add(_labels_trace(at, texts).update(name="S/N labels"))
        out.append(cell.figure(axis, bars={"coloraxis": "S/N (map / noise rms)"} if i == 0 else {}))
    return out
