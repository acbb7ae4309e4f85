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

from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

__all__ = [
    "frequencies",
    "fourier_kernels",
    "wavenumber",
    "ks93",
    "ks93inv",
    "project_modes",
    "gaussian_smooth",
]


#: Grids up to this many points keep their half-plane kernels cached (8 MB a float32
#: pair at 1024²); larger ones (whole fields, padded) build them on each call, so that a
#: server that sees many large fields does not keep hundreds of MB of kernels.
_KERNEL_CACHE_MAX_POINTS = 1 << 20


def _build_half_kernels(ny: int, nx: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    # The kernels of _kernels on the rfft2 half-plane, built from the 1-D frequencies
    # (no full-plane temporaries), in the input's real dtype so that float32 maps are
    # transformed in complex64 throughout. The Nyquist column, where rfftfreq's +0.5
    # differs from fftfreq's −0.5, is zeroed in both.
    k1 = np.fft.rfftfreq(nx)[None, :]
    k2 = np.fft.fftfreq(ny)[:, None]
    ksq = k1 * k1 + k2 * k2
    keep = ksq > 0
    if nx % 2 == 0:
        keep &= np.abs(k1) != 0.5
    if ny % 2 == 0:
        keep &= np.abs(k2) != 0.5
    ksq[~keep] = 1.0
    c = np.where(keep, (k1 * k1 - k2 * k2) / ksq, 0.0).astype(dtype)
    s = np.where(keep, 2.0 * k1 * k2 / ksq, 0.0).astype(dtype)
    c.setflags(write=False)
    s.setflags(write=False)
    return c, s


_cached_half_kernels = lru_cache(maxsize=32)(_build_half_kernels)


def _half_kernels(ny: int, nx: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    if ny * nx <= _KERNEL_CACHE_MAX_POINTS:
        return _cached_half_kernels(ny, nx, dtype)
    return _build_half_kernels(ny, nx, dtype)


_FFT_CHUNK = 4  # maps per FFT block: keeps the complex temporaries in cache (measured)


def _spin2_rotate(a: np.ndarray, b: np.ndarray | None, sign: int) -> tuple[np.ndarray, np.ndarray]:
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
        ah = sfft.rfft2(a2[i : i + _FFT_CHUNK])
        ra = c * ah
        if b2 is None:
            rb = (-sign * s) * ah
        else:
            bh = sfft.rfft2(b2[i : i + _FFT_CHUNK])
            ra += (sign * s) * bh
            rb = c * bh
            rb -= (sign * s) * ah
        out_a[i : i + _FFT_CHUNK] = sfft.irfft2(ra, s=(ny, nx))
        out_b[i : i + _FFT_CHUNK] = sfft.irfft2(rb, s=(ny, nx))
    return out_a.reshape(shape), out_b.reshape(shape)


@lru_cache(maxsize=16)
def _frequencies(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    k1, k2 = np.meshgrid(np.fft.fftfreq(nx), np.fft.fftfreq(ny))
    k1.setflags(write=False)
    k2.setflags(write=False)
    return k1, k2


def frequencies(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT frequencies ``k1`` (along x, the last axis) and ``k2`` (along y) of a grid.

    This is the one Fourier grid of lensviz: :func:`fourier_kernels`, :func:`wavenumber`,
    the simulator's power spectra (:mod:`lensviz.simulate`) and the noise-aware features
    (:mod:`lensviz.nn.features`) are all built on it.

    Parameters
    ----------
    ny, nx : int
        Grid shape (rows, columns).

    Returns
    -------
    k1, k2 : ndarray, shape (ny, nx), float64
        Cycles per pixel, in :func:`numpy.fft.fftfreq` order (zero first, then the
        positive and the negative frequencies); cached and read-only.

    Examples
    --------
    >>> k1, k2 = frequencies(4, 4)
    >>> k1[0]
    array([ 0.  ,  0.25, -0.5 , -0.25])
    """
    if ny < 1 or nx < 1:
        raise ValueError(f"grid must be at least 1x1, got ({ny}, {nx})")
    return _frequencies(int(ny), int(nx))


@lru_cache(maxsize=16)
def _kernels(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k1, k2 = _frequencies(ny, nx)
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
    The arrays are cached and read-only; they are built on :func:`frequencies`, the
    single place where lensviz builds a Fourier grid.
    """
    if ny < 2 or nx < 2:
        raise ValueError(f"grid must be at least 2x2, got ({ny}, {nx})")
    return _kernels(int(ny), int(nx))


@lru_cache(maxsize=16)
def _wavenumber(ny: int, nx: int) -> np.ndarray:
    k1, k2 = _frequencies(ny, nx)
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
    ke, kb = _check_pair(kappa_E, kappa_E if kappa_B is None else kappa_B, "kappa_E and kappa_B")
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
def _smoothing_matrix(
    n: int, sigma_px: float, mode: str, truncate: float, dtype: str
) -> np.ndarray:
    # Column j is scipy's 1-D Gaussian filter of the unit vector e_j, so A @ x equals
    # gaussian_filter1d(x, axis=0) exactly, boundary handling included.
    a = ndimage.gaussian_filter1d(np.eye(n), sigma_px, axis=0, mode=mode, truncate=truncate)
    a = a.astype(dtype)
    a.setflags(write=False)
    return a


def gaussian_smooth(
    maps, sigma_px: float, mode: str = "reflect", truncate: float = 4.0
) -> np.ndarray:
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
