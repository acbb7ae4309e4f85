"""Plotly figures built from numpy arrays (used by the app; no Streamlit here).

:mod:`lensviz.plots.maps` holds the map figures, one per cell of the app's responsive
grid (κ and residuals, ε with shear whiskers, MultiFocal weights, peaks, DICEE
confusion, uncertainty and error bars, S/N), on the axes of :mod:`lensviz.plots.sky`
(pixels, arcmin or RA/Dec, north up); :mod:`lensviz.plots.png` maps as PNG images;
:mod:`lensviz.plots.curves` the curves (training loss and metrics, metric histograms),
the teaching figures (Fourier-plane maps, profiles) and the reliability plot;
:mod:`lensviz.plots.depth` metrics against survey depth.
"""

from lensviz.plots.curves import (
    METHOD_COLORS,
    METRIC_LABELS,
    fourier_cells,
    line_figure,
    log_ticks,
    loss_curves,
    metric_curves,
    metric_histograms,
    reliability_figure,
)
from lensviz.plots.maps import (
    CELL_MIN_PX,
    CONFUSION_COLORS,
    KAPPA_COLORSCALE,
    MASK_COLOR,
    PAD_COLOR,
    RESIDUAL_COLORSCALE,
    SIGMA_COLORSCALE,
    WEIGHT_COLORSCALE,
    add_whiskers,
    comparison_cells,
    confusion_cells,
    ellipticity_cells,
    map_cells,
    outline_regions,
    peaks_cells,
    robust_range,
    shear_whiskers,
    sigma_cells,
    significance_cells,
    symmetric_range,
    uncertainty_cells,
    weight_component_cells,
)
from lensviz.plots.png import colormap_lut, map_figure_png, map_png
from lensviz.plots.sky import UNITS, MapAxes, map_axes, nice_ticks, sky_problem

__all__ = [
    "CELL_MIN_PX",
    "CONFUSION_COLORS",
    "KAPPA_COLORSCALE",
    "MASK_COLOR",
    "PAD_COLOR",
    "RESIDUAL_COLORSCALE",
    "SIGMA_COLORSCALE",
    "WEIGHT_COLORSCALE",
    "add_whiskers",
    "comparison_cells",
    "confusion_cells",
    "ellipticity_cells",
    "map_cells",
    "outline_regions",
    "peaks_cells",
    "robust_range",
    "shear_whiskers",
    "sigma_cells",
    "significance_cells",
    "symmetric_range",
    "uncertainty_cells",
    "weight_component_cells",
    # png
    "colormap_lut",
    "map_figure_png",
    "map_png",
    # sky
    "UNITS",
    "MapAxes",
    "map_axes",
    "nice_ticks",
    "sky_problem",
    # curves
    "METHOD_COLORS",
    "METRIC_LABELS",
    "fourier_cells",
    "line_figure",
    "log_ticks",
    "loss_curves",
    "metric_curves",
    "metric_histograms",
    "reliability_figure",
]
