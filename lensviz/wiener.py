"""The Wiener filter of the KS93 map: the κ power spectrum S, the noise power N, ``S/(S+N)``.

The filter (:func:`wiener`) is the minimum-variance linear estimate of κ for a Gaussian
field of power S in white noise of power N, applied to the KS93 E mode
(:func:`lensviz.inversion.ks93`, whose Fourier grid it shares). S is a binned isotropic
spectrum (:class:`PowerSpectrum`, estimated from simulated maps by
:func:`estimate_power_spectrum` and shipped as ``weights/kappa_power.npz``); N comes
from each sample's own Δε channel (:func:`noise_power`). See docs/reference.md for
the definitions.
"""

from __future__ import annotations

import json
import math

import numpy as np
from scipy import fft as sfft

from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.data.errors import DataError, quote
from lensviz.data.npy import open_npz
from lensviz.inversion import ks93, wavenumber

__all__ = ["PowerSpectrum", "estimate_power_spectrum", "noise_power", "wiener"]

#: The arrays of a power-spectrum file (:meth:`PowerSpectrum.save`); ``pixel_arcmin`` is
#: optional (files written before it are at the challenge's 0.5′).
_FILE_ARRAYS = ("k_edges", "power", "meta")


class PowerSpectrum:
    """An isotropic power spectrum ``P(|k|)`` on pixel grids, binned in ``|k|``, measured
    at one pixel scale or several.

    Normalisation: for an ``(ny, nx)`` map ``m`` with unnormalised FFT ``m̂``,
    ``P(k) = ⟨|m̂(k)|²⟩ / (ny nx)``, so white noise of variance σ² per pixel has
    ``P = σ²`` at every k, and ``Σ_k P(k) / (ny nx)`` is the map variance.

    Pixel scale. The spectrum of the sky, ``C_ℓ``, does not depend on the pixels; on a
    grid of pixel side θ it reads ``P_θ(k) = C(2πk/θ) / θ²`` (k in cycles per pixel). A
    spectrum measured at θ_s therefore gives the one at θ as

    .. math::

        P_\\theta(k) = \\frac{\\theta_s^2}{\\theta^2}\\,P_{\\theta_s}\\!\\Big(k\\,
        \\frac{\\theta_s}{\\theta}\\Big)

    up to the pixel window, which differs. :meth:`on_grid` converts each measured scale
    so, and interpolates ``log P`` linearly in ``log θ`` between the two measured scales
    around θ (beyond them, the nearest is converted).

    Parameters
    ----------
    k_edges : array_like, shape (B + 1,)
        Bin edges in cycles per pixel, increasing, from 0 to at least ``√2/2``.
    power : array_like, shape (B,) or (S, B)
        Mean power in each bin (≥ 0), at each of the ``S`` pixel scales.
    meta : dict, optional
        Provenance (the command that produced it, number of maps, seeds...).
    pixel_arcmin : float or array_like, shape (S,)
        The pixel sides [arcmin] the rows of ``power`` were measured at, increasing
        (default: the challenge's 0.5′).
    """

    def __init__(self, k_edges, power, meta: dict | None = None, pixel_arcmin=None):
        self.k_edges = np.asarray(k_edges, dtype=np.float64)
        power = np.asarray(power, dtype=np.float64)
        self.powers = power[None] if power.ndim == 1 else power
        scales = constants.PIXEL_ARCMIN if pixel_arcmin is None else pixel_arcmin
        self.pixel_arcmin = np.atleast_1d(np.asarray(scales, dtype=np.float64))
        if (
            self.k_edges.ndim != 1
            or self.powers.ndim != 2
            or self.powers.shape[1:] != (len(self.k_edges) - 1,)
        ):
            raise ValueError(
                f"expected B+1 edges and B powers per scale, got {self.k_edges.shape} and "
                f"{power.shape}"
            )
        if self.pixel_arcmin.shape != (len(self.powers),):
            raise ValueError(
                f"expected one pixel scale per row of power ({len(self.powers)}), got "
                f"{self.pixel_arcmin.shape}"
            )
        if not np.all(np.isfinite(self.k_edges)) or np.any(np.diff(self.k_edges) <= 0):
            raise ValueError("k_edges must be finite and increase")
        if not np.all(np.isfinite(self.powers)) or np.any(self.powers < 0):
            raise ValueError("power must be finite and >= 0")
        if not (np.all(self.pixel_arcmin > 0) and np.all(np.diff(self.pixel_arcmin) > 0)):
            raise ValueError("pixel_arcmin must be positive and increase")
        self.meta = dict(meta or {})

    @property
    def k_centres(self) -> np.ndarray:
        return 0.5 * (self.k_edges[1:] + self.k_edges[:-1])

    @property
    def power(self) -> np.ndarray:
        """The binned power measured at the scale nearest the challenge's 0.5′ ``(B,)``
        (the only one of a single-scale spectrum); all of them are ``powers`` ``(S, B)``."""
        return self.powers[int(np.argmin(np.abs(np.log(self.pixel_arcmin / 0.5))))]

    def _row_at(self, row: int, k: np.ndarray, pixel_arcmin: float) -> np.ndarray:
        """Row ``row`` converted to pixels of ``pixel_arcmin`` (class docstring), at ``k``."""
        ratio = self.pixel_arcmin[row] / pixel_arcmin
        idx = np.searchsorted(self.k_edges, k * ratio, side="right") - 1
        return self.powers[row][np.clip(idx, 0, self.powers.shape[1] - 1)] * ratio**2

    def on_grid(self, ny: int, nx: int, pixel_arcmin: float = constants.PIXEL_ARCMIN) -> np.ndarray:
        """The spectrum on the ``(ny, nx)`` FFT grid of pixels of side ``pixel_arcmin``
        [arcmin] (the bin value of each converted |k|)."""
        k = wavenumber(ny, nx)
        p = float(pixel_arcmin)
        if not (math.isfinite(p) and p > 0):
            raise ValueError(f"pixel_arcmin must be a positive number, got {pixel_arcmin!r}")
        scales = self.pixel_arcmin
        hi = int(np.searchsorted(scales, p))
        if hi < len(scales) and scales[hi] == p:
            return self._row_at(hi, k, p)
        if hi == 0 or hi == len(scales):
            return self._row_at(0 if hi == 0 else len(scales) - 1, k, p)
        lo = hi - 1
        t = math.log(p / scales[lo]) / math.log(scales[hi] / scales[lo])
        a, b = self._row_at(lo, k, p), self._row_at(hi, k, p)
        with np.errstate(divide="ignore"):
            mixed = np.exp((1 - t) * np.log(a) + t * np.log(b))
        return np.where((a > 0) & (b > 0), mixed, (1 - t) * a + t * b)

    def save(self, path) -> None:
        """Write ``.npz`` with ``k_edges``, ``power``, ``pixel_arcmin`` and the provenance."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(
                tmp,
                k_edges=self.k_edges,
                power=self.powers,
                pixel_arcmin=self.pixel_arcmin,
                meta=np.array(json.dumps(self.meta)),
            )

    @classmethod
    def load(cls, path) -> PowerSpectrum:
        """Read a file written by :meth:`save`, as a hostile file.

        The archive is opened by :func:`lensviz.data.npy.open_npz` (zip directory and
        ``.npy`` headers checked before any data is read, nothing unpickled).

        Raises
        ------
        FileNotFoundError
            A missing path.
        DataError
            (a ValueError) Naming the file: not an ``.npz`` archive, corrupt, an array
            missing or of the wrong kind, or values that are not a power spectrum.
        """
        with open_npz(path) as npz:
            missing = [name for name in _FILE_ARRAYS if name not in npz.members]
            if missing:
                raise DataError(
                    f"{npz.source}: not a lensviz power-spectrum file: no array "
                    f"{', '.join(missing)} (found {quote(sorted(npz.files))}); expected "
                    "k_edges, power and meta, as written by PowerSpectrum.save"
                )
            arrays = {name: npz.open(name).read_all() for name in _FILE_ARRAYS}
            if "pixel_arcmin" in npz.members:
                arrays["pixel_arcmin"] = npz.open("pixel_arcmin").read_all()
            source = npz.source
        for name in ("k_edges", "power", "pixel_arcmin"):
            if name in arrays and arrays[name].dtype.kind not in "fiu":
                raise DataError(
                    f"{source} [{name}]: holds dtype {quote(arrays[name].dtype, 40)}; "
                    "expected real numbers"
                )
        meta = arrays["meta"]
        if meta.shape != () or meta.dtype.kind != "U":
            raise DataError(
                f"{source} [meta]: holds shape {meta.shape} dtype {quote(meta.dtype, 40)}; "
                "expected one string of JSON"
            )
        try:
            meta = json.loads(str(meta))
        except (ValueError, RecursionError) as exc:  # bad JSON, or nested too deep
            raise DataError(f"{source} [meta]: is not JSON ({quote(exc, 80)})") from None
        if not isinstance(meta, dict):
            raise DataError(
                f"{source} [meta]: holds JSON {type(meta).__name__}; expected an object"
            )
        try:
            return cls(arrays["k_edges"], arrays["power"], meta, arrays.get("pixel_arcmin"))
        except ValueError as exc:
            raise DataError(f"{source}: not a power spectrum: {exc}") from None


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
        m = maps[i : i + 64]
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


def wiener(
    e1,
    e2,
    noise_var,
    signal: PowerSpectrum,
    pad: int = 0,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> np.ndarray:
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
        S, the κ power spectrum, taken at the maps' pixel scale on the grid of the maps
        after padding (:meth:`PowerSpectrum.on_grid`).
    pad : int
        Zero-padding per side, as in :func:`ks93`.
    pixel_arcmin : float
        Pixel side of the maps [arcmin].

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
    >>> from lensviz.inversion import gaussian_smooth, ks93inv
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
    s = signal.on_grid(ny, nx, pixel_arcmin)[:, : nx // 2 + 1]
    noise = noise.reshape(noise.shape + (1, 1))
    filt = np.divide(
        s, s + noise, out=np.zeros(np.broadcast_shapes(s.shape, noise.shape)), where=(s + noise) > 0
    )
    kh = sfft.rfft2(kappa_e)
    out = sfft.irfft2(kh * filt, s=(ny, nx))
    return out.astype(dtype, copy=False)
