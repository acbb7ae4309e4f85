"""Flat-sky mass inversion: Kaiser–Squires (KS93), its inverse, and smoothing.

Conventions (see :mod:`lensviz.constants`): maps are ``(..., ny, nx)``; ``k1`` runs
along x (last axis), ``k2`` along y. The kernel is lenspack's ``ks93``:

.. math::

    \\hat\\kappa_E = \\frac{(k_1^2-k_2^2)\\hat\\gamma_1 + 2k_1k_2\\hat\\gamma_2}{k^2},\\qquad
    \\hat\\kappa_B = \\frac{-2k_1k_2\\hat\\gamma_1 + (k_1^2-k_2^2)\\hat\\gamma_2}{k^2}.

Zero mode
    Set to 0 in both directions: the mass-sheet degeneracy, so KS93 maps have mean 0.

Nyquist modes (even sizes)
    For even N the frequency −1/2 has no Hermitian partner, and the odd part of the
    spin-2 kernel (``2 k1 k2``) cannot be represented in a real map there. lensviz
    **zeroes the Nyquist row and column** of the kernel in both :func:`ks93` and
    :func:`ks93inv`. ``ks93(ks93inv(κ))`` is then exactly the projection of κ onto
    the modes that are neither the mean nor Nyquist (:func:`project_modes`), and it
    is exactly κ for any field without power in those modes.

Reference: Kaiser & Squires 1993, ApJ 404, 441; lenspack ``image/inversion.py``.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from lensviz import constants
from lensviz._atomic import atomic_path

__all__ = [
    "fourier_kernels",
    "wavenumber",
    "PowerSpectrum",
    "estimate_power_spectrum",
    "noise_power",
    "wiener",
    "ks93",
    "ks93inv",
    "project_modes",
    "gaussian_smooth",
]


@lru_cache(maxsize=32)
def _half_kernels(ny: int, nx: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    # The kernels on the rfft2 half-plane, in the input's real dtype so that float32
    # maps are transformed in complex64 throughout.
    c, s, _ = _kernels(ny, nx)
    half = nx // 2 + 1
    c = np.ascontiguousarray(c[:, :half], dtype=dtype)
    s = np.ascontiguousarray(s[:, :half], dtype=dtype)
    c.setflags(write=False)
    s.setflags(write=False)
    return c, s


_FFT_CHUNK = 4  # maps per FFT block: keeps the complex temporaries in cache (measured)


def _spin2_rotate(a: np.ndarray, b: np.ndarray | None,
                  sign: int) -> tuple[np.ndarray, np.ndarray]:
    """``(c·A + sign·s·B, −sign·s·A + c·B)`` in Fourier space, blockwise over leading axes.

    ``b=None`` stands for ``B = 0`` and saves its transform (the same numbers).
    """
    shape = a.shape
    ny, nx = shape[-2:]
    c, s = _half_kernels(ny, nx, a.dtype.name)
    a2 = a.reshape(-1, ny, nx)
    b2 = None if b is None else b.reshape(-1, ny, nx)
    out_a = np.empty_like(a2)
    out_b = np.empty_like(a2)
    for i in range(0, len(a2), _FFT_CHUNK):
        ah = sfft.rfft2(a2[i: i + _FFT_CHUNK])
        ra = c * ah
        if b2 is None:
            rb = (-sign * s) * ah
        else:
            bh = sfft.rfft2(b2[i: i + _FFT_CHUNK])
            ra += (sign * s) * bh
            rb = c * bh
            rb -= (sign * s) * ah
        out_a[i: i + _FFT_CHUNK] = sfft.irfft2(ra, s=(ny, nx))
        out_b[i: i + _FFT_CHUNK] = sfft.irfft2(rb, s=(ny, nx))
    return out_a.reshape(shape), out_b.reshape(shape)


@lru_cache(maxsize=16)
def _kernels(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k1, k2 = np.meshgrid(np.fft.fftfreq(nx), np.fft.fftfreq(ny))
    ksq = k1 * k1 + k2 * k2
    keep = ksq > 0
    if nx % 2 == 0:
        keep &= np.abs(k1) != 0.5
    if ny % 2 == 0:
        keep &= np.abs(k2) != 0.5
    ksq[~keep] = 1.0
    c = np.where(keep, (k1 * k1 - k2 * k2) / ksq, 0.0)
    s = np.where(keep, 2.0 * k1 * k2 / ksq, 0.0)
    for a in (c, s, keep):
        a.setflags(write=False)
    return c, s, keep


def fourier_kernels(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spin-2 Fourier kernels ``cos 2φ_k`` and ``sin 2φ_k`` of a ``(ny, nx)`` grid.

    Parameters
    ----------
    ny, nx : int
        Grid shape (rows, columns).

    Returns
    -------
    c, s : ndarray, shape (ny, nx), float64
        ``(k1² − k2²)/k²`` and ``2 k1 k2 / k²``; zero on the mean and Nyquist modes.
    keep : ndarray of bool, shape (ny, nx)
        True on the modes that carry signal (neither mean nor Nyquist).

    Notes
    -----
    The arrays are cached and read-only; this is the single place where lensviz
    builds a Fourier grid.
    """
    if ny < 2 or nx < 2:
        raise ValueError(f"grid must be at least 2x2, got ({ny}, {nx})")
    return _kernels(int(ny), int(nx))


@lru_cache(maxsize=16)
def _wavenumber(ny: int, nx: int) -> np.ndarray:
    k1, k2 = np.meshgrid(np.fft.fftfreq(nx), np.fft.fftfreq(ny))
    k = np.hypot(k1, k2)
    k.setflags(write=False)
    return k


def wavenumber(ny: int, nx: int) -> np.ndarray:
    """``|k| = sqrt(k1² + k2²)`` in cycles per pixel on the ``(ny, nx)`` FFT grid (cached)."""
    if ny < 1 or nx < 1:
        raise ValueError(f"grid must be at least 1x1, got ({ny}, {nx})")
    return _wavenumber(int(ny), int(nx))


def _check_pair(a: np.ndarray, b: np.ndarray, names: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim < 2:
        raise ValueError(f"{names} must be maps of shape (..., ny, nx), got shape {a.shape}")
    dtype = np.result_type(a.dtype, b.dtype, np.float32)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{names} must be real-valued, got dtype {dtype}")
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _pad(maps: np.ndarray, pad: int) -> np.ndarray:
    if pad == 0:
        return maps
    widths = [(0, 0)] * (maps.ndim - 2) + [(pad, pad), (pad, pad)]
    return np.pad(maps, widths)


def _crop(maps: np.ndarray, pad: int) -> np.ndarray:
    return maps if pad == 0 else maps[..., pad:-pad, pad:-pad]


def _check_pad(pad: int) -> int:
    if int(pad) != pad or pad < 0:
        raise ValueError(f"pad must be a non-negative integer number of pixels, got {pad!r}")
    return int(pad)


def ks93(e1, e2, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Kaiser–Squires inversion of a shear (or ellipticity) field.

    Parameters
    ----------
    e1, e2 : array_like, shape (..., ny, nx)
        Shear components; any leading batch axes are transformed independently.
    pad : int, optional
        Zero-pad this many pixels on every side before the FFT and crop after.
        Padding reduces the periodic-boundary artefacts at the map edges.

    Returns
    -------
    kappa_E, kappa_B : ndarray, shape (..., ny, nx)
        E- and B-mode convergence, mean zero. float32 input stays float32.

    Raises
    ------
    ValueError
        If the shapes differ, are not at least 2-D, or ``pad`` is negative.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> kappa = np.exp(-((yy - 32.0) ** 2 + (xx - 20.0) ** 2) / 18.0)   # a compact mass
    >>> g1, g2 = ks93inv(kappa)
    >>> kE, kB = ks93(g1, g2)
    >>> bool(np.allclose(kE, project_modes(kappa))), bool(np.allclose(kB, 0))
    (True, True)
    """
    e1, e2 = _check_pair(e1, e2, "e1 and e2")
    pad = _check_pad(pad)
    ke, kb = _spin2_rotate(_pad(e1, pad), _pad(e2, pad), +1)
    return _crop(ke, pad), _crop(kb, pad)


def ks93inv(kappa_E, kappa_B=None, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shear field of an E- (and optionally B-) mode convergence map.

    Parameters
    ----------
    kappa_E : array_like, shape (..., ny, nx)
        E-mode convergence.
    kappa_B : array_like, shape (..., ny, nx), optional
        B-mode convergence; zero if omitted.
    pad : int, optional
        Zero-padding on every side, as in :func:`ks93`.

    Returns
    -------
    gamma1, gamma2 : ndarray, shape (..., ny, nx)
        Shear components; float32 input stays float32.

    Examples
    --------
    >>> kappa = np.zeros((64, 64)); kappa[32, 32] = 1.0    # a point mass
    >>> g1, g2 = ks93inv(kappa)
    >>> bool(g1[32, 40] < 0 < g1[40, 32])                  # tangential: −γ1 along x
    True
    """
    kappa_E = np.asarray(kappa_E)
    ke, kb = _check_pair(kappa_E, kappa_E if kappa_B is None else kappa_B,
                         "kappa_E and kappa_B")
    pad = _check_pad(pad)
    # The inverse of the rotation by 2φ is the rotation by −2φ.
    g1, g2 = _spin2_rotate(_pad(ke, pad), None if kappa_B is None else _pad(kb, pad), -1)
    return _crop(g1, pad), _crop(g2, pad)


def project_modes(maps) -> np.ndarray:
    """Remove the mean and (for even sizes) Nyquist modes of ``(..., ny, nx)`` maps.

    This is exactly ``ks93(*ks93inv(maps))[0]``: the part of a field that KS93 can see.
    """
    maps = np.asarray(maps)
    dtype = np.result_type(maps.dtype, np.float32)
    _, _, keep = fourier_kernels(*maps.shape[-2:])
    mh = sfft.rfft2(maps.astype(dtype, copy=False))
    mh = mh * keep[:, : mh.shape[-1]]
    return sfft.irfft2(mh, s=maps.shape[-2:]).astype(dtype, copy=False)


@lru_cache(maxsize=32)
def _smoothing_matrix(n: int, sigma_px: float, mode: str, truncate: float,
                      dtype: str) -> np.ndarray:
    # Column j is scipy's 1-D Gaussian filter of the unit vector e_j, so A @ x equals
    # gaussian_filter1d(x, axis=0) exactly, boundary handling included.
    a = ndimage.gaussian_filter1d(np.eye(n), sigma_px, axis=0, mode=mode, truncate=truncate)
    a = a.astype(dtype)
    a.setflags(write=False)
    return a


def gaussian_smooth(maps, sigma_px: float, mode: str = "reflect",
                    truncate: float = 4.0) -> np.ndarray:
    """Gaussian smoothing of ``(..., ny, nx)`` maps over the last two axes only.

    Numerically identical to :func:`scipy.ndimage.gaussian_filter` with
    ``sigma=(0, …, σ, σ)``, but computed as ``A_y @ maps @ A_xᵀ`` with cached
    ``(n, n)`` filter matrices, which batches through BLAS.

    Parameters
    ----------
    maps : array_like, shape (..., ny, nx)
    sigma_px : float
        Standard deviation in pixels; 0 returns a copy.
    mode : str, optional
        Boundary handling, as in :func:`scipy.ndimage.gaussian_filter`.
    truncate : float, optional
        Kernel half-width in units of σ, as in scipy.

    Returns
    -------
    ndarray
        Smoothed maps, same shape; float32 stays float32.
    """
    maps = np.asarray(maps)
    if not np.isfinite(sigma_px) or sigma_px < 0:
        raise ValueError(f"sigma_px must be a finite, non-negative number, got {sigma_px!r}")
    if maps.ndim < 2:
        raise ValueError(f"expected maps of shape (..., ny, nx), got shape {maps.shape}")
    dtype = np.result_type(maps.dtype, np.float32)
    maps = maps.astype(dtype, copy=False)
    if sigma_px == 0:
        return maps.copy()
    ny, nx = maps.shape[-2:]
    a_y = _smoothing_matrix(ny, float(sigma_px), mode, float(truncate), dtype.name)
    a_x = _smoothing_matrix(nx, float(sigma_px), mode, float(truncate), dtype.name)
    return np.matmul(np.matmul(a_y, maps), a_x.T)


# === Wiener filter ===


class PowerSpectrum:
    """An isotropic power spectrum ``P(|k|)`` on a pixel grid, binned in ``|k|``.

    Normalisation: for an ``(ny, nx)`` map ``m`` with unnormalised FFT ``m̂``,
    ``P(k) = ⟨|m̂(k)|²⟩ / (ny nx)``, so white noise of variance σ² per pixel has
    ``P = σ²`` at every k, and ``Σ_k P(k) / (ny nx)`` is the map variance.

    Parameters
    ----------
    k_edges : array_like, shape (B + 1,)
        Bin edges in cycles per pixel, increasing, from 0 to at least ``√2/2``.
    power : array_like, shape (B,)
        Mean power in each bin (≥ 0).
    meta : dict, optional
        Provenance (the command that produced it, number of maps, seeds...).
    """

    def __init__(self, k_edges, power, meta: dict | None = None):
        self.k_edges = np.asarray(k_edges, dtype=np.float64)
        self.power = np.asarray(power, dtype=np.float64)
        if self.k_edges.ndim != 1 or self.power.shape != (len(self.k_edges) - 1,):
            raise ValueError(f"expected B+1 edges and B powers, got {self.k_edges.shape} "
                             f"and {self.power.shape}")
        if np.any(np.diff(self.k_edges) <= 0) or not np.all(np.isfinite(self.power)) or (
                np.any(self.power < 0)):
            raise ValueError("k_edges must increase and power must be finite and >= 0")
        self.meta = dict(meta or {})

    @property
    def k_centres(self) -> np.ndarray:
        return 0.5 * (self.k_edges[1:] + self.k_edges[:-1])

    def on_grid(self, ny: int, nx: int) -> np.ndarray:
        """The spectrum evaluated on the ``(ny, nx)`` FFT grid (bin value of each |k|)."""
        k = wavenumber(ny, nx)
        idx = np.clip(np.searchsorted(self.k_edges, k, side="right") - 1, 0, len(self.power) - 1)
        return self.power[idx]

    def save(self, path) -> None:
        """Write ``.npz`` with ``k_edges``, ``power`` and the provenance as JSON text."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, k_edges=self.k_edges, power=self.power,
                     meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path) -> PowerSpectrum:
        """Read a file written by :meth:`save`; ValueError naming the file if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(f["k_edges"], f["power"], json.loads(str(f["meta"])))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a lensviz power-spectrum file ({exc})") from None


def estimate_power_spectrum(maps, n_bins: int = 48, meta: dict | None = None) -> PowerSpectrum:
    """Binned isotropic power spectrum of ``(N, ny, nx)`` maps (mean removed per map).

    Bins are linear in ``|k|`` from 0 to ``√2/2`` cycles per pixel; the zero mode is
    excluded. See :class:`PowerSpectrum` for the normalisation.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"expected maps of shape (N, ny, nx), got {maps.shape}")
    ny, nx = maps.shape[-2:]
    k = wavenumber(ny, nx)
    edges = np.linspace(0.0, np.sqrt(0.5) + 1e-9, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, k, side="right") - 1, 0, n_bins - 1)
    power = np.zeros(ny * nx)
    for i in range(0, len(maps), 64):
        m = maps[i: i + 64]
        mh = sfft.fft2(m - m.mean(axis=(-2, -1), keepdims=True))
        power += (np.abs(mh) ** 2).sum(axis=0).ravel()
    power /= len(maps) * ny * nx
    nonzero = k.ravel() > 0
    sums = np.bincount(idx.ravel()[nonzero], power[nonzero], n_bins)
    counts = np.bincount(idx.ravel()[nonzero], None, n_bins)
    binned = np.divide(sums, counts, out=np.zeros(n_bins), where=counts > 0)
    return PowerSpectrum(edges, binned, meta)


def noise_power(delta_e, empty_sigma: float | None = None) -> np.ndarray:
    """White-noise power of the KS93 map of one or more samples, from their Δε maps.

    KS93 rotates (e1, e2) in Fourier space, so per-component white noise of variance
    σ² gives an E-mode noise power σ². With a Δε that varies across the map, the mean
    variance over the pixels that hold galaxies is used: this is the stationary
    approximation of the Wiener filter (the exact solution for inhomogeneous noise
    needs an iterative, e.g. messenger-field, solver).

    * Pixels with no galaxies, and masked pixels (``Δε ≥ empty_sigma``, default
      :data:`lensviz.constants.EMPTY_PIXEL_SIGMA`), carry e = 0 and are left out of
      the mean; a map with no measured pixel gets N = 0.
    * A sample without shape noise has ``Δε = 0`` in every measured pixel, so N = 0
      and :func:`wiener` reduces to KS93 on the modes with signal.

    .. math::

        N = \\frac{1}{|P|}\\sum_{p \\in P} \\Delta\\varepsilon_p^2,\\qquad
        P = \\{p : \\Delta\\varepsilon_p < \\sigma_{empty}\\}

    Parameters
    ----------
    delta_e : array_like, shape (..., ny, nx)
        The Δε channel of each sample. NaN pixels count as empty.
    empty_sigma : float, optional
        Δε at or above which a pixel is empty (default ``EMPTY_PIXEL_SIGMA``).

    Returns
    -------
    ndarray, shape (...)
        σ² per sample (float64).

    Raises
    ------
    ValueError
        If ``delta_e`` is not at least 2-D or ``empty_sigma`` is not a number > 0.

    Examples
    --------
    >>> d = np.full((2, 4, 4), 0.1)
    >>> d[0, 0, 0] = 1.0                 # one empty pixel, left out
    >>> d[1] = 0.0                       # no shape noise
    >>> noise_power(d)
    array([0.01, 0.  ])
    """
    d = np.asarray(delta_e, dtype=np.float64)
    if d.ndim < 2:
        raise ValueError(f"expected Δε maps of shape (..., ny, nx), got {d.shape}")
    empty = constants.EMPTY_PIXEL_SIGMA if empty_sigma is None else empty_sigma
    if not (isinstance(empty, (int, float, np.integer, np.floating)) and empty > 0):
        raise ValueError(f"empty_sigma must be a number > 0, got {empty_sigma!r}")
    has = d < empty
    var = np.where(has, d * d, 0.0).sum(axis=(-2, -1))
    n = has.sum(axis=(-2, -1))
    return np.divide(var, n, out=np.zeros_like(var), where=n > 0)


def wiener(e1, e2, noise_var, signal: PowerSpectrum, pad: int = 0) -> np.ndarray:
    """Wiener-filtered E-mode convergence: ``S/(S+N)`` applied to the KS93 map.

    .. math::

        \\hat\\kappa_W(\\mathbf k) = \\frac{S(k)}{S(k) + N}\\,\\hat\\kappa_E(\\mathbf k)

    the minimum-variance linear estimate of κ for a Gaussian field with power S in
    white noise of power N (Wiener 1949; for mass mapping see e.g. Jeffrey et al.
    2018, MNRAS 479, 2871).

    Parameters
    ----------
    e1, e2 : array_like, shape (..., ny, nx)
        Ellipticities (or shear).
    noise_var : float or array_like, shape (...)
        N, the per-pixel noise variance of each component (:func:`noise_power`).
        0 (no shape noise) returns the KS93 map projected onto the modes where S > 0;
        modes with S = 0 are set to 0 whatever N is, so the result is finite
        everywhere.
    signal : PowerSpectrum
        S, the κ power spectrum (pixel grid of the maps after padding).
    pad : int
        Zero-padding per side, as in :func:`ks93`.

    Returns
    -------
    ndarray, shape (..., ny, nx)
        float32 for float32 input.

    Raises
    ------
    ValueError
        If ``noise_var`` is negative or not finite, or the maps are malformed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> kappa = gaussian_smooth(rng.normal(size=(8, 64, 64)), 3.0)
    >>> signal = estimate_power_spectrum(kappa)
    >>> g1, g2 = ks93inv(kappa)
    >>> e1, e2 = g1 + rng.normal(0, 0.1, g1.shape), g2 + rng.normal(0, 0.1, g2.shape)
    >>> kappa_w = wiener(e1, e2, 0.1**2, signal)
    >>> def rms(m): return float(np.sqrt(np.mean((m - kappa) ** 2)))
    >>> rms(kappa_w) < rms(ks93(e1, e2)[0])    # Wiener beats raw KS93 in noise
    True
    """
    kappa_e, _ = ks93(e1, e2, pad=pad)
    dtype = kappa_e.dtype
    noise = np.asarray(noise_var, dtype=np.float64)
    if np.any(~np.isfinite(noise)) or np.any(noise < 0):
        raise ValueError(f"noise_var must be finite and >= 0, got {noise_var!r}")
    ny, nx = kappa_e.shape[-2:]
    s = signal.on_grid(ny, nx)[:, : nx // 2 + 1]
    noise = noise.reshape(noise.shape + (1, 1))
    filt = np.divide(s, s + noise, out=np.zeros(np.broadcast_shapes(s.shape, noise.shape)),
                     where=(s + noise) > 0)
    kh = sfft.rfft2(kappa_e)
    out = sfft.irfft2(kh * filt, s=(ny, nx))
    return out.astype(dtype, copy=False)
