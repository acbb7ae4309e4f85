"""Per-pixel uncertainty of UNet κ maps, and its calibration.

Monte-Carlo dropout (Gal & Ghahramani 2016)
    ``T`` stochastic passes with the decoder's dropout layers active and BatchNorm in
    inference mode, through a twin of the model (:class:`lensviz.nn.unet.UNet` with
    ``mc_dropout=True``) that shares its weights. Mean and per-pixel standard deviation
    over the passes.

Test-time augmentation
    The 8 spin-2-correct symmetries of the square (:mod:`lensviz.augment`): predict on
    each transformed ε, transform the κ back, take mean and standard deviation. This
    measures how far the model is from the symmetry the physics has, not the noise.

Calibration
    A Gaussian 1σ (2σ) interval should hold 68.3% (95.4%) of the true pixels.
    :func:`calibration` gives those fractions and a reliability curve: the observed
    coverage of ``|κ_true − mean| ≤ z σ`` against the Gaussian expectation, for a grid
    of ``z``.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from lensviz.augment import N_SYMMETRIES, apply_symmetry, inverse_transform_maps
from lensviz.nn.inference import add_ks93_channel, forward_fn, predict_kappa
from lensviz.nn.unet import UNet

__all__ = [
    "mc_dropout_twin",
    "predict_mc_dropout",
    "predict_tta",
    "predict_uncertainty",
    "calibration",
    "METHODS",
]

METHODS = ("mc_dropout", "tta")

_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def mc_dropout_twin(model):
    """The model's stochastic twin (dropout on at inference), sharing its current weights.

    Raises
    ------
    ValueError
        If the model has no dropout layer (Monte-Carlo dropout would return σ = 0).
    """
    if not any(layer.name.endswith("_drop") for layer in model.layers):
        raise ValueError(f"model {model.name!r} has no dropout layers; use method='tta'")
    twin = _TWINS.get(model)
    if twin is None:
        twin = UNet(model.unet_config, mc_dropout=True, name=f"{model.name}_mc")
        _TWINS[model] = twin
    twin.set_weights(model.get_weights())
    return twin


def _forward(model):
    return forward_fn(model)


def predict_mc_dropout(model, eps, n_passes: int = 20, batch_size: int = 32, seed: int = 0):
    """Mean and per-pixel σ of ``n_passes`` Monte-Carlo-dropout predictions.

    Parameters
    ----------
    model : lensviz.nn.unet.UNet
    eps : array_like, shape (N, 128, 128, 3) or (128, 128, 3)
    n_passes : int
        T, the number of stochastic passes (≥ 2).
    seed : int
        Seeds the dropout layers' random streams, so the result is reproducible.

    Returns
    -------
    mean, std : ndarray, float32, shape (N, 128, 128) or (128, 128)
    """
    if int(n_passes) != n_passes or n_passes < 2:
        raise ValueError(f"n_passes must be an integer >= 2, got {n_passes!r}")
    x = np.asarray(eps, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    if model.input_shape[-1] == 4 and x.shape[-1] == 3:
        x = add_ks93_channel(x)
    twin = mc_dropout_twin(model)
    # Reset each dropout layer's random stream, so that a seed gives the same passes.
    drops = [layer for layer in twin.layers if hasattr(layer, "seed_generator")]
    for j, layer in enumerate(drops):
        state = layer.seed_generator.state
        state.assign(np.array([seed * 1009 + j, 0], dtype=state.dtype))
    fwd = _forward(twin)
    total = np.zeros(x.shape[:3])
    total_sq = np.zeros(x.shape[:3])
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        for _ in range(int(n_passes)):
            p = np.asarray(fwd(chunk), dtype=np.float64)
            total[i : i + batch_size] += p
            total_sq[i : i + batch_size] += p * p
    mean = total / n_passes
    var = np.maximum(total_sq / n_passes - mean * mean, 0.0) * n_passes / (n_passes - 1)
    mean, std = mean.astype(np.float32), np.sqrt(var).astype(np.float32)
    return (mean[0], std[0]) if single else (mean, std)


def predict_tta(model, eps, batch_size: int = 64):
    """Mean and per-pixel σ over the 8 spin-2-correct symmetries (test-time augmentation)."""
    x = np.asarray(eps, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    preds = []
    for g in range(N_SYMMETRIES):
        xg, _ = apply_symmetry(x, None, g)
        preds.append(inverse_transform_maps(predict_kappa(model, xg, batch_size), g))
    stack = np.stack(preds).astype(np.float64)
    mean = stack.mean(axis=0).astype(np.float32)
    std = stack.std(axis=0, ddof=1).astype(np.float32)
    return (mean[0], std[0]) if single else (mean, std)


def predict_uncertainty(model, eps, method: str = "mc_dropout", n_passes: int = 20, seed: int = 0):
    """Dispatch to :func:`predict_mc_dropout` or :func:`predict_tta`; returns (mean, std)."""
    if method == "mc_dropout":
        return predict_mc_dropout(model, eps, n_passes=n_passes, seed=seed)
    if method == "tta":
        return predict_tta(model, eps)
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def calibration(kappa_true, mean, std, z=None) -> dict:
    """Coverage of the predicted σ: fractions of true pixels within ±1σ, ±2σ, and a curve.

    Parameters
    ----------
    kappa_true, mean, std : array_like, same shape
    z : array_like, optional
        Interval half-widths in units of σ for the reliability curve (default 0.1 … 3).

    Returns
    -------
    dict
        ``within_1sigma``, ``within_2sigma`` (observed fractions), ``expected_1sigma``
        (0.683), ``expected_2sigma`` (0.954), ``z``, ``observed``, ``expected`` (curve),
        and ``mean_sigma`` and ``rmse`` (is σ the right size on average?).
    """
    t = np.asarray(kappa_true, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if not (t.shape == m.shape == s.shape):
        raise ValueError(f"shapes differ: true {t.shape}, mean {m.shape}, std {s.shape}")
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("std must be finite and >= 0")
    z = np.linspace(0.1, 3.0, 30) if z is None else np.asarray(z, dtype=np.float64)
    resid = np.abs(t - m).ravel()
    sig = s.ravel()
    observed = np.array([np.mean(resid <= zi * sig) for zi in z])
    expected = np.array([math.erf(zi / math.sqrt(2)) for zi in z])
    return {
        "within_1sigma": float(np.mean(resid <= sig)),
        "within_2sigma": float(np.mean(resid <= 2 * sig)),
        "expected_1sigma": math.erf(1 / math.sqrt(2)),
        "expected_2sigma": math.erf(2 / math.sqrt(2)),
        "z": z.tolist(),
        "observed": observed.tolist(),
        "expected": expected.tolist(),
        "mean_sigma": float(sig.mean()),
        "rmse": float(np.sqrt(np.mean(resid**2))),
    }
