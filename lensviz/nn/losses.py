"""Training losses for κ maps, in TensorFlow: MSE, Focal, MultiFocal and Combined.

Every loss takes a true map ``κt`` and a prediction ``κp`` of shape ``(N, ny, nx)``
(a trailing channel of size 1 is squeezed), returns one value per map from the plain
function and the batch mean from the :class:`keras.losses.Loss` class. Weights derived
from ``κt`` are wrapped in ``tf.stop_gradient``.

MultiFocal (report §3.1)
    ``mean((1 + w)(κp − κt)²)`` with ``w = Σ a_i w_i / Σ a_i``. The five maps ``w_i``
    (:func:`weight_maps_tf`) equal the numpy reference :func:`lensviz.loss_weights.weight_maps`
    to float32 round-off (the structure band is evaluated in float64 for that reason).

Combined (report §3.2)
    A weighted sum of MultiFocal and differentiable stand-ins for the challenge metrics
    (docs/reference.md §3):

    ``wmape``
        The metric itself (:func:`wmape_loss`): exact zeros of κt and κp become 1e-5,
        ``W = 1 + κt/max κt``; differentiable wherever ``κp ≠ κt`` and ``κp ≠ 0``. Its
        gradient grows like ``1/|κt|`` near κt = 0, as the metric does, hence the small
        weight (0.05) of the report's fine-tuning.
    ``dicee``
        Soft DICE error (:func:`soft_dicee`): the true mask ``G = κt > mean κt`` is
        exact; the predicted mask is ``A = sigmoid((κp − mean κp)/τ)`` with
        ``τ = dicee_temperature · std(κt)`` per map, and
        ``1 − Σ G·A / (½ Σ A + ½ Σ G)``. It tends to the metric as τ → 0; pixels
        misclassified by many τ get almost no gradient (MultiFocal handles those).
    ``dpeaks``
        Peak-shift surrogate (:func:`peak_shift`). Both maps are smoothed with the
        metric's Gaussian (σ = 3 px, 'reflect' edges) as a fixed separable convolution.
        The ``n_peaks`` (3) highest strict local maxima of the smoothed κt (the metric's
        peak finder, :func:`find_peaks_tf`) each define a square window of half-side
        ``peak_window`` px. In each window a soft-argmax (softmax of the smoothed map,
        rescaled to [−1, 0] by the window's range and divided by ``peak_temperature``)
        gives a sub-pixel position for κp and, identically, for κt; the loss is the
        L1 distance between the two, in pixels, summed over peaks. It is exactly 0 for
        κp = κt.

        Limits: it only sees the prediction inside the windows around the *true* peaks,
        so a spurious higher peak elsewhere, or a rank swap between true peaks (which the
        metric penalises), costs nothing here; a prediction that is flat in a window is
        pulled towards the window's centre only through the truth's own soft position;
        and it is blind to peak heights, which the ``peaks`` MultiFocal weight covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz.loss_weights import check_coeffs

__all__ = [
    "weight_maps_tf",
    "combine_weights_tf",
    "gaussian_smooth_tf",
    "find_peaks_tf",
    "mse",
    "focal_loss",
    "multifocal_loss",
    "wmape_loss",
    "soft_dicee",
    "peak_shift",
    "MSELoss",
    "FocalLoss",
    "MultiFocalLoss",
    "CombinedLoss",
]

_AXES = (-2, -1)


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def _maps(x, dtype=tf.float32) -> tf.Tensor:
    """``(N, ny, nx)`` float tensor from ``(N, ny, nx)`` or ``(N, ny, nx, 1)``."""
    x = tf.convert_to_tensor(x)
    if x.dtype != dtype:
        x = tf.cast(x, dtype)
    if x.shape.rank == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.shape.rank != 3:
        raise ValueError(f"expected κ maps of shape (N, ny, nx) or (N, ny, nx, 1), got {x.shape}")
    return x


def _single_or_batch(kappa) -> tuple[tf.Tensor, bool]:
    k = tf.convert_to_tensor(kappa)
    single = k.shape.rank == 2
    return _maps(k[None] if single else k), single


def _pair(y_true, y_pred) -> tuple[tf.Tensor, tf.Tensor]:
    p = _maps(y_pred)
    t = _maps(y_true, p.dtype)
    if t.shape.is_fully_defined() and p.shape.is_fully_defined() and t.shape != p.shape:
        raise ValueError(f"κ true and predicted maps differ in shape: {t.shape} vs {p.shape}")
    return t, p


def _spatial(k: tf.Tensor) -> tuple[int, int]:
    ny, nx = k.shape[-2], k.shape[-1]
    if ny is None or nx is None:
        raise ValueError(f"the map size must be static, got shape {k.shape}")
    return int(ny), int(nx)


def _check_weight_params(neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width):
    if int(neighbourhood) != neighbourhood or neighbourhood < 1:
        raise ValueError(f"neighbourhood must be a positive integer, got {neighbourhood!r}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
    if int(n_peaks) != n_peaks or n_peaks < 0:
        raise ValueError(f"n_peaks must be a non-negative integer, got {n_peaks!r}")
    if peak_radius < 0:
        raise ValueError(f"peak_radius must be non-negative, got {peak_radius!r}")
    if band < 0:
        raise ValueError(f"band must be non-negative, got {band!r}")
    if int(edge_width) != edge_width or edge_width < 0:
        raise ValueError(f"edge_width must be a non-negative integer, got {edge_width!r}")


# --------------------------------------------------------------------------------------
# Weight maps (TensorFlow twins of lensviz.loss_weights)
# --------------------------------------------------------------------------------------


def _local_maxima(m: tf.Tensor) -> tf.Tensor:
    """Strict 8-neighbour maxima, 1-pixel border excluded, above the map minimum.

    Same rule as :func:`lensviz.metrics.local_maxima`; ``m`` is ``(N, ny, nx)``.
    """
    ny, nx = _spatial(m)
    if ny < 3 or nx < 3:
        raise ValueError(f"peak finding needs maps of at least 3x3, got {m.shape}")
    c = m[:, 1:-1, 1:-1]
    is_max = c > tf.reduce_min(m, axis=_AXES, keepdims=True)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                is_max &= c > m[:, 1 + dy : ny - 1 + dy, 1 + dx : nx - 1 + dx]
    return tf.pad(is_max, [[0, 0], [1, 1], [1, 1]], constant_values=False)


def _top_peaks(m: tf.Tensor, n: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Rows, columns (int32, ``(N, n)``) and validity of the ``n`` highest local maxima."""
    ny, nx = _spatial(m)
    flat = tf.reshape(tf.where(_local_maxima(m), m, tf.constant(-np.inf, m.dtype)), [-1, ny * nx])
    values, idx = tf.math.top_k(flat, k=min(int(n), ny * nx), sorted=True)
    valid = values > -np.inf
    return idx // nx, idx % nx, valid


def _focal_w(k: tf.Tensor) -> tf.Tensor:
    a = tf.abs(k)
    return tf.math.divide_no_nan(a, tf.reduce_max(a, axis=_AXES, keepdims=True))


def _local_w(k: tf.Tensor, neighbourhood: int, top_fraction: float) -> tf.Tensor:
    ny, nx = _spatial(k)
    a = tf.abs(k)
    # SAME max-pool: window rows/cols i − (n−1)//2 … i + n//2, outside pixels ignored.
    m = tf.nn.max_pool2d(a[..., None], ksize=int(neighbourhood), strides=1, padding="SAME")
    ratio = tf.math.divide_no_nan(a, m[..., 0])
    count = max(1, math.ceil(top_fraction * ny * nx))
    kth = tf.math.top_k(tf.reshape(k, [-1, ny * nx]), k=count, sorted=True).values[:, -1]
    return tf.where(k >= kth[:, None, None], ratio, tf.zeros_like(ratio))


def _peak_w(k: tf.Tensor, n_peaks: int, peak_radius: float) -> tf.Tensor:
    ny, nx = _spatial(k)
    if n_peaks == 0:
        return tf.zeros_like(k)
    py, px, valid = _top_peaks(k, n_peaks)
    yy = tf.range(ny, dtype=tf.int32)[:, None]
    xx = tf.range(nx, dtype=tf.int32)[None, :]
    dy = yy[None, None] - py[..., None, None]
    dx = xx[None, None] - px[..., None, None]
    inside = tf.cast(dy * dy + dx * dx, tf.float64) <= float(peak_radius) ** 2
    inside = tf.reduce_any(inside & valid[..., None, None], axis=1)
    return tf.cast(inside, k.dtype)


def _structure_w(k: tf.Tensor, band: float) -> tf.Tensor:
    k64 = tf.cast(k, tf.float64)  # float64 so that the band edge matches numpy exactly
    dev = tf.abs(k64 - tf.reduce_mean(k64, axis=_AXES, keepdims=True))
    return tf.cast(dev <= float(band), k.dtype)


def _edge_w(k: tf.Tensor, edge_width: int) -> tf.Tensor:
    ny, nx = _spatial(k)
    e = int(edge_width)
    frame = np.zeros((ny, nx), np.float32)
    if e:
        frame[:e, :] = frame[-e:, :] = frame[:, :e] = frame[:, -e:] = 1.0
    return tf.zeros_like(k) + tf.constant(frame, k.dtype)


def _weight_maps(
    k: tf.Tensor, neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width
) -> dict[str, tf.Tensor]:
    _check_weight_params(neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width)
    k = tf.stop_gradient(k)
    return {
        "focal": _focal_w(k),
        "local": _local_w(k, neighbourhood, top_fraction),
        "peaks": _peak_w(k, n_peaks, peak_radius),
        "structure": _structure_w(k, band),
        "edges": _edge_w(k, edge_width),
    }


def weight_maps_tf(
    kappa_true,
    *,
    neighbourhood: int = constants.LOCAL_NEIGHBOURHOOD_PX,
    top_fraction: float = constants.LOCAL_TOP_FRACTION,
    n_peaks: int = constants.N_PEAKS_WEIGHT,
    peak_radius: float = constants.PEAK_RADIUS_PX,
    band: float = constants.STRUCTURE_BAND,
    edge_width: int = constants.EDGE_WIDTH_PX,
) -> dict[str, tf.Tensor]:
    """The five MultiFocal weight maps, as :func:`lensviz.loss_weights.weight_maps` in TF.

    Parameters
    ----------
    kappa_true : tensor or array, shape (ny, nx), (N, ny, nx) or (N, ny, nx, 1)
        True κ; the size must be static.

    Returns
    -------
    dict of str to tf.Tensor
        ``focal``, ``local``, ``peaks``, ``structure``, ``edges``: float32 of the
        input's map shape, values in [0, 1], no gradient.
    """
    k, single = _single_or_batch(kappa_true)
    maps = _weight_maps(k, neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width)
    return {name: w[0] for name, w in maps.items()} if single else maps


def combine_weights_tf(
    maps: Mapping[str, tf.Tensor], coeffs: Mapping[str, float] | None = None
) -> tf.Tensor:
    """Combined weight ``w = Σ a_i w_i / Σ a_i`` (:func:`lensviz.loss_weights.combine_weights`)."""
    c = check_coeffs(coeffs)
    total = sum(c.values())
    return tf.add_n([c[name] * maps[name] for name in c]) / total


# --------------------------------------------------------------------------------------
# Smoothing and peaks (TensorFlow twins of lensviz.metrics)
# --------------------------------------------------------------------------------------


def _gaussian_taps(sigma_px: float, truncate: float = 4.0) -> np.ndarray:
    radius = int(truncate * sigma_px + 0.5)  # scipy.ndimage.gaussian_filter's radius
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma_px) ** 2)
    return (phi / phi.sum()).astype(np.float32)


def gaussian_smooth_tf(maps, sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX) -> tf.Tensor:
    """Gaussian smoothing of ``(N, ny, nx)`` maps, as :func:`lensviz.inversion.gaussian_smooth`.

    A fixed separable convolution with scipy's kernel (truncated at 4σ) and its
    ``reflect`` boundary (``tf.pad`` mode ``SYMMETRIC``); needs ny, nx ≥ the kernel
    radius ``int(4σ + 0.5)`` (12 px for σ = 3). Differentiable.
    """
    m = _maps(maps)
    if not np.isfinite(sigma_px) or sigma_px < 0:
        raise ValueError(f"sigma_px must be a finite, non-negative number, got {sigma_px!r}")
    if sigma_px == 0:
        return m
    taps = _gaussian_taps(float(sigma_px))
    r = len(taps) // 2
    ny, nx = _spatial(m)
    if r > min(ny, nx):
        raise ValueError(
            f"maps of {ny}x{nx} px are smaller than the smoothing radius {r} px (σ={sigma_px})"
        )
    x = tf.pad(m[..., None], [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    k = tf.constant(taps, m.dtype)
    x = tf.nn.conv2d(x, tf.reshape(k, [-1, 1, 1, 1]), strides=1, padding="VALID")
    x = tf.nn.conv2d(x, tf.reshape(k, [1, -1, 1, 1]), strides=1, padding="VALID")
    return x[..., 0]


def find_peaks_tf(
    maps, n: int = constants.N_PEAKS_METRIC, sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX
) -> tuple[tf.Tensor, tf.Tensor]:
    """The ``n`` highest peaks of smoothed maps, as :func:`lensviz.metrics.find_peaks`.

    Returns
    -------
    positions : tf.Tensor int32, shape (N, n, 2)
        ``(row, column)`` by decreasing height; missing peaks at (0, 0).
    valid : tf.Tensor bool, shape (N, n)
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    s = gaussian_smooth_tf(maps, sigma_px)
    py, px, valid = _top_peaks(s, n)
    pos = tf.stack([py, px], axis=-1) * tf.cast(valid, tf.int32)[..., None]
    k = pos.shape[1]
    if k < n:
        pos = tf.pad(pos, [[0, 0], [0, n - k], [0, 0]])
        valid = tf.pad(valid, [[0, 0], [0, n - k]], constant_values=False)
    return pos, valid


# --------------------------------------------------------------------------------------
# Loss functions (one value per map)
# --------------------------------------------------------------------------------------


def mse(y_true, y_pred) -> tf.Tensor:
    """Mean squared error per map, shape (N,)."""
    t, p = _pair(y_true, y_pred)
    return tf.reduce_mean(tf.square(p - t), axis=_AXES)


def focal_loss(y_true, y_pred) -> tf.Tensor:
    """Focal loss (Hong et al. 2021): ``mean((1 + |κt|/max|κt|)(κp − κt)²)`` per map."""
    t, p = _pair(y_true, y_pred)
    w = _focal_w(tf.stop_gradient(t))
    return tf.reduce_mean((1.0 + w) * tf.square(p - t), axis=_AXES)


def multifocal_loss(
    y_true, y_pred, coeffs: Mapping[str, float] | None = None, **params
) -> tf.Tensor:
    """MultiFocal loss ``mean((1 + w)(κp − κt)²)`` per map; ``params`` as :func:`weight_maps_tf`."""
    t, p = _pair(y_true, y_pred)
    w = combine_weights_tf(weight_maps_tf(t, **params), coeffs)
    return tf.reduce_mean((1.0 + tf.stop_gradient(w)) * tf.square(p - t), axis=_AXES)


def wmape_loss(y_true, y_pred) -> tf.Tensor:
    """WMAPE per map, the challenge metric (:func:`lensviz.metrics.wmape`) in TF.

    .. math:: W = 1 + T/\\max T,\\qquad \\sum W|P-T|/|T| \\big/ \\sum W,

    after replacing exact zeros of T and P by ``1e-5``.
    """
    t, p = _pair(y_true, y_pred)
    eps = constants.WMAPE_ZERO_EPS
    t = tf.stop_gradient(tf.where(t == 0, tf.constant(eps, t.dtype), t))
    p = tf.where(p == 0, tf.constant(eps, p.dtype), p)
    w = 1.0 + t / tf.reduce_max(t, axis=_AXES, keepdims=True)
    return tf.reduce_sum(w * tf.abs(p - t) / tf.abs(t), axis=_AXES) / tf.reduce_sum(w, axis=_AXES)


def soft_dicee(y_true, y_pred, temperature: float = 0.05) -> tf.Tensor:
    """Soft DICE error per map: hard true mask, sigmoid predicted mask.

    ``G = κt > mean κt``, ``A = sigmoid((κp − mean κp)/τ)``, ``τ = temperature·std(κt)``;
    returns ``1 − Σ G·A / (½ΣA + ½ΣG)`` (0 when both masks are empty).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    t, p = _pair(y_true, y_pred)
    t = tf.stop_gradient(t)
    g = tf.cast(t > tf.reduce_mean(t, axis=_AXES, keepdims=True), p.dtype)
    tau = temperature * tf.math.reduce_std(t, axis=_AXES, keepdims=True) + 1e-12
    a = tf.sigmoid((p - tf.reduce_mean(p, axis=_AXES, keepdims=True)) / tau)
    tp = tf.reduce_sum(g * a, axis=_AXES)
    denom = 0.5 * (tf.reduce_sum(a, axis=_AXES) + tf.reduce_sum(g, axis=_AXES))
    return tf.where(denom > 0, 1.0 - tf.math.divide_no_nan(tp, denom), tf.zeros_like(denom))


def _soft_argmax(s: tf.Tensor, window: tf.Tensor, temperature: float) -> tuple[tf.Tensor, ...]:
    """Softmax-weighted (row, col) of ``s`` ``(N, ny, nx)`` in each window ``(N, n, ny, nx)``."""
    ny, nx = _spatial(s)
    s = s[:, None]
    lo = tf.constant(-np.inf, s.dtype)
    hi = tf.reduce_max(tf.where(window, s, lo), axis=_AXES, keepdims=True)
    low = tf.reduce_min(tf.where(window, s, -lo), axis=_AXES, keepdims=True)
    scale = tf.stop_gradient(hi - low) + 1e-12
    z = (s - tf.stop_gradient(hi)) / scale / temperature
    prob = tf.nn.softmax(tf.reshape(tf.where(window, z, lo), [-1, window.shape[1], ny * nx]))
    prob = tf.reshape(prob, [-1, window.shape[1], ny, nx])
    yy = tf.range(ny, dtype=s.dtype)[:, None]
    xx = tf.range(nx, dtype=s.dtype)[None, :]
    return tf.reduce_sum(prob * yy, axis=_AXES), tf.reduce_sum(prob * xx, axis=_AXES)


def peak_shift(
    y_true,
    y_pred,
    n_peaks: int = constants.N_PEAKS_METRIC,
    sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX,
    window: int = 8,
    temperature: float = 0.05,
) -> tf.Tensor:
    """Differentiable DPEAKS surrogate per map, in pixels (see the module notes).

    Parameters
    ----------
    n_peaks : int
        Number of highest true (smoothed) peaks followed.
    sigma_px : float
        Gaussian smoothing of both maps (the metric's 3 px).
    window : int
        Half-side, in pixels, of the square window around each true peak.
    temperature : float
        Softmax temperature on the window-normalised map (smaller is closer to argmax).

    Returns
    -------
    tf.Tensor, shape (N,)
        ``Σ_i |ŷ_p − ŷ_t| + |x̂_p − x̂_t|`` over the valid true peaks.
    """
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    t, p = _pair(y_true, y_pred)
    st = tf.stop_gradient(gaussian_smooth_tf(t, sigma_px))
    sp = gaussian_smooth_tf(p, sigma_px)
    ny, nx = _spatial(st)
    py, px, valid = _top_peaks(st, n_peaks)
    yy = tf.range(ny, dtype=tf.int32)[:, None]
    xx = tf.range(nx, dtype=tf.int32)[None, :]
    box = (tf.abs(yy[None, None] - py[..., None, None]) <= window) & (
        tf.abs(xx[None, None] - px[..., None, None]) <= window
    )
    ty, tx = _soft_argmax(st, box, temperature)
    qy, qx = _soft_argmax(sp, box, temperature)
    dist = tf.abs(qy - tf.stop_gradient(ty)) + tf.abs(qx - tf.stop_gradient(tx))
    return tf.reduce_sum(tf.where(valid, dist, tf.zeros_like(dist)), axis=-1)


# --------------------------------------------------------------------------------------
# Keras losses
# --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="lensviz")
class MSELoss(keras.losses.Loss):
    """Mean squared error over κ maps (batch mean of :func:`mse`)."""

    def __init__(self, name: str = "mse", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return mse(y_true, y_pred)


@keras.saving.register_keras_serializable(package="lensviz")
class FocalLoss(keras.losses.Loss):
    """Focal loss of Hong et al. 2021 (batch mean of :func:`focal_loss`)."""

    def __init__(self, name: str = "focal", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="lensviz")
class MultiFocalLoss(keras.losses.Loss):
    """MultiFocal loss of the report, §3.1 (batch mean of :func:`multifocal_loss`).

    Parameters
    ----------
    coeffs : mapping, optional
        Coefficients ``a_i`` by component; missing ones take
        :data:`lensviz.constants.MULTIFOCAL_COEFFS` (focal 1, local 2, peaks 3,
        structure 1.5, edges 1).
    neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width
        Weight-map parameters, as :func:`lensviz.loss_weights.weight_maps`.

    Raises
    ------
    ValueError
        For unknown components, negative coefficients or bad weight parameters.
    """

    def __init__(
        self,
        coeffs: Mapping[str, float] | None = None,
        neighbourhood: int = constants.LOCAL_NEIGHBOURHOOD_PX,
        top_fraction: float = constants.LOCAL_TOP_FRACTION,
        n_peaks: int = constants.N_PEAKS_WEIGHT,
        peak_radius: float = constants.PEAK_RADIUS_PX,
        band: float = constants.STRUCTURE_BAND,
        edge_width: int = constants.EDGE_WIDTH_PX,
        name: str = "multifocal",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.coeffs = check_coeffs(coeffs)
        _check_weight_params(neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width)
        self.params = {
            "neighbourhood": int(neighbourhood),
            "top_fraction": float(top_fraction),
            "n_peaks": int(n_peaks),
            "peak_radius": float(peak_radius),
            "band": float(band),
            "edge_width": int(edge_width),
        }

    def call(self, y_true, y_pred):
        return multifocal_loss(y_true, y_pred, self.coeffs, **self.params)

    def get_config(self):
        config = super().get_config()
        config.update({"coeffs": dict(self.coeffs), **self.params})
        return config


_TERMS = ("multifocal", "wmape", "dicee", "dpeaks")


@keras.saving.register_keras_serializable(package="lensviz")
class CombinedLoss(keras.losses.Loss):
    """Weighted sum of MultiFocal and the metric surrogates (report §3.2).

    ``multifocal · MultiFocal + wmape · WMAPE + dicee · soft DICEE + dpeaks · peak shift``;
    terms with weight 0 are not computed. The default is the report's fine-tuning loss
    (0.95 MultiFocal + 0.05 WMAPE). Note the scales: MultiFocal ~ κ² (1e-4…1e-3), WMAPE
    and DICEE ~ 1, peak shift in pixels.

    Parameters
    ----------
    multifocal, wmape, dicee, dpeaks : float
        Non-negative weights of the terms, not all zero.
    coeffs, neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width
        MultiFocal parameters (:class:`MultiFocalLoss`).
    dicee_temperature : float
        τ of the soft mask in units of std(κt) (:func:`soft_dicee`).
    dpeaks_n, dpeaks_window, dpeaks_temperature, sigma_px
        :func:`peak_shift` parameters.
    """

    def __init__(
        self,
        multifocal: float = 0.95,
        wmape: float = 0.05,
        dicee: float = 0.0,
        dpeaks: float = 0.0,
        coeffs: Mapping[str, float] | None = None,
        neighbourhood: int = constants.LOCAL_NEIGHBOURHOOD_PX,
        top_fraction: float = constants.LOCAL_TOP_FRACTION,
        n_peaks: int = constants.N_PEAKS_WEIGHT,
        peak_radius: float = constants.PEAK_RADIUS_PX,
        band: float = constants.STRUCTURE_BAND,
        edge_width: int = constants.EDGE_WIDTH_PX,
        dicee_temperature: float = 0.05,
        dpeaks_n: int = constants.N_PEAKS_METRIC,
        dpeaks_window: int = 8,
        dpeaks_temperature: float = 0.05,
        sigma_px: float = constants.PEAK_SMOOTH_SIGMA_PX,
        name: str = "combined",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.term_weights = {
            "multifocal": multifocal,
            "wmape": wmape,
            "dicee": dicee,
            "dpeaks": dpeaks,
        }
        bad = {
            k: v
            for k, v in self.term_weights.items()
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0)
        }
        if bad:
            raise ValueError(f"CombinedLoss weights must be finite numbers >= 0, got {bad}")
        if sum(self.term_weights.values()) <= 0:
            raise ValueError(
                f"at least one CombinedLoss weight must be > 0, got {self.term_weights}"
            )
        self.term_weights = {k: float(v) for k, v in self.term_weights.items()}
        self.multifocal = MultiFocalLoss(
            coeffs, neighbourhood, top_fraction, n_peaks, peak_radius, band, edge_width
        )
        if not dicee_temperature > 0:
            raise ValueError(f"dicee_temperature must be > 0, got {dicee_temperature!r}")
        if int(dpeaks_n) != dpeaks_n or dpeaks_n < 1:
            raise ValueError(f"dpeaks_n must be a positive integer, got {dpeaks_n!r}")
        if int(dpeaks_window) != dpeaks_window or dpeaks_window < 1:
            raise ValueError(f"dpeaks_window must be a positive integer, got {dpeaks_window!r}")
        if not dpeaks_temperature > 0:
            raise ValueError(f"dpeaks_temperature must be > 0, got {dpeaks_temperature!r}")
        if not (np.isfinite(sigma_px) and sigma_px >= 0):
            raise ValueError(f"sigma_px must be a finite number >= 0, got {sigma_px!r}")
        self.dicee_temperature = float(dicee_temperature)
        self.dpeaks_params = {
            "n_peaks": int(dpeaks_n),
            "window": int(dpeaks_window),
            "temperature": float(dpeaks_temperature),
            "sigma_px": float(sigma_px),
        }

    def components(self, y_true, y_pred) -> dict[str, tf.Tensor]:
        """Unweighted per-map value ``(N,)`` of every term with a non-zero weight."""
        out = {}
        if self.term_weights["multifocal"]:
            out["multifocal"] = self.multifocal.call(y_true, y_pred)
        if self.term_weights["wmape"]:
            out["wmape"] = wmape_loss(y_true, y_pred)
        if self.term_weights["dicee"]:
            out["dicee"] = soft_dicee(y_true, y_pred, self.dicee_temperature)
        if self.term_weights["dpeaks"]:
            out["dpeaks"] = peak_shift(y_true, y_pred, **self.dpeaks_params)
        return out

    def call(self, y_true, y_pred):
        terms = self.components(y_true, y_pred)
        return tf.add_n([self.term_weights[name] * value for name, value in terms.items()])

    def get_config(self):
        config = super().get_config()
        mf = self.multifocal.get_config()
        for key in ("name", "reduction"):
            mf.pop(key, None)
        config.update(self.term_weights)
        config.update(mf)
        config.update(
            {
                "dicee_temperature": self.dicee_temperature,
                "dpeaks_n": self.dpeaks_params["n_peaks"],
                "dpeaks_window": self.dpeaks_params["window"],
                "dpeaks_temperature": self.dpeaks_params["temperature"],
                "sigma_px": self.dpeaks_params["sigma_px"],
            }
        )
        return config


# === By name ===

#: Loss names accepted by :func:`make_loss`.
LOSSES = ("mse", "focal", "multifocal", "combined")


def make_loss(
    name: str,
    coeffs: Mapping[str, float] | None = None,
    combined_weights: Mapping[str, float] | None = None,
):
    """A Keras loss by name: ``mse``, ``focal``, ``multifocal`` or ``combined``."""
    if name == "mse":
        return MSELoss()
    if name == "focal":
        return FocalLoss()
    if name == "multifocal":
        return MultiFocalLoss(coeffs=dict(coeffs or constants.MULTIFOCAL_COEFFS))
    if name == "combined":
        w = dict(combined_weights or {})
        return CombinedLoss(coeffs=dict(coeffs or constants.MULTIFOCAL_COEFFS), **w)
    raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSSES)}")
