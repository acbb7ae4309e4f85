"""The loss lab's Pareto figure: RMSE against DICEE and against DPEAKS, one point a model.

:func:`pareto_figure` takes plain points (a name, a label, a group and each metric's mean
and standard error), so the docs, the Loss-weights page and the Fine-tune page draw the
same figure from :mod:`lensviz.lab`'s results, with their own extra points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lensviz.lab import pareto_front
from lensviz.plots.curves import METRIC_LABELS, _layout

__all__ = ["LAB_GROUPS", "pareto_figure"]

#: Point groups: name → (legend title, colour, marker symbols taken in turn).
LAB_GROUPS = {
    "plain": ("plain losses", "#1f77b4", ("circle", "square", "diamond")),
    "multifocal": ("MultiFocal", "#d62728", ("star",)),
    "ablation": (
        "MultiFocal without one weight",
        "#ff7f0e",
        ("triangle-up", "triangle-down", "triangle-left", "triangle-right", "pentagon"),
    ),
    "finetune": ("Combined fine-tunes", "#9467bd", ("cross", "x", "hexagram", "star-square")),
    "scratch": ("from scratch (control)", "#8c564b", ("circle-open", "star-open")),
    "repeat": (
        "second seed",
        "#7f7f7f",
        (
            "circle-open-dot",
            "square-open-dot",
            "diamond-open-dot",
            "star-open-dot",
            "hexagon-open-dot",
        ),
    ),
    "shipped": ("shipped UNet", "#000000", ("hexagon",)),
    "baseline": ("classical", "#2ca02c", ("square-open", "diamond-open", "circle-open")),
    "yours": ("your run", "#e377c2", ("star-diamond",)),
}


def _value(point: Mapping, metric: str) -> tuple[float, float]:
    mean, se = point[metric]
    return float(mean), float(se) if se is not None and math.isfinite(se) else 0.0


def _range(values: Sequence[float], errors: Sequence[float], extra=()) -> list[float]:
    lo = min([v - e for v, e in zip(values, errors, strict=True)] + list(extra))
    hi = max([v + e for v, e in zip(values, errors, strict=True)] + list(extra))
    pad = 0.06 * (hi - lo or abs(hi) or 1.0)
    return [lo - pad, hi + pad]


def pareto_figure(
    rows: Mapping[str, Sequence[Mapping]],
    x_metrics: Sequence[str] = ("dicee", "dpeaks"),
    y_metric: str = "rmse",
    *,
    highlight: str | None = None,
    targets: Mapping[str, Mapping[str, float]] | None = None,
    front_groups: Sequence[str] = ("plain", "multifocal", "ablation", "finetune", "scratch"),
    height_per_row: int = 380,
    legend: str = "right",
) -> go.Figure:
    """One panel per (row, x metric): ``y_metric`` against it, error bars both ways.

    Parameters
    ----------
    rows : mapping of str to sequence of mapping
        Row title (e.g. a depth) → points. A point holds ``name``, ``label``, ``group``
        (a key of :data:`LAB_GROUPS`) and, for each metric drawn, ``(mean, standard
        error)``. The same name is one legend entry across the panels.
    x_metrics : sequence of str
        The x axis of each column (lower is better).
    y_metric : str
        The y axis of every panel (lower is better).
    highlight : str, optional
        A point's name to ring (e.g. the variant closest to some settings); it is drawn
        larger with a thick black outline (the legend names it; no text label, which
        could cover a panel title).
    targets : mapping, optional
        Row title → ``{metric: bound}``: the region of that row's panels where
        ``y_metric`` and the x metric are at most their bounds is shaded (a target).
    front_groups : sequence of str
        Groups whose points compete for the Pareto front (a dashed line through the
        points no other beats on both axes).
    height_per_row : int
    legend : str
        ``"right"`` (a column beside the panels, for wide figures) or ``"bottom"`` (rows
        under them, for the app's narrower columns).

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        For an unknown group, or a point without a metric drawn.
    """
    titles = [f"{title}: {METRIC_LABELS.get(m, m)}" for title in rows for m in x_metrics]
    fig = make_subplots(
        rows=len(rows),
        cols=len(x_metrics),
        subplot_titles=titles,
        horizontal_spacing=0.1,
        vertical_spacing=0.16 / max(1, len(rows) - 1) if len(rows) > 1 else 0.1,
    )
    shown: set[str] = set()
    symbols: dict[str, str] = {}
    counters: dict[str, int] = {}
    for r, (title, points) in enumerate(rows.items(), start=1):
        for point in points:
            if point["group"] not in LAB_GROUPS:
                raise ValueError(f"point {point['name']!r} has unknown group {point['group']!r}")
            for metric in (y_metric, *x_metrics):
                if metric not in point:
                    raise ValueError(f"point {point['name']!r} has no {metric!r}")
        for c, xm in enumerate(x_metrics, start=1):
            xs = [_value(p, xm) for p in points]
            ys = [_value(p, y_metric) for p in points]
            for p, (x, ex), (y, ey) in zip(points, xs, ys, strict=True):
                name, group = p["name"], p["group"]
                legend_title, color, group_symbols = LAB_GROUPS[group]
                if name not in symbols:
                    i = counters.get(group, 0)
                    symbols[name] = group_symbols[i % len(group_symbols)]
                    counters[group] = i + 1
                ring = name == highlight
                fig.add_trace(
                    go.Scatter(
                        x=[x],
                        y=[y],
                        error_x=dict(type="data", array=[ex], thickness=1, width=0),
                        error_y=dict(type="data", array=[ey], thickness=1, width=0),
                        mode="markers",
                        marker=dict(
                            symbol=symbols[name],
                            size=14 if ring else 10,
                            color=color,
                            line=dict(width=3 if ring else 1, color="#000" if ring else color),
                        ),
                        name=p["label"],
                        legendgroup=name,
                        legendgrouptitle_text=legend_title if group not in shown else None,
                        showlegend=name not in shown,
                        hovertemplate=(
                            f"<b>{p['label']}</b><br>{METRIC_LABELS.get(xm, xm)} "
                            f"{x:.4g} ± {ex:.2g}<br>{METRIC_LABELS.get(y_metric, y_metric)} "
                            f"{y:.4g} ± {ey:.2g}<extra></extra>"
                        ),
                    ),
                    row=r,
                    col=c,
                )
                shown.add(name)
                shown.add(group)
            competing = [i for i, p in enumerate(points) if p["group"] in front_groups]
            if len(competing) > 1:
                fx = np.array([xs[i][0] for i in competing])
                fy = np.array([ys[i][0] for i in competing])
                on = pareto_front(fx, fy)
                order = np.argsort(fx[on])
                fig.add_trace(
                    go.Scatter(
                        x=fx[on][order],
                        y=fy[on][order],
                        mode="lines",
                        line=dict(color="#444", dash="dash", width=1),
                        name="Pareto front",
                        legendgroup="front",
                        showlegend="front" not in shown,
                        hoverinfo="skip",
                    ),
                    row=r,
                    col=c,
                )
                shown.add("front")
            xr = _range([v for v, _ in xs], [e for _, e in xs])
            yr = _range([v for v, _ in ys], [e for _, e in ys])
            bound = (targets or {}).get(title, {})
            if xm in bound and y_metric in bound:
                fig.add_shape(
                    type="rect",
                    x0=xr[0] - (xr[1] - xr[0]),
                    x1=bound[xm],
                    y0=yr[0] - (yr[1] - yr[0]),
                    y1=bound[y_metric],
                    fillcolor="rgba(44, 160, 44, 0.12)",
                    line=dict(color="rgba(44, 160, 44, 0.8)", dash="dot", width=1),
                    layer="below",
                    row=r,
                    col=c,
                )
                fig.add_annotation(
                    x=bound[xm],
                    y=bound[y_metric],
                    text="target",
                    showarrow=False,
                    xanchor="right",
                    yanchor="top",
                    font=dict(size=11, color="#2ca02c"),
                    row=r,
                    col=c,
                )
                xr = _range(xr, [0.0, 0.0], extra=[bound[xm]])
                yr = _range(yr, [0.0, 0.0], extra=[bound[y_metric]])
            fig.update_xaxes(title_text=METRIC_LABELS.get(xm, xm), range=xr, row=r, col=c)
            fig.update_yaxes(
                title_text=METRIC_LABELS.get(y_metric, y_metric), range=yr, row=r, col=c
            )
    if legend not in ("right", "bottom"):
        raise ValueError(f"legend must be 'right' or 'bottom', got {legend!r}")
    height = max(320, height_per_row * len(rows))
    _layout(fig, height=height + (260 if legend == "bottom" else 0))
    place = (
        dict(orientation="v", x=1.02, y=1.0, yanchor="top")
        if legend == "right"
        else dict(orientation="h", x=0.0, y=-0.18 * 380 / height, yanchor="top")
    )
    fig.update_layout(
        legend=dict(**place, groupclick="toggleitem", font=dict(size=11)),
        margin=dict(l=60, r=20, t=50, b=45),
    )
    return fig
