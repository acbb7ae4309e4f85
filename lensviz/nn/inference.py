"""Running and storing a trained UNet: ``tf.function`` forwards, predictors, ``.keras`` files.

Inference
    :func:`predict_kappa` runs a model through a cached ``tf.function`` forward
    (:func:`forward_fn`), never ``model.predict``; :func:`unet_predictor` wraps a saved
    model in :mod:`lensviz.evaluation`'s predictor protocol; :func:`add_ks93_channel`
    builds the 4th input channel of ``with_ks93`` models; :func:`training_domain` reads
    what a model was trained on.
Files
    :func:`save_model` writes ``.keras`` atomically and without optimizer state;
    :func:`load_model` reads one, naming the file on any failure. Importing this module
    registers the lensviz layers and the UNet with Keras (:mod:`lensviz.nn.layers`,
    :mod:`lensviz.nn.features`, :mod:`lensviz.nn.unet`), so any ``.keras`` file saved by
    lensviz loads, whichever module defined the classes when it was written.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.data.archive import check_keras_archive, check_model_signature
from lensviz.depth import LEGACY_DOMAIN, TrainingDomain
from lensviz.features import FEATURES, unet_features
from lensviz.fields import DEFAULT_OVERLAP_PX, predict_tiled
from lensviz.inversion import ks93
from lensviz.nn.layers import check_int
from lensviz.nn.unet import UNet

__all__ = [
    "forward_fn",
    "predict_kappa",
    "add_ks93_channel",
    "model_inputs",
    "training_domain",
    "model_predictor",
    "unet_predictor",
    "save_model",
    "load_model",
]


# === Inference ===

_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_fn(model: keras.Model) -> Callable:
    """A ``tf.function`` computing ``model(x, training=False)``.

    Traced once for the model's input shape with a free batch size (``input_signature``,
    ``reduce_retracing``); it holds the model only weakly and reads the current weights
    on every call.

    Returns
    -------
    callable
        ``f(x: float32 (N, npix, npix, C)) -> tf.Tensor (N, npix, npix)``.
    """
    ref = weakref.ref(model)
    shape = (None, *model.input_shape[1:])

    def forward(x):
        return ref()(x, training=False)

    return tf.function(
        forward,
        input_signature=[tf.TensorSpec(shape, tf.float32)],
        reduce_retracing=True,
    )


def _cached_forward(model: keras.Model) -> Callable:
    try:
        return _FORWARDS[model]
    except KeyError:
        fn = _FORWARDS[model] = forward_fn(model)
        return fn
    except TypeError:  # not weak-referenceable / hashable
        return forward_fn(model)


def training_domain(model: keras.Model) -> TrainingDomain | None:
    """The :class:`lensviz.depth.TrainingDomain` a model was trained on.

    Read from the model file (saved by :func:`lensviz.nn.training.train`). A UNet saved
    before depth was recorded and without noise-aware features was trained at LSST depth
    only: :data:`lensviz.depth.LEGACY_DOMAIN`. None when nothing is known.
    """
    values = getattr(model, "training_domain", None)
    if values:
        return TrainingDomain.from_dict(values)
    config = getattr(model, "unet_config", None)
    if config is not None and not config.noise_aware:
        return LEGACY_DOMAIN
    return None


def add_ks93_channel(eps: np.ndarray) -> np.ndarray:
    """Append the KS93 E-mode map of ``(e1, e2)`` as a 4th channel.

    The channel is :func:`lensviz.inversion.ks93` of channels 0 and 1 (no padding, no
    smoothing): the input the ``with_ks93`` models expect. Training must use this too.

    Parameters
    ----------
    eps : array_like, shape (..., ny, nx, 3)

    Returns
    -------
    ndarray, float32, shape (..., ny, nx, 4)
    """
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim < 3 or eps.shape[-1] != 3:
        raise ValueError(f"expected ε of shape (..., ny, nx, 3), got shape {eps.shape}")
    kappa_e, _ = ks93(eps[..., 0], eps[..., 1])
    return np.concatenate([eps, kappa_e[..., None]], axis=-1)


def model_inputs(model: keras.Model, eps, pixel_arcmin=constants.PIXEL_ARCMIN) -> np.ndarray:
    """What ``model`` takes, from ε cubes that are each a whole field.

    ``(e1, e2, Δε)`` as they are (3-channel models), with the KS93 channel appended
    (:func:`add_ks93_channel`, 4-channel ``with_ks93`` models), or the field features
    (:func:`lensviz.features.unet_features`, 5-channel field-aware models). An input that
    already has the model's channel count is returned as it is.

    Parameters
    ----------
    model : keras.Model
    eps : array_like, shape (N, ny, nx, C)
    pixel_arcmin : float or array_like, shape (N,)
        Pixel side [arcmin] (field-aware models only).

    Raises
    ------
    ValueError
        If the channels fit neither ε nor the model.
    """
    eps = np.asarray(eps, dtype=np.float32)
    want = model.input_shape[-1]
    if eps.shape[-1] == want:
        return eps
    if eps.shape[-1] == 3 and want == 4:
        return add_ks93_channel(eps)
    if eps.shape[-1] == 3 and want == len(FEATURES):
        return unet_features(eps, pixel_arcmin)
    raise ValueError(
        f"model {model.name!r} takes {want} input channels, got ε with {eps.shape[-1]}"
    )


def predict_kappa(
    model: keras.Model, eps, batch_size: int = 64, pixel_arcmin=constants.PIXEL_ARCMIN
) -> np.ndarray:
    """Predict κ maps with a cached ``tf.function`` forward (never ``model.predict``).

    Parameters
    ----------
    model : keras.Model
        A :class:`UNet` or any model mapping ``(N, ny, nx, C)`` to ``(N, ny, nx)``.
    eps : array_like, shape (N, ny, nx, C) or (ny, nx, C)
        ε cube(s), channels ``(e1, e2, Δε)``, each map its own field; or the model's
        own inputs (:func:`model_inputs`), e.g. features cut from a larger field.
    batch_size : int
        Maps per forward call.
    pixel_arcmin : float or array_like, shape (N,)
        Pixel side [arcmin], for field-aware models.

    Returns
    -------
    ndarray, float32, shape (N, ny, nx), or (ny, nx) for a single sample.

    Raises
    ------
    ValueError
        If the shape does not fit the model, or ``batch_size`` < 1.
    """
    check_int("batch_size", batch_size, 1)
    eps = np.asarray(eps, dtype=np.float32)
    single = eps.ndim == 3
    if single:
        eps = eps[None]
    want = tuple(model.input_shape[1:])
    if eps.ndim != 4 or eps.shape[1:3] != want[:2]:
        raise ValueError(
            f"expected ε of shape (N, {want[0]}, {want[1]}, 3) or ({want[0]}, {want[1]}, 3) "
            f"for model {model.name!r}, got shape {eps.shape if not single else eps.shape[1:]}"
        )
    x = model_inputs(model, eps, pixel_arcmin)
    forward = _cached_forward(model)
    out = [np.asarray(forward(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    kappa = (
        np.concatenate(out).astype(np.float32, copy=False)
        if out
        else np.zeros((0, *want[:2]), np.float32)
    )
    return kappa[0] if single else kappa


# === Files ===


def save_model(model: keras.Model, path: str | os.PathLike) -> str:
    """Save a model as ``.keras`` (architecture, config and weights), atomically.

    Writes a temporary ``.keras`` file in the same directory, then renames it over
    ``path`` (:func:`lensviz._atomic.atomic_path`), so a reader never sees a half-written
    file. A compiled :class:`UNet` is saved without
    its optimizer state (a third of the size).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.keras``.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"model files must end in '.keras', got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if isinstance(model, UNet) and getattr(model, "optimizer", None) is not None:
        # Ship weights, not training state: a fresh twin without the optimizer's moments
        # (they would triple the file size).
        bare = UNet(model.unet_config, training_domain=model.training_domain, name=model.name)
        bare.set_weights(model.get_weights())
        model = bare
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def load_model(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model written by :func:`save_model`.

    Parameters
    ----------
    path : str or PathLike
    compile : bool
        Restore the training configuration too (needs its losses registered, e.g. by
        importing :mod:`lensviz.nn.losses`). Off by default: inference needs none.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, not a ``.keras`` file, unreadable, or holds
        non-finite (NaN or infinite) weights; a :class:`lensviz.data.DataError` naming
        the member and the rule when the archive is refused
        (:func:`lensviz.data.archive.check_keras_archive`: compression method, sizes),
        or when the model is not ``(N, ny, nx, C) -> (N, ny, nx)``
        (:func:`lensviz.data.archive.check_model_signature`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(f"model file {path!r} must be a '.keras' file")
    check_keras_archive(path)  # members, methods and sizes, before Keras reads a byte
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as err:  # zip, JSON, h5 and Keras errors alike
        raise ValueError(
            f"model file {path!r} is corrupt or not a lensviz model: {type(err).__name__}: {err}"
        ) from err
    check_model_signature(model.input_shape, model.output_shape, os.path.basename(path))
    for weight in model.weights:  # a diverged run's NaN or inf weights give NaN maps
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
            raise ValueError(
                f"model file {path!r} holds non-finite weights ({weight.path}): refusing it"
            )
    return model


def model_predictor(
    model: keras.Model, batch_size: int = 64, overlap: int = DEFAULT_OVERLAP_PX
) -> Callable:
    """A predictor running a loaded UNet on maps of any size.

    The predictor protocol is :mod:`lensviz.evaluation`'s: ``eps (N, ny, nx, 3) ->
    kappa (N, ny, nx)`` (or one map ``(ny, nx, 3) -> (ny, nx)``), with an optional
    ``pixel_arcmin`` (one value, or one per map). Maps of the model's tile size go
    through the cached ``tf.function`` forward of :func:`predict_kappa`; maps of another
    size (whole fields) are reconstructed from overlapping tiles blended into one map,
    neighbours sharing at least ``overlap`` pixels (:func:`lensviz.fields.predict_tiled`;
    :func:`lensviz.nn.fields.predict_field` runs it). A field-aware model reads features
    computed on the whole field before it is cut (:func:`model_inputs`). The model is the
    predictor's ``model`` attribute.
    """
    tile = tuple(model.input_shape[1:3])
    field_aware = model.input_shape[-1] == len(FEATURES)

    def predict(eps: np.ndarray, pixel_arcmin=constants.PIXEL_ARCMIN) -> np.ndarray:
        eps = np.asarray(eps, dtype=np.float32)
        if eps.ndim in (3, 4) and tuple(eps.shape[-3:-1]) != tile and tile[0] == tile[1]:
            if eps.ndim == 4:
                scales = np.broadcast_to(np.asarray(pixel_arcmin, np.float64), len(eps))
                return np.stack([predict(e, float(p)) for e, p in zip(eps, scales, strict=True)])

            def inputs(field):
                return model_inputs(model, field[None], pixel_arcmin)[0]

            return predict_tiled(
                lambda t: predict_kappa(model, t, batch_size),
                eps,
                tile[0],
                overlap,
                batch_size,
                inputs if field_aware else None,
            )
        return predict_kappa(model, eps, batch_size=batch_size, pixel_arcmin=pixel_arcmin)

    predict.__name__ = "unet"
    predict.__doc__ = f"UNet {getattr(model, 'name', '')}."
    predict.model = model
    return predict


def unet_predictor(weights: str | os.PathLike, batch_size: int = 64) -> Callable:
    """A predictor running the UNet saved at ``weights`` (a ``.keras`` file), loaded once.

    See :func:`model_predictor`: the UNet joins KS93 and Wiener in
    :func:`lensviz.evaluation.evaluate_methods`, on tiles and whole fields alike.
    """
    predict = model_predictor(load_model(weights), batch_size)
    predict.__doc__ = f"UNet {getattr(predict.model, 'name', '')} from {weights}."
    return predict
