"""The five MultiFocal loss weight maps (report §3.1), in numpy.

This module is the reference for display and for the TensorFlow loss in
:mod:`lensviz.nn.losses`, whose weight maps must equal these. Every component lies in
[0, 1] and depends on the true map κt only; maps are ``(ny, nx)`` or ``(N, ny, nx)``.

Components (defaults from :mod:`lensviz.constants`)
    focal
        ``|κt| / max|κt|`` (0 for an all-zero map).
    local
        ``|κt| / max_{8×8}|κt|`` on the ``top_fraction`` highest-κt pixels, else 0.
        The window of side ``n`` spans rows and columns ``i − (n−1)//2 … i + n//2``
        (TensorFlow's ``SAME`` max-pool alignment) and ignores pixels outside the map.
        The top pixels are those with ``κt ≥`` the k-th largest value,
        ``k = ceil(top_fraction · ny · nx)``.
    peaks
        1 within ``peak_radius`` pixels (Euclidean, inclusive) of each of the
        ``n_peaks`` highest strict local maxima of the unsmoothed κt
        (:func:`lensviz.metrics.local_maxima`), else 0.
    structure
        1 where ``|κt − mean κt| ≤ band``, else 0: the boundary between over- and
        under-dense regions that DICEE thresholds on.
    edges
        1 on a frame ``edge_width`` pixels wide, else 0.

The combined map is ``w = Σ a_i w_i / Σ a_i`` and the MultiFocal loss of a prediction
is ``mean((1 + w)(κp − κt)²)``, which reduces to Hong et al.'s focal loss when only the
focal coefficient is non-zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from lensviz import constants
from lensviz.metrics import local_maxima

__all__ = [
    "focal_weight",
    "local_weight",
    "peak_weight",
    "structure_weight",
    "edge_weight",
    "weight_maps",
    "combine_weights",
    "multifocal_weight",
    "multifocal_loss",
    "check_coeffs",
]


def _maps(kappa_true) -> tuple[np.ndarray, bool]:
    k = np.asarray(kappa_true, dtype=np.float64)
    if k.ndim not in (2, 3):
        raise ValueError(f"expected maps of shape (ny, nx) or (N, ny, nx), got shape {k.shape}")
    return (k[None], True) if k.ndim == 2 else (k, False)


def _out(w: np.ndarray, single: bool) -> np.ndarray:
    w = w.astype(np.float32)
    return w[0] if single else w


def focal_weight(kappa_true) -> np.ndarray:
    """Focal weight ``|κt| / max|κt|`` (Hong et al. 2021, ApJ 923, 266)."""
    k, single = _maps(kappa_true)
    a = np.abs(k)
    m = a.max(axis=(-2, -1), keepdims=True)
    return _out(np.divide(a, m, out=np.zeros_like(a), where=m > 0), single)


def _window_max(a: np.ndarray, n: int) -> np.ndarray:
    """Max of a non-negative map over an n×n window with TensorFlow SAME alignment."""
    before, after = (n - 1) // 2, n // 2
    padded = np.pad(a, [(0, 0), (before, after), (before, after)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, n, axis=-2).max(axis=-1)
    return np.lib.stride_tricks.sliding_window_view(rows, n, axis=-1).max(axis=-1)


def _top_threshold(k: np.ndarray, fraction: float) -> np.ndarray:
    flat = k.reshape(k.shape[0], -1)
    count = max(1, math.ceil(fraction * flat.shape[1]))
    kth = np.partition(flat, flat.shape[1] - count, axis=1)[:, flat.shape[1] - count]
    return kth[:, None, None]


def local_weight(
    kappa_true,
    neighbourhood: int = constants.LOCAL_NEIGHBOURHOOD_PX,
    top_fraction: float = constants.LOCAL_TOP_FRACTION,
) -> np.ndarray:
    """Local weight: ``|κt|`` over its ``neighbourhood``² window maximum, on the top pixels."""
    if int(neighbourhood) != neighbourhood or neighbourhood < 1:
        raise ValueError(f"neighbourhood must be a positive integer, got {neighbourhood!r}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
    k, single = _maps(kappa_true)
    a = np.abs(k)
    m = _window_max(a, int(neighbourhood))
    ratio = np.divide(a, m, out=np.zeros_like(a), where=m > 0)
    return _out(np.where(k >= _top_threshold(k, top_fraction), ratio, 0.0), single)


def peak_weight(
    kappa_true,
    n_peaks: int = constants.N_PEAKS_WEIGHT,
    peak_radius: float = constants.PEAK_RADIUS_PX,
) -> np.ndarray:
    """1 within ``peak_radius`` px of the ``n_peaks`` highest local maxima of κt, else 0."""
    if int(n_peaks) != n_peaks or n_peaks < 0:
        raise ValueError(f"n_peaks must be a non-negative integer, got {n_peaks!r}")
    if peak_radius < 0:
        raise ValueError(f"peak_radius must be non-negative, got {peak_radius!r}")
    k, single = _maps(kappa_true)
    nmaps, ny, nx = k.shape
    w = np.zeros(k.shape)
    if n_peaks == 0:
        return _out(w, single)
    flat = np.where(local_maxima(k), k, -np.inf).reshape(nmaps, -1)
    count = min(int(n_peaks), flat.shape[1])
    top = np.argpartition(-flat, count - 1, axis=1)[:, :count]
    valid = np.isfinite(np.take_along_axis(flat, top, axis=1))
    yy, xx = np.mgrid[0:ny, 0:nx]
    py, px = top // nx, top % nx
    d2 = (yy[None, None] - py[..., None, None]) ** 2 + (xx[None, None] - px[..., None, None]) ** 2
    inside = (d2 <= peak_radius**2) & valid[..., None, None]
    w[inside.any(axis=1)] = 1.0
    return _out(w, single)


def structure_weight(kappa_true, band: float = constants.STRUCTURE_BAND) -> np.ndarray:
    """1 where ``|κt − mean κt| ≤ band`` (the edge of the DICEE mask), else 0."""
    if band < 0:
        raise ValueError(f"band must be non-negative, got {band!r}")
    k, single = _maps(kappa_true)
    dev = np.abs(k - k.mean(axis=(-2, -1), keepdims=True))
    return _out((dev <= band).astype(np.float64), single)


def edge_weight(kappa_true, edge_width: int = constants.EDGE_WIDTH_PX) -> np.ndarray:
    """1 on a frame ``edge_width`` pixels wide around the map, else 0."""
    if int(edge_width) != edge_width or edge_width < 0:
        raise ValueError(f"edge_width must be a non-negative integer, got {edge_width!r}")
    k, single = _maps(kappa_true)
    w = np.zeros(k.shape)
    e = int(edge_width)
    if e:
        w[..., :e, :] = w[..., -e:, :] = w[..., :, :e] = w[..., :, -e:] = 1.0
    return _out(w, single)


def weight_maps(
    kappa_true,
    *,
    neighbourhood: int = constants.LOCAL_NEIGHBOURHOOD_PX,
    top_fraction: float = constants.LOCAL_TOP_FRACTION,
    n_peaks: int = constants.N_PEAKS_WEIGHT,
    peak_radius: float = constants.PEAK_RADIUS_PX,
    band: float = constants.STRUCTURE_BAND,
    edge_width: int = constants.EDGE_WIDTH_PX,
) -> dict[str, np.ndarray]:
    """All five components, keyed by :data:`lensviz.constants.MULTIFOCAL_COMPONENTS`.

    Returns
    -------
    dict of str to ndarray, each float32 of the input's shape, values in [0, 1].
    """
    return {
        "focal": focal_weight(kappa_true),
        "local": local_weight(kappa_true, neighbourhood, top_fraction),
        "peaks": peak_weight(kappa_true, n_peaks, peak_radius),
        "structure": structure_weight(kappa_true, band),
        "edges": edge_weight(kappa_true, edge_width),
    }


def check_coeffs(coeffs: Mapping[str, float] | None) -> dict[str, float]:
    """Complete and validate MultiFocal coefficients (defaults from the report)."""
    full = dict(constants.MULTIFOCAL_COEFFS)
    if coeffs is not None:
        unknown = set(coeffs) - set(full)
        if unknown:
            raise ValueError(
                f"unknown MultiFocal components {sorted(unknown)}; "
                f"expected some of {list(constants.MULTIFOCAL_COMPONENTS)}"
            )
        full.update({k: float(v) for k, v in coeffs.items()})
    bad = {k: v for k, v in full.items() if not (np.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"MultiFocal coefficients must be finite and >= 0, got {bad}")
    if sum(full.values()) <= 0:
        raise ValueError("at least one MultiFocal coefficient must be positive, got all zeros")
    return full


def combine_weights(
    maps: Mapping[str, np.ndarray], coeffs: Mapping[str, float] | None = None
) -> np.ndarray:
    """Combined weight ``w = Σ a_i w_i / Σ a_i`` (report eq. 3); lies in [0, 1]."""
    c = check_coeffs(coeffs)
    total = sum(c.values())
    return sum(c[name] * np.asarray(maps[name], np.float64) for name in c).astype(np.float32) / (
        np.float32(total)
    )


def multifocal_weight(
    kappa_true, coeffs: Mapping[str, float] | None = None, **params
) -> np.ndarray:
    """Combined MultiFocal weight of a true map; ``params`` go to :func:`weight_maps`."""
    return combine_weights(weight_maps(kappa_true, **params), coeffs)


def multifocal_loss(kappa_true, kappa_pred, coeffs: Mapping[str, float] | None = None, **params):
    """MultiFocal loss ``mean((1 + w)(κp − κt)²)`` per map (float, or ``(N,)`` array)."""
    t = np.asarray(kappa_true, dtype=np.float64)
    p = np.asarray(kappa_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"kappa_true and kappa_pred differ in shape: {t.shape} vs {p.shape}")
    w = multifocal_weight(t, coeffs, **params).astype(np.float64)
    loss = ((1.0 + w) * (p - t) ** 2).mean(axis=(-2, -1))
    return float(loss) if t.ndim == 2 else loss
