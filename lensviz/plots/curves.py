"""Plotly figures of curves and spectra: training curves, metric histograms, Fourier views.

Every function takes numpy arrays (or plain dicts of numbers) and returns a
:class:`plotly.graph_objects.Figure`; none reads files or knows the app.

Training curves
    :func:`loss_curves` and :func:`metric_curves` follow the report's Figures 4 and 5:
    loss and validation metrics against epochs, on a logarithmic y axis.
Evaluation
    :func:`metric_histograms` overlays the per-map distribution of each metric for
    several methods, on shared bins.
Teaching
    :func:`fourier_cells` draws Fourier-plane maps (zero frequency in the centre, axes
    ``k1`` along x and ``k2`` along y in cycles per pixel, ``k2`` pointing up as in a
    maths figure); :func:`line_figure` draws a few named curves (profiles, error
    against noise level).
Uncertainty
    :func:`reliability_figure` draws the observed coverage of ±zσ intervals against the
    Gaussian expectation (:func:`lensviz.nn.uncertainty.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lensviz.plots.maps import _Cell

__all__ = [
    "METHOD_COLORS",
    "METRIC_LABELS",
    "loss_curves",
    "metric_curves",
    "metric_histograms",
    "fourier_cells",
    "line_figure",
    "log_ticks",
    "reliability_figure",
]

#: Human labels of the metrics of :data:`lensviz.metrics.METRIC_NAMES` (+ arrows:
#: ↓ lower is better, ↑ higher is better).
METRIC_LABELS = {
    "wmape": "WMAPE ↓",
    "wmape_median": "median WMAPE ↓",
    "dicee": "DICEE ↓",
    "dpeaks": "DPEAKS [px] ↓",
    "rmse": "RMSE ↓",
    "r": "Pearson r ↑",
    "loss": "training loss",
    "val_loss": "validation loss",
}

#: Colours of the methods, by the start of their name (so "KS93 smoothed (σ = 4 px)" works).
METHOD_COLORS = {
    "UNet": "#d62728",
    "KS93 raw": "#7f7f7f",
    "KS93 smoothed": "#1f77b4",
    "KS93": "#1f77b4",
    "Wiener": "#2ca02c",
    "truth": "#000000",
}
_PALETTE = ("#d62728", "#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_HEIGHT = 330
_LEGEND_UNDER_PX = 50  # room for a legend under a figure's axes (two rows)


def _color(name: str, i: int) -> str:
    for prefix in sorted(METHOD_COLORS, key=len, reverse=True):
        if str(name).startswith(prefix):
            return METHOD_COLORS[prefix]
    return _PALETTE[i % len(_PALETTE)]


def _layout(fig: go.Figure, height: int = _HEIGHT) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=60, r=20, t=40, b=45),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0.0),
    )
    fig.update_xaxes(
        showline=True, linecolor="#888", mirror=True, gridcolor="#eee", ticks="outside"
    )
    fig.update_yaxes(
        showline=True, linecolor="#888", mirror=True, gridcolor="#eee", ticks="outside"
    )
    return fig


def _positive(values) -> list[float | None]:
    """Values for a log axis: non-positive or non-finite ones become gaps (None)."""
    out = []
    for v in values:
        v = float(v) if v is not None else math.nan
        out.append(v if math.isfinite(v) and v > 0 else None)
    return out


def log_ticks(values, max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Tick values and labels for a logarithmic axis spanning the finite positive ``values``.

    Uses the 1–2–5 sequence (…, 0.1, 0.2, 0.5, 1, 2, 5, 10, …), thinned to 1–3 or to
    powers of ten when there would be more than ``max_ticks``, and labels every tick
    with its full value (``"20"``, ``"0.05"``, ``"2e-05"``), never plotly's bare minor
    digits ("2, 5").

    Examples
    --------
    >>> log_ticks([12.0, 140.0])[1]
    ['10', '20', '50', '100', '200']
    """
    v = np.asarray(
        [x for x in np.ravel(np.asarray(values, dtype=object)) if x is not None], dtype=np.float64
    )
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return [], []
    lo, hi = float(v.min()), float(v.max())
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**e for e in decades for m in mantissas]
        below = [t for t in ticks if t <= lo]
        above = [t for t in ticks if t >= hi]
        start = below[-1] if below else ticks[0]
        stop = above[0] if above else ticks[-1]
        ticks = [t for t in ticks if start <= t <= stop]
        if len(ticks) <= max_ticks:
            break
    if len(ticks) > max_ticks:  # very wide ranges: every n-th power of ten
        ticks = ticks[:: math.ceil(len(ticks) / max_ticks)]
    if sum(lo <= t <= hi for t in ticks) < 3:  # less than a decade: every integer mantissa
        fine = [m * 10.0**e for e in decades for m in range(1, 10)]
        inside = [t for t in fine if lo <= t <= hi]
        if len(inside) >= 2:
            step = math.ceil(len(inside) / max_ticks)
            ticks = inside[::step]
    powers = not all(1e-3 <= t < 1e4 for t in ticks)
    return ticks, [_tick_label(t, powers) for t in ticks]


def _tick_label(t: float, powers: bool = False) -> str:
    """``"20"``, ``"0.05"``; with ``powers``, ``"2×10<sup>−5</sup>"``."""
    if not powers:
        return f"{t:.3g}"
    exponent = math.floor(math.log10(t) + 1e-9)
    mantissa = round(t / 10.0**exponent)
    power = f"10<sup>{str(exponent).replace('-', '−')}</sup>"
    return power if mantissa == 1 else f"{mantissa}×{power}"


def _log_axis(values) -> dict:
    """Axis settings of a log axis with :func:`log_ticks` (no minor-digit labels).

    Values within less than a factor of 3 get a linear axis: a log axis would show no
    more than one labelled tick.
    """
    v = np.asarray(
        [x for x in np.ravel(np.asarray(values, dtype=object)) if x is not None], dtype=np.float64
    )
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() < 3 * v.min():
        return dict(type="linear", nticks=5)
    vals, text = log_ticks(v)
    return (
        dict(type="log", tickmode="array", tickvals=vals, ticktext=text)
        if vals
        else (dict(type="log"))
    )


# === Training (report Figs. 4 and 5) ===


def loss_curves(
    step_loss: Sequence[tuple[float, float]] | None,
    history: Sequence[Mapping[str, float]],
    *,
    log_y: bool = True,
) -> go.Figure:
    """Training loss during the epochs, and loss / validation loss per epoch.

    Parameters
    ----------
    step_loss : sequence of (epoch_position, loss), optional
        The running training loss reported during training; ``epoch_position`` is the
        fractional epoch (1.5 = half-way through the second epoch).
    history : sequence of dict
        One dict per finished epoch with ``epoch`` (1-based), ``loss`` and ``val_loss``.
    log_y : bool
        Logarithmic y axis (non-positive values are left out).

    Returns
    -------
    plotly.graph_objects.Figure
        x: epoch; y: loss.
    """
    fig = go.Figure()
    if step_loss:
        x, y = zip(*step_loss, strict=True)
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=_positive(y) if log_y else list(y),
                mode="lines",
                name="training loss (running, per step)",
                line=dict(color="#aec7e8", width=1.5),
            )
        )
    epochs = [r.get("epoch") for r in history]
    for key, color, dash in (("loss", "#1f77b4", "solid"), ("val_loss", "#d62728", "dash")):
        values = [r.get(key, math.nan) for r in history]
        if history and any(v is not None and math.isfinite(v) for v in values):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=_positive(values) if log_y else values,
                    mode="lines+markers",
                    name=METRIC_LABELS[key] + " (epoch)",
                    line=dict(color=color, dash=dash),
                    marker=dict(size=8),
                )
            )
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    if log_y:
        fig.update_yaxes(title_text="loss", **_log_axis([v for t in fig.data for v in t.y]))
    else:
        fig.update_yaxes(title_text="loss")
    if not fig.data:
        fig.add_annotation(
            text="no training step finished yet",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    fig = _layout(fig, height=_HEIGHT + 40)
    # The legend goes under the axis title, where it cannot cover the curves.
    return fig.update_layout(
        margin=dict(t=20, b=110), legend=dict(orientation="h", yanchor="top", y=-0.28, x=0.0)
    )


def metric_curves(
    history: Sequence[Mapping[str, float]],
    metrics: Sequence[str] = ("wmape", "dicee", "dpeaks", "rmse"),
    *,
    before: Mapping[str, float] | None = None,
    prefix: str = "val_",
    log_y: bool = True,
    cols: int = 2,
) -> go.Figure:
    """Validation metrics per epoch, one panel each in a grid, log y (report Fig. 5).

    Parameters
    ----------
    history : sequence of dict
        Per-epoch dicts with ``epoch`` and ``{prefix}{metric}`` keys.
    metrics : sequence of str
        Metric names (keys of :data:`METRIC_LABELS`).
    before : dict, optional
        The metrics before training, drawn at epoch 0.
    prefix : str
        Key prefix of the metrics in ``history``.
    log_y : bool
        Logarithmic y axes (Pearson r, which can be ≤ 0, always gets a linear axis),
        labelled by :func:`log_ticks`.
    cols : int
        Panels per row (2: a 2 × 2 grid for four metrics, so tick labels have room).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty; expected names such as 'wmape'")
    if cols < 1:
        raise ValueError(f"cols must be at least 1, got {cols!r}")
    cols = min(cols, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics],
        horizontal_spacing=0.16,
        vertical_spacing=0.2 if rows > 1 else 0.0,
    )
    for i, m in enumerate(metrics):
        row, col = divmod(i, cols)
        row, col = row + 1, col + 1
        x = [r.get("epoch") for r in history]
        y = [r.get(prefix + m, math.nan) for r in history]
        if before is not None and m in before:
            x, y = [0, *x], [before[m], *y]
        log = log_y and m != "r"
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_positive(y) if log else y,
                mode="lines+markers",
                name=METRIC_LABELS.get(m, m),
                showlegend=False,
                line=dict(color=_PALETTE[i % len(_PALETTE)]),
                marker=dict(size=8),
            ),
            row=row,
            col=col,
        )
        if log:
            fig.update_yaxes(**_log_axis(_positive(y)), row=row, col=col)
        else:
            fig.update_yaxes(nticks=5, row=row, col=col)
        last_row = i + cols >= len(metrics)
        fig.update_xaxes(
            title_text=("epoch" + (" (0 = before)" if before else "")) if last_row else None,
            rangemode="tozero",
            dtick=1 if len(x) <= 10 else None,
            row=row,
            col=col,
        )
    fig.update_annotations(yshift=4, font_size=13)
    # A top margin the modebar (about 30 px) fits in without covering the first titles.
    return _layout(fig, height=150 + 170 * rows).update_layout(margin=dict(t=60, b=50))


# === Evaluation ===


def metric_histograms(
    per_map: Mapping[str, Mapping[str, np.ndarray]],
    metrics: Sequence[str] = ("wmape", "dicee", "dpeaks", "rmse", "r"),
    *,
    bins: int = 20,
    clip_percentile: float = 98.0,
    cols: int = 3,
) -> go.Figure:
    """Per-map metric distributions, one step outline per method on shared bins, one
    panel per metric in a grid of ``cols`` columns.

    Outlines (no fill) stay readable where the methods overlap: no blended colours that
    are not in the legend. Each method keeps its colour (:data:`METHOD_COLORS`) and a
    dash pattern of its own.

    Parameters
    ----------
    per_map : mapping
        ``{method: {metric: (N,) array}}`` as from
        :func:`lensviz.evaluation.score_methods`.
    metrics : sequence of str
    bins : int
        Bins per panel (fewer when there are few maps).
    clip_percentile : float
        The bins end at this percentile of all methods' values pooled (WMAPE has a long
        tail where κ ≈ 0); the panel title counts the values beyond it.
    cols : int
        Panels per row (3: five metrics in a 3 × 2 grid, the legend in the free cell).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    methods = list(per_map)
    if not methods:
        raise ValueError("per_map is empty; expected {method: {metric: values}}")
    if cols < 1:
        raise ValueError(f"cols must be at least 1, got {cols!r}")
    cols = min(cols, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        horizontal_spacing=0.08,
        vertical_spacing=0.22 if rows > 1 else 0.0,
        subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics],
    )
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    for j, m in enumerate(metrics):
        row, col = j // cols + 1, j % cols + 1
        pooled = np.concatenate([np.asarray(per_map[k][m], np.float64) for k in methods])
        pooled = pooled[np.isfinite(pooled)]
        if pooled.size == 0:
            continue
        lo = float(pooled.min())
        hi = (
            float(np.percentile(pooled, clip_percentile))
            if pooled.size > 10
            else float(pooled.max())
        )
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        n_bins = int(max(5, min(bins, np.sqrt(pooled.size / len(methods)) * 2)))
        edges = np.linspace(lo, hi, n_bins + 1)
        hidden = int((pooled > hi + 1e-12 * abs(hi)).sum())
        for i, k in enumerate(methods):
            values = np.asarray(per_map[k][m], np.float64)
            counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
            fig.add_trace(
                go.Scatter(
                    x=np.r_[edges[0], edges],
                    y=np.r_[0, counts, 0],
                    mode="lines",
                    line=dict(
                        shape="hv", color=_color(k, i), width=2.2, dash=dashes[i % len(dashes)]
                    ),
                    name=k,
                    legendgroup=k,
                    showlegend=j == 0,
                    customdata=np.r_[edges[0], edges[:-1], edges[-1]],
                    hovertemplate=f"{k}<br>{m} from %{{customdata:.3g}}<br>%{{y}} maps"
                    "<extra></extra>",
                ),
                row=row,
                col=col,
            )
        if hidden:
            fig.layout.annotations[
                j
            ].text += f"<br><span style='font-size:11px'>{hidden} above {hi:.3g} not shown</span>"
        pad = 0.04 * (hi - lo)  # outlines on the first and last bin stay off the frame
        fig.update_xaxes(nticks=5, range=[lo - pad, hi + pad], row=row, col=col)
        fig.update_yaxes(
            title_text="maps" if col == 1 else None, rangemode="tozero", row=row, col=col
        )
    fig = _layout(fig, height=150 + 230 * rows)
    # The legend fills the empty cell of the grid when there is one, else goes below.
    spare = rows * cols > len(metrics)
    legend = (
        dict(
            orientation="v",
            yanchor="middle",
            y=0.5 / rows,
            xanchor="left",
            x=(len(metrics) % cols) / cols + 0.03,
        )
        if spare
        else dict(orientation="h", yanchor="top", y=-0.12, x=0.0)
    )
    fig.update_layout(margin=dict(t=80, b=40), legend=legend)
    return fig


# === Teaching ===


def fourier_cells(
    panels: Mapping[str, np.ndarray],
    *,
    colorscale: str = "RdBu_r",
    zrange: tuple[float, float] | None = None,
    colorbar_title: str = "",
) -> list[go.Figure]:
    """Fourier-plane maps, zero frequency at the centre, one cell of the app's grid each.

    Parameters
    ----------
    panels : mapping of title → (ny, nx) real array
        In numpy's FFT order (zero frequency at ``[0, 0]``); shifted here with
        :func:`numpy.fft.fftshift`.
    colorscale : str
        Plotly colour scale shared by the panels; its bar is under the first.
    zrange : (float, float), optional
        Colour limits; default the min and max of all panels.
    colorbar_title : str

    Returns
    -------
    list of plotly.graph_objects.Figure
        Axes ``k1`` (x) and ``k2`` (y, pointing up) in cycles per pixel, square; cells
        as those of :mod:`lensviz.plots.maps`.
    """
    if not panels:
        raise ValueError("panels is empty; expected {title: (ny, nx) array}")
    arrays = {k: np.asarray(v, np.float64) for k, v in panels.items()}
    for k, a in arrays.items():
        if a.ndim != 2:
            raise ValueError(f"panel {k!r} must be a 2-D (ny, nx) array, got shape {a.shape}")
    if zrange is None:
        finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
        zrange = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    axis = {"coloraxis": dict(colorscale=colorscale, cmin=zrange[0], cmax=zrange[1])}
    out = []
    for i, (title, a) in enumerate(arrays.items()):
        ny, nx = a.shape
        k1 = np.fft.fftshift(np.fft.fftfreq(nx))
        k2 = np.fft.fftshift(np.fft.fftfreq(ny))
        extent = (k1[0] - 0.5 / nx, k1[-1] + 0.5 / nx, k2[0] - 0.5 / ny, k2[-1] + 0.5 / ny)
        cell = _Cell([title], a.shape, "k₁ (x), k₂ (y) [cycles/px]", extent=extent, y_up=True)
        cell.add(
            go.Heatmap(
                z=np.fft.fftshift(a),
                x=k1,
                y=k2,
                coloraxis="coloraxis",
                name=title,
                hovertemplate=f"{title}<br>k1 %{{x:.3f}}, k2 %{{y:.3f}}<br>%{{z:.3g}}"
                "<extra></extra>",
            )
        )
        out.append(cell.figure(axis, bars={"coloraxis": colorbar_title} if i == 0 else {}))
    return out


def line_figure(
    x,
    curves: Mapping[str, np.ndarray],
    *,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    log_y: bool = False,
    marker_x: float | None = None,
    marker_label: str = "",
    dashed: Sequence[str] = (),
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """A few named curves over a common x, e.g. a κ profile or error against noise.

    Parameters
    ----------
    x : (n,) array
    curves : mapping of name → (n,) array
    xlabel, ylabel : str
    log_x, log_y : bool
        Logarithmic axes.
    marker_x : float, optional
        Draw a vertical dotted line here (e.g. the current slider value).
    marker_label : str
        Its label.
    dashed : sequence of str
        Names of curves drawn dashed (e.g. references).
    colors : mapping of name → colour, optional
        Overrides the default colours (:data:`METHOD_COLORS`, then a palette).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    x = np.asarray(x, np.float64)
    fig = go.Figure()
    for i, (name, y) in enumerate(curves.items()):
        y = np.asarray(y, np.float64)
        if y.shape != x.shape:
            raise ValueError(f"curve {name!r} has shape {y.shape}; expected {x.shape} like x")
        color = (colors or {}).get(name) or _color(name, i)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers" if x.size <= 30 else "lines",
                name=name,
                line=dict(color=color, dash="dash" if name in dashed else "solid"),
            )
        )
    if marker_x is not None:
        fig.add_vline(x=marker_x, line=dict(color="#444", dash="dot"))
        if marker_label:  # annotations on a log axis take log10 coordinates (shapes do not)
            fig.add_annotation(
                x=math.log10(marker_x) if log_x else marker_x,
                y=1.0,
                yref="paper",
                yanchor="bottom",
                text=marker_label,
                showarrow=False,
                font=dict(size=11, color="#444"),
            )
    fig.update_xaxes(title_text=xlabel, **(_log_axis(x) if log_x else {}))
    ys = (
        np.concatenate([np.asarray(c, np.float64).ravel() for c in curves.values()])
        if (curves)
        else np.zeros(0)
    )
    fig.update_yaxes(title_text=ylabel, **(_log_axis(ys) if log_y else {}))
    return _layout(fig)


# === Uncertainty ===


def reliability_figure(
    expected,
    observed,
    *,
    z=None,
    points: Mapping[str, tuple[float, float]] | None = None,
    name: str = "observed",
    others: Mapping[str, tuple] | None = None,
) -> go.Figure:
    """Reliability plot of an uncertainty: observed coverage against the expected one.

    For each interval half-width ``z`` (in units of the predicted σ), x is the
    Gaussian coverage ``erf(z/√2)`` and y the fraction of true pixels inside
    ``mean ± zσ``. A calibrated σ follows the diagonal; a curve below it means σ is
    too small (over-confident), above it too large.

    Parameters
    ----------
    expected, observed : (n,) array
        Coverage fractions in [0, 1], as ``calibration()["expected"]`` and
        ``["observed"]``.
    z : (n,) array, optional
        The half-widths, shown in the hover text.
    points : mapping of label → (expected, observed), optional
        Highlighted points, e.g. ``{"±1σ": (0.683, 0.52), "±2σ": (0.954, 0.81)}``.
    name : str
        Legend label of the curve.
    others : mapping of label → (expected, observed), optional
        Other uncertainties of the same map on the same axes, dotted (e.g. the spread
        of Monte-Carlo-dropout passes beside a calibrated σ).

    Returns
    -------
    plotly.graph_objects.Figure
        Square axes from 0 to 1.
    """
    x = np.asarray(expected, np.float64)
    y = np.asarray(observed, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"expected and observed must be 1-D of one length, got {x.shape} and {y.shape}"
        )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="calibrated (diagonal)",
            line=dict(color="#888", dash="dash"),
            hoverinfo="skip",
        )
    )
    custom = None if z is None else np.asarray(z, np.float64)
    hover = ("z = %{customdata:.1f}<br>" if custom is not None else "") + (
        "expected %{x:.1%}<br>observed %{y:.1%}<extra></extra>"
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines",
            name=name,
            customdata=custom,
            line=dict(color=METHOD_COLORS["UNet"], width=2.5),
            hovertemplate=hover,
        )
    )
    for i, (label, (ex, ob)) in enumerate((others or {}).items(), start=1):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(ex, np.float64),
                y=np.asarray(ob, np.float64),
                mode="lines",
                name=label,
                line=dict(color=_PALETTE[i % len(_PALETTE)], width=2.5, dash="dot"),
                hovertemplate=f"{label}<br>expected %{{x:.1%}}<br>observed %{{y:.1%}}"
                "<extra></extra>",
            )
        )
    for label, (ex, ob) in (points or {}).items():
        fig.add_trace(
            go.Scatter(
                x=[ex],
                y=[ob],
                mode="markers+text",
                text=[label],
                textposition="top left",
                textfont=dict(size=13),
                marker=dict(
                    size=10, color=METHOD_COLORS["UNet"], line=dict(width=1.5, color="black")
                ),
                showlegend=False,
                hovertemplate=f"{label}<br>expected %{{x:.1%}}<br>"
                "observed %{y:.1%}<extra></extra>",
            )
        )
    fig.update_xaxes(
        title_text="expected coverage (Gaussian)",
        range=[0, 1],
        tickformat=".0%",
        constrain="domain",
    )
    fig.update_yaxes(
        title_text="observed coverage",
        range=[0, 1],
        tickformat=".0%",
        scaleanchor="x",
        scaleratio=1,
        constrain="domain",
    )
    _layout(fig, height=360 + _LEGEND_UNDER_PX)
    # The legend under the axes: above them it covered the top of the square plot.
    return fig.update_layout(
        margin=dict(t=20, b=60 + _LEGEND_UNDER_PX),
        legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0),
    )
