"""How each method does against survey depth: one panel per metric, one line per method.

:func:`depth_figure` takes the per-depth results of
:func:`lensviz.evaluation.evaluate_depths` (or a model card's ``evaluation["depths"]``)
and draws each metric's mean ± bootstrap standard error against the galaxy density
n_gal on a logarithmic axis. Noise-free data (n_gal = ∞) sits at the right end, past a
break in the axis, labelled "no noise".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lensviz.plots.curves import _PALETTE, METRIC_LABELS, log_ticks

__all__ = ["DEPTH_METHOD_COLORS", "DEPTH_METHOD_LABELS", "depth_figure"]

#: Legend names of the methods scored by :func:`lensviz.evaluation.evaluate_depths`.
DEPTH_METHOD_LABELS = {
    "unet": "UNet",
    "wiener": "Wiener",
    "ks93_smoothed": "KS93 smoothed",
    "ks93_raw": "KS93 raw",
}
#: Colours of the methods by key; other methods (e.g. a previous UNet) take the palette.
DEPTH_METHOD_COLORS = {
    "unet": "#d62728",
    "wiener": "#2ca02c",
    "ks93_smoothed": "#1f77b4",
    "ks93_raw": "#7f7f7f",
}
_LOG_METRICS = frozenset({"rmse", "wmape"})  # drawn on a logarithmic y axis
_NOISE_FREE_FACTOR = 4.0  # "no noise" is drawn this factor past the deepest finite depth


def _x_positions(n_gals: Sequence[float]) -> list[float]:
    finite = [n for n in n_gals if math.isfinite(n)]
    top = max(finite) if finite else 1.0
    return [n if math.isfinite(n) else top * _NOISE_FREE_FACTOR for n in n_gals]


def depth_figure(
    depths: Mapping[str, Mapping],
    metrics: Sequence[str] = ("rmse", "r", "dicee"),
    methods: Mapping[str, str] | None = None,
    height: int = 340,
) -> go.Figure:
    """Metric against depth for every method.

    Parameters
    ----------
    depths : mapping
        ``{spec: {"n_gal": float, "summary": {method: {metric: {"mean", "sem_boot"}}}}}``,
        as :func:`lensviz.evaluation.evaluate_depths` returns.
    metrics : sequence of str
        One panel each (keys of :data:`lensviz.plots.METRIC_LABELS`).
    methods : mapping of str to str, optional
        Methods to draw and their legend names (default :data:`DEPTH_METHOD_LABELS`
        plus any other method found, under its own name).
    height : int
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        For an empty ``depths``.
    """
    if not depths:
        raise ValueError("depth_figure needs the results of at least one depth")
    rows = sorted(depths.values(), key=lambda r: float(r["n_gal"]))
    n_gals = [float(r["n_gal"]) for r in rows]
    xs = _x_positions(n_gals)
    found = list(dict.fromkeys(m for r in rows for m in r["summary"]))
    if methods is None:
        methods = {m: DEPTH_METHOD_LABELS.get(m, m) for m in found}
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        horizontal_spacing=0.09,
        subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics],
    )
    spare = iter(c for c in (*_PALETTE[4:], *_PALETTE) if c not in DEPTH_METHOD_COLORS.values())
    for key, name in methods.items():
        if key not in found:
            continue
        color = DEPTH_METHOD_COLORS.get(key) or next(spare)
        for col, metric in enumerate(metrics, start=1):
            pts = [
                (x, r["summary"][key][metric])
                for x, r in zip(xs, rows, strict=True)
                if key in r["summary"]
            ]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1]["mean"] for p in pts],
                    error_y=dict(
                        type="data",
                        array=[p[1].get("sem_boot", 0.0) for p in pts],
                        visible=True,
                        thickness=1,
                    ),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line=dict(
                        color=color,
                        width=2.5 if key == "unet" else 1.6,
                        dash="dot"
                        if key == "ks93_raw"
                        else "solid"
                        if key in DEPTH_METHOD_COLORS
                        else "dash",
                    ),
                    marker=dict(size=6),
                    hovertemplate=f"{name}<br>n_gal %{{customdata}}<br>%{{y:.4g}}<extra></extra>",
                    customdata=[f"{n:g}" if math.isfinite(n) else "∞ (no noise)" for n in n_gals],
                ),
                row=1,
                col=col,
            )
    ticks = list(xs)
    labels = [f"{n:g}" if math.isfinite(n) else "no<br>noise" for n in n_gals]
    fig.update_xaxes(
        type="log",
        tickvals=ticks,
        ticktext=labels,
        showline=True,
        linecolor="#888",
        mirror=True,
        gridcolor="#eee",
        title_text="galaxies per arcmin²",
    )
    fig.update_yaxes(showline=True, linecolor="#888", mirror=True, gridcolor="#eee")
    for col, metric in enumerate(metrics, start=1):
        if metric in _LOG_METRICS:  # raw KS93 is an order of magnitude off the others
            values = [s[metric]["mean"] for r in rows for s in r["summary"].values() if metric in s]
            tickvals, ticktext = log_ticks(values)
            fig.update_yaxes(type="log", tickvals=tickvals, ticktext=ticktext, row=1, col=col)
    fig.update_layout(
        height=height,
        plot_bgcolor="white",
        margin=dict(l=55, r=15, t=60, b=55),
        legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0.0),
    )
    return fig
