"""Project-wide defaults and conventions, in one place.

Axis order and signs
--------------------
* Maps are ``(..., ny, nx)`` arrays indexed ``[row, column] = [y, x]``.
* ε samples are channels-last ``(..., 128, 128, 3)`` with channels ``(e1, e2, Δε)``.
* Fourier frequencies ``k1`` run along x (columns, last axis) and ``k2`` along y
  (rows, second-to-last axis), in cycles per pixel from :func:`numpy.fft.fftfreq`.
* KS93 follows lenspack: ``γ̂1 = (k1²−k2²)/k² κ̂``, ``γ̂2 = 2 k1 k2/k² κ̂``; a halo has
  positive tangential shear ``γt = −(γ1 cos 2φ + γ2 sin 2φ)``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "NPIX",
    "PIXEL_ARCMIN",
    "N_GAL_ARCMIN2",
    "SIGMA_E",
    "Z_SOURCE",
    "OMEGA_M",
    "H0_LITTLE_H",
    "PEAK_SMOOTH_SIGMA_PX",
    "N_PEAKS_METRIC",
    "WMAPE_ZERO_EPS",
    "MULTIFOCAL_COEFFS",
    "MULTIFOCAL_COMPONENTS",
    "LOCAL_NEIGHBOURHOOD_PX",
    "LOCAL_TOP_FRACTION",
    "N_PEAKS_WEIGHT",
    "PEAK_RADIUS_PX",
    "STRUCTURE_BAND",
    "EDGE_WIDTH_PX",
    "EMPTY_PIXEL_SIGMA",
    "TEST_SEED_START",
    "CALIBRATION_SEED_START",
    "TRAIN_SEED_START",
]

# --- Map geometry and survey (LSST-like depth) ---
NPIX = 128  # pixels per side
PIXEL_ARCMIN = 0.5  # arcmin per pixel (64 arcmin field)
N_GAL_ARCMIN2 = 30.0  # source galaxies per arcmin^2
SIGMA_E = 0.26  # intrinsic ellipticity dispersion per component
Z_SOURCE = 1.0  # source redshift

# Δε of a pixel with no galaxy (e1 = e2 = 0 there); real pixels have Δε ≤ σ_e.
EMPTY_PIXEL_SIGMA = 1.0

# --- Disjoint seed ranges of the simulator (sample i of a set uses seed start + i) ---
TEST_SEED_START = 0  # held-out test sets and the app's built-in samples: seeds [0, 500_000)
CALIBRATION_SEED_START = 500_000  # choosing the KS93 smoothing σ, validation: [500_000, 1_000_000)
TRAIN_SEED_START = 1_000_000  # training data: seeds ≥ 1_000_000

# --- Cosmology (flat ΛCDM) ---
OMEGA_M = 0.3  # matter density today
H0_LITTLE_H = 0.7  # H0 / (100 km/s/Mpc)

# --- Challenge metrics (REFERENCE.md §3) ---
PEAK_SMOOTH_SIGMA_PX = 3.0  # Gaussian σ (pixels) applied before peak finding
N_PEAKS_METRIC = 3  # DPEAKS compares the 3 highest peaks, matched by rank
WMAPE_ZERO_EPS = 1e-5  # exact zeros in T and P are replaced by this value

# --- MultiFocal loss weights (report §3.1, tuned coefficients) ---
MULTIFOCAL_COMPONENTS = ("focal", "local", "peaks", "structure", "edges")
MULTIFOCAL_COEFFS = {"focal": 1.0, "local": 2.0, "peaks": 3.0, "structure": 1.5, "edges": 1.0}
LOCAL_NEIGHBOURHOOD_PX = 8  # side of the square window for the local maximum
LOCAL_TOP_FRACTION = 0.30  # local weight only on the 30% highest-κ pixels
N_PEAKS_WEIGHT = 5  # pixels around the 5 highest true peaks get the peak weight
PEAK_RADIUS_PX = 3  # radius (pixels) of the disc around each peak
STRUCTURE_BAND = 0.001  # |κ − mean κ| ≤ band marks the structure boundary
EDGE_WIDTH_PX = 5  # width of the edge frame

# --- Paths ---
# The shipped weights folder (UNet .keras files, the κ power spectrum of the Wiener filter),
# found in this order: the LENSVIZ_WEIGHTS_DIR environment variable; weights/ beside the
# package (a checkout, or an editable install); <prefix>/share/lensviz/weights, where a
# regular `pip install .` puts the copy declared as data files in pyproject.toml.
_CHECKOUT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
_INSTALLED_WEIGHTS_DIR = Path(sys.prefix) / "share" / "lensviz" / "weights"
WEIGHTS_DIR = Path(
    os.environ.get("LENSVIZ_WEIGHTS_DIR")
    or (_CHECKOUT_WEIGHTS_DIR if _CHECKOUT_WEIGHTS_DIR.is_dir() else _INSTALLED_WEIGHTS_DIR)
)
DEFAULT_WEIGHTS_FILE = "lite.keras"  # the shipped UNet, in WEIGHTS_DIR
POWER_SPECTRUM_FILE = "kappa_power.npz"  # the shipped κ power spectrum, in WEIGHTS_DIR

__all__ += ["WEIGHTS_DIR", "DEFAULT_WEIGHTS_FILE", "POWER_SPECTRUM_FILE"]

# --- Simulator defaults (lensviz.simulate.SimulationConfig; REFERENCE.md §5) ---
SIM_M200_RANGE = (1e14, 2e15)  # main-cluster M200 [M☉/h], drawn log-uniform
SIM_Z_RANGE = (0.1, 0.6)  # main-cluster and field-halo redshifts, drawn uniform
SIM_CENTER_OFFSET_ARCMIN = 3.0  # main-cluster centre: uniform in a disc of this radius [arcmin]
SIM_AXIS_RATIO_RANGE = (0.5, 1.0)  # minor/major axis ratio q of the halos, drawn uniform
SIM_CONCENTRATION_SCATTER_DEX = 0.15  # log-normal scatter of c200 about Duffy et al. 2008 [dex]
SIM_N_FIELD_HALOS = 3.0  # Poisson mean number of field halos placed anywhere in the map
SIM_FIELD_HALO_M200_RANGE = (1e12, 1e14)  # field-halo M200 [M☉/h], drawn log-uniform
SIM_N_SUBHALOS = 4.0  # Poisson mean number of subhalos around the main cluster
SIM_SUBHALO_MASS_FRACTION_RANGE = (1e-3, 3e-2)  # subhalo M200 / main M200, drawn log-uniform
SIM_SUBHALO_SPREAD_R200 = 0.5  # Gaussian σ of subhalo offsets per axis [main-cluster r200]
SIM_LSS_AMPLITUDE = 1.0  # multiplier on the fiducial (z_s = 1) LSS convergence power spectrum
SIM_KS_PAD_PX = 64  # zero-padding per side [pixels] when computing γ from κ
SIM_CORE_BOX_PX = 2  # pixels within ±this many pixels of a halo centre are pixel-averaged
SIM_CORE_SUPERSAMPLE = 8  # sub-samples per pixel side for that pixel average
REDUCED_SHEAR_MIN_DENOM = 0.1  # 1 − κ is clipped to at least this in g = γ/(1 − κ)

__all__ += [
    "SIM_M200_RANGE",
    "SIM_Z_RANGE",
    "SIM_CENTER_OFFSET_ARCMIN",
    "SIM_AXIS_RATIO_RANGE",
    "SIM_CONCENTRATION_SCATTER_DEX",
    "SIM_N_FIELD_HALOS",
    "SIM_FIELD_HALO_M200_RANGE",
    "SIM_N_SUBHALOS",
    "SIM_SUBHALO_MASS_FRACTION_RANGE",
    "SIM_SUBHALO_SPREAD_R200",
    "SIM_LSS_AMPLITUDE",
    "SIM_KS_PAD_PX",
    "SIM_CORE_BOX_PX",
    "SIM_CORE_SUPERSAMPLE",
    "REDUCED_SHEAR_MIN_DENOM",
]
