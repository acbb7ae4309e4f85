"""Simulated weak-lensing samples: NFW halos + lognormal LSS → reduced shear → noisy ε.

A sample is what the AstroDatatón network sees: an ellipticity cube ``(npix, npix, 3)``
with channels ``(e1, e2, Δε)`` and the true convergence ``(npix, npix)``, both float32,
on the conventions of :mod:`lensviz.constants` (maps indexed ``[y, x]``, lenspack KS93
signs). Every sample is a pure function of an integer seed.

The recipe
----------
1. **Halos** (NFW, Wright & Brainerd 2000; profiles, c–M relation and maps in
   :mod:`lensviz.halos`), all with Duffy et al. 2008 concentrations
   and a log-normal scatter, on a canvas of ``(npix + 2 margin_px)²`` pixels
   (384² for the default 128² field):

   * one main cluster, M200 log-uniform in ``m200_range`` (default 10¹⁴–2×10¹⁵ M☉/h),
     z uniform in ``z_range`` (0.1–0.6), centred uniformly within ``center_offset_arcmin``
     of the field centre;
   * a Poisson number of field halos (M200 10¹²–10¹⁴ M☉/h) anywhere on the canvas, with
     a mean of ``field_halo_density`` per deg² (27 on the default canvas);
   * a Poisson number of subhalos (a fraction 10⁻³–3×10⁻² of the main mass) at the main
     cluster's redshift, scattered around it with σ = ``subhalo_spread_r200`` × r200.

   Halos are elliptical when ``elliptical`` is set: the radius is stretched,
   :math:`r \\to \\sqrt{q u^2 + v^2/q}` with ``(u, v)`` along the major/minor axis, which
   keeps the area inside an isodensity contour (and so the mass) unchanged.
2. **Large-scale structure**: a lognormal convergence field on the canvas (see
   :func:`convergence_power_spectrum` and :func:`lognormal_shift`).
3. **Shear**: ``γ = ks93inv(κ_canvas, pad=pad)`` (:mod:`lensviz.inversion`, the one
   Fourier grid), then the central ``npix²`` is cut out and the reduced shear
   ``g = γ / (1 − κ)`` computed there.
4. **Galaxies**: a Poisson number per pixel, intrinsic ellipticities, lensed exactly,
   averaged per pixel (:func:`add_shape_noise`); with ``n_gal = inf``, ``ε = g``.
5. **Masks** (optional, ``masks=True``): random discs and stripes (:func:`draw_mask`)
   turn pixels into empty ones.

Depth is a setting like any other: ``SimulationConfig(n_gal=...)``, the named presets
of :data:`lensviz.constants.SURVEYS` through :func:`depth_config`, and for training a
:class:`DepthMix` that draws each sample's depth and masking from its seed
(:func:`simulate_mixed_batch`).

Physical choices, stated once
-----------------------------
Central cusp
    The projected NFW profile diverges logarithmically at the centre. Pixels within
    ``±core_box_px`` of each halo centre hold the *pixel average* of κ, computed from
    ``core_supersample²`` sub-samples (8 × 8: within 0.1 % of the exact pixel mean);
    all other pixels are sampled at their centre, where the profile is smooth on the
    pixel scale (just outside the box the point value is within 0.3 % of the pixel
    mean for r_s ≳ 5 px, typical of the main cluster, and within 1.5 % for the small
    halos with r_s ≈ 0.3 px). Pixel values are therefore finite and approximate what a
    pixelised survey measures. Map values use a table of f(x) (linear in ln x,
    relative error < 1e-5) instead of the closed form, for speed.
Halo truncation
    Each halo is cut at its own isodensity contour ``κ = halo_kappa_min`` (1e-4):
    pixels where the halo's κ is lower get nothing from it, and it is evaluated only
    in the box that holds that contour, which keeps 30 halos on a 384² canvas cheap.
    For sources at z_s = 1 the cut lies at ≈ 3–7 r200 for 10¹²–10¹³ M☉/h halos and
    ≈ 7–20 r200 for 10¹⁴–2×10¹⁵ M☉/h clusters (farther for z ≳ 0.3), well outside the
    splashback radius, where the infinite NFW profile no longer describes a halo.
    γ is computed from the truncated κ, so κ and γ stay exactly consistent. Compared
    with untruncated profiles, κ changes by less than 1e-4 per halo (measured over 20
    default samples: at most 6e-4 per pixel with all halos, rms 2e-4, against an LSS
    rms of 0.02) and the shear by at most about ``halo_kappa_min`` per halo.
    ``halo_kappa_min = 0`` keeps the whole profile on the canvas.
Mass outside the field
    A real field is cut from a larger sky, so its shear also feels mass outside it.
    Halos and LSS are therefore simulated on a canvas ``margin_px`` (128 px = 64′)
    wider on every side; γ is that of the zero-padded canvas (``pad = 64`` puts the
    nearest periodic image a full field away, so the shear is not periodic), and
    ε, κ and every truth map are the central ``npix²`` crop. KS93's border errors on
    the field are then the real ones. ``margin_px = 0`` gives an isolated field (κ = 0
    outside the map); with ``halo_kappa_min = 0`` as well it reproduces the samples of
    the simulator before the canvas, bit for bit.
Strong-lensing cores
    Weak lensing breaks down where κ → 1. The denominator is clipped,
    ``g = γ / max(1 − κ, REDUCED_SHEAR_MIN_DENOM)`` (0.1, i.e. κ is capped at 0.9 in the
    denominator), so ``g`` is finite everywhere; the ``|g| > 1`` branch of the lensing
    transformation is then used where needed.
Δε, the true noise of each pixel
    A pixel with N galaxies has ``Δε = σ_e/√N``. A pixel with no galaxy carries no
    measurement: ``e1 = e2 = 0`` and ``Δε = EMPTY_PIXEL_SIGMA`` (a large σ, i.e. zero
    inverse-variance weight). At the default depth (7.5 galaxies per pixel) about
    0.06 % of the pixels are empty. Without shape noise (``n_gal = math.inf``) the ε
    channels are the reduced shear itself and ``Δε = 0`` in every pixel.
Masks
    Bright stars, chip gaps and the footprint edge leave holes. With ``masks=True`` a
    fraction uniform in ``[0, mask_max_fraction]`` of the pixels is covered by discs
    (radius 1–8 px) and stripes (1–4 px wide, any angle); a masked pixel is empty
    (``ε = 0``, ``Δε = EMPTY_PIXEL_SIGMA``) at any depth, noise-free included. The
    masks change neither κ nor the galaxies of the other pixels.

Random streams
--------------
``np.random.default_rng(seed).spawn(5)`` gives five independent streams: halos, LSS,
galaxies, masks and the depth mix (children 0–2 are those of the earlier
``spawn(3)``, so adding the last two changed no sample). Switching one component off
therefore leaves the others unchanged (the same cluster with and without LSS, the
same κ at every depth and with or without masks), and :func:`simulate_truth` returns
exactly the κ of :func:`simulate_sample` for the same seed.

References
----------
Wright & Brainerd 2000, ApJ 534, 34 (NFW lensing).
Duffy et al. 2008, MNRAS 390, L64 (c–M relation).
Hilbert, Hartlap & Schneider 2011, A&A 536, A85 (lognormal shift λ).
Seitz & Schneider 1997, A&A 318, 687 (lensing of ellipticities; Bartelmann & Schneider
2001, eq. 4.12).
Takahashi et al. 2012, ApJ 761, 152 (halofit, used for the LSS power-spectrum fit).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import pdtr

from lensviz import constants as C
from lensviz.cosmology import ARCMIN_PER_RADIAN, Z_MAX, mpc_to_arcmin
from lensviz.data.limits import check_observation, check_simulation
from lensviz.halos import HaloParams, concentration_duffy08, halo_kappa_map, nfw_params
from lensviz.inversion import frequencies, ks93inv, wavenumber

__all__ = [
    "SimulationConfig",
    "lognormal_shift",
    "convergence_power_spectrum",
    "reduced_shear",
    "lens_ellipticities",
    "add_shape_noise",
    "truncated_sigma",
    "EXACT_GALAXIES_MAX",
    "draw_mask",
    "observe_kappa",
    "simulate_sample",
    "simulate_batch",
    "simulate_truth",
    "depth_config",
    "DepthMix",
    "mixed_config",
    "simulate_mixed_sample",
    "simulate_mixed_batch",
    "FieldMix",
    "FieldDraw",
    "field_draw",
]

# === Model constants ===

# Fit to the nonlinear convergence power spectrum for sources at z_s = 1:
# Δ²(ℓ) = ℓ(ℓ+1) C_ℓ / 2π = A x^α / (1 + x^(α+β)), x = ℓ / ℓ_b. Fitted (max 7 % error in
# Δ² for 200 ≤ ℓ ≤ 3×10⁴) to a Limber integral over the CAMB halofit (Takahashi et al.
# 2012) matter power spectrum for Ω_m = 0.3, Ω_b = 0.045, h = 0.7, n_s = 0.96, σ8 = 0.8.
LSS_DELTA2_AMPLITUDE = 3.07e-4  # A, dimensionless
LSS_ELL_BREAK = 5530.0  # ℓ_b, where Δ² turns over
LSS_SLOPE_LOW = 0.86  # α: Δ² ∝ ℓ^α for ℓ ≪ ℓ_b
LSS_SLOPE_HIGH = 0.48  # β: Δ² ∝ ℓ^-β for ℓ ≫ ℓ_b


# === Configuration ===
def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_range(name: str, value, low: float = 0.0, strict_low: bool = True) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(_is_number(v) and np.isfinite(v) for v in value)
        and value[0] <= value[1]
        and (value[0] > low if strict_low else value[0] >= low)
    )
    if not ok:
        bound = f"> {low}" if strict_low else f">= {low}"
        raise ValueError(
            f"{name} must be a tuple (low, high) with {bound} low <= high, got {value!r}"
        )


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    if (
        not _is_number(value)
        or not np.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _check_depth(name: str, value) -> None:
    if not _is_number(value) or np.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0 (math.inf: no shape noise), got {value!r}")


def _check_fraction(name: str, value) -> None:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class SimulationConfig:
    """Every parameter of the simulator, with its default (see :mod:`lensviz.constants`).

    Parameters
    ----------
    npix : int
        Pixels per side of the square map (128).
    pixel_arcmin : float
        Pixel side [arcmin] (0.5, a 64′ field).
    n_gal : float
        Source density [galaxies / arcmin²] (30, LSST-like); ``math.inf`` means no
        shape noise (ε = g exactly, Δε = 0). See :func:`depth_config` for the presets.
    sigma_e : float
        Intrinsic ellipticity dispersion per component (0.26), ``0 < σ_e < 1``.
    z_source : float
        Source redshift (1.0); all sources lie on this plane.
    m200_range : tuple of float
        Main-cluster M200 range [M☉/h], log-uniform ((1e14, 2e15)).
    z_range : tuple of float
        Redshift range of the main cluster and the field halos, uniform ((0.1, 0.6));
        must lie below ``z_source``.
    center_offset_arcmin : float
        Main-cluster centre uniform within this radius of the field centre [arcmin] (3).
    elliptical : bool
        Draw elliptical halos (True); otherwise all halos are round.
    axis_ratio_range : tuple of float
        Axis ratio q = b/a, uniform ((0.5, 1.0)), ``0 < q ≤ 1``.
    concentration_scatter_dex : float
        Log-normal scatter of c200 about Duffy et al. 2008 [dex] (0.15).
    field_halo_density : float
        Mean number of field halos per deg² (2.64, i.e. 3 per 64′ × 64′ field), on the
        whole canvas: 27 on the default 384² canvas of 0.5′ pixels, and in proportion
        to the sky area at any size and pixel scale.
    field_halo_m200_range : tuple of float
        Field-halo M200 range [M☉/h], log-uniform ((1e12, 1e14)).
    n_subhalos : float
        Poisson mean of the number of subhalos of the main cluster (4).
    subhalo_mass_fraction_range : tuple of float
        Subhalo M200 as a fraction of the main M200, log-uniform ((1e-3, 3e-2)).
    subhalo_spread_r200 : float
        Gaussian σ of subhalo offsets per axis, in units of the main r200 (0.5).
    lss : bool
        Add the lognormal large-scale-structure field (True).
    lss_amplitude : float
        Multiplier on the fiducial C_ℓ (1.0). The fit is for z_s = 1; the same CAMB
        calculation gives ≈ 0.22, 2.1 and 3.1 for the pixel variance at z_s = 0.5, 1.5
        and 2, a sensible ``lss_amplitude`` when changing ``z_source``.
    margin_px : int
        Halos and LSS are simulated on a canvas of ``(npix + 2 margin_px)²`` pixels,
        and the central ``npix²`` is returned (128: a 384² canvas for the default
        field). 0 gives an isolated field with no mass outside it.
    halo_kappa_min : float
        Each halo is truncated where its own κ falls below this (1e-4); 0 keeps the
        whole NFW tail on the canvas.
    masks : bool
        Cover a random fraction of the pixels with bright-star discs and stripes
        (False); masked pixels are empty: ``ε = 0``, ``Δε = EMPTY_PIXEL_SIGMA``.
    mask_max_fraction : float
        The masked fraction is drawn uniform in ``[0, mask_max_fraction]`` (0.3).
    pad : int
        Zero-padding per side [pixels] of the canvas for κ → γ (64).
    core_box_px : int
        Pixels within ±this of a halo centre are pixel-averaged (2).
    core_supersample : int
        Sub-samples per pixel side for the pixel average (8).

    Raises
    ------
    ValueError
        Naming the first field with a bad value.

    Examples
    --------
    >>> cfg = SimulationConfig(n_gal=10.0, lss=False)
    >>> eps, kappa = simulate_sample(3, cfg)
    >>> noise_free = SimulationConfig(n_gal=math.inf)
    """

    npix: int = C.NPIX
    pixel_arcmin: float = C.PIXEL_ARCMIN
    n_gal: float = C.N_GAL_ARCMIN2
    sigma_e: float = C.SIGMA_E
    z_source: float = C.Z_SOURCE
    m200_range: tuple[float, float] = C.SIM_M200_RANGE
    z_range: tuple[float, float] = C.SIM_Z_RANGE
    center_offset_arcmin: float = C.SIM_CENTER_OFFSET_ARCMIN
    elliptical: bool = True
    axis_ratio_range: tuple[float, float] = C.SIM_AXIS_RATIO_RANGE
    concentration_scatter_dex: float = C.SIM_CONCENTRATION_SCATTER_DEX
    field_halo_density: float = C.SIM_FIELD_HALO_DENSITY
    field_halo_m200_range: tuple[float, float] = C.SIM_FIELD_HALO_M200_RANGE
    n_subhalos: float = C.SIM_N_SUBHALOS
    subhalo_mass_fraction_range: tuple[float, float] = C.SIM_SUBHALO_MASS_FRACTION_RANGE
    subhalo_spread_r200: float = C.SIM_SUBHALO_SPREAD_R200
    lss: bool = True
    lss_amplitude: float = C.SIM_LSS_AMPLITUDE
    margin_px: int = C.SIM_MARGIN_PX
    halo_kappa_min: float = C.SIM_HALO_KAPPA_MIN
    masks: bool = False
    mask_max_fraction: float = C.SIM_MASK_MAX_FRACTION
    pad: int = C.SIM_KS_PAD_PX
    core_box_px: int = C.SIM_CORE_BOX_PX
    core_supersample: int = C.SIM_CORE_SUPERSAMPLE

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # accept lists for ranges; keep the config hashable
            value = getattr(self, f.name)
            if f.name.endswith("_range") and isinstance(value, (list, np.ndarray)):
                object.__setattr__(self, f.name, tuple(value))
        _check_int("npix", self.npix, 2)
        _check_positive("pixel_arcmin", self.pixel_arcmin)
        _check_depth("n_gal", self.n_gal)
        if not (_is_number(self.sigma_e) and 0.0 < self.sigma_e < 1.0):
            raise ValueError(f"sigma_e must lie in (0, 1), got {self.sigma_e!r}")
        _check_positive("z_source", self.z_source)
        if self.z_source > Z_MAX:
            raise ValueError(f"z_source must be <= {Z_MAX} (distance table), got {self.z_source!r}")
        _check_range("m200_range", self.m200_range)
        _check_range("z_range", self.z_range)
        if self.z_range[1] >= self.z_source:
            raise ValueError(
                f"z_range must lie below z_source={self.z_source!r}, got {self.z_range!r}"
            )
        _check_positive("center_offset_arcmin", self.center_offset_arcmin, allow_zero=True)
        _check_range("axis_ratio_range", self.axis_ratio_range)
        if self.axis_ratio_range[1] > 1.0:
            raise ValueError(f"axis_ratio_range must lie in (0, 1], got {self.axis_ratio_range!r}")
        _check_positive(
            "concentration_scatter_dex", self.concentration_scatter_dex, allow_zero=True
        )
        _check_positive("field_halo_density", self.field_halo_density, allow_zero=True)
        _check_range("field_halo_m200_range", self.field_halo_m200_range)
        _check_positive("n_subhalos", self.n_subhalos, allow_zero=True)
        _check_range("subhalo_mass_fraction_range", self.subhalo_mass_fraction_range)
        _check_positive("subhalo_spread_r200", self.subhalo_spread_r200, allow_zero=True)
        _check_positive("lss_amplitude", self.lss_amplitude)
        _check_int("margin_px", self.margin_px, 0)
        _check_positive("halo_kappa_min", self.halo_kappa_min, allow_zero=True)
        _check_fraction("mask_max_fraction", self.mask_max_fraction)
        for name in ("elliptical", "lss", "masks"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_int("pad", self.pad, 0)
        _check_int("core_box_px", self.core_box_px, 0)
        _check_int("core_supersample", self.core_supersample, 1)

    def replace(self, **changes) -> SimulationConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def canvas_px(self) -> int:
        """Pixels per side of the simulated canvas, ``npix + 2 margin_px``."""
        return self.npix + 2 * self.margin_px


# === Lognormal large-scale structure ===
def lognormal_shift(z_source):
    """Shift parameter λ of the lognormal convergence (its minimum is −λ).

    .. math::

        \\lambda(z) = 0.008 z + 0.029 z^2 - 0.0079 z^3 + 0.00065 z^4

    Parameters
    ----------
    z_source : array_like
        Source redshift(s).

    Returns
    -------
    ndarray
        λ (≈ 0.030 at z_s = 1).

    References
    ----------
    Hilbert, Hartlap & Schneider 2011, A&A 536, A85, eq. 18 (fit for Ω_m = 0.25 ΛCDM
    ray-tracing).
    """
    z = np.asarray(z_source, dtype=np.float64)
    return (z * (0.008 + z * (0.029 + z * (-0.0079 + z * 0.00065))))[()]


def convergence_power_spectrum(ell, amplitude: float = C.SIM_LSS_AMPLITUDE):
    """Fiducial LSS convergence power spectrum C_ℓ for sources at z_s = 1.

    .. math::

        \\frac{\\ell(\\ell+1)}{2\\pi} C_\\ell = a\\, A\\, \\frac{(\\ell/\\ell_b)^{\\alpha}}
        {1 + (\\ell/\\ell_b)^{\\alpha+\\beta}},\\qquad
        A = 3.07\\times10^{-4},\\ \\ell_b = 5530,\\ \\alpha = 0.86,\\ \\beta = 0.48

    a broken power law fitted (within 7 % for 200 ≤ ℓ ≤ 3×10⁴) to the Limber
    integral of the halofit (Takahashi et al. 2012) nonlinear matter power spectrum
    from CAMB, for Ω_m = 0.3, Ω_b = 0.045, h = 0.7, n_s = 0.96, σ8 = 0.8. The field
    of the defaults spans 340 ≲ ℓ ≲ 2.2×10⁴; the resulting LSS κ rms is ≈ 0.020 on
    0.5′ pixels, as in ray-traced simulations (e.g. Hilbert et al. 2011).

    Parameters
    ----------
    ell : array_like
        Multipoles, ≥ 0 (C_0 = 0).
    amplitude : float, optional
        Multiplier ``a`` on the fiducial spectrum.

    Returns
    -------
    ndarray
        C_ℓ [sr].
    """
    ell = np.asarray(ell, dtype=np.float64)
    if np.any(~(ell >= 0.0)):
        raise ValueError(f"ell must be finite and >= 0, got min {np.nanmin(ell)!r}")
    x = ell / LSS_ELL_BREAK
    delta2 = (
        amplitude
        * LSS_DELTA2_AMPLITUDE
        * x**LSS_SLOPE_LOW
        / (1.0 + x ** (LSS_SLOPE_LOW + LSS_SLOPE_HIGH))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cl = np.where(ell > 0, 2.0 * np.pi * delta2 / (ell * (ell + 1.0)), 0.0)
    return cl[()]


def _frequencies(n: int) -> tuple[np.ndarray, np.ndarray]:
    """|k| [cycles/pixel] and the pixel window ``sinc²(k1) sinc²(k2)`` of an ``n × n`` grid.

    Both on the one Fourier grid of :func:`lensviz.inversion.frequencies`.
    """
    k1, k2 = frequencies(n, n)
    return wavenumber(n, n), (np.sinc(k1) * np.sinc(k2)) ** 2


@lru_cache(maxsize=8)
def _lognormal_filter(n: int, pixel_arcmin: float, amplitude: float, z_source: float):
    """sqrt of the Gaussian-field power on the rfft grid, σ_G², and λ.

    The κ correlation of the pixelised field, ξ_κ, is mapped to that of G by
    ξ_G = ln(1 + ξ_κ/λ²) (exact for a lognormal field); negative Fourier powers of
    ξ_G (tiny, at the highest k) are set to zero, as is the mean mode.
    """
    theta = pixel_arcmin / ARCMIN_PER_RADIAN
    k, window = _frequencies(n)
    power = convergence_power_spectrum(2.0 * np.pi * k / theta, amplitude) * window / theta**2
    xi_kappa = np.fft.ifft2(power).real  # ξ_κ at pixel separations
    lam = float(lognormal_shift(z_source))
    power_g = np.fft.fft2(np.log1p(xi_kappa / lam**2)).real
    power_g = np.clip(power_g, 0.0, None)
    power_g[0, 0] = 0.0
    var_g = power_g.sum() / n**2
    amp = np.sqrt(power_g[:, : n // 2 + 1]).astype(np.float32)
    amp.setflags(write=False)
    return amp, var_g, lam


def _lss_kappa(rng: np.random.Generator, config: SimulationConfig) -> np.ndarray:
    """The lognormal LSS convergence on the whole canvas, ``(canvas_px, canvas_px)``."""
    size = config.canvas_px
    amp, var_g, lam = _lognormal_filter(
        size, float(config.pixel_arcmin), float(config.lss_amplitude), float(config.z_source)
    )
    white = rng.standard_normal((size, size), dtype=np.float32)
    g = np.fft.irfft2(np.fft.rfft2(white) * amp, s=white.shape)
    g -= np.float32(0.5 * var_g)
    return np.float32(lam) * np.expm1(g)


# === Halos ===
def _draw_halos(rng: np.random.Generator, config: SimulationConfig) -> list[HaloParams]:
    """Draw the halo population (fixed order of draws: main, field halos, subhalos).

    Positions are in field pixel coordinates; field halos fall anywhere on the canvas,
    with a Poisson mean scaled by the canvas area.
    """
    n, margin, size = config.npix, config.margin_px, config.canvas_px
    centre = 0.5 * (n - 1)
    z_lo, z_hi = config.z_range

    def log_uniform(lo, hi, size=None):
        return 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), size)

    def shapes(size):
        q = rng.uniform(*config.axis_ratio_range, size)
        angle = rng.uniform(0.0, np.pi, size)
        if not config.elliptical:
            q, angle = np.ones(size), np.zeros(size)
        return q, angle

    # main cluster
    m_main = log_uniform(*config.m200_range, 1)
    z_main = rng.uniform(z_lo, z_hi, 1)
    radius = config.center_offset_arcmin / config.pixel_arcmin * np.sqrt(rng.uniform(size=1))
    phi = rng.uniform(0.0, 2.0 * np.pi, 1)
    x_main = centre + radius * np.cos(phi)
    y_main = centre + radius * np.sin(phi)
    q_main, a_main = shapes(1)
    # field halos: the density [deg⁻²] over the canvas area [arcmin²] (27 by default)
    n_field = rng.poisson(config.field_halo_density / 3600.0 * (size * config.pixel_arcmin) ** 2)
    m_field = log_uniform(*config.field_halo_m200_range, n_field)
    z_field = rng.uniform(z_lo, z_hi, n_field)
    x_field = rng.uniform(-0.5, size - 0.5, n_field) - margin
    y_field = rng.uniform(-0.5, size - 0.5, n_field) - margin
    q_field, a_field = shapes(n_field)
    # subhalos, at the main redshift, around the main centre
    n_sub = rng.poisson(config.n_subhalos)
    m_sub = m_main * log_uniform(*config.subhalo_mass_fraction_range, n_sub)
    z_sub = np.repeat(z_main, n_sub)
    offsets = rng.standard_normal((2, n_sub))
    q_sub, a_sub = shapes(n_sub)

    m200 = np.concatenate([m_main, m_field, m_sub])
    z = np.concatenate([z_main, z_field, z_sub])
    c = concentration_duffy08(m200, z) * 10.0 ** (
        config.concentration_scatter_dex * rng.standard_normal(m200.size)
    )
    r_s, kappa_s = nfw_params(m200, z, c, config.z_source)
    r200_main_arcmin = mpc_to_arcmin(r_s[0] * c[0], z_main[0])
    spread = config.subhalo_spread_r200 * r200_main_arcmin / config.pixel_arcmin  # [px]
    x = np.concatenate([x_main, x_field, x_main + spread * offsets[0]])
    y = np.concatenate([y_main, y_field, y_main + spread * offsets[1]])
    q = np.concatenate([q_main, q_field, q_sub])
    angle = np.concatenate([a_main, a_field, a_sub])
    r_s_arcmin = mpc_to_arcmin(r_s, z)
    kinds = ["main"] + ["field"] * n_field + ["sub"] * n_sub
    return [
        HaloParams(
            kind=kinds[i],
            m200=float(m200[i]),
            z=float(z[i]),
            c=float(c[i]),
            x=float(x[i]),
            y=float(y[i]),
            q=float(q[i]),
            angle=float(angle[i]),
            r_s_arcmin=float(r_s_arcmin[i]),
            kappa_s=float(kappa_s[i]),
        )
        for i in range(m200.size)
    ]


def _halo_kappa(halos: list[HaloParams], config: SimulationConfig) -> np.ndarray:
    """κ of all halos on the canvas (:func:`lensviz.halos.halo_kappa_map`)."""
    return halo_kappa_map(
        halos,
        config.canvas_px,
        config.pixel_arcmin,
        config.margin_px,
        config.halo_kappa_min,
        config.core_box_px,
        config.core_supersample,
    )


# === Shear and galaxies ===
def reduced_shear(gamma1, gamma2, kappa):
    """Reduced shear with the strong-lensing guard of lensviz.

    .. math::

        g = \\frac{\\gamma}{\\max(1-\\kappa,\\ d_{min})},\\qquad d_{min} = 0.1

    ``d_min`` is :data:`lensviz.constants.REDUCED_SHEAR_MIN_DENOM`: where κ > 0.9 (the
    cores of the most massive clusters) the weak-lensing mapping is not meaningful and
    ``g`` is kept finite instead of diverging at κ = 1.

    Parameters
    ----------
    gamma1, gamma2, kappa : array_like, shape (..., ny, nx)
        Shear and convergence.

    Returns
    -------
    g1, g2 : ndarray
        Reduced shear, same shape.
    """
    denom = np.maximum(1.0 - np.asarray(kappa), C.REDUCED_SHEAR_MIN_DENOM)
    return np.asarray(gamma1) / denom, np.asarray(gamma2) / denom


def lens_ellipticities(e_source, g):
    """Lensed complex ellipticities of sources with intrinsic ellipticity ``e_source``.

    .. math::

        e = \\begin{cases}
        \\dfrac{e_s + g}{1 + g^* e_s} & |g| \\le 1 \\\\[1ex]
        \\dfrac{1 + g\\, e_s^*}{e_s^* + g^*} & |g| > 1
        \\end{cases}

    which is ``e ≈ e_s + g`` in the weak-lensing limit.

    Parameters
    ----------
    e_source : array_like of complex
        Intrinsic ellipticities ``e1 + i e2``, ``|e_s| < 1``.
    g : array_like of complex
        Reduced shear ``g1 + i g2`` (broadcast against ``e_source``).

    Returns
    -------
    ndarray of complex
        Observed ellipticities.

    References
    ----------
    Seitz & Schneider 1997, A&A 318, 687; Bartelmann & Schneider 2001, eq. 4.12.
    """
    e_s = np.asarray(e_source)
    g = np.asarray(g)
    e = e_s + g
    den = np.conj(g) * e_s
    den += 1.0
    e /= den
    strong = np.abs(g) > 1.0
    if np.any(strong):
        e_s, g, strong = np.broadcast_arrays(e_s, g, strong)
        es_c = np.conj(e_s[strong])
        e = np.array(e, copy=True)
        e[strong] = (1.0 + g[strong] * es_c) / (es_c + np.conj(g[strong]))
    return e


#: Poisson means above this draw counts with ``Generator.poisson`` instead of the inverted
#: CDF table, whose length grows with the mean (``sim:1@1e9`` would need 2 GB of table).
_CDF_MAX_MEAN = 1000.0
#: Pixels with more galaxies than this get the mean of their galaxies' shape noise drawn
#: directly (see :func:`add_shape_noise`), so no more than this many galaxies a pixel are
#: ever drawn one by one, whatever the depth. At 64, every pixel up to 100 galaxies per
#: arcmin² on 0.5′ pixels (25 a pixel on average; P(N > 64) < 10⁻¹⁰) is lensed galaxy by
#: galaxy, as before this limit existed.
EXACT_GALAXIES_MAX = 64
#: Galaxies lensed one by one in one block: bounds the temporaries of a large field
#: (32 MB a complex64 array) and leaves a 384² canvas in a single block.
_GALAXY_BLOCK = 1 << 22


@lru_cache(maxsize=16)
def _poisson_cdf(mean: float) -> np.ndarray:
    k = np.arange(int(mean + 12.0 * np.sqrt(mean) + 12.0))
    cdf = pdtr(k, mean)  # the Poisson CDF
    cdf[-1] = 1.0  # the tail beyond, < 1e-15, goes to the last count
    cdf.setflags(write=False)
    return cdf


def _poisson_counts(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    """Poisson counts: the cached CDF inverted with one uniform per pixel (exact), or
    ``rng.poisson`` for means above :data:`_CDF_MAX_MEAN`."""
    if mean > _CDF_MAX_MEAN:
        return rng.poisson(mean, size)
    return np.searchsorted(_poisson_cdf(mean), rng.random(size), side="right")


def _intrinsic_ellipticities(rng: np.random.Generator, sigma_e: float, size: int) -> np.ndarray:
    """Complex e_s from N(0, σ_e²) per component truncated to |e_s| < 1, exactly.

    The modulus follows a Rayleigh law cut at 1, drawn by inverting its CDF
    ``P(|e| < r) = (1 − exp(−r²/2σ²)) / (1 − exp(−1/2σ²))``; the angle is uniform.
    """
    # in place throughout: fresh 0.5 MB temporaries cost more than the arithmetic
    modulus = rng.random(size, dtype=np.float32)
    phi = rng.random(size, dtype=np.float32)
    modulus *= np.float32(np.expm1(-0.5 / sigma_e**2))  # −(1 − exp(−1/2σ²)) u
    np.log1p(modulus, out=modulus)
    modulus *= np.float32(-2.0 * sigma_e**2)
    np.sqrt(modulus, out=modulus)
    phi *= np.float32(2.0 * np.pi)
    e_s = np.empty(size, dtype=np.complex64)
    np.cos(phi, out=e_s.real)
    np.sin(phi, out=phi)
    e_s.imag = phi
    e_s.real *= modulus
    e_s.imag *= modulus
    return e_s


def truncated_sigma(sigma_e: float) -> float:
    """Dispersion per component of N(0, σ_e²) ellipticities truncated to ``|e| < 1``.

    .. math::

        \\sigma_t^2 = \\sigma_e^2 - \\frac{1}{2}\\,\\frac{e^{-1/2\\sigma_e^2}}
        {1 - e^{-1/2\\sigma_e^2}}

    (half the mean of ``|e|²`` under the Rayleigh law cut at 1). At σ_e = 0.26,
    σ_t² = 0.995 σ_e².

    Examples
    --------
    >>> round(truncated_sigma(0.26) / 0.26, 4)
    0.9977
    """
    a = 0.5 / sigma_e**2
    return float(np.sqrt(sigma_e**2 - 0.5 * np.exp(-a) / -np.expm1(-a)))


def _lensed_means(
    g: np.ndarray, counts: np.ndarray, rng: np.random.Generator, sigma_e: float
) -> np.ndarray:
    """Mean lensed ellipticity of ``counts`` galaxies a pixel, galaxy by galaxy.

    ``g`` and ``counts`` are flat; pixels are taken in blocks of at most
    :data:`_GALAXY_BLOCK` galaxies (one block, the whole map, for a 384² canvas).
    """
    out = np.zeros(g.size, dtype=np.complex64)
    ends = np.cumsum(counts)
    first = 0
    while first < g.size:
        base = ends[first - 1] if first else 0
        last = max(int(np.searchsorted(ends, base + _GALAXY_BLOCK, side="right")), first + 1)
        c = counts[first:last]
        total = int(c.sum())
        e_s = _intrinsic_ellipticities(rng, sigma_e, total + 1)
        e_s[-1] = 0.0  # one blank galaxy with g = 0 after the last pixel (for reduceat)
        gg = np.append(g[first:last], np.complex64(0.0))
        e = lens_ellipticities(e_s, np.repeat(gg, np.append(c, 1)))
        # galaxies are contiguous per pixel; empty pixels (start == next start) are zeroed
        sums = np.add.reduceat(e, np.cumsum(c) - c)
        out[first:last] = np.where(c > 0, sums / np.maximum(c, 1), 0.0)
        first = last
    return out


def _gaussian_means(
    g: np.ndarray, counts: np.ndarray, rng: np.random.Generator, sigma_e: float
) -> np.ndarray:
    """Mean lensed ellipticity of ``counts`` (many) galaxies a pixel, drawn directly.

    The lensed ellipticity of an isotropic source population averages exactly to
    ``g`` (``1/g*`` where ``|g| > 1``; Seitz & Schneider 1997), and its dispersion per
    component is ``σ_t (1 − |g|²)`` to first order in ``e_s`` (``σ_t`` of
    :func:`truncated_sigma`; ``1 − 1/|g|²`` on the strong branch). The mean of ``N``
    galaxies is then Gaussian to a good approximation for ``N >`` :data:`EXACT_GALAXIES_MAX`
    (central limit theorem), with ``σ/√N`` per component.
    """
    strong = np.abs(g) > 1.0
    mean = np.where(strong, 1.0 / np.conj(np.where(strong, g, 1.0)), g)
    g2 = np.abs(g) ** 2
    shrink = np.where(strong, 1.0 - 1.0 / np.maximum(g2, 1.0), 1.0 - g2)
    scale = (truncated_sigma(sigma_e) * shrink / np.sqrt(counts)).astype(np.float32)
    noise = rng.standard_normal((2, g.size), dtype=np.float32) * scale
    return (mean + (noise[0] + 1j * noise[1])).astype(np.complex64)


def add_shape_noise(
    g1, g2, rng, n_gal=C.N_GAL_ARCMIN2, sigma_e=C.SIGMA_E, pixel_arcmin=C.PIXEL_ARCMIN
):
    """Galaxy-averaged ellipticity maps of a reduced-shear field.

    Each pixel gets ``N ~ Poisson(n_gal · A_pix)`` galaxies with intrinsic
    ellipticities drawn per component from N(0, σ_e²), truncated to ``|e_s| < 1`` (this
    removes a 6×10⁻⁴ tail at σ_e = 0.26 and lowers the variance by 0.5 %), lensed with
    :func:`lens_ellipticities` and averaged. The error channel is

    .. math::

        \\Delta\\varepsilon = \\sigma_e / \\sqrt{N}

    and an empty pixel (N = 0) has ``e1 = e2 = 0``, ``Δε = EMPTY_PIXEL_SIGMA``.

    Cost does not grow with the depth. Pixels with at most :data:`EXACT_GALAXIES_MAX`
    galaxies (every pixel up to about 100 galaxies per arcmin² on 0.5′ pixels) are
    lensed galaxy by galaxy, in blocks, with no loop over pixels (``np.repeat`` of the
    shear over the counts, ``np.add.reduceat`` back to pixels); denser pixels get the
    mean of their galaxies drawn directly (:func:`_gaussian_means`: the exact mean ``g``
    plus Gaussian noise of ``σ_t (1 − |g|²)/√N`` per component). So 10,000 galaxies per
    arcmin² cost less than 30. With ``n_gal = math.inf`` there is no shape noise:
    ``ε = g`` exactly, ``Δε = 0``, and ``rng`` is not used.

    Parameters
    ----------
    g1, g2 : array_like, shape (...)
        Reduced shear maps (any shape, e.g. ``(128, 128)``).
    rng : numpy.random.Generator
        Source of randomness: one uniform per pixel (the count), then two per galaxy
        lensed one by one, then two normals per dense pixel.
    n_gal : float, optional
        Galaxies per arcmin², > 0; ``math.inf`` for no shape noise.
    sigma_e : float, optional
        Intrinsic dispersion per component, ``0 < σ_e < 1``.
    pixel_arcmin : float, optional
        Pixel side [arcmin].

    Returns
    -------
    eps : ndarray, shape (..., 3), float32
        ``(e1, e2, Δε)`` per pixel.

    Raises
    ------
    ValueError
        If the maps differ in shape or a parameter is out of range.
    TypeError
        If ``rng`` is not a :class:`numpy.random.Generator`.

    References
    ----------
    Seitz & Schneider 1997, A&A 318, 687 (``⟨ε⟩ = g``).

    Examples
    --------
    >>> truth = simulate_truth(0)
    >>> eps = add_shape_noise(truth["gamma1"], truth["gamma2"], np.random.default_rng(1), n_gal=10)
    """
    g1 = np.asarray(g1)
    g2 = np.asarray(g2)
    if g1.shape != g2.shape:
        raise ValueError(f"g1 and g2 must have the same shape, got {g1.shape} and {g2.shape}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    _check_depth("n_gal", n_gal)
    _check_positive("pixel_arcmin", pixel_arcmin)
    if not (_is_number(sigma_e) and 0.0 < sigma_e < 1.0):
        raise ValueError(f"sigma_e must lie in (0, 1), got {sigma_e!r}")
    if np.isinf(n_gal):
        eps = np.zeros(g1.shape + (3,), dtype=np.float32)
        eps[..., 0] = g1
        eps[..., 1] = g2
        return eps

    npix = g1.size
    counts = _poisson_counts(rng, float(n_gal * pixel_arcmin**2), npix)
    g = np.empty(npix, dtype=np.complex64)
    g.real = g1.ravel()
    g.imag = g2.ravel()
    dense = counts > EXACT_GALAXIES_MAX
    e = np.empty(npix, dtype=np.complex64)
    if np.any(dense):
        e[~dense] = _lensed_means(g[~dense], counts[~dense], rng, float(sigma_e))
        e[dense] = _gaussian_means(g[dense], counts[dense], rng, float(sigma_e))
    else:
        e[:] = _lensed_means(g, counts, rng, float(sigma_e))
    filled = counts > 0
    eps = np.empty((npix, 3), dtype=np.float32)
    eps[:, 0] = e.real
    eps[:, 1] = e.imag
    eps[:, 2] = np.where(filled, sigma_e / np.sqrt(np.maximum(counts, 1)), C.EMPTY_PIXEL_SIGMA)
    return eps.reshape(g1.shape + (3,))


# === Masks ===
def draw_mask(rng, npix: int, max_fraction: float = C.SIM_MASK_MAX_FRACTION) -> np.ndarray:
    """A random mask of bright-star discs and stripes over a square field.

    A target fraction ``f ~ U[0, max_fraction]`` is drawn, then shapes until at least
    ``f`` of the pixels are covered; a shape that would take the fraction above
    ``max_fraction`` is skipped, so the result always lies in ``[0, max_fraction]``.
    Each shape is a stripe with probability ``MASK_STRIPE_SHARE`` (0.2; a band of
    width uniform in ``MASK_STRIPE_WIDTH_PX``, 1-4 px, through a random point at a
    random angle, across the whole field: chip gaps, satellite trails, and the
    footprint edge when it falls near a side), otherwise a disc of radius
    log-uniform in ``MASK_DISC_RADIUS_PX`` (1-8 px = 0.5′-4′ at 0.5′ pixels: bright-star
    masks). A pixel is covered when its centre lies inside the shape.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness: one uniform for the target, then five per shape.
    npix : int
        Pixels per side.
    max_fraction : float, optional
        Largest masked fraction, in [0, 1].

    Returns
    -------
    ndarray of bool, shape (npix, npix)
        True where the pixel is masked.

    Raises
    ------
    TypeError
        If ``rng`` is not a :class:`numpy.random.Generator`.
    ValueError
        If ``npix`` or ``max_fraction`` is out of range.

    Examples
    --------
    >>> mask = draw_mask(np.random.default_rng(0), 128)
    >>> bool(0.0 <= mask.mean() <= 0.3)
    True
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    _check_int("npix", npix, 1)
    _check_fraction("max_fraction", max_fraction)
    area = npix * npix
    target = rng.uniform(0.0, max_fraction) * area
    limit = int(np.floor(max_fraction * area + 1e-9))
    mask = np.zeros((npix, npix), dtype=bool)
    grid = np.arange(npix, dtype=np.float64)
    log_r = np.log(C.MASK_DISC_RADIUS_PX)
    w_lo, w_hi = C.MASK_STRIPE_WIDTH_PX
    covered = 0
    for _ in range(_MASK_MAX_SHAPES):
        if covered >= target:
            break
        kind, u_x, u_y, u_size, u_angle = rng.random(5)
        x0, y0 = u_x * npix - 0.5, u_y * npix - 0.5
        if kind < C.MASK_STRIPE_SHARE:
            half = 0.5 * (w_lo + u_size * (w_hi - w_lo))
            angle = np.pi * u_angle
            rows, cols = slice(0, npix), slice(0, npix)
            dist = (grid[None, :] - x0) * np.sin(angle) - (grid[:, None] - y0) * np.cos(angle)
            shape = np.abs(dist) <= half
        else:
            r = np.exp(log_r[0] + u_size * (log_r[1] - log_r[0]))
            r0, r1 = max(0, int(np.floor(y0 - r))), min(npix, int(np.ceil(y0 + r)) + 1)
            c0, c1 = max(0, int(np.floor(x0 - r))), min(npix, int(np.ceil(x0 + r)) + 1)
            rows, cols = slice(r0, r1), slice(c0, c1)
            shape = (grid[None, c0:c1] - x0) ** 2 + (grid[r0:r1, None] - y0) ** 2 <= r * r
        added = int(np.count_nonzero(shape & ~mask[rows, cols]))
        if covered + added > limit:
            continue
        mask[rows, cols] |= shape
        covered += added
    return mask


def _apply_mask(eps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked pixels become empty: ``e1 = e2 = 0``, ``Δε = EMPTY_PIXEL_SIGMA`` (in place)."""
    eps[mask, :2] = 0.0
    eps[mask, 2] = C.EMPTY_PIXEL_SIGMA
    return eps


# === Observing a given κ map ===
def observe_kappa(
    kappa,
    rng,
    n_gal: float = C.N_GAL_ARCMIN2,
    sigma_e: float = C.SIGMA_E,
    pixel_arcmin: float = C.PIXEL_ARCMIN,
    mask=None,
    pad: int | None = None,
) -> np.ndarray:
    """Observe any κ map with the simulator's physics: ε of its galaxies at a depth.

    Steps 3-5 of the recipe (module docstring) on a map given from outside (an N-body
    ray-tracing map, an analytic profile): ``γ = ks93inv(κ, pad)``, the reduced shear
    ``g = γ / max(1 − κ, 0.1)`` (:func:`reduced_shear`), galaxies averaged per pixel
    (:func:`add_shape_noise`; ``n_gal = inf``: ``ε = g``, ``Δε = 0``), then the mask.

    The map is all the mass there is: γ is that of the zero-padded map, as for an
    isolated field (``margin_px = 0``), since no κ outside it is known. ``pad`` defaults
    to half the larger side, which puts the nearest periodic image a whole map away.

    Parameters
    ----------
    kappa : array_like, shape (ny, nx)
        Convergence, any size (square or not), finite.
    rng : numpy.random.Generator
        Galaxy counts and intrinsic ellipticities (unused when ``n_gal = inf``).
    n_gal : float, optional
        Galaxies per arcmin², > 0; ``math.inf`` for no shape noise.
    sigma_e : float, optional
        Intrinsic ellipticity dispersion per component, in (0, 1).
    pixel_arcmin : float, optional
        Pixel side [arcmin] of the map.
    mask : array_like of bool, shape (ny, nx), optional
        Pixels to mask: ``ε = 0``, ``Δε = EMPTY_PIXEL_SIGMA``.
    pad : int, optional
        Zero-padding per side of the κ → γ transform [pixels].

    Returns
    -------
    eps : ndarray, shape (ny, nx, 3), float32
        ``(e1, e2, Δε)`` as :func:`simulate_sample` gives them.

    Raises
    ------
    ValueError
        A map that is not 2-D and finite, a mask of another shape, a bad parameter.
    LimitError
        (a ValueError) When the work would take more memory than
        :data:`lensviz.data.limits.MAX_WORK_BYTES`, before any of it starts.

    Examples
    --------
    >>> kappa = simulate_truth(0)["kappa"]
    >>> eps = observe_kappa(kappa, np.random.default_rng(0), n_gal=math.inf)
    >>> bool(np.all(eps[..., 2] == 0))          # no shape noise: Δε = 0
    True
    """
    kappa = np.asarray(kappa, dtype=np.float32)  # float32 throughout: a 2048² map in < 1 GB
    if kappa.ndim != 2 or min(kappa.shape) < 2 or not np.all(np.isfinite(kappa)):
        raise ValueError(f"kappa must be a finite 2-D map, got shape {kappa.shape}")
    pad = max(kappa.shape) // 2 if pad is None else pad
    _check_int("pad", pad, 0)
    check_observation(kappa.shape, pad, "observe_kappa")  # the memory, before any work
    gamma1, gamma2 = ks93inv(kappa, pad=pad)
    g1, g2 = reduced_shear(gamma1, gamma2, kappa)
    del gamma1, gamma2
    eps = add_shape_noise(g1, g2, rng, n_gal, sigma_e, pixel_arcmin)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != kappa.shape:
            raise ValueError(f"mask {mask.shape} does not fit the κ map {kappa.shape}")
        _apply_mask(eps, mask)
    return eps


# === Public simulator ===
# children of np.random.default_rng(seed).spawn(_N_STREAMS); 0-2 predate the others,
# so adding streams leaves every earlier sample unchanged
_HALO_STREAM, _LSS_STREAM, _GALAXY_STREAM, _MASK_STREAM, _MIX_STREAM = range(5)
_N_STREAMS = 5
_MASK_MAX_SHAPES = 10_000  # guard on the shapes tried by draw_mask (≈ 50 are typical)


def _streams(seed: int) -> list[np.random.Generator]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed)).spawn(_N_STREAMS)


def _fields(halo_rng, lss_rng, config: SimulationConfig) -> dict:
    """κ on the canvas, γ of the zero-padded canvas, everything cropped to the field."""
    halos = _draw_halos(halo_rng, config)
    kappa_cluster = _halo_kappa(halos, config)
    kappa_lss = _lss_kappa(lss_rng, config) if config.lss else np.zeros_like(kappa_cluster)
    kappa = kappa_cluster + kappa_lss
    gamma1, gamma2 = ks93inv(kappa, pad=config.pad)
    field = slice(config.margin_px, config.margin_px + config.npix)
    kappa, gamma1, gamma2 = (a[field, field] for a in (kappa, gamma1, gamma2))
    g1, g2 = reduced_shear(gamma1, gamma2, kappa)
    f32 = np.float32
    return {
        "kappa": kappa.astype(f32),
        "kappa_cluster": kappa_cluster[field, field].astype(f32),
        "kappa_lss": kappa_lss[field, field].astype(f32),
        "gamma1": g1.astype(f32),
        "gamma2": g2.astype(f32),
        "shear1": gamma1.astype(f32),
        "shear2": gamma2.astype(f32),
        "halos": halos,
    }


def _mask(mask_rng, config: SimulationConfig) -> np.ndarray:
    if not config.masks:
        return np.zeros((config.npix, config.npix), dtype=bool)
    return draw_mask(mask_rng, config.npix, config.mask_max_fraction)


def _ellipticities(fields: dict, noise_rng, mask_rng, config: SimulationConfig) -> np.ndarray:
    eps = add_shape_noise(
        fields["gamma1"],
        fields["gamma2"],
        noise_rng,
        config.n_gal,
        config.sigma_e,
        config.pixel_arcmin,
    )
    if config.masks:
        _apply_mask(eps, _mask(mask_rng, config))
    return eps


def simulate_truth(seed: int, config: SimulationConfig | None = None) -> dict:
    """The noiseless pieces of sample ``seed``, for teaching and plots.

    Parameters
    ----------
    seed : int
        Non-negative seed, as for :func:`simulate_sample`.
    config : SimulationConfig, optional
        Defaults to ``SimulationConfig()``.

    Returns
    -------
    dict
        ``kappa`` (total, equal to the κ of :func:`simulate_sample`), ``kappa_cluster``
        (all halos), ``kappa_lss``, ``gamma1``/``gamma2`` (the *reduced* shear
        g = γ/(1−κ) that the ellipticities estimate), ``shear1``/``shear2`` (the shear
        γ itself), all ``(npix, npix)`` float32 crops of the canvas; ``mask``
        ``(npix, npix)`` bool, the masked pixels of the sample (all False without
        ``config.masks``); ``halos``, a list of :class:`HaloParams` (main cluster
        first, in field pixel coordinates); ``config``.

    Examples
    --------
    >>> t = simulate_truth(7)
    >>> f"{t['halos'][0].m200:.3g}"   # main-cluster mass [M☉/h]
    '1.09e+15'
    """
    config = SimulationConfig() if config is None else config
    streams = _streams(seed)
    out = _fields(streams[_HALO_STREAM], streams[_LSS_STREAM], config)
    out["mask"] = _mask(streams[_MASK_STREAM], config)
    out["config"] = config
    return out


def simulate_sample(
    seed: int, config: SimulationConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One simulated sample, bit-reproducible from its seed.

    Parameters
    ----------
    seed : int
        Non-negative seed (see the seed ranges in :mod:`lensviz.constants`).
    config : SimulationConfig, optional
        Defaults to ``SimulationConfig()``.

    Returns
    -------
    eps : ndarray, shape (npix, npix, 3), float32
        ``(e1, e2, Δε)``: galaxy-averaged ellipticities and their error (Δε = σ_e/√N,
        ``EMPTY_PIXEL_SIGMA`` for empty or masked pixels, 0 without shape noise).
    kappa : ndarray, shape (npix, npix), float32
        True convergence (halos + LSS).

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> eps, kappa = simulate_sample(0)
    >>> eps.shape, kappa.shape
    ((128, 128, 3), (128, 128))
    >>> eps, kappa = simulate_sample(0, depth_config("des"))
    """
    config = SimulationConfig() if config is None else config
    streams = _streams(seed)
    fields = _fields(streams[_HALO_STREAM], streams[_LSS_STREAM], config)
    eps = _ellipticities(fields, streams[_GALAXY_STREAM], streams[_MASK_STREAM], config)
    return eps, fields["kappa"]


def _check_n(n) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")


def simulate_batch(
    n: int, seed: int = 0, config: SimulationConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples; sample ``i`` is exactly ``simulate_sample(seed + i, config)``.

    Parameters
    ----------
    n : int
        Number of samples, ≥ 0.
    seed : int, optional
        Seed of the first sample.
    config : SimulationConfig, optional
        Defaults to ``SimulationConfig()``.

    Returns
    -------
    eps : ndarray, shape (n, npix, npix, 3), float32
    kappa : ndarray, shape (n, npix, npix), float32

    Raises
    ------
    ValueError
        If ``n`` or ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> eps, kappa = simulate_batch(4, seed=1_000_000, config=depth_config("inf"))
    """
    _check_n(n)
    config = SimulationConfig() if config is None else config
    check_simulation(max(n, 1), config.npix, config.canvas_px, source=f"simulate_batch({n})")
    eps = np.empty((n, config.npix, config.npix, 3), dtype=np.float32)
    kappa = np.empty((n, config.npix, config.npix), dtype=np.float32)
    for i in range(n):
        eps[i], kappa[i] = simulate_sample(seed + i, config)
    return eps, kappa


# === Depth: presets and the training mix ===
def depth_config(spec: str, config: SimulationConfig | None = None) -> SimulationConfig:
    """The configuration for a depth given as text: a survey preset, a number or ``inf``.

    Parameters
    ----------
    spec : str
        A name of :data:`lensviz.constants.SURVEYS` (``des``, ``lsst``, ``deep``,
        ``noise-free``; sets ``n_gal`` and ``sigma_e``), a number of galaxies per
        arcmin² (> 0; sets ``n_gal``), or ``inf`` (no shape noise). Case and surrounding
        spaces are ignored.
    config : SimulationConfig, optional
        The configuration to change (default ``SimulationConfig()``).

    Returns
    -------
    SimulationConfig

    Raises
    ------
    ValueError
        Naming ``spec`` and listing the presets, if it is none of these.

    Examples
    --------
    >>> depth_config("des").n_gal
    10.0
    >>> depth_config("100").n_gal, depth_config("inf").n_gal
    (100.0, inf)
    """
    config = SimulationConfig() if config is None else config
    text = spec.strip().lower() if isinstance(spec, str) else None
    if text in C.SURVEYS:
        survey = C.SURVEYS[text]
        return config.replace(n_gal=survey.n_gal, sigma_e=survey.sigma_e)
    try:
        n_gal = float(text)
    except (TypeError, ValueError):
        n_gal = np.nan
    if not n_gal > 0:  # also NaN
        raise ValueError(
            f"depth {spec!r}: expected a survey preset ({', '.join(C.SURVEYS)}), a number "
            "of galaxies per arcmin² > 0, or inf (no shape noise)"
        )
    return config.replace(n_gal=n_gal)


@dataclass(frozen=True)
class DepthMix:
    """How the depth and masking of training samples are drawn.

    Each sample has no shape noise with probability ``noise_free_fraction``, otherwise
    ``n_gal`` log-uniform in ``n_gal_range``; independently, it is masked (see
    :func:`draw_mask`) with probability ``masked_fraction``.

    Parameters
    ----------
    n_gal_range : tuple of float
        ``(low, high)`` galaxies per arcmin², ``0 < low ≤ high < inf`` ((3, 1000)).
    noise_free_fraction : float
        Share of samples with ``n_gal = inf`` (0.15).
    masked_fraction : float
        Share of masked samples (0.5).
    sigma_e : float
        Intrinsic ellipticity dispersion of every sample (0.26).

    Raises
    ------
    ValueError
        Naming the first field with a bad value.

    Examples
    --------
    >>> eps, kappa, n_gal = simulate_mixed_batch(8, 1_000_000, DepthMix())
    """

    n_gal_range: tuple[float, float] = C.MIX_N_GAL_RANGE
    noise_free_fraction: float = C.MIX_NOISE_FREE_FRACTION
    masked_fraction: float = C.MIX_MASKED_FRACTION
    sigma_e: float = C.SIGMA_E

    def __post_init__(self) -> None:
        if isinstance(self.n_gal_range, (list, np.ndarray)):
            object.__setattr__(self, "n_gal_range", tuple(self.n_gal_range))
        _check_range("n_gal_range", self.n_gal_range)
        _check_fraction("noise_free_fraction", self.noise_free_fraction)
        _check_fraction("masked_fraction", self.masked_fraction)
        if not (_is_number(self.sigma_e) and 0.0 < self.sigma_e < 1.0):
            raise ValueError(f"sigma_e must lie in (0, 1), got {self.sigma_e!r}")


def mixed_config(
    seed: int, mix: DepthMix | None = None, config: SimulationConfig | None = None
) -> SimulationConfig:
    """The configuration of sample ``seed`` under a depth mix (a pure function of seed).

    Depth and masking come from the sample's own random stream (independent of its
    halos, LSS and galaxies), with three uniforms ``u``: ``n_gal = inf`` if
    ``u₀ < noise_free_fraction``, else ``n_gal = lo (hi/lo)^{u₁}``; ``masks = u₂ <
    masked_fraction``.

    Parameters
    ----------
    seed : int
        Non-negative sample seed.
    mix : DepthMix, optional
        Defaults to ``DepthMix()``.
    config : SimulationConfig, optional
        Everything else (default ``SimulationConfig()``); its ``n_gal``, ``sigma_e``
        and ``masks`` are replaced.

    Returns
    -------
    SimulationConfig

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> [(round(c.n_gal, 1), c.masks) for c in map(mixed_config, range(1_000_000, 1_000_004))]
    [(7.9, False), (26.2, True), (inf, False), (394.5, True)]
    """
    mix = DepthMix() if mix is None else mix
    config = SimulationConfig() if config is None else config
    u_free, u_depth, u_mask = _streams(seed)[_MIX_STREAM].random(3)
    lo, hi = mix.n_gal_range
    n_gal = math.inf if u_free < mix.noise_free_fraction else float(lo * (hi / lo) ** u_depth)
    return config.replace(
        n_gal=n_gal, sigma_e=mix.sigma_e, masks=bool(u_mask < mix.masked_fraction)
    )


def simulate_mixed_sample(
    seed: int, mix: DepthMix | None = None, config: SimulationConfig | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """One sample at the depth and masking the mix draws for it.

    Exactly ``simulate_sample(seed, mixed_config(seed, mix, config))``.

    Parameters
    ----------
    seed : int
        Non-negative seed.
    mix : DepthMix, optional
        Defaults to ``DepthMix()``.
    config : SimulationConfig, optional
        Everything but the depth and masking (default ``SimulationConfig()``).

    Returns
    -------
    eps : ndarray, shape (npix, npix, 3), float32
    kappa : ndarray, shape (npix, npix), float32
    n_gal : float
        The sample's depth [arcmin⁻²]; ``inf`` without shape noise.

    Examples
    --------
    >>> eps, kappa, n_gal = simulate_mixed_sample(1_000_000)
    """
    cfg = mixed_config(seed, mix, config)
    eps, kappa = simulate_sample(seed, cfg)
    return eps, kappa, cfg.n_gal


def simulate_mixed_batch(
    n: int, seed: int = 0, mix: DepthMix | None = None, config: SimulationConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples of a depth mix; sample ``i`` is ``simulate_mixed_sample(seed + i, ...)``.

    Parameters
    ----------
    n : int
        Number of samples, ≥ 0.
    seed : int, optional
        Seed of the first sample.
    mix : DepthMix, optional
        Defaults to ``DepthMix()``.
    config : SimulationConfig, optional
        Everything but the depth and masking (default ``SimulationConfig()``).

    Returns
    -------
    eps : ndarray, shape (n, npix, npix, 3), float32
    kappa : ndarray, shape (n, npix, npix), float32
    n_gal : ndarray, shape (n,), float64
        Each sample's depth; ``inf`` for the noise-free ones.

    Raises
    ------
    ValueError
        If ``n`` or ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> eps, kappa, n_gal = simulate_mixed_batch(16, seed=1_000_000)
    >>> float(np.isinf(n_gal).mean())   # about DepthMix().noise_free_fraction (0.15)
    0.125
    """
    _check_n(n)
    config = SimulationConfig() if config is None else config
    eps = np.empty((n, config.npix, config.npix, 3), dtype=np.float32)
    kappa = np.empty((n, config.npix, config.npix), dtype=np.float32)
    n_gal = np.empty(n, dtype=np.float64)
    for i in range(n):
        eps[i], kappa[i], n_gal[i] = simulate_mixed_sample(seed + i, mix, config)
    return eps, kappa, n_gal


# === The field-aware training mix: depth, masks, pixel scale, field size, tile ===
@dataclass(frozen=True)
class FieldMix:
    """How the training samples of a field-aware UNet are drawn (:mod:`lensviz.features`).

    A sample is a 128² tile cut at a random place from a whole simulated field, whose
    features are computed on the whole field. Per sample: the depth and masking of
    ``depth`` (:class:`DepthMix`, drawn exactly as :func:`mixed_config` draws them), a
    pixel side (``pixel_arcmin`` of the challenge with probability
    ``native_fraction``, else log-uniform in ``pixel_arcmin_range``), and a field side
    from ``sizes`` with probabilities ``size_weights`` (128: the tile is the whole field,
    as in the challenge's data).

    Parameters
    ----------
    depth : DepthMix
        Depth and masks (the defaults of :class:`DepthMix`).
    pixel_arcmin_range : tuple of float
        ``(low, high)`` pixel side [arcmin] ((0.2, 2.0)).
    native_fraction : float
        Share of samples at :data:`lensviz.constants.PIXEL_ARCMIN` (0.4).
    sizes : tuple of int
        Field sides [pixels], each ≥ 128 ((128, 256, 384)).
    size_weights : tuple of float
        Probabilities of ``sizes`` (normalised), ≥ 0 ((0.4, 0.35, 0.25)).

    Raises
    ------
    ValueError
        Naming the first field with a bad value.
    """

    depth: DepthMix = DepthMix()
    pixel_arcmin_range: tuple[float, float] = C.FIELD_MIX_PIXEL_ARCMIN_RANGE
    native_fraction: float = C.FIELD_MIX_NATIVE_FRACTION
    sizes: tuple[int, ...] = C.FIELD_MIX_SIZES_PX
    size_weights: tuple[float, ...] = C.FIELD_MIX_SIZE_WEIGHTS

    def __post_init__(self) -> None:
        for name in ("pixel_arcmin_range", "sizes", "size_weights"):
            if isinstance(getattr(self, name), (list, np.ndarray)):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.depth, DepthMix):
            raise ValueError(f"depth must be a DepthMix, got {self.depth!r}")
        _check_range("pixel_arcmin_range", self.pixel_arcmin_range)
        _check_fraction("native_fraction", self.native_fraction)
        if not self.sizes or len(self.sizes) != len(self.size_weights):
            raise ValueError(
                f"sizes and size_weights must be non-empty and of one length, got "
                f"{self.sizes!r} and {self.size_weights!r}"
            )
        for size in self.sizes:
            _check_int("sizes", size, C.NPIX)
        weights = np.asarray(self.size_weights, dtype=np.float64)
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
            raise ValueError(f"size_weights must be >= 0 with a positive sum, got {weights}")


@dataclass(frozen=True)
class FieldDraw:
    """What :func:`field_draw` drew for one training sample.

    Attributes
    ----------
    config : SimulationConfig
        The whole field's configuration (``npix`` its side, ``pixel_arcmin``, depth,
        masks).
    origin : tuple of int
        ``(y0, x0)`` of the 128² tile in the field.
    """

    config: SimulationConfig
    origin: tuple[int, int]


def field_draw(
    seed: int, mix: FieldMix | None = None, config: SimulationConfig | None = None
) -> FieldDraw:
    """The field and tile of training sample ``seed`` under a field mix (pure function of seed).

    The depth and masking are those of :func:`mixed_config` for the same seed (the same
    three uniforms of the sample's mix stream); five more uniforms of that stream give
    the pixel side, the field side and the tile's origin.

    Parameters
    ----------
    seed : int
        Non-negative sample seed.
    mix : FieldMix, optional
        Defaults to ``FieldMix()``.
    config : SimulationConfig, optional
        Everything else (default ``SimulationConfig()``); its ``n_gal``, ``sigma_e``,
        ``masks``, ``npix`` and ``pixel_arcmin`` are replaced.

    Returns
    -------
    FieldDraw

    Examples
    --------
    >>> d = field_draw(1_000_003)
    >>> d.config.npix, round(d.config.pixel_arcmin, 3), d.origin
    (256, 1.432, (53, 45))
    """
    mix = FieldMix() if mix is None else mix
    config = SimulationConfig() if config is None else config
    rng = _streams(seed)[_MIX_STREAM]
    u_free, u_depth, u_mask = rng.random(3)  # as mixed_config draws them
    u_native, u_scale, u_size, u_y, u_x = rng.random(5)
    lo, hi = mix.depth.n_gal_range
    n_gal = math.inf if u_free < mix.depth.noise_free_fraction else float(lo * (hi / lo) ** u_depth)
    if u_native < mix.native_fraction:
        pixel = float(C.PIXEL_ARCMIN)
    else:
        p_lo, p_hi = mix.pixel_arcmin_range
        pixel = float(p_lo * (p_hi / p_lo) ** u_scale)
    weights = np.cumsum(mix.size_weights) / np.sum(mix.size_weights)
    size = int(
        mix.sizes[min(int(np.searchsorted(weights, u_size, side="right")), len(weights) - 1)]
    )
    span = size - C.NPIX
    origin = (int(u_y * (span + 1)), int(u_x * (span + 1)))
    cfg = config.replace(
        n_gal=n_gal,
        sigma_e=mix.depth.sigma_e,
        masks=bool(u_mask < mix.depth.masked_fraction),
        npix=size,
        pixel_arcmin=pixel,
    )
    return FieldDraw(cfg, origin)
