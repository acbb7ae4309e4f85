"""Plotly figures of maps: κ rows, residuals, ε with shear whiskers, weights, peaks, DICEE.

Every function takes numpy arrays and returns a :class:`plotly.graph_objects.Figure`
(except :func:`map_png`, which returns PNG bytes); none reads files or knows the app.

Conventions
    Maps are ``(ny, nx)`` arrays indexed ``[row, column] = [y, x]`` (see
    :mod:`lensviz.constants`). They are drawn with x = column and y = row in pixels,
    **row 0 at the top** (the y axis points down, as in an image and in ``imshow``),
    with square pixels. NaN pixels (masked or empty, :func:`lensviz.fields.masked`) are
    drawn grey (:data:`MASK_COLOR`), in the figures and in the PNGs, so that no one reads
    κ where there was no data. Peak positions are ``(row, column)`` pairs, as returned by
    :func:`lensviz.metrics.find_peaks`.
Panels
    The panels of one figure share their zoom (``matches``): zooming one zooms all.
    Maps of the same quantity share one colour scale (a layout ``coloraxis``) and one
    colour bar.
Shear whiskers
    Headless sticks at the centres of ``step × step`` blocks, of length ∝ |ε| and angle
    ``φ = ½ atan2(ε2, ε1)`` from the +x axis towards +y (row). ε1 > 0 is a stretch along
    x (columns), ε2 > 0 along the x = y diagonal. With lensviz's KS93 convention a mass
    concentration gives tangential sticks around it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from lensviz.metrics import CONFUSION_CODES

__all__ = [
    "KAPPA_COLORSCALE",
    "RESIDUAL_COLORSCALE",
    "WEIGHT_COLORSCALE",
    "SIGMA_COLORSCALE",
    "CONFUSION_COLORS",
    "MASK_COLOR",
    "robust_range",
    "symmetric_range",
    "map_row",
    "residual_row",
    "comparison_grid",
    "uncertainty_row",
    "outline_regions",
    "shear_whiskers",
    "add_whiskers",
    "ellipticity_panels",
    "weight_components_grid",
    "peaks_figure",
    "confusion_figure",
    "significance_grid",
    "colormap_lut",
    "map_figure_png",
    "map_png",
    "nice_ticks",
]

KAPPA_COLORSCALE = "Viridis"  # κ maps
RESIDUAL_COLORSCALE = "RdBu_r"  # signed maps: blue negative, white 0, red positive
WEIGHT_COLORSCALE = "Cividis"  # loss weights in [0, 1]
SIGMA_COLORSCALE = "Inferno"  # per-pixel uncertainty σ ≥ 0 (sequential)
MASK_COLOR = "#a6a6a6"  # NaN pixels: masked or empty (in no colour scale used here)
Z_RANGE = 3.0  # colour limits ±Z_RANGE of the standardised residual (mean − true) / σ

#: DICEE confusion classes (report Fig. 2): code of :data:`lensviz.metrics.CONFUSION_CODES`
#: → (colour, legend label).
CONFUSION_COLORS = {
    "TP": ("#2ca02c", "TP: both above their mean"),
    "TN": ("#ffffff", "TN: both below"),
    "FP": ("#1f5fd6", "FP: only the prediction above"),
    "FN": ("#d62728", "FN: only the truth above"),
}

_PLOT_WIDTH_PX = 820  # typical plot-area width in the app's wide layout on a 1400 px screen
_MAX_PANEL_PX = 420  # panels are at most this tall
_TITLE_FONT = 15
_LEGEND_MARGIN_PX = 95  # bottom margin that holds the x axis title and a legend row
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


# === Building blocks ===


def _check_map(m, what: str = "map") -> np.ndarray:
    a = np.asarray(m)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (ny, nx) map, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


class _Panels:
    """A grid of map panels: linked zoom, square pixels, row 0 at the top.

    Traces are collected with :meth:`add` and the figure is built once by
    :meth:`figure` (one validation pass: much faster than ``make_subplots`` followed
    by per-axis updates, which matters for pages that redraw on every slider move).
    The height is chosen so that square panels about fill a plot area
    :data:`_PLOT_WIDTH_PX` wide; an empty title leaves a cell blank.
    """

    def __init__(
        self,
        titles: Sequence[str],
        rows: int = 1,
        cols: int | None = None,
        hspace: float = 0.025,
        vspace: float = 0.1,
    ):
        self.rows = rows
        self.cols = len(titles) if cols is None else cols
        self.titles = list(titles)
        self.traces: list = []
        self.layout: dict = {}
        w = (1.0 - hspace * (self.cols - 1)) / self.cols
        h = (1.0 - vspace * (rows - 1)) / rows
        axis = dict(
            showgrid=False,
            zeroline=False,
            ticks="outside",
            showline=True,
            linecolor="#888",
            mirror=True,
            constrain="domain",
        )
        annotations = []
        blanks = {i for i, t in enumerate(self.titles) if not t}
        first_col = [
            min((c for c in range(self.cols) if r * self.cols + c not in blanks), default=0)
            for r in range(rows)
        ]
        for i in range(rows * self.cols):
            r, c = divmod(i, self.cols)
            s = "" if i == 0 else str(i + 1)
            x0, y1 = c * (w + hspace), 1.0 - r * (h + vspace)
            xdom = [max(0.0, x0), min(1.0, x0 + w)]
            ydom = [max(0.0, y1 - h), min(1.0, y1)]
            blank = i in blanks
            self.layout[f"xaxis{s}"] = dict(
                axis,
                domain=xdom,
                anchor=f"y{s}",
                showticklabels=r == rows - 1,
                # Tick marks only where there are labels: fewer elements to redraw.
                ticks="outside" if r == rows - 1 else "",
                visible=not blank,
                **({} if i == 0 else {"matches": "x"}),
                **({"title": {"text": "x [px]"}} if (r, c) == (rows - 1, 0) else {}),
            )
            # When square pixels leave the panels shorter than their rows, the rows close
            # up towards each other: the spare height goes above and below the grid.
            toward = (
                "middle"
                if rows == 1
                else ("bottom" if r == 0 else "top" if r == rows - 1 else "middle")
            )
            self.layout[f"yaxis{s}"] = dict(
                axis,
                domain=ydom,
                anchor=f"x{s}",
                scaleanchor=f"x{s}",
                scaleratio=1,
                constraintoward=toward,
                autorange="reversed",
                showticklabels=c == first_col[r],
                visible=not blank,
                ticks="outside" if c == first_col[r] else "",
                **({} if i == 0 else {"matches": "y"}),
                **({"title": {"text": "y [px]"}} if c == first_col[r] else {}),
            )
            if i < len(self.titles) and self.titles[i]:
                # On the axis domain, which square pixels may shrink: the title stays
                # just above its map, with no gap, whatever the figure's width.
                annotations.append(
                    dict(
                        text=self.titles[i],
                        x=0.5,
                        y=1.0,
                        xref=f"x{s} domain",
                        yref=f"y{s} domain",
                        xanchor="center",
                        yanchor="bottom",
                        yshift=6,
                        showarrow=False,
                        font=dict(size=_TITLE_FONT, color="#262730"),
                    )
                )
        panel_px = min(_MAX_PANEL_PX, _PLOT_WIDTH_PX * w)
        self.area_px = panel_px * rows / (1.0 - vspace * (rows - 1))
        # Heatmaps leave NaN pixels transparent: the grey background shows through.
        self.layout.update(annotations=annotations, plot_bgcolor=MASK_COLOR)

    def add(self, trace, row: int = 1, col: int = 1) -> None:
        """Add a trace (a plotly trace object) to panel ``(row, col)``, counted from 1."""
        i = (row - 1) * self.cols + col
        s = "" if i == 1 else str(i)
        trace.update(xaxis=f"x{s}", yaxis=f"y{s}")
        self.traces.append(trace)

    def figure(self, **layout) -> go.Figure:
        """The figure; ``layout`` entries (colour axes, legend, …) are added last."""
        legend = any(t.type == "scatter" and t.showlegend is not False for t in self.traces)
        # The top margin holds the titles below the modebar (about 30 px), which would
        # otherwise cover the last title on hover.
        top, bottom = 62, _LEGEND_MARGIN_PX if legend else 50
        self.layout.update(
            height=round(self.area_px) + top + bottom,
            margin=dict(l=55, r=20, t=top, b=bottom),
            legend=dict(
                orientation="h", yref="container", y=0.0, yanchor="bottom", xanchor="left", x=0.0
            ),
        )
        self.layout.update(layout)
        return go.Figure(data=self.traces, layout=self.layout)


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
        hovertemplate=f"{name}<br>x %{{x}}, y %{{y}}<br>{label} %{{z:{fmt}}}<extra></extra>",
        **kwargs,
    )


def _colorbar(title: str, **kwargs) -> dict:
    return {"title": dict(text=title, side="right"), "thickness": 14, "len": 0.9, **kwargs}


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
    return [_check_map(a, repr(n)) for a, n in zip(arrays, names, strict=True)], names


# === Map rows ===


def map_row(
    maps: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    colorbar_title: str = "κ",
    label: str = "κ",
) -> go.Figure:
    """A row of maps on one colour scale, with linked zoom and one colour bar.

    Parameters
    ----------
    maps : mapping of title → (ny, nx) array, or a sequence of arrays
        Panels from left to right.
    titles : sequence of str, optional
        Panel titles (default: the mapping's keys).
    colorscale : str
        A plotly colour-scale name.
    zrange : (float, float), optional
        Colour limits; default :func:`robust_range` of all maps.
    colorbar_title, label : str
        Colour-bar title and the quantity's name in the hover text.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    arrays, names = _titles_for(maps, titles)
    zmin, zmax = robust_range(arrays) if zrange is None else zrange
    panels = _Panels(names)
    for col, (m, name) in enumerate(zip(arrays, names, strict=True), start=1):
        panels.add(_heatmap(m, name, label=label), col=col)
    return panels.figure(
        coloraxis=dict(
            colorscale=colorscale, cmin=zmin, cmax=zmax, colorbar=_colorbar(colorbar_title)
        )
    )


def residual_row(
    truth,
    preds: Mapping[str, np.ndarray],
    *,
    zrange: tuple[float, float] | None = None,
    label: str = "κ",
) -> go.Figure:
    """Residual maps ``prediction − truth`` on one diverging, symmetric colour scale.

    Parameters
    ----------
    truth : (ny, nx) array
    preds : mapping of method name → (ny, nx) prediction
    zrange : (float, float), optional
        Colour limits; default :func:`symmetric_range` of all residuals.

    Returns
    -------
    plotly.graph_objects.Figure
        Red where the prediction is too high, blue where it is too low.
    """
    t = _check_map(truth, "truth")
    res = {f"{name} − true": _check_map(p, name) - t for name, p in preds.items()}
    zrange = symmetric_range(list(res.values())) if zrange is None else zrange
    return map_row(
        res,
        colorscale=RESIDUAL_COLORSCALE,
        zrange=zrange,
        colorbar_title=f"Δ{label}",
        label=f"Δ{label}",
    )


def comparison_grid(
    truth,
    preds: Mapping[str, np.ndarray],
    *,
    zrange: tuple[float, float] | None = None,
    residual_zrange: tuple[float, float] | None = None,
    truth_title: str = "true κ",
    label: str = "κ",
) -> go.Figure:
    """The true map and the predictions on one scale, each residual under its prediction.

    Top row: ``truth`` then every prediction, one colour scale (top colour bar). Bottom
    row: ``prediction − truth`` under each prediction, one diverging symmetric scale
    (bottom colour bar); the cell under the truth is left blank. All panels share the
    zoom, so a region zoomed in a map is zoomed in its residual too.

    Parameters
    ----------
    truth : (ny, nx) array
    preds : mapping of method name → (ny, nx) array
    zrange : (float, float), optional
        Map colour limits; default :func:`robust_range` of the truth.
    residual_zrange : (float, float), optional
        Residual colour limits; default :func:`symmetric_range` of all residuals.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    t = _check_map(truth, "truth")
    maps = {name: _check_map(p, name) for name, p in preds.items()}
    if not maps:
        raise ValueError("need at least one prediction to compare with the truth")
    # Residual titles name the method without its settings ("KS93 − true"): the map
    # above carries them, and the short titles still fit side by side on narrow screens.
    res = {f"{name.split(' (')[0]} − true": p - t for name, p in maps.items()}
    if len(res) < len(maps):  # two methods of one name: keep the full names
        res = {f"{name} − true": p - t for name, p in maps.items()}
    zmin, zmax = robust_range(t) if zrange is None else zrange
    rmin, rmax = (
        symmetric_range(list(res.values())) if residual_zrange is None else (residual_zrange)
    )
    panels = _Panels([truth_title, *maps, "", *res], rows=2, cols=1 + len(maps))
    panels.add(_heatmap(t, truth_title, label=label), col=1)
    for col, (name, m) in enumerate(maps.items(), start=2):
        panels.add(_heatmap(m, name, label=label), col=col)
    for col, (name, r) in enumerate(res.items(), start=2):
        panels.add(_heatmap(r, name, coloraxis="coloraxis2", label=f"Δ{label}"), row=2, col=col)
    return panels.figure(
        coloraxis=dict(
            colorscale=KAPPA_COLORSCALE,
            cmin=zmin,
            cmax=zmax,
            colorbar=_colorbar(label, len=0.45, y=1.0, yanchor="top"),
        ),
        coloraxis2=dict(
            colorscale=RESIDUAL_COLORSCALE,
            cmin=rmin,
            cmax=rmax,
            colorbar=_colorbar(f"Δ{label} (prediction − true)", len=0.45, y=0.0, yanchor="bottom"),
        ),
    )


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


def uncertainty_row(
    mean,
    std,
    *,
    truth=None,
    zrange: tuple[float, float] | None = None,
    std_range: tuple[float, float] | None = None,
    mean_title: str = "UNet mean",
    std_title: str = "σ per pixel",
) -> go.Figure:
    """A prediction, its per-pixel σ and, with the truth, the standardised residual.

    Panels, left to right, each with its own colour scale and a horizontal colour bar
    under it: the mean κ (:data:`KAPPA_COLORSCALE`), σ (:data:`SIGMA_COLORSCALE`, from
    0) and, when ``truth`` is given, ``z = (mean − truth) / σ`` on a diverging scale
    fixed at ±:data:`Z_RANGE` (red: the prediction is too high; where σ = 0, z is
    undefined and left blank). For a calibrated Gaussian σ, 68.3 % of the pixels have
    |z| ≤ 1 and 95.4 % have |z| ≤ 2. Panels share the zoom.

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

    Returns
    -------
    plotly.graph_objects.Figure
    """
    m = _check_map(mean, "mean")
    s = _check_map(std, "std")
    if s.shape != m.shape:
        raise ValueError(f"std must have the shape of mean {m.shape}, got {s.shape}")
    maps = {mean_title: m, std_title: s}
    if truth is not None:
        t = _check_map(truth, "truth")
        if t.shape != m.shape:
            raise ValueError(f"truth must have the shape of mean {m.shape}, got {t.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, (m - t) / np.where(s > 0, s, 1.0), np.nan)
        maps["(mean − true) / σ"] = z.astype(np.float32)
    zmin, zmax = robust_range(m) if zrange is None else zrange
    smin, smax = (0.0, robust_range(s, 0.0, 99.5)[1]) if std_range is None else std_range
    if not smax > smin:
        smax = smin + 1e-6
    panels = _Panels(list(maps), hspace=0.06)
    axes = [("coloraxis", "κ", ".4f"), ("coloraxis2", "σ", ".4f"), ("coloraxis3", "z", ".2f")]
    for col, ((name, a), (axis, label, fmt)) in enumerate(
        zip(maps.items(), axes[: len(maps)], strict=True), start=1
    ):
        panels.add(_heatmap(a, name, coloraxis=axis, label=label, fmt=fmt), col=col)
    n = len(maps)
    w = (1.0 - 0.06 * (n - 1)) / n
    bar_px = 62  # room under the x axis title for the horizontal colour bars
    area = panels.area_px
    top, bottom = 62, 50 + bar_px  # titles below the modebar, as in _Panels

    def hbar(col: int, title: str) -> dict:
        return dict(
            title=dict(text=title, side="top"),
            orientation="h",
            thickness=12,
            len=0.75 * w,
            x=(col - 1) * (w + 0.06) + w / 2,
            xanchor="center",
            y=-56 / area,
            yanchor="top",
            ticks="outside",
        )

    layout = dict(
        height=round(area) + top + bottom,
        margin=dict(l=55, r=20, t=top, b=bottom),
        coloraxis=dict(colorscale=KAPPA_COLORSCALE, cmin=zmin, cmax=zmax, colorbar=hbar(1, "κ")),
        coloraxis2=dict(
            colorscale=_placeholder_free(SIGMA_COLORSCALE),
            cmin=smin,
            cmax=smax,
            colorbar=hbar(2, "σ"),
        ),
    )
    if truth is not None:
        layout["coloraxis3"] = dict(
            colorscale=RESIDUAL_COLORSCALE, cmin=-Z_RANGE, cmax=Z_RANGE, colorbar=hbar(3, "z")
        )
    return panels.figure(**layout)


def outline_regions(
    fig: go.Figure,
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    border: int | None = None,
    shape: tuple[int, int] | None = None,
    panels: Sequence[int] = (1,),
    color: str = "white",
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
        Panels numbered from 1, row by row (axes ``x``/``y``, ``x2``/``y2``, …).
    color : str

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if border is not None and shape is None:
        raise ValueError("border needs the map shape (ny, nx)")
    for n in panels:
        s = "" if n == 1 else str(n)
        ref = dict(xref=f"x{s}", yref=f"y{s}")
        if center is not None and radius is not None:
            y0, x0 = (float(v) for v in center)
            fig.add_shape(
                type="circle",
                x0=x0 - radius,
                x1=x0 + radius,
                y0=y0 - radius,
                y1=y0 + radius,
                line=dict(color=color, width=2, dash="dash"),
                **ref,
            )
        if border is not None:
            ny, nx = shape
            fig.add_shape(
                type="rect",
                x0=border - 0.5,
                x1=nx - border - 0.5,
                y0=border - 0.5,
                y1=ny - border - 0.5,
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
) -> go.Figure:
    """Overlay :func:`shear_whiskers` on some panels of a figure of this module (in place).

    ``panels`` numbers the panels from 1, row by row (axes ``x``/``y``, ``x2``/``y2``, …).
    """
    trace = shear_whiskers(e1, e2, weight=weight, step=step, color=color)
    for i, n in enumerate(panels):
        s = "" if n == 1 else str(n)
        fig.add_trace(
            go.Scatter(trace).update(
                showlegend=i == 0, legendgroup="whiskers", xaxis=f"x{s}", yaxis=f"y{s}"
            )
        )
    bottom = fig.layout.margin.b or 0
    if bottom < _LEGEND_MARGIN_PX:  # room for the legend below the x axis title
        fig.update_layout(
            height=(fig.layout.height or 450) + _LEGEND_MARGIN_PX - bottom,
            margin_b=_LEGEND_MARGIN_PX,
        )
    return fig


def ellipticity_panels(
    eps, *, whiskers: bool = False, step: int = 8, titles: Sequence[str] = ("ε1", "ε2", "Δε")
) -> go.Figure:
    """ε1, ε2 and Δε side by side, optionally with shear whiskers on every panel.

    Parameters
    ----------
    eps : (ny, nx, 3) array
        One sample, channels ``(e1, e2, Δε)``.
    whiskers : bool
        Overlay :func:`shear_whiskers`, block-averaged with inverse-variance weights
        ``1/Δε²``.
    step : int
        Whisker block size, pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        ε1 and ε2 share a diverging symmetric scale (top colour bar); Δε has its own
        (bottom colour bar).
    """
    e = np.asarray(eps)
    if e.ndim != 3 or e.shape[-1] != 3:
        raise ValueError(f"eps must be one (ny, nx, 3) sample, got shape {e.shape}")
    e1, e2, de = (e[..., i].astype(np.float32) for i in range(3))
    panels = _Panels(titles)
    panels.add(_heatmap(e1, titles[0], label="ε1"), col=1)
    panels.add(_heatmap(e2, titles[1], label="ε2"), col=2)
    panels.add(_heatmap(de, titles[2], coloraxis="coloraxis2", label="Δε", fmt=".3f"), col=3)
    if whiskers:
        with np.errstate(divide="ignore"):
            inv_var = np.where(de > 0, 1.0 / np.square(de.astype(np.float64)), 0.0)
        trace = shear_whiskers(e1, e2, weight=inv_var, step=step, color="#111111")
        for col in (1, 2, 3):
            panels.add(go.Scatter(trace).update(showlegend=col == 1), col=col)
    emin, emax = symmetric_range([e1, e2])
    dmin, dmax = robust_range(de, 0.0, 99.5)
    return panels.figure(
        coloraxis=dict(
            colorscale=RESIDUAL_COLORSCALE,
            cmin=emin,
            cmax=emax,
            colorbar=_colorbar("ε1, ε2", len=0.45, y=1.0, yanchor="top"),
        ),
        coloraxis2=dict(
            colorscale="Greys",
            cmin=dmin,
            cmax=dmax,
            colorbar=_colorbar("Δε", len=0.45, y=0.0, yanchor="bottom"),
        ),
    )


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
    text: bool = True,
    text_position: str | Sequence[str] = "top right",
    line_width: float = 3,
) -> go.Scatter:
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
        mode="markers+text" if text else "markers",
        marker=marker,
        cliponaxis=False,
        text=labels if text else None,
        textposition=text_position,
        textfont=_LABEL_FONT,
        name=name,
        showlegend=showlegend,
        legendgroup=name,
        customdata=labels,
        hovertemplate="%{customdata}: x %{x:.0f}, y %{y:.0f}<extra>" + name + "</extra>",
    )


def weight_components_grid(
    components: Mapping[str, np.ndarray],
    combined,
    *,
    coeffs: Mapping[str, float] | None = None,
    peaks=None,
) -> go.Figure:
    """The MultiFocal weight components and their combination, as report Fig. 3.

    Parameters
    ----------
    components : mapping of component name → (ny, nx) weight in [0, 1]
        Usually :func:`lensviz.loss_weights.weight_maps` (focal, local, peaks, structure,
        edges), drawn in a 2 × 3 grid, then ``combined`` last.
    combined : (ny, nx) array
        :func:`lensviz.loss_weights.combine_weights` of the components.
    coeffs : mapping of component name → coefficient, optional
        Shown in the panel titles; a component with coefficient 0 is drawn faded
        (opacity 0.2) and titled "off".
    peaks : (n, 2) array of (row, column), optional
        Marked as red crosses on every panel (the report marks the 10 highest peaks).

    Returns
    -------
    plotly.graph_objects.Figure
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
    cols = 3
    rows = -(-len(arrays) // cols)
    panels = _Panels(titles, rows=rows, cols=cols, hspace=0.03)
    n_peaks = 0 if peaks is None else len(np.asarray(peaks).reshape(-1, 2))
    faded = [k in off for k in maps]
    for i, (m, t) in enumerate(zip(arrays, titles, strict=True)):
        r, c = divmod(i, cols)
        # A component with coefficient 0 takes no part in the combination: faded.
        panels.add(
            _heatmap(m, t, label="w", fmt=".3f", opacity=0.2 if faded[i] else 1.0),
            row=r + 1,
            col=c + 1,
        )
        if n_peaks:
            panels.add(
                _peak_markers(
                    peaks,
                    symbol="x",
                    color=_PEAK_CROSS,
                    size=8,
                    name=f"top-{n_peaks} true peaks",
                    showlegend=i == 0,
                    text=False,
                ),
                row=r + 1,
                col=c + 1,
            )
    return panels.figure(
        coloraxis=dict(
            colorscale=WEIGHT_COLORSCALE, cmin=0.0, cmax=1.0, colorbar=_colorbar("weight")
        )
    )


# === Peaks (report Fig. 1) ===


#: Label positions tried in turn for a peak label, as plotly ``textposition`` →
#: direction (columns right, rows down) of the label box from the marker.
_LABEL_SPOTS = {
    "top right": (1, -1),
    "bottom left": (-1, 1),
    "top left": (-1, -1),
    "bottom right": (1, 1),
    "middle right": (1, 0),
    "middle left": (-1, 0),
    "top center": (0, -1),
    "bottom center": (0, 1),
}
#: A bold two-character label in map pixels, for panels about 200 screen pixels wide
#: (1.6 screen px per map px): 19 × 13 screen px.
_LABEL_BOX_PX = (12.0, 8.0)


def _place_labels(
    points, shape: tuple[int, int], taken: list, first: str, marker_px: float
) -> list[str]:
    """Greedy label placement: for each point the first position (``first``, then the
    others of :data:`_LABEL_SPOTS`) whose box stays inside the map and overlaps no box in
    ``taken``; the chosen boxes are added to ``taken``. Boxes are ``(x0, x1, y0, y1)`` in
    map pixels."""
    w, h = _LABEL_BOX_PX
    order = [first, *[k for k in _LABEL_SPOTS if k != first]]
    positions = []
    for y, x in np.asarray(points, dtype=float).reshape(-1, 2):
        best, best_box = order[0], None
        for spot in order:
            dx, dy = _LABEL_SPOTS[spot]
            cx = x + dx * (marker_px + w / 2)
            cy = y + dy * (marker_px + h / 2)
            box = (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)
            inside = (
                box[0] >= -0.5
                and box[1] <= shape[1] - 0.5
                and box[2] >= -0.5
                and (box[3] <= shape[0] - 0.5)
            )
            free = all(
                box[1] <= b[0] or box[0] >= b[1] or box[3] <= b[2] or box[2] >= b[3] for b in taken
            )
            if best_box is None:
                best_box = box
            if inside and free:
                best, best_box = spot, box
                break
        taken.append(best_box)
        positions.append(best)
    return positions


def _marker_boxes(points, radius: float) -> list:
    return [
        (x - radius, x + radius, y - radius, y + radius)
        for y, x in np.asarray(points, dtype=float).reshape(-1, 2)
    ]


def peaks_figure(
    truth,
    preds: Mapping[str, np.ndarray],
    true_peaks,
    pred_peaks: Mapping[str, np.ndarray],
    *,
    truth_title: str = "true κ",
) -> go.Figure:
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

    Returns
    -------
    plotly.graph_objects.Figure
        One panel per map; each panel has its own colour scale (peaks are about
        positions, and KS93 and the UNet differ in amplitude), without a colour bar.
        The axes span exactly the map, and the labels are placed so that they stay
        inside it and do not overlap each other or the markers.
    """
    t = _check_map(truth, "truth")
    names = [truth_title, *preds]
    panels = _Panels(names)
    true_peaks = np.asarray(true_peaks, dtype=float).reshape(-1, 2)
    for col, (name, m) in enumerate([(truth_title, t), *preds.items()], start=1):
        m = _check_map(m, name)
        zmin, zmax = robust_range(m, 0.0, 100.0)
        panels.add(
            _heatmap(
                m,
                name,
                coloraxis=None,
                colorscale=KAPPA_COLORSCALE,
                zmin=zmin,
                zmax=zmax,
                showscale=False,
            ),
            col=col,
        )
        circles = (
            np.asarray(pred_peaks[name], dtype=float).reshape(-1, 2)
            if col > 1 and name in pred_peaks
            else np.zeros((0, 2))
        )
        # Marker radii in map pixels at about 1.6 screen px per map px (11 and 18 px).
        taken = _marker_boxes(true_peaks, 3.5) + _marker_boxes(circles, 5.5)
        t_spots = _place_labels(true_peaks, m.shape, taken, "bottom left", 3.5)
        p_spots = _place_labels(circles, m.shape, taken, "top right", 5.5)
        panels.add(
            _peak_markers(
                true_peaks,
                symbol="x",
                color=_PEAK_CROSS,
                size=11,
                name="true peaks (crosses)",
                prefix="T",
                showlegend=col == 1,
                text_position=t_spots,
            ),
            col=col,
        )
        if len(circles):
            # A dark halo under each circle keeps it visible on bright peaks.
            panels.add(
                _peak_markers(
                    circles,
                    symbol="circle-open",
                    color="black",
                    size=18,
                    name="halo",
                    showlegend=False,
                    text=False,
                    line_width=6,
                ).update(hoverinfo="skip", hovertemplate=None),
                col=col,
            )
            panels.add(
                _peak_markers(
                    circles,
                    symbol="circle-open",
                    color=_PEAK_CIRCLE,
                    size=18,
                    name="predicted peaks (circles)",
                    prefix="P",
                    showlegend=col == 2,
                    text_position=p_spots,
                ),
                col=col,
            )
    fig = panels.figure()
    ny, nx = t.shape
    fig.update_xaxes(range=[-0.5, nx - 0.5], autorange=False)
    fig.update_yaxes(range=[ny - 0.5, -0.5], autorange=False)
    return fig


# === DICEE confusion maps (report Fig. 2) ===


def confusion_figure(codes: Mapping[str, np.ndarray]) -> go.Figure:
    """DICEE confusion maps: TP green, TN white, FP blue, FN red, with a discrete legend.

    Parameters
    ----------
    codes : mapping of method name → (ny, nx) uint8 array
        Codes of :func:`lensviz.metrics.dicee_confusion` (0 TN, 1 TP, 2 FP, 3 FN).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    arrays, names = _titles_for({k: np.asarray(v, np.float32) for k, v in codes.items()}, None)
    by_code = sorted((code, cls) for cls, code in CONFUSION_CODES.items())
    ncode = len(by_code)
    scale, labels = [], np.empty(ncode, dtype=object)
    for code, cls in by_code:
        colour = CONFUSION_COLORS[cls][0]
        scale += [[code / ncode, colour], [(code + 1) / ncode, colour]]
        labels[code] = cls
    panels = _Panels(names)
    for col, (m, name) in enumerate(zip(arrays, names, strict=True), start=1):
        text = labels[np.clip(m.astype(int), 0, ncode - 1)]
        panels.add(
            go.Heatmap(
                z=m,
                zmin=-0.5,
                zmax=ncode - 0.5,
                colorscale=scale,
                showscale=False,
                text=text,
                name=name,
                hovertemplate=f"{name}<br>x %{{x}}, y %{{y}}: %{{text}}<extra></extra>",
            ),
            col=col,
        )
    for cls in ("TP", "TN", "FP", "FN"):
        colour, label = CONFUSION_COLORS[cls]
        panels.add(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                marker=dict(
                    symbol="square", size=14, color=colour, line=dict(width=1, color="#444")
                ),
            ),
            col=1,
        )
    return panels.figure()


def significance_grid(
    snr_e: Mapping[str, np.ndarray],
    snr_b: Mapping[str, np.ndarray],
    peaks: Mapping[str, Sequence[tuple[int, int, float]]] | None = None,
    *,
    zmax: float = 5.0,
    labels: int = 6,
) -> go.Figure:
    """Maps in units of their noise: E modes over B modes, one column per method.

    Parameters
    ----------
    snr_e : mapping of method name → (ny, nx) array
        Each method's map divided by its noise rms per pixel (from noise realisations,
        :mod:`lensviz.nulltests`): S/N. NaN pixels (no data) are grey.
    snr_b : mapping of method name → (ny, nx) array
        The same for the map of the 45°-rotated data (the B modes): noise alone.
    peaks : mapping of method name → sequence of (row, column, S/N), optional
        Peaks to circle on the E map (the detections), labelled with their S/N.
    zmax : float, optional
        Colour limits ±zmax: one diverging scale for every panel.
    labels : int, optional
        Label only this many peaks per panel, those of highest S/N (the others are
        circled; their S/N shows on hover).

    Returns
    -------
    plotly.graph_objects.Figure
        Top row E, bottom row B, one colour bar "S/N"; all panels share the zoom. In
        units of the noise the methods compare directly, whatever their amplitudes.
    """
    names = list(snr_e)
    if not names or set(snr_b) != set(names):
        raise ValueError(f"need E and B maps of the same methods, got {names} and {list(snr_b)}")
    # Titles name the method without its settings ("KS93 · E"), so that three fit side
    # by side on narrow screens; the settings are in the hover text and the page.
    short = [n.split(" (")[0] for n in names]
    short = short if len(set(short)) == len(short) else names
    panels = _Panels(
        [f"{n} · E" for n in short] + [f"{n} · B (45°)" for n in short], rows=2, cols=len(names)
    )
    for col, name in enumerate(names, start=1):
        for row, maps, mode in ((1, snr_e, "E"), (2, snr_b, "B")):
            m = _check_map(maps[name], name)
            panels.add(_heatmap(m, f"{name} {mode}", label="S/N", fmt=".2f"), row=row, col=col)
        found = [] if peaks is None else list(peaks.get(name, ()))
        if found:
            yx = np.array([(y, x) for y, x, _ in found], dtype=float)
            top = set(np.argsort([-snr for *_, snr in found])[:labels].tolist())
            marker = _peak_markers(
                yx, symbol="circle-open", color=_PEAK_CIRCLE, size=16, name="peak", text=False
            )
            marker.update(
                mode="markers+text",
                text=[f"{snr:.1f}" if i in top else "" for i, (*_, snr) in enumerate(found)],
                textposition="top right",
                showlegend=col == 1,
                name="detection (its S/N)",
                customdata=[f"S/N {snr:.2f}" for *_, snr in found],
            )
            panels.add(marker, row=1, col=col)
    ny, nx = _check_map(snr_e[names[0]]).shape
    fig = panels.figure(
        coloraxis=dict(
            colorscale=RESIDUAL_COLORSCALE,
            cmin=-zmax,
            cmax=zmax,
            colorbar=_colorbar("S/N (map / noise rms)"),
        )
    )
    # The axes span exactly the maps, whatever markers and labels stand near the edges.
    fig.update_xaxes(range=[-0.5, nx - 0.5], autorange=False)
    fig.update_yaxes(range=[ny - 0.5, -0.5], autorange=False)
    return fig


# === PNG export (no matplotlib) ===


def colormap_lut(colorscale: str = KAPPA_COLORSCALE, n: int = 256) -> np.ndarray:
    """A ``(n, 3)`` uint8 lookup table sampled evenly from a plotly colour scale."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    colours = pcolors.sample_colorscale(colorscale, np.linspace(0.0, 1.0, n), colortype="rgb")
    rgb = [pcolors.unlabel_rgb(c) for c in colours]
    return np.clip(np.rint(np.asarray(rgb, dtype=np.float64)), 0, 255).astype(np.uint8)


def map_png(
    m,
    *,
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    upscale: int = 1,
) -> bytes:
    """A map as PNG bytes (row 0 at the top), coloured with a plotly colour scale.

    Parameters
    ----------
    m : (ny, nx) array
    colorscale : str
        A plotly colour-scale name (sampled into a 256-entry table, no matplotlib).
    zrange : (float, float), optional
        Values mapped to the two ends of the scale; default :func:`robust_range`.
        Values outside are clipped; NaN pixels are grey (:data:`MASK_COLOR`).
    upscale : int
        Nearest-neighbour magnification (e.g. 4 gives 512 × 512 for a 128 × 128 map).

    Returns
    -------
    bytes
        An RGB PNG image.
    """
    a = _check_map(m).astype(np.float64)
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale!r}")
    zmin, zmax = robust_range(a) if zrange is None else (float(zrange[0]), float(zrange[1]))
    if not zmax > zmin:
        raise ValueError(f"zrange must be increasing, got ({zmin}, {zmax})")
    lut = colormap_lut(colorscale)
    idx = np.clip((a - zmin) / (zmax - zmin), 0.0, 1.0)
    idx = np.rint(np.nan_to_num(idx, nan=0.0) * (len(lut) - 1)).astype(np.intp)
    rgb = lut[idx]
    rgb[np.isnan(a)] = pcolors.hex_to_rgb(MASK_COLOR)
    if upscale > 1:
        rgb = np.repeat(np.repeat(rgb, int(upscale), axis=0), int(upscale), axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# === Publication-style PNG (Pillow, no matplotlib or kaleido) ===

_FIGURE_FONT = "DejaVuSans.ttf"  # found in the system's font folders; Pillow's own if absent
_GREEK_ASCII = str.maketrans(
    {"κ": "kappa", "ε": "eps", "σ": "sigma", "Δ": "d", "γ": "gamma", "′": "'", "−": "-"}
)


def _font(size: int):
    """A TrueType font with Greek letters (DejaVu Sans) and whether it was found."""
    try:
        return ImageFont.truetype(_FIGURE_FONT, size), True
    except OSError:
        return ImageFont.load_default(size), False


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


def map_figure_png(
    m,
    *,
    title: str = "",
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    label: str = "κ",
    pixel_arcmin: float | None = None,
    upscale: int = 4,
    dpi: int = 150,
) -> bytes:
    """A slide-ready figure of one map as PNG bytes: axes, ticks, colour bar and units.

    Drawn with Pillow (no matplotlib, no kaleido): the map at ``upscale`` × its size,
    row 0 at the top as in the app, a frame with ticks in arcmin (or pixels), a colour
    bar with round ticks and the quantity's name, and an optional title.

    Parameters
    ----------
    m : (ny, nx) array
    title : str
        Drawn above the map.
    colorscale : str
        A plotly colour-scale name.
    zrange : (float, float), optional
        Colour limits; default :func:`robust_range`. Values outside are clipped.
    label : str
        The quantity on the colour bar, e.g. ``"κ"`` or ``"Δκ"``.
    pixel_arcmin : float, optional
        Pixel size in arcmin: the axes are then in arcmin, else in pixels.
    upscale : int
        Nearest-neighbour magnification of the map.
    dpi : int
        Resolution written into the PNG (for slide and print software).

    Returns
    -------
    bytes
        An RGB PNG image.

    Raises
    ------
    ValueError
        If ``m`` is not 2-D, ``upscale`` is not a positive integer or ``zrange`` is not
        increasing.
    """
    a = _check_map(m)
    ny, nx = a.shape
    zmin, zmax = robust_range(a) if zrange is None else (float(zrange[0]), float(zrange[1]))
    image = Image.open(
        io.BytesIO(map_png(a, colorscale=colorscale, zrange=(zmin, zmax), upscale=upscale))
    )
    font, unicode_ok = _font(20)
    small, _ = _font(17)

    def text(s: str) -> str:
        return s if unicode_ok else s.translate(_GREEK_ASCII)

    w, h = image.size
    left, top, bottom = 95, 60 if title else 25, 85
    bar_gap, bar_w, right = 30, 26, 120
    canvas = Image.new("RGB", (left + w + bar_gap + bar_w + right, top + h + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    canvas.paste(image, (left, top))
    ink = (38, 39, 48)
    draw.rectangle([left - 1, top - 1, left + w, top + h], outline=ink, width=2)
    unit = "arcmin" if pixel_arcmin else "px"
    scale = float(pixel_arcmin) if pixel_arcmin else 1.0
    for t in nice_ticks(0.0, nx * scale):  # x ticks along the bottom edge
        x = left + t / (nx * scale) * w
        draw.line([x, top + h, x, top + h + 8], fill=ink, width=2)
        draw.text((x, top + h + 12), f"{t:g}", fill=ink, font=small, anchor="mt")
    for t in nice_ticks(0.0, ny * scale):  # y ticks, row 0 at the top
        y = top + t / (ny * scale) * h
        draw.line([left - 8, y, left, y], fill=ink, width=2)
        draw.text((left - 12, y), f"{t:g}", fill=ink, font=small, anchor="rm")
    draw.text((left + w / 2, top + h + 45), f"x [{unit}]", fill=ink, font=font, anchor="mt")
    ylab = Image.new("RGB", (200, 30), "white")
    ImageDraw.Draw(ylab).text((100, 15), f"y [{unit}]", fill=ink, font=font, anchor="mm")
    canvas.paste(ylab.rotate(90, expand=True), (8, top + h // 2 - 100))
    if title:
        draw.text((left + w / 2, top - 18), text(title), fill=ink, font=font, anchor="mb")
    # The colour bar: the top of the scale at the top.
    lut = colormap_lut(colorscale)
    ramp = lut[np.linspace(len(lut) - 1, 0, h).round().astype(int)]
    bar = Image.fromarray(np.repeat(ramp[:, None, :], bar_w, axis=1))
    x0 = left + w + bar_gap
    canvas.paste(bar, (x0, top))
    draw.rectangle([x0 - 1, top - 1, x0 + bar_w, top + h], outline=ink, width=1)
    for t in nice_ticks(zmin, zmax):
        y = top + (zmax - t) / (zmax - zmin) * h
        draw.line([x0 + bar_w, y, x0 + bar_w + 6, y], fill=ink, width=2)
        draw.text((x0 + bar_w + 10, y), f"{t:.3g}", fill=ink, font=small, anchor="lm")
    blab = Image.new("RGB", (200, 30), "white")
    ImageDraw.Draw(blab).text((100, 15), text(label), fill=ink, font=font, anchor="mm")
    canvas.paste(blab.rotate(90, expand=True), (x0 + bar_w + 72, top + h // 2 - 100))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()
