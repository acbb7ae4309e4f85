"""Plotly figures built from numpy arrays (used by the app; no Streamlit here).

:mod:`lensviz.plots.maps` holds the map figures (κ rows, residuals, ε with shear
whiskers, MultiFocal weights, peaks, DICEE confusion, uncertainty) and PNG export;
:mod:`lensviz.plots.curves` the curves (training loss and metrics, metric histograms),
the teaching figures (Fourier-plane maps, profiles) and the reliability plot.
"""

from lensviz.plots.curves import (
    METHOD_COLORS,
    METRIC_LABELS,
    fourier_row,
    line_figure,
    log_ticks,
    loss_curves,
    metric_curves,
    metric_histograms,
    reliability_figure,
)
from lensviz.plots.maps import (
    CONFUSION_COLORS,
    KAPPA_COLORSCALE,
    RESIDUAL_COLORSCALE,
    SIGMA_COLORSCALE,
    WEIGHT_COLORSCALE,
    add_whiskers,
    colormap_lut,
    comparison_grid,
    confusion_figure,
    ellipticity_panels,
    map_figure_png,
    map_png,
    map_row,
    nice_ticks,
    outline_regions,
    peaks_figure,
    residual_row,
    robust_range,
    shear_whiskers,
    symmetric_range,
    uncertainty_row,
    weight_components_grid,
)

__all__ = [
    "CONFUSION_COLORS",
    "KAPPA_COLORSCALE",
    "RESIDUAL_COLORSCALE",
    "SIGMA_COLORSCALE",
    "WEIGHT_COLORSCALE",
    "add_whiskers",
    "colormap_lut",
    "comparison_grid",
    "confusion_figure",
    "ellipticity_panels",
    "map_figure_png",
    "map_png",
    "map_row",
    "nice_ticks",
    "outline_regions",
    "peaks_figure",
    "residual_row",
    "robust_range",
    "shear_whiskers",
    "symmetric_range",
    "uncertainty_row",
    "weight_components_grid",
    # curves
    "METHOD_COLORS",
    "METRIC_LABELS",
    "fourier_row",
    "line_figure",
    "log_ticks",
    "loss_curves",
    "metric_curves",
    "metric_histograms",
    "reliability_figure",
]
