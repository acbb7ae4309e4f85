"""The AstroDatatón 2024 challenge metrics (lower is better), plus RMSE and Pearson r.

Every metric takes a true map ``T`` and a prediction ``P`` of shape ``(ny, nx)``,
returning a float, or ``(N, ny, nx)``, returning an ``(N,)`` array. Definitions follow
the challenge rules and its published scoring code, as written out in
docs/reference.md §3.

Peaks
    :func:`find_peaks` smooths each map with a Gaussian of σ = 3 px
    (:func:`lensviz.inversion.gaussian_smooth`, scipy ``reflect`` boundaries), keeps
    strict 8-neighbour local maxima (LensTools' rule) away from the 1-pixel border and
    strictly above the map minimum, and ranks them by height. Missing peaks are
    reported at position (0, 0) with height NaN, as in the challenge scorer.
"""

from __future__ import annotations

import numpy as np

from lensviz import constants
from lensviz.inversion import gaussian_smooth

__all__ = [
    "wmape",
    "dicee",
    "dpeaks",
    "rmse",
    "pearson_r",
    "local_maxima",
    "find_peaks",
    "dicee_confusion",
    "CONFUSION_CODES",
    "score",
    "METRIC_NAMES",
]

METRIC_NAMES = ("wmape", "dicee", "dpeaks", "rmse", "r")

#: Codes of :func:`dicee_confusion`.
CONFUSION_CODES = {"TN": 0, "TP": 1, "FP": 2, "FN": 3}


_CHUNK = 64  # maps per vectorised block: keeps temporaries in cache-friendly sizes


def _pair(true, pred) -> tuple[np.ndarray, np.ndarray, bool]:
    t = np.asarray(true)
    p = np.asarray(pred)
    if t.shape != p.shape:
        raise ValueError(f"true and pred must have the same shape, got {t.shape} and {p.shape}")
    if t.ndim not in (2, 3):
        raise ValueError(f"expected maps of shape (ny, nx) or (N, ny, nx), got shape {t.shape}")
    single = t.ndim == 2
    if single:
        t, p = t[None], p[None]
    return t, p, single


def _work_dtype(t: np.ndarray, p: np.ndarray) -> np.dtype:
    """float32 maps are scored in float32 (sums accumulate in float64), anything else in
    float64."""
    dtype = np.result_type(t.dtype, p.dtype, np.float32)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _blocks(t: np.ndarray, p: np.ndarray):
    """Copies of consecutive blocks of maps in the working precision."""
    dtype = _work_dtype(t, p)
    for i in range(0, len(t), _CHUNK):
        yield t[i : i + _CHUNK].astype(dtype), p[i : i + _CHUNK].astype(dtype)


def _per_map(fn, true, pred):
    """Apply ``fn(t, p) -> (n,)`` block by block; a float for one map."""
    t, p, single = _pair(true, pred)
    out = np.concatenate([fn(tc, pc) for tc, pc in _blocks(t, p)]) if len(t) else np.zeros(0)
    return float(out[0]) if single else out


def _sum(x: np.ndarray) -> np.ndarray:
    return x.sum(axis=(-2, -1), dtype=np.float64)


def wmape(true, pred):
    """Weighted mean absolute percentage error.

    .. math::

        W = 1 + T/\\max T,\\qquad
        \\mathrm{WMAPE} = \\frac{\\sum W\\,|P-T|/|T|}{\\sum W},

    after replacing exact zeros in T and P by ``1e-5``. The weight uses the signed T.

    float32 maps are scored in float32; a map whose float32 value overflows (true pixels
    within about 1e-38 of zero, as in the tails of an analytic κ) is scored again in
    float64, as the challenge's scorer does, so float32 maps always get a finite value
    (a huge one there: WMAPE divides by ``|T|``).

    Examples
    --------
    >>> wmape([[2, 3], [5, 7]], [[2.5, 3.5], [4, 6]])  # doctest: +ELLIPSIS
    0.18481...
    """
    return _per_map(_wmape, true, pred)


def _wmape(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    if t.dtype != np.float32:
        return _wmape_formula(t, p)
    with np.errstate(over="ignore", invalid="ignore"):  # such maps are scored again in float64
        out = _wmape_formula(t, p)
    overflow = ~np.isfinite(out)
    if overflow.any():
        out[overflow] = _wmape_formula(
            t[overflow].astype(np.float64), p[overflow].astype(np.float64)
        )
    return out


def _wmape_formula(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    eps = t.dtype.type(constants.WMAPE_ZERO_EPS)
    t = np.where(t == 0, eps, t)
    p = np.where(p == 0, eps, p)
    w = 1 + t / t.max(axis=(-2, -1), keepdims=True)
    return _sum(w * np.abs(p - t) / np.abs(t)) / _sum(w)


def _masks(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Means accumulate in float64, so float32 maps get the same threshold as float64 ones.
    return (
        t > t.mean(axis=(-2, -1), keepdims=True, dtype=np.float64),
        p > p.mean(axis=(-2, -1), keepdims=True, dtype=np.float64),
    )


def dicee(true, pred):
    """DICE error of the above-mean masks.

    .. math::

        G = T > \\bar T,\\quad A = P > \\bar P,\\qquad
        \\mathrm{DICEE} = 1 - \\frac{TP}{TP + (FP + FN)/2}.

    Two empty masks agree perfectly (DICEE 0).
    """
    return _per_map(_dicee, true, pred)


def _dicee(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    g, a = _masks(t, p)
    tp = (g & a).sum(axis=(-2, -1))
    fp = (~g & a).sum(axis=(-2, -1))
    fn = (g & ~a).sum(axis=(-2, -1))
    denom = tp + 0.5 * (fp + fn)
    return np.where(denom > 0, 1.0 - tp / np.where(denom > 0, denom, 1.0), 0.0)


def _rmse(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    d = p - t
    return np.sqrt(_sum(d * d) / (t.shape[-1] * t.shape[-2]))


def _dpeaks(
    t: np.ndarray,
    p: np.ndarray,
    n: int = constants.N_PEAKS_METRIC,
    sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX,
) -> np.ndarray:
    return (
        np.abs(find_peaks(t, n, sigma_px)[0] - find_peaks(p, n, sigma_px)[0])
        .sum(axis=(-2, -1))
        .astype(np.float64)
    )


def dicee_confusion(true, pred) -> np.ndarray:
    """Per-pixel DICEE confusion codes: 0 TN, 1 TP, 2 FP, 3 FN (:data:`CONFUSION_CODES`).

    Parameters
    ----------
    true, pred : array_like, shape (ny, nx) or (N, ny, nx)

    Returns
    -------
    ndarray of uint8, same shape as the input.
    """
    t, p, single = _pair(true, pred)
    dtype = _work_dtype(t, p)
    g, a = _masks(t.astype(dtype), p.astype(dtype))
    codes = np.zeros(g.shape, dtype=np.uint8)
    codes[g & a] = CONFUSION_CODES["TP"]
    codes[~g & a] = CONFUSION_CODES["FP"]
    codes[g & ~a] = CONFUSION_CODES["FN"]
    return codes[0] if single else codes


def local_maxima(maps) -> np.ndarray:
    """Strict 8-neighbour local maxima of ``(..., ny, nx)`` maps.

    A pixel qualifies when it is strictly greater than its 8 neighbours, is not on
    the 1-pixel border, and is strictly above the map minimum.

    Returns
    -------
    ndarray of bool, same shape as ``maps``.
    """
    m = np.asarray(maps)
    if m.ndim < 2 or min(m.shape[-2:]) < 3:
        raise ValueError(f"expected maps of shape (..., ny, nx) with ny, nx >= 3, got {m.shape}")
    c = m[..., 1:-1, 1:-1]
    # Largest of the 8 neighbours: a 3-wide row maximum above and below, plus left/right.
    row3 = np.maximum(np.maximum(m[..., :-2], m[..., 1:-1]), m[..., 2:])
    neigh = np.maximum(row3[..., :-2, :], row3[..., 2:, :])
    np.maximum(neigh, m[..., 1:-1, :-2], out=neigh)
    np.maximum(neigh, m[..., 1:-1, 2:], out=neigh)
    is_max = (c > neigh) & (c > m.min(axis=(-2, -1), keepdims=True))
    out = np.zeros(m.shape, dtype=bool)
    out[..., 1:-1, 1:-1] = is_max
    return out


def find_peaks(
    maps, n: int = constants.N_PEAKS_METRIC, sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` highest peaks of each map, after Gaussian smoothing.

    Parameters
    ----------
    maps : array_like, shape (ny, nx) or (N, ny, nx)
    n : int
        Number of peaks to return, ranked by decreasing (smoothed) height.
    sigma_px : float
        Smoothing σ in pixels (0 for none); the challenge uses 3.

    Returns
    -------
    positions : ndarray of int, shape (..., n, 2)
        ``(row, column)`` = ``(y, x)`` of each peak; missing peaks are ``(0, 0)``.
    heights : ndarray of float, shape (..., n)
        Smoothed height (computed in float32); NaN for missing peaks. Equal heights
        keep row-major order.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32]
    >>> m = np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 8.0)   # one bump at (10, 20)
    >>> pos, h = find_peaks(m, n=2, sigma_px=0)
    >>> pos.tolist(), bool(np.isnan(h[1]))                      # a missing peak: (0, 0)
    ([[10, 20], [0, 0]], True)
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    m = np.asarray(maps)
    single = m.ndim == 2
    if m.ndim not in (2, 3):
        raise ValueError(f"expected maps of shape (ny, nx) or (N, ny, nx), got shape {m.shape}")
    if single:
        m = m[None]
    # Heights are compared in float32: the challenge maps are float16, and float32 keeps
    # the smoothing a fast BLAS product (see lensviz.inversion.gaussian_smooth).
    m = m.astype(np.float32, copy=False)
    s = gaussian_smooth(m, sigma_px) if sigma_px > 0 else m
    nmaps, ny, nx = s.shape
    which, flat_idx = np.nonzero(local_maxima(s).reshape(nmaps, -1))
    heights_all = s.reshape(nmaps, -1)[which, flat_idx]
    order = np.lexsort((-heights_all, which))  # by map, then by decreasing height
    which, flat_idx, heights_all = which[order], flat_idx[order], heights_all[order]
    first = np.searchsorted(which, np.arange(nmaps))
    rank = np.arange(len(which)) - first[which]
    keep = rank < n
    positions = np.zeros((nmaps, int(n), 2), dtype=np.int64)
    heights = np.full((nmaps, int(n)), np.nan)
    w, r, f = which[keep], rank[keep], flat_idx[keep]
    positions[w, r, 0] = f // nx
    positions[w, r, 1] = f % nx
    heights[w, r] = heights_all[keep]
    if single:
        return positions[0], heights[0]
    return positions, heights


def dpeaks(
    true, pred, n: int = constants.N_PEAKS_METRIC, sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX
):
    """Peak-position error: Manhattan distance of the ``n`` highest peaks, matched by rank.

    .. math::

        \\mathrm{DPEAKS} = \\sum_{i=1}^{n} |y^T_i - y^P_i| + |x^T_i - x^P_i|

    Peaks come from :func:`find_peaks` on both maps; missing peaks sit at (0, 0).
    """
    return _per_map(lambda t, p: _dpeaks(t, p, n, sigma_px), true, pred)


def rmse(true, pred):
    """Root-mean-square error per map."""
    return _per_map(_rmse, true, pred)


def pearson_r(true, pred):
    """Pearson correlation coefficient per map (0 where either map is constant)."""
    return _per_map(_pearson_r, true, pred)


def _pearson_r(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t = t - t.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(t.dtype)
    p = p - p.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(p.dtype)
    num = _sum(t * p)
    den = np.sqrt(_sum(t * t) * _sum(p * p))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def score(true, pred, names=METRIC_NAMES) -> dict[str, np.ndarray]:
    """The metrics ``names`` (default all of :data:`METRIC_NAMES`) per map, as ``(N,)``
    arrays (``(1,)`` for one map), computed block by block in one pass over the maps."""
    unknown = set(names) - set(METRIC_NAMES)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; expected some of {METRIC_NAMES}")
    fns = {"wmape": _wmape, "dicee": _dicee, "dpeaks": _dpeaks, "rmse": _rmse, "r": _pearson_r}
    t, p, _ = _pair(true, pred)
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for tc, pc in _blocks(t, p):
        for name in names:
            out[name].append(fns[name](tc, pc))
    return {name: np.concatenate(v) for name, v in out.items()}
