"""Calibrated error bars: a ±σ for every pixel of every method's κ map.

Every reconstruction ``κ̂`` of lensviz comes with ``kappa_std``, the half-width of the
band ``κ̂ ± kappa_std`` that holds the true κ in 68.3 % of the pixels, and ``kappa_hw95``,
that of the 95.4 % band. Both are a per-pixel *shape* ``s(x)`` times a factor calibrated
on simulations (split conformal prediction; e.g. Angelopoulos & Bates 2023):

.. math::

    \\mathrm{kappa\\_std}(x) = q_{68}(n_\\mathrm{gal})\\, s(x),\\qquad
    \\mathrm{kappa\\_hw95}(x) = q_{95}(n_\\mathrm{gal})\\, s(x)

where ``q`` is the 68.3 % (95.4 %) quantile of ``|κ − κ̂| / s`` over the pixels of
calibration fields at that depth and pixel scale (seeds disjoint from training and
tests), interpolated in log n_gal between depth nodes and in log pixel side between
scale nodes. The 95.4 % band is calibrated on its own: the errors
are heavy-tailed near cluster cores, so ``q95`` is not ``2 q68``.

The shape of the linear methods (KS93, smoothed or not, and the Wiener filter) is
analytic (:func:`linear_shape`):

.. math::

    s^2(x) = c\\,\\sigma^2_\\mathrm{noise}(x) + a\\,V_\\mathrm{bias} + h\\,V_\\mathrm{sheet}
    + \\big(b_2\\,m_2(x) + b_8\\,m_8(x) + b_{32}\\,m_{32}(x) + e\\big)\\,V_\\kappa

* ``σ²_noise`` is the shape noise propagated exactly through the method's linear filter
  (:func:`noise_variance`): each filled pixel's two components carry variance Δε²,
  so ``σ²_noise = (A_1² + A_2²) ⊛ Δε²``, with ``A_i`` the real-space kernels from
  ``e_i`` to ``κ̂`` on the zero-padded grid: exact for the circular transform the
  method performs, near masks and field edges included;
* ``V_bias = ⟨|1 − W(k)|² S(k)⟩``, the variance of what the filter ``W`` removes from a
  Gaussian field of power S (the smoothing bias; 0 for raw KS93);
* ``V_sheet``, the variance of the mean of κ over the field (``Σ_k S(k) |Ŵ(k)|² / n²``
  for the field's window ``W`` of ``n`` pixels in the padded grid): KS93 cannot recover
  the mean (the mass-sheet degeneracy), and that error, the same in every pixel, shrinks
  as the field grows (without shape noise it is most of KS93's error on a 128² field);
* ``V_κ = ⟨S(k)⟩``, the signal variance, times ``m_2(x)``, ``m_8(x)`` and ``m_32(x)``,
  the share of the neighbourhood without data (1 − the filled pixels, the field
  zero-padded, smoothed by 2, 8 and 32 px): where there are no galaxies, in holes and
  beyond the field's edges, the map knows nothing of κ, and the mass beyond a field's
  edges biases KS93 tens of pixels in; plus a floor ``e V_κ`` for what no term names
  (the mass sheet, the reduced shear of cluster cores);

with S the κ power spectrum at the field's pixel scale
(:class:`lensviz.wiener.PowerSpectrum`), and ``(c, a, h, b_2, b_8, b_32, e)`` fitted per
method and depth by the Gaussian likelihood of the calibration residuals
(:func:`fit_linear`) before the conformal factors. The UNet's shape comes from a moment
network trained on its residuals (:mod:`lensviz.nn.errorbars`).

The tables live in an :class:`ErrorModel` per method, saved as JSON
(:meth:`ErrorModel.to_dict`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy.optimize import minimize

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.depth import effective_n_gal
from lensviz.evaluation import ks93_predictor, wiener_predictor
from lensviz.inversion import _half_kernels, gaussian_smooth, wavenumber
from lensviz.wiener import PowerSpectrum, noise_power

__all__ = [
    "COVERAGE_68",
    "COVERAGE_95",
    "DEPTH_NODES",
    "ErrorModel",
    "gaussian_transfer",
    "wiener_transfer",
    "noise_variance",
    "missing_shares",
    "linear_shape",
    "conformal_quantiles",
    "fit_linear",
    "coverage",
    "SIGMA_NODES",
    "depth_node_index",
    "scale_node_index",
    "fill_nodes",
    "SCALE_NODES",
    "linear_calibration_data",
    "calibrate_linear",
    "save_error_models",
    "load_error_models",
    "default_error_models",
    "field_depth",
    "linear_errorbars",
    "sheet_variance",
]

#: The share of pixels the ±kappa_std band holds: erf(1/√2).
COVERAGE_68 = math.erf(1 / math.sqrt(2))
#: The share of pixels the ±kappa_hw95 band holds: erf(2/√2).
COVERAGE_95 = math.erf(2 / math.sqrt(2))
#: Depth nodes [galaxies per arcmin²] of the calibration tables; ``inf``: no shape noise.
DEPTH_NODES = (5.0, 10.0, 30.0, 100.0, 300.0, 1000.0, math.inf)
#: Pixel-side nodes [arcmin] of the conformal factors: the training mix's 0.2–0.4′, the
#: challenge's 0.5′ (40 % of the mix) and 0.6–2′, each calibrated on its own samples.
SCALE_NODES = (0.3, 0.5, 1.0)
#: Smoothings [pixels] of the missing-data shares m_2(x), m_8(x), m_32(x).
MISSING_SMOOTH_PX = (2.0, 8.0, 32.0)
#: Number of shape parameters of a linear method: (c, a, h, b_2, b_8, b_32, e).
N_LINEAR_PARAMS = 3 + len(MISSING_SMOOTH_PX) + 1


# === The shapes of the linear methods ===


def gaussian_transfer(ny: int, nx: int, sigma_px: float) -> np.ndarray:
    """Fourier transfer of a Gaussian smoothing of σ pixels, ``exp(−2π²σ²k²)``, ``(ny, nx)``."""
    return np.exp(-2.0 * np.pi**2 * sigma_px**2 * wavenumber(ny, nx) ** 2)


def wiener_transfer(
    ny: int, nx: int, signal: PowerSpectrum, noise_var: float, pixel_arcmin: float
) -> np.ndarray:
    """The Wiener filter ``S/(S+N)`` on a grid (:func:`lensviz.wiener.wiener`'s)."""
    s = signal.on_grid(ny, nx, pixel_arcmin)
    total = s + noise_var
    return np.divide(s, total, out=np.zeros_like(s), where=total > 0)


def _squared_kernel_hat(py: int, px: int, transfer: np.ndarray) -> np.ndarray:
    """rfft2 of ``A_1² + A_2²``, the real-space kernels from e1, e2 to the filtered κ_E."""
    c, s = _half_kernels(py, px, "float64")
    half = px // 2 + 1
    w = transfer[:, :half]
    a1 = sfft.irfft2(w * c, s=(py, px))
    a2 = sfft.irfft2(w * s, s=(py, px))
    return sfft.rfft2(a1 * a1 + a2 * a2)


def noise_variance(delta_e, transfer, pad: int = 0) -> np.ndarray:
    """Shape-noise variance of a linear E-mode map, propagated exactly.

    The map is ``κ̂ = crop(F⁻¹[W (c ê₁ + s ê₂)])`` of the ellipticities zero-padded by
    ``pad`` (KS93 with the filter ``W``). Each filled pixel's components carry
    independent noise of variance Δε², empty ones none, so

    .. math::

        \\mathrm{Var}\\,\\hat\\kappa(x) = \\sum_y \\big(A_1^2 + A_2^2\\big)(x - y)\\,
        \\Delta\\varepsilon^2(y)

    a circular convolution on the padded grid, done by FFT.

    Parameters
    ----------
    delta_e : array_like, shape (ny, nx)
        Δε of one field; empty pixels (``≥ EMPTY_PIXEL_SIGMA``) carry no noise.
    transfer : array_like, shape (ny + 2 pad, nx + 2 pad)
        ``W(k)`` on the padded grid.
    pad : int
        Zero-padding per side [pixels], as the method pads.

    Returns
    -------
    ndarray, shape (ny, nx), float64

    Examples
    --------
    White noise through raw KS93 on a periodic grid keeps its variance (KS93 is a
    rotation of (e1, e2) in Fourier space), up to the mean and Nyquist modes it drops:

    >>> var = noise_variance(np.full((64, 64), 0.1), np.ones((64, 64)))
    >>> round(float(var.mean()), 4)
    0.0097
    """
    d = np.asarray(delta_e, dtype=np.float64)
    ny, nx = d.shape
    transfer = np.asarray(transfer, dtype=np.float64)
    if transfer.shape != (ny + 2 * pad, nx + 2 * pad):
        raise ValueError(
            f"transfer {transfer.shape} is not the padded grid {(ny + 2 * pad, nx + 2 * pad)}"
        )
    return _convolve_noise(d, _squared_kernel_hat(*transfer.shape, transfer), pad)


def _convolve_noise(d: np.ndarray, kernel_hat: np.ndarray, pad: int) -> np.ndarray:
    ny, nx = d.shape
    py, px = ny + 2 * pad, nx + 2 * pad
    var = np.zeros((py, px))
    filled = d < constants.EMPTY_PIXEL_SIGMA
    var[pad : pad + ny, pad : pad + nx] = np.where(filled, d * d, 0.0)
    out = sfft.irfft2(sfft.rfft2(var) * kernel_hat, s=(py, px))
    return np.maximum(out[pad : pad + ny, pad : pad + nx], 0.0)


@lru_cache(maxsize=32)
def _gaussian_kernel_hat(py: int, px: int, sigma_px: float) -> np.ndarray:
    """The squared-kernel transform of KS93 smoothed by σ (cached: the same for every map)."""
    hat = _squared_kernel_hat(py, px, gaussian_transfer(py, px, sigma_px)).astype(np.complex64)
    hat.setflags(write=False)
    return hat


def missing_shares(delta_e, pad: int = 0) -> np.ndarray:
    """``m_s(x)`` at each smoothing of :data:`MISSING_SMOOTH_PX`, ``(3, ..., ny, nx)``.

    ``m_s = 1 − filled ⊛ G_s``: the share of the neighbourhood (a Gaussian of ``s`` px)
    without galaxies, 0 in full data and 1 deep in a hole. The maps ``(..., ny, nx)`` are
    zero-padded by ``pad`` (beyond a field's edges there are no galaxies either) and
    smoothed on that periodic grid, as the method's own FFTs see it (in float32): one forward
    transform for the three smoothings.

    Examples
    --------
    >>> d = np.full((64, 64), 0.1); d[20:44, 20:44] = 1.0     # a 24 px hole
    >>> m2, m8, m32 = missing_shares(d, pad=32)
    >>> bool(m2[10, 10] < 1e-3 and m2[32, 32] > 0.999 and 0.4 < m32[32, 32] < 1)
    True
    """
    d = np.asarray(delta_e)
    filled_hat = _filled_hat(d, pad)
    transfers = _missing_transfers(*_padded(d.shape, pad))
    return np.stack(
        [np.clip(1.0 - _smooth(filled_hat, g, d.shape, pad), 0.0, 1.0) for g in transfers]
    )


def _padded(shape, pad: int) -> tuple[int, int]:
    return shape[-2] + 2 * pad, shape[-1] + 2 * pad


def _filled_hat(delta_e: np.ndarray, pad: int) -> np.ndarray:
    """The half-plane transform of "this pixel has galaxies", zero-padded, float32."""
    widths = [(0, 0)] * (delta_e.ndim - 2) + [(pad, pad), (pad, pad)]
    filled = np.pad((delta_e < constants.EMPTY_PIXEL_SIGMA).astype(np.float32), widths)
    return sfft.rfft2(filled)


@lru_cache(maxsize=16)
def _missing_transfers(py: int, px: int) -> np.ndarray:
    """The half-plane Gaussian transfers of :data:`MISSING_SMOOTH_PX`, ``(3, py, px//2+1)``."""
    half = px // 2 + 1
    g = np.stack([gaussian_transfer(py, px, s)[:, :half] for s in MISSING_SMOOTH_PX])
    g = g.astype(np.float32)
    g.setflags(write=False)
    return g


def _smooth(filled_hat: np.ndarray, transfer: np.ndarray, shape, pad: int) -> np.ndarray:
    """The inverse transform of ``filled_hat · transfer``, cropped to the field."""
    ny, nx = shape[-2:]
    out = sfft.irfft2(filled_hat * transfer, s=_padded(shape, pad))
    return out[..., pad : pad + ny, pad : pad + nx]


def _missing_term(filled_hat: np.ndarray, b: np.ndarray, shape, pad: int) -> np.ndarray:
    """``Σ_s b_s m_s(x)`` of maps ``(N, ny, nx)`` with weights ``b`` ``(N, 3)``: the
    weighted smoothings summed in Fourier space, one inverse transform per map."""
    b = np.asarray(b, np.float32)
    transfer = np.einsum("ns,syx->nyx", b, _missing_transfers(*_padded(shape, pad)))
    return b.sum(axis=1)[:, None, None] - _smooth(filled_hat, transfer, shape, pad)


@lru_cache(maxsize=64)
def sheet_variance(ny: int, nx: int, pad: int, signal: PowerSpectrum, pixel_arcmin: float) -> float:
    """``V_sheet``: the variance of the mean of κ over an ``(ny, nx)`` field, padded by
    ``pad``, for a field of power S (module docstring)."""
    py, px = ny + 2 * pad, nx + 2 * pad
    window = np.zeros((py, px))
    window[pad : pad + ny, pad : pad + nx] = 1.0
    w2 = np.abs(sfft.fft2(window)) ** 2
    s = signal.on_grid(py, px, pixel_arcmin)
    return float((s * w2).sum() / (py * px) / (ny * nx) ** 2)


@lru_cache(maxsize=32)
def _grid_spectrum(signal: PowerSpectrum, py: int, px: int, pixel_arcmin: float) -> np.ndarray:
    """S on a grid, cached per grid and scale (read-only)."""
    s = signal.on_grid(py, px, pixel_arcmin)
    s.setflags(write=False)
    return s


@lru_cache(maxsize=64)
def _ks93_terms(signal, py: int, px: int, sigma_px: float, pixel_arcmin: float):
    """``(V_bias, V_κ)`` of KS93 smoothed by σ on a grid (the same for every map)."""
    s = _grid_spectrum(signal, py, px, pixel_arcmin)
    w = gaussian_transfer(py, px, sigma_px)
    return float(np.mean((1.0 - w) ** 2 * s)), float(np.mean(s))


#: Noise powers [per pixel] of the Wiener kernels' table: the kernel of a map's own N is
#: interpolated between the two around it (in log N; 1.5× apart, within 1 % of exact).
_WIENER_TABLE_N = np.geomspace(1e-6, 4.0, 40)
#: Grids up to this many points use the table; larger ones (whole fields, one map at a
#: time) compute their kernel exactly.
_WIENER_TABLE_MAX_POINTS = 256 * 256


@lru_cache(maxsize=8)
def _wiener_kernel_table(signal, py: int, px: int, pixel_arcmin: float):
    """The squared-kernel transforms and ``V_bias`` of the Wiener filter at each noise
    power of :data:`_WIENER_TABLE_N` (read-only)."""
    s = _grid_spectrum(signal, py, px, pixel_arcmin)
    kernels, biases = [], []
    for n in _WIENER_TABLE_N:
        w = s / (s + n)
        kernels.append(_squared_kernel_hat(py, px, w))
        biases.append(float(np.mean((1.0 - w) ** 2 * s)))
    table = np.stack(kernels).astype(np.complex64)
    table.setflags(write=False)
    return table, np.asarray(biases)


def _table_weights(noise: np.ndarray):
    """Neighbouring table rows ``j, k`` and weights ``t`` of each noise power (log N)."""
    grid = np.log(_WIENER_TABLE_N)
    x = np.log(np.clip(noise, _WIENER_TABLE_N[0], _WIENER_TABLE_N[-1]))
    k = np.clip(np.searchsorted(grid, x), 1, len(grid) - 1)
    j = k - 1
    return j, k, (x - grid[j]) / (grid[k] - grid[j])


def _linear_parts(eps: np.ndarray, method: str, signal, sigma_px: float, pad: int, pixel_arcmin):
    """``(σ²_noise (N, ny, nx), V_bias (N,), V_sheet, V_κ)`` of maps ``(N, ny, nx, 3)``."""
    n_maps, ny, nx = eps.shape[:3]
    py, px = ny + 2 * pad, nx + 2 * pad
    d = np.asarray(eps[..., 2], np.float32)  # float32 FFTs: the error bar of an error bar
    filled = d < constants.EMPTY_PIXEL_SIGMA
    var = np.zeros((n_maps, py, px), np.float32)
    var[:, pad : pad + ny, pad : pad + nx] = np.where(filled, d * d, 0.0)
    var_hat = sfft.rfft2(var)
    p = float(pixel_arcmin)
    if method == "ks93":
        kernel = _gaussian_kernel_hat(py, px, float(sigma_px))
        out = sfft.irfft2(var_hat * kernel, s=(py, px))
        v_bias, v_kappa = _ks93_terms(signal, py, px, float(sigma_px), p)
        v_bias = np.full(n_maps, v_bias)
    elif method == "wiener":
        noise = noise_power(d)
        s = _grid_spectrum(signal, py, px, p)
        v_kappa = float(np.mean(s))
        if py * px <= _WIENER_TABLE_MAX_POINTS:
            # small grids, many maps: kernels blended from the cached table, one batched FFT
            table, biases = _wiener_kernel_table(signal, py, px, p)
            j, k, t = _table_weights(noise)
            t3 = t[:, None, None]
            out = sfft.irfft2(var_hat * ((1 - t3) * table[j] + t3 * table[k]), s=(py, px))
            v_bias = (1 - t) * biases[j] + t * biases[k]
        else:  # whole fields, a map at a time: each map's own kernel, exactly
            out = np.empty((n_maps, py, px))
            v_bias = np.empty(n_maps)
            for i in range(n_maps):
                w = wiener_transfer(py, px, signal, float(noise[i]), p)
                out[i] = sfft.irfft2(var_hat[i] * _squared_kernel_hat(py, px, w), s=(py, px))
                v_bias[i] = np.mean((1.0 - w) ** 2 * s)
    else:
        raise ValueError(f"method must be 'ks93' or 'wiener', got {method!r}")
    noise_var = np.maximum(out[:, pad : pad + ny, pad : pad + nx], 0.0)
    return noise_var, v_bias, sheet_variance(ny, nx, pad, signal, p), v_kappa


def linear_shape(
    eps,
    method: str,
    signal: PowerSpectrum,
    params=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
    sigma_px: float = 0.0,
    pad: int = 0,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
    parts: bool = False,
):
    """The shape ``s(x)`` of a linear method's error bar (module docstring).

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3)
        One field.
    method : {"ks93", "wiener"}
        KS93 smoothed by ``sigma_px`` (0: raw), or the Wiener filter.
    signal : PowerSpectrum
        S, for the signal terms and the Wiener filter.
    params : (c, a, h, b_2, b_8, b_32, e)
        Weights of the noise, bias, mass-sheet, missing-data (2, 8, 32 px) and floor terms.
    sigma_px : float
        KS93's Gaussian smoothing [pixels].
    pad : int
        The method's zero-padding per side.
    pixel_arcmin : float
        Pixel side [arcmin].
    parts : bool
        Return ``(σ²_noise(x), V_bias, V_sheet, V_κ)`` instead of ``s`` (the missing-data
        maps are :func:`missing_shares`, the same for every method).

    Returns
    -------
    ndarray, shape (ny, nx)
        ``s(x)``, float32 (or the parts).
    """
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim != 3 or eps.shape[-1] != 3:
        raise ValueError(f"expected one field (ny, nx, 3), got shape {eps.shape}")
    noise, v_bias, v_sheet, v_kappa = _linear_parts(
        eps[None], method, signal, sigma_px, pad, pixel_arcmin
    )
    if parts:
        return noise[0], float(v_bias[0]), v_sheet, v_kappa
    var = _shape_variance(eps[None], (noise, v_bias, v_sheet, v_kappa), [params], pad)
    return np.sqrt(var[0]).astype(np.float32)


def _shape_variance(batch: np.ndarray, parts, params, pad: int) -> np.ndarray:
    """``s(x)²`` of maps ``(N, ny, nx, 3)`` from their :func:`_linear_parts` and one row
    of shape parameters ``(c, a, h, b_2, b_8, b_32, e)`` per map."""
    noise, v_bias, v_sheet, v_kappa = parts
    params = np.asarray(params, np.float32).reshape(len(batch), N_LINEAR_PARAMS)
    c, a, h, e = (params[:, i, None, None] for i in (0, 1, 2, -1))
    d = batch[..., 2]
    if pad == 0 and not np.any(d >= constants.EMPTY_PIXEL_SIGMA):
        missing = np.float32(0.0)  # nothing missing: every smoothed share is 0
    else:
        missing = _missing_term(_filled_hat(d, pad), params[:, 3:-1], batch.shape[1:3], pad)
    v_bias = np.asarray(v_bias, np.float32)[:, None, None]
    var = c * noise
    var += a * v_bias + np.float32(h * v_sheet) + (missing + e) * np.float32(v_kappa)
    return np.maximum(var, 0.0, out=var)


# === Calibration ===


def _depth_of(delta_e, pixel_arcmin: float) -> float:
    return float(effective_n_gal(np.asarray(delta_e), pixel_arcmin=pixel_arcmin))


def _node_position(n_gal, nodes):
    """Fractional index of a depth (or of each of an array of depths) among the nodes,
    linear in log n_gal, clipped."""
    n = np.asarray(n_gal, dtype=np.float64)
    finite = [v for v in nodes if math.isfinite(v)]
    at_inf = len(nodes) - 1 if math.isinf(nodes[-1]) else len(finite) - 1
    noisy = np.log(np.where(np.isinf(n), 1.0, n))
    x = np.where(np.isinf(n), at_inf, np.interp(noisy, np.log(finite), np.arange(len(finite))))
    return float(x) if x.ndim == 0 else x


def _interp_nodes(table: np.ndarray, position) -> np.ndarray:
    """Rows of ``table`` at fractional indices: one position, or an array of them
    (the result then has their shape in front)."""
    pos = np.asarray(position, dtype=np.float64)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(table) - 1)
    t = (pos - lo).reshape(pos.shape + (1,) * (table.ndim - 1))
    return (1 - t) * table[lo] + t * table[hi]


@dataclasses.dataclass(frozen=True)
class ErrorModel:
    """The calibration of one method's error bars.

    Attributes
    ----------
    method : str
        ``"ks93"``, ``"wiener"`` or ``"unet"``.
    depth_nodes : tuple of float
        n_gal of the table's rows (``inf``: no shape noise).
    q68, q95 : nested tuples of float, ``(n_sigma, n_scale, n_depth)``
        Conformal factors per smoothing, pixel-scale and depth node: the 68.3 % and
        95.4 % quantiles of ``|κ − κ̂| / s``.
    params : tuple or None
        Per smoothing and depth node, ``(c, a, h, b_2, b_8, b_32, e)`` of
        :func:`linear_shape` (linear methods; all pixel scales together); None for the
        UNet, whose shape is its moment network's.
    sigma_nodes : tuple of float
        KS93 smoothing σ [px] of the outer index (``(0.0,)`` for other methods).
    scale_nodes : tuple of float
        Pixel sides [arcmin] of the middle index of ``q68``, ``q95``.
    provenance : dict
        How it was calibrated (command, seeds, maps, pixels).
    """

    method: str
    depth_nodes: tuple
    q68: tuple
    q95: tuple
    params: tuple | None = None
    sigma_nodes: tuple = (0.0,)
    scale_nodes: tuple = SCALE_NODES
    provenance: dict = dataclasses.field(default_factory=dict)

    def _at(self, table, n_gal: float, sigma_px: float, pixel_arcmin=None) -> np.ndarray:
        t = np.asarray(table, dtype=np.float64)  # (n_sigma, [n_scale,] n_depth, ...)
        sig = np.asarray(self.sigma_nodes, dtype=np.float64)
        i = float(np.interp(sigma_px, sig, np.arange(len(sig)))) if len(sig) > 1 else 0.0
        t = _interp_nodes(t, i)
        if pixel_arcmin is not None:
            logs = np.log(np.asarray(self.scale_nodes, dtype=np.float64))
            j = float(np.interp(math.log(pixel_arcmin), logs, np.arange(len(logs))))
            t = _interp_nodes(t, j)
        return _interp_nodes(t, _node_position(n_gal, self.depth_nodes))

    def factors(
        self, n_gal, sigma_px: float = 0.0, pixel_arcmin: float = constants.PIXEL_ARCMIN
    ) -> tuple:
        """``(q68, q95)`` at a depth, KS93 smoothing and pixel side: floats, or arrays
        ``(N,)`` for an array of depths ``n_gal``."""
        q68 = self._at(self.q68, n_gal, sigma_px, pixel_arcmin)
        q95 = self._at(self.q95, n_gal, sigma_px, pixel_arcmin)
        return (float(q68), float(q95)) if np.ndim(n_gal) == 0 else (q68, q95)

    def shape_params(self, n_gal, sigma_px: float = 0.0):
        """``(c, a, h, b_2, …, e)`` of :func:`linear_shape` at a depth (and smoothing): a
        tuple of floats, or an array ``(N, 7)`` for an array of depths ``n_gal``."""
        if self.params is None:
            raise ValueError(f"the {self.method} error model has no linear shape parameters")
        values = self._at(self.params, n_gal, sigma_px)
        return tuple(float(v) for v in values) if np.ndim(n_gal) == 0 else values

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["depth_nodes"] = [None if math.isinf(n) else n for n in self.depth_nodes]
        return d

    @classmethod
    def from_dict(cls, values: dict) -> ErrorModel:
        """Inverse of :meth:`to_dict`; ValueError naming what is missing or malformed."""
        try:
            depth = tuple(math.inf if n is None else float(n) for n in values["depth_nodes"])
            model = cls(
                method=str(values["method"]),
                depth_nodes=depth,
                q68=_nested_tuple(values["q68"]),
                q95=_nested_tuple(values["q95"]),
                params=_nested_tuple(values.get("params")),
                sigma_nodes=tuple(float(s) for s in values.get("sigma_nodes", (0.0,))),
                scale_nodes=tuple(float(s) for s in values.get("scale_nodes", SCALE_NODES)),
                provenance=dict(values.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an error model: {exc!r}") from None
        shape = (len(model.sigma_nodes), len(model.scale_nodes), len(model.depth_nodes))
        for name in ("q68", "q95"):
            got = np.asarray(getattr(model, name), dtype=np.float64)
            if got.shape != shape or not np.all(np.isfinite(got) & (got > 0)):
                raise ValueError(f"error model {name}: expected positive {shape}, got {got.shape}")
        return model


def _nested_tuple(values):
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return tuple(_nested_tuple(v) for v in values)
    return float(values)


def conformal_quantiles(resid, shape, levels=(COVERAGE_68, COVERAGE_95)) -> tuple[float, ...]:
    """Quantiles of ``|resid| / shape`` at ``levels`` (split conformal, finite-sample).

    The ``⌈(n + 1) level⌉``-th smallest score: the band ``q · shape`` then holds a new
    exchangeable pixel with probability at least ``level``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero width: an infinite score
        scores = (
            np.abs(np.asarray(resid, np.float64)).ravel() / np.asarray(shape, np.float64).ravel()
        )
    scores = np.sort(scores[np.isfinite(scores)])
    n = len(scores)
    if n == 0:
        raise ValueError("no finite scores to calibrate on")
    out = []
    for level in levels:
        k = min(n - 1, max(0, math.ceil((n + 1) * level) - 1))
        out.append(float(scores[k]))
    return tuple(out)


def fit_linear(noise, bias, sheet, missing, resid) -> tuple[float, ...]:
    """``(c, a, h, b_2, b_8, b_32, e) ≥ 0`` maximising the Gaussian likelihood of residuals.

    ``resid ~ N(0, c·noise + a·bias + h·sheet + (Σ b_s m_s + e)·V_κ)`` pixel by pixel,
    with ``missing`` the stacked ``(m_2 V_κ, m_8 V_κ, m_32 V_κ, V_κ)`` (shape
    ``(4, …)`` of ``resid``'s; ``bias`` and ``sheet`` broadcast to it); minimises the
    mean of ``log v + r²/v`` over log-parameters (L-BFGS-B).
    """
    n = np.asarray(noise, np.float64).ravel()
    shape = np.asarray(noise).shape
    r2 = np.asarray(resid, np.float64).ravel() ** 2
    bi = np.broadcast_to(np.asarray(bias, np.float64), shape).ravel()
    sh = np.broadcast_to(np.asarray(sheet, np.float64), shape).ravel()
    m = np.asarray(missing, np.float64).reshape(len(MISSING_SMOOTH_PX) + 1, -1)
    terms = np.concatenate([n[None], bi[None], sh[None], m])

    def nll(log_p):
        v = np.exp(log_p) @ terms + 1e-12
        return float(np.mean(np.log(v) + r2 / v))

    # A term that never matters (raw KS93 has no bias term, a field without holes no
    # m₂) runs to exp(−20) ≈ 2e-9 instead of to −∞.
    best = minimize(
        nll,
        np.zeros(N_LINEAR_PARAMS),
        method="L-BFGS-B",
        bounds=[(-20.0, 8.0)] * N_LINEAR_PARAMS,
    )
    return tuple(float(v) for v in np.exp(best.x))


def coverage(kappa_true, kappa_pred, half_width, mask=None) -> float:
    """Share of pixels (optionally in ``mask``) with ``|κ − κ̂| ≤ half_width``."""
    inside = np.abs(np.asarray(kappa_true) - np.asarray(kappa_pred)) <= np.asarray(half_width)
    if mask is not None:
        inside = inside[np.broadcast_to(np.asarray(mask, bool), inside.shape)]
    return float(np.mean(inside))


# === Calibration on simulated fields ===

#: KS93 smoothing nodes [pixels] of the linear calibration (the app's slider spans 0–8).
SIGMA_NODES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


def scale_node_index(pixel_arcmin: float, nodes=SCALE_NODES) -> int:
    """The pixel-side node nearest a pixel side, in log."""
    return int(np.argmin(np.abs(np.log(nodes) - math.log(pixel_arcmin))))


def depth_node_index(n_gal: float, nodes=DEPTH_NODES) -> int:
    """The node nearest a depth in log n_gal (``inf`` to the no-noise node)."""
    if math.isinf(n_gal):
        return len(nodes) - 1
    finite = np.log([n for n in nodes if math.isfinite(n)])
    return int(np.argmin(np.abs(finite - math.log(n_gal))))


def linear_calibration_data(
    fields,
    signal: PowerSpectrum,
    sigma_nodes=SIGMA_NODES,
    pad: int = 64,
    pixels: int = 512,
    seed: int = 0,
) -> dict:
    """The terms and residuals of the linear methods on calibration fields, per tile.

    Parameters
    ----------
    fields : iterable of (eps, kappa, origin, pixel_arcmin)
        Whole simulated fields ``(ny, nx, 3)``, their κ, and the origin of the 128² tile
        to score (:func:`lensviz.simulate.field_draw`), as a user's field is
        reconstructed whole and read where it matters.
    signal : PowerSpectrum
    sigma_nodes : tuple of float
        KS93 smoothings to calibrate.
    pad : int
        Zero-padding of the methods.
    pixels : int
        Random pixels kept per tile (bounds memory).
    seed : int
        Of the pixel draws.

    Returns
    -------
    dict
        ``depth`` (n_gal of each tile), and per method key (``("ks93", σ)``,
        ``("wiener", 0.0)``) the arrays ``noise``, ``bias``, ``sheet``, ``resid``
        ``(n_tiles, pixels)`` and ``missing`` ``(n_tiles, 4, pixels)``:
        ``(m_2 V_κ, m_8 V_κ, m_32 V_κ, V_κ)``.
    """
    rng = np.random.default_rng(seed)
    keys = [("ks93", float(s)) for s in sigma_nodes] + [("wiener", 0.0)]
    out = {k: {"noise": [], "bias": [], "sheet": [], "missing": [], "resid": []} for k in keys}
    depths, scales = [], []
    wiener = wiener_predictor(signal, pad)
    for eps, kappa, (y0, x0), scale in fields:
        t = constants.NPIX
        tile = (slice(y0, y0 + t), slice(x0, x0 + t))
        pick = rng.choice(t * t, size=min(pixels, t * t), replace=False)
        depths.append(_depth_of(eps[tile][..., 2], scale))
        scales.append(scale)
        raw = ks93_predictor(0.0, pad)(eps[None])[0]
        shares = missing_shares(eps[..., 2], pad)[:, tile[0], tile[1]]
        shares = shares.reshape(len(shares), -1)[:, pick]
        shares = np.concatenate([shares, np.ones((1, len(pick)))])
        for key in keys:
            method, sigma = key
            if method == "ks93":
                pred = gaussian_smooth(raw, sigma)
            else:
                pred = wiener(eps[None], pixel_arcmin=scale)[0]
            noise, bias, sheet, v_kappa = linear_shape(
                eps, method, signal, sigma_px=sigma, pad=pad, pixel_arcmin=scale, parts=True
            )
            row = out[key]
            row["noise"].append(noise[tile].ravel()[pick].astype(np.float32))
            row["bias"].append(np.float32(bias))
            row["sheet"].append(np.float32(sheet))
            row["missing"].append((shares * v_kappa).astype(np.float32))
            row["resid"].append((kappa - pred)[tile].ravel()[pick].astype(np.float32))
    result = {"depth": np.asarray(depths), "pixel_arcmin": np.asarray(scales)}
    for key, row in out.items():
        ones = np.ones((1, len(row["noise"][0])))
        result[key] = {
            "noise": np.stack(row["noise"]),
            "bias": np.asarray(row["bias"])[:, None] * ones,
            "sheet": np.asarray(row["sheet"])[:, None] * ones,
            "missing": np.stack(row["missing"]),
            "resid": np.stack(row["resid"]),
        }
    return result


def calibrate_linear(data: dict, provenance: dict | None = None) -> dict[str, ErrorModel]:
    """Fit the shape parameters and the conformal factors of KS93 and Wiener.

    Per method and depth node: the weights by :func:`fit_linear` on the even tiles (all
    pixel scales), then ``q68``, ``q95`` by :func:`conformal_quantiles` on the odd ones
    of each pixel-scale node (a split: the factors are measured on tiles the shape was
    not fitted to). A node with fewer than 20 tiles borrows the values of its nearest
    depth node with enough.

    Parameters
    ----------
    data : dict
        :func:`linear_calibration_data`.
    provenance : dict, optional

    Returns
    -------
    dict
        ``{"ks93": ErrorModel, "wiener": ErrorModel}``.
    """
    nodes = np.array([depth_node_index(d) for d in data["depth"]])
    scales = np.array([scale_node_index(p) for p in data["pixel_arcmin"]])
    sigma_nodes = sorted(key[1] for key in data if isinstance(key, tuple) and key[0] == "ks93")
    models = {}
    for method, sigmas in (("ks93", sigma_nodes), ("wiener", [0.0])):
        params, q68, q95 = [], [], []
        for sigma in sigmas:
            d = data[(method, sigma)]
            p_row = []
            q_rows = [[[], []] for _ in SCALE_NODES]  # per scale: q68 row, q95 row
            for j in range(len(DEPTH_NODES)):
                tiles = np.flatnonzero(nodes == j)
                fit, score = tiles[0::2], tiles[1::2]
                p = None
                if len(fit) >= 10:
                    missing = np.moveaxis(d["missing"][fit], 1, 0)
                    p = fit_linear(
                        d["noise"][fit], d["bias"][fit], d["sheet"][fit], missing, d["resid"][fit]
                    )
                p_row.append(p)
                for k in range(len(SCALE_NODES)):
                    here = score[scales[score] == k]
                    q = (None, None)
                    if p is not None and len(here) >= 10:
                        c, a, h, *b = p
                        m = d["missing"][here]
                        shape = np.sqrt(
                            c * d["noise"][here]
                            + a * d["bias"][here]
                            + h * d["sheet"][here]
                            + np.einsum("s,nsp->np", b, m)
                        )
                        q = conformal_quantiles(d["resid"][here], shape)
                    q_rows[k][0].append(q[0])
                    q_rows[k][1].append(q[1])
            params.append(fill_nodes(p_row))
            q68.append([fill_nodes(r[0]) for r in q_rows])
            q95.append([fill_nodes(r[1]) for r in q_rows])
        models[method] = ErrorModel(
            method=method,
            depth_nodes=DEPTH_NODES,
            q68=_nested_tuple(q68),
            q95=_nested_tuple(q95),
            params=_nested_tuple(params),
            sigma_nodes=tuple(float(s) for s in sigmas),
            scale_nodes=SCALE_NODES,
            provenance=dict(provenance or {}),
        )
    return models


def fill_nodes(row: list) -> list:
    """Nodes without enough tiles take the value of the nearest node that has one."""
    have = [i for i, v in enumerate(row) if v is not None]
    if not have:
        raise ValueError("no depth node has enough calibration tiles")
    return [row[min(have, key=lambda h: abs(h - i))] for i in range(len(row))]


# === Files ===

#: The format tag of an error-model file.
_FORMAT = "lensviz-errorbars"


def save_error_models(models: dict, path, overwrite: bool = False) -> None:
    """Write ``{method: ErrorModel}`` as JSON, atomically."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    text = json.dumps(
        {"format": _FORMAT, "models": {k: m.to_dict() for k, m in models.items()}}, indent=1
    )
    write_text(path, text)


def load_error_models(path) -> dict[str, ErrorModel]:
    """Read :func:`save_error_models`' file as a hostile file: size, JSON and tables checked.

    Raises
    ------
    ValueError
        Naming the file: too large, not JSON, not an error-model file, a malformed table.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes; an error-model file is under {_MAX_FILE_BYTES}")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not JSON ({type(exc).__name__})") from None
    if not isinstance(values, dict) or values.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a lensviz error-model file (format {_FORMAT!r})")
    models = values.get("models")
    if not isinstance(models, dict):
        raise ValueError(f"{path}: no 'models' table")
    out = {}
    for name, table in models.items():
        try:
            out[name] = ErrorModel.from_dict(table)
        except ValueError as exc:
            raise ValueError(f"{path} [{name}]: {exc}") from None
    return out


_MAX_FILE_BYTES = 4_000_000


def default_error_models() -> dict[str, ErrorModel]:
    """The shipped calibration of KS93 and Wiener (``errorbars.json`` in the weights folder).

    Raises
    ------
    FileNotFoundError
        Naming the file and the command that makes it.
    """
    path = constants.WEIGHTS_DIR / constants.ERRORBARS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; make it with `python -m lensviz errorbars --out {path}`"
        )
    return load_error_models(path)


# === Error bars of a map ===


def field_depth(eps, pixel_arcmin: float = constants.PIXEL_ARCMIN) -> float:
    """The depth [galaxies per arcmin²] that one field's Δε implies (``inf``: no noise)."""
    return _depth_of(np.asarray(eps)[..., 2], pixel_arcmin)


def linear_errorbars(
    eps,
    model: ErrorModel,
    signal: PowerSpectrum,
    sigma_px=0.0,
    pad: int = 0,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> tuple[np.ndarray, np.ndarray]:
    """``(kappa_std, kappa_hw95)`` of KS93 (smoothed by ``sigma_px``) or the Wiener filter.

    Maps of one size are done together: one batched FFT per smoothing, the Wiener
    kernels of each map's noise interpolated from a cached table (small grids), so the
    error bars cost about as much as the map itself.

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3) or (N, ny, nx, 3)
        Fields as the method reconstructs them (whole, padded by ``pad``).
    model : ErrorModel
        The method's calibration (``model.method`` is ``"ks93"`` or ``"wiener"``).
    signal : PowerSpectrum
    sigma_px : float or array_like, shape (N,)
        KS93's smoothing [pixels], one value or one per map (the depth rule).
    pad, pixel_arcmin
        As the method ran.

    Returns
    -------
    kappa_std, kappa_hw95 : ndarray, float32, the shape of one map per field
    """
    eps = np.asarray(eps, dtype=np.float32)
    single = eps.ndim == 3
    batch = eps[None] if single else eps
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected fields (N, ny, nx, 3), got shape {eps.shape}")
    sigmas = np.broadcast_to(np.asarray(sigma_px, np.float64), len(batch))
    std = np.empty(batch.shape[:3], np.float32)
    hw95 = np.empty(batch.shape[:3], np.float32)
    depths = effective_n_gal(batch[..., 2], pixel_arcmin=pixel_arcmin)
    for sigma in np.unique(sigmas):
        pick = np.flatnonzero(sigmas == sigma)
        maps, s = batch[pick], float(sigma)
        parts = _linear_parts(maps, model.method, signal, s, pad, pixel_arcmin)
        params = model.shape_params(depths[pick], s)
        shape = np.sqrt(_shape_variance(maps, parts, params, pad))
        q68, q95 = (
            q.astype(np.float32)[:, None, None]
            for q in model.factors(depths[pick], s, pixel_arcmin)
        )
        std[pick] = q68 * shape
        hw95[pick] = q95 * shape
    return (std[0], hw95[0]) if single else (std, hw95)
