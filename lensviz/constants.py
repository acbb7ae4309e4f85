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

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NPIX",
    "PIXEL_ARCMIN",
    "N_GAL_ARCMIN2",
    "SIGMA_E",
    "Z_SOURCE",
    "Survey",
    "SURVEYS",
    "DEFAULT_SURVEY",
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
N_GAL_ARCMIN2 = 30.0  # source galaxies per arcmin^2 (the "lsst" preset below)
SIGMA_E = 0.26  # intrinsic ellipticity dispersion per component
Z_SOURCE = 1.0  # source redshift


# --- Survey depths: named presets ---
@dataclass(frozen=True)
class Survey:
    """A named survey depth: source density and shape noise.

    Attributes
    ----------
    name : str
        Short key, e.g. ``"des"``; what the command line and ``sim:N@NAME`` take.
    n_gal : float
        Effective source density [galaxies / arcmin²]; ``math.inf`` means no shape noise.
    sigma_e : float
        Intrinsic ellipticity dispersion per component.
    label : str
        One line for menus and tables.
    source : str
        Where the numbers come from.
    """

    name: str
    n_gal: float
    sigma_e: float
    label: str
    source: str


SURVEYS: dict[str, Survey] = {
    s.name: s
    for s in (
        Survey(
            "des",
            10.0,
            SIGMA_E,
            "DES/KiDS-like, 10 galaxies per arcmin²",
            "Stage-III ground-based wide surveys. Effective densities: DES Y1 ≈ 6 "
            "(Zuntz et al. 2018), DES Y3 ≈ 5.6 (Gatti et al. 2021), KiDS-450 ≈ 8.5 "
            "(Hildebrandt et al. 2017), KiDS-1000 ≈ 6.2 (Giblin et al. 2021), HSC Y1 ≈ 21 "
            "(Mandelbaum et al. 2018); 10 is a round value between DES/KiDS and HSC. "
            "σ_e ≈ 0.26-0.29 per component in these catalogues; 0.26 keeps depth the only "
            "difference between the presets.",
        ),
        Survey(
            "lsst",
            N_GAL_ARCMIN2,
            SIGMA_E,
            "LSST/Euclid-like, 30 galaxies per arcmin² (the default)",
            "Stage-IV surveys: LSST Science Book (2009, ch. 14) and Chang et al. 2013 "
            "(n_eff ≈ 26 for the 10-year LSST, σ_e = 0.26); the Euclid Definition Study "
            "Report (Red Book, Laureijs et al. 2011) requires ≥ 30 galaxies per arcmin².",
        ),
        Survey(
            "deep",
            100.0,
            SIGMA_E,
            "deep space-based (HST/JWST cluster field), 100 galaxies per arcmin²",
            "HST/ACS: COSMOS shape catalogues hold ≈ 65-80 galaxies per arcmin² "
            "(Leauthaud et al. 2007; Schrabback et al. 2010); deeper ACS and JWST/NIRCam "
            "cluster fields reach ≈ 100 or more.",
        ),
        Survey(
            "noise-free",
            math.inf,
            SIGMA_E,
            "no shape noise (ε = g exactly, Δε = 0)",
            "The limit of infinite depth: the reduced shear itself, as in the "
            "simulation-only studies that map κ from noiseless shear.",
        ),
    )
}
DEFAULT_SURVEY = "lsst"  # SURVEYS[DEFAULT_SURVEY].n_gal == N_GAL_ARCMIN2

# Δε of a pixel with no galaxy (e1 = e2 = 0 there); real pixels have Δε ≤ σ_e.
EMPTY_PIXEL_SIGMA = 1.0

# --- Disjoint seed ranges of the simulator (sample i of a set uses seed start + i) ---
TEST_SEED_START = 0  # held-out test sets and the app's built-in samples: seeds [0, 500_000)
CALIBRATION_SEED_START = 500_000  # choosing the KS93 smoothing σ, validation: [500_000, 1_000_000)
TRAIN_SEED_START = 1_000_000  # training data: seeds ≥ 1_000_000

# --- Cosmology (flat ΛCDM) ---
OMEGA_M = 0.3  # matter density today
H0_LITTLE_H = 0.7  # H0 / (100 km/s/Mpc)

# --- Challenge metrics (docs/reference.md §3) ---
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
ERRORBARS_FILE = "errorbars.json"  # calibrated error bars of KS93 and Wiener, in WEIGHTS_DIR

FITS_SUFFIXES = (".fits", ".fit", ".fts")  # file names read and written as FITS

__all__ += [
    "WEIGHTS_DIR",
    "DEFAULT_WEIGHTS_FILE",
    "POWER_SPECTRUM_FILE",
    "ERRORBARS_FILE",
    "FITS_SUFFIXES",
]

# --- Simulator defaults (lensviz.simulate.SimulationConfig) ---
SIM_M200_RANGE = (1e14, 2e15)  # main-cluster M200 [M☉/h], drawn log-uniform
SIM_Z_RANGE = (0.1, 0.6)  # main-cluster and field-halo redshifts, drawn uniform
SIM_CENTER_OFFSET_ARCMIN = 3.0  # main-cluster centre: uniform in a disc of this radius [arcmin]
SIM_AXIS_RATIO_RANGE = (0.5, 1.0)  # minor/major axis ratio q of the halos, drawn uniform
SIM_CONCENTRATION_SCATTER_DEX = 0.15  # log-normal scatter of c200 about Duffy et al. 2008 [dex]
SIM_FIELD_HALO_DENSITY = 2.63671875  # field halos per deg² (3 per 64′ × 64′), on the canvas
SIM_FIELD_HALO_M200_RANGE = (1e12, 1e14)  # field-halo M200 [M☉/h], drawn log-uniform
SIM_N_SUBHALOS = 4.0  # Poisson mean number of subhalos around the main cluster
SIM_SUBHALO_MASS_FRACTION_RANGE = (1e-3, 3e-2)  # subhalo M200 / main M200, drawn log-uniform
SIM_SUBHALO_SPREAD_R200 = 0.5  # Gaussian σ of subhalo offsets per axis [main-cluster r200]
SIM_LSS_AMPLITUDE = 1.0  # multiplier on the fiducial (z_s = 1) LSS convergence power spectrum
SIM_KS_PAD_PX = 64  # zero-padding per side [pixels] when computing γ from κ
SIM_CORE_BOX_PX = 2  # pixels within ±this many pixels of a halo centre are pixel-averaged
SIM_CORE_SUPERSAMPLE = 8  # sub-samples per pixel side for that pixel average
SIM_MARGIN_PX = 128  # halos and LSS live on a canvas this much larger per side [pixels]
SIM_MIN_SIDE_PX = 64  # the smallest field `simulate --size` makes [pixels]
SIM_MAX_SIDE_PX = 2048  # the largest [pixels]: the largest field every reader accepts
SIM_HALO_KAPPA_MIN = 1e-4  # each halo is truncated where its own κ falls below this
REDUCED_SHEAR_MIN_DENOM = 0.1  # 1 − κ is clipped to at least this in g = γ/(1 − κ)

# --- Simulated masks (bright stars, chip gaps, footprint edges) ---
SIM_MASK_MAX_FRACTION = 0.3  # a masked sample has a fraction uniform in [0, this] masked
MASK_DISC_RADIUS_PX = (1.0, 8.0)  # bright-star discs: radius log-uniform [pixels]
MASK_STRIPE_WIDTH_PX = (1.0, 4.0)  # stripes (chip gaps, trails): width uniform [pixels]
MASK_STRIPE_SHARE = 0.2  # share of the masking shapes that are stripes (the rest discs)

# --- Training depth mix (lensviz.simulate.DepthMix) ---
MIX_N_GAL_RANGE = (3.0, 1000.0)  # n_gal drawn log-uniform in this range [arcmin^-2]
MIX_NOISE_FREE_FRACTION = 0.15  # share of samples with no shape noise (n_gal = inf)
MIX_MASKED_FRACTION = 0.5  # share of samples with random masks
FIELD_MIX_PIXEL_ARCMIN_RANGE = (0.2, 2.0)  # field-aware training: pixel side, log-uniform [arcmin]
FIELD_MIX_NATIVE_FRACTION = 0.4  # share of those samples at the challenge's PIXEL_ARCMIN exactly
FIELD_MIX_SIZES_PX = (128, 256, 384)  # sides of the simulated fields the tiles are cut from
FIELD_MIX_SIZE_WEIGHTS = (0.4, 0.35, 0.25)  # how often each side is drawn

__all__ += [
    "SIM_M200_RANGE",
    "SIM_Z_RANGE",
    "SIM_CENTER_OFFSET_ARCMIN",
    "SIM_AXIS_RATIO_RANGE",
    "SIM_CONCENTRATION_SCATTER_DEX",
    "SIM_FIELD_HALO_DENSITY",
    "SIM_FIELD_HALO_M200_RANGE",
    "SIM_N_SUBHALOS",
    "SIM_SUBHALO_MASS_FRACTION_RANGE",
    "SIM_SUBHALO_SPREAD_R200",
    "SIM_LSS_AMPLITUDE",
    "SIM_KS_PAD_PX",
    "SIM_CORE_BOX_PX",
    "SIM_CORE_SUPERSAMPLE",
    "SIM_MARGIN_PX",
    "SIM_MIN_SIDE_PX",
    "SIM_MAX_SIDE_PX",
    "SIM_HALO_KAPPA_MIN",
    "REDUCED_SHEAR_MIN_DENOM",
    "SIM_MASK_MAX_FRACTION",
    "MASK_DISC_RADIUS_PX",
    "MASK_STRIPE_WIDTH_PX",
    "MASK_STRIPE_SHARE",
    "MIX_N_GAL_RANGE",
    "MIX_NOISE_FREE_FRACTION",
    "MIX_MASKED_FRACTION",
    "FIELD_MIX_PIXEL_ARCMIN_RANGE",
    "FIELD_MIX_NATIVE_FRACTION",
    "FIELD_MIX_SIZES_PX",
    "FIELD_MIX_SIZE_WEIGHTS",
]
