"""The pix2pix-style UNet of the Barrienlens report (§2), as a pure Keras 3 builder.

Architecture (report §2.1; docs/reference.md §9)
    ``(npix, npix, C)`` ε cube, ``C = 3`` channels ``(e1, e2, Δε)`` or ``C = 4`` with the
    KS93 map appended (:func:`add_ks93_channel`)
    → :class:`ReflectionPadding2D` of ``pad`` px per side
    → ``depth`` encoder blocks: Conv2D(kernel, stride 2, ``same``, no bias), BatchNorm on
    all but the first, LeakyReLU; filters ``base · 2^i`` capped at ``max_filters``
    → ``depth − 1`` decoder blocks: Conv2DTranspose(stride 2, no bias), BatchNorm,
    Dropout on the first ``n_decoder_dropout``, ReLU, concatenation with the encoder
    output of the same resolution; filters mirror the encoder (bottleneck excluded)
    → final Conv2DTranspose to 1 channel (stride 2, bias, ``tanh``)
    → Cropping2D of ``pad`` px per side → Reshape to ``(npix, npix)``.

The channel axis of the output is squeezed so that a prediction has the shape of a κ
map, ``(N, npix, npix)``, as the losses of :mod:`lensviz.nn.losses` expect. Weights start
from N(0, 0.02), as in pix2pix.

With ``two_kernel`` (the report's "UNet-2k", §5.1) every encoder block runs two
convolutions in parallel, ``kernel_size`` (3×3, detail) with ``f // 2`` filters and
``second_kernel_size`` (9×9, context) with ``f − f // 2`` filters, and concatenates
them, so the block output keeps the width ``f`` of the plain UNet and the decoder is
unchanged.

Layer names (stable; used by :func:`trainable_layers` and by weight files)
    ``pad``, ``enc{i}_conv`` (or ``enc{i}_conv_a`` / ``enc{i}_conv_b`` / ``enc{i}_cat``),
    ``enc{i}_bn``, ``enc{i}_act``; ``dec{i}_convt``, ``dec{i}_bn``, ``dec{i}_drop``,
    ``dec{i}_act``, ``dec{i}_skip``; :data:`LAST_LAYER` (``"last_convt"``), ``crop``,
    ``kappa``. Blocks count from 1.
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.depth import LEGACY_DOMAIN, TrainingDomain
from lensviz.inversion import ks93
from lensviz.nn.features import LensingFeatures

__all__ = [
    "UNetConfig",
    "PRESETS",
    "LAST_LAYER",
    "ReflectionPadding2D",
    "AlwaysDropout",
    "UNet",
    "build_unet",
    "resolve_config",
    "count_params",
    "trainable_layers",
    "set_trainable",
    "add_ks93_channel",
    "training_domain",
    "forward_fn",
    "predict_kappa",
    "save_model",
    "load_model",
    "unet_predictor",
]

#: Name of the final Conv2DTranspose: the only trainable layer in ``set_trainable("last")``.
LAST_LAYER = "last_convt"

_TRAINABLE_GROUPS = ("last", "decoder", "all")


# --------------------------------------------------------------------------------------
# Configuration and presets
# --------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Hyperparameters of the UNet; the defaults are the report's model (:data:`PRESETS` ``paper``).

    Parameters
    ----------
    base_filters : int
        Filters of the first encoder block; block ``i`` (from 0) has
        ``min(base_filters · 2**i, max_filters)``.
    max_filters : int
        Cap on the number of filters of any block.
    depth : int
        Number of stride-2 encoder blocks; the decoder has ``depth − 1`` blocks plus the
        final transposed convolution.
    kernel_size : int
        Square kernel of every convolution (the report's tuned value is 3).
    pad : int
        Reflection padding (pixels per side) before the first convolution; cropped off at
        the end. ``npix + 2·pad`` must be divisible by ``2**depth`` and ``pad < npix``.
    n_decoder_dropout : int
        Number of leading decoder blocks with dropout (≤ ``depth − 1``).
    dropout_rate : float
        Dropout probability in those blocks, in [0, 1).
    two_kernel : bool
        UNet-2k: parallel ``kernel_size`` and ``second_kernel_size`` convolutions in each
        encoder block, filters split ``f // 2`` and ``f − f // 2``.
    second_kernel_size : int
        The large kernel of UNet-2k.
    with_ks93 : bool
        4 input channels ``(e1, e2, Δε, κ_KS93)`` instead of 3.
    noise_aware : bool
        The first layer is :class:`lensviz.nn.features.LensingFeatures`: the model takes
        the raw ``(e1, e2, Δε)`` cube and reads the per-pixel noise and the mask from Δε,
        with the KS93 E and B modes computed inside the model. One set of weights then
        serves every survey depth. Excludes ``with_ks93``.
    npix : int
        Side of the (square) input and output maps, pixels.
    output_activation : str
        Activation of the final layer (``"tanh"`` in the report; κ then lies in (−1, 1)).
    leaky_slope : float
        Negative slope of the encoder LeakyReLU (0.2, as in pix2pix).

    Raises
    ------
    ValueError
        Naming the offending field and value.
    """

    base_filters: int = 64
    max_filters: int = 512
    depth: int = 8
    kernel_size: int = 3
    pad: int = 64
    n_decoder_dropout: int = 3
    dropout_rate: float = 0.5
    two_kernel: bool = False
    second_kernel_size: int = 9
    with_ks93: bool = False
    noise_aware: bool = False
    npix: int = constants.NPIX
    output_activation: str = "tanh"
    leaky_slope: float = 0.2

    def __post_init__(self):
        _check_int("base_filters", self.base_filters, 2 if self.two_kernel else 1)
        _check_int("max_filters", self.max_filters, 1)
        if self.max_filters < self.base_filters:
            raise ValueError(
                f"max_filters must be >= base_filters ({self.base_filters}), got {self.max_filters}"
            )
        _check_int("depth", self.depth, 1)
        _check_int("kernel_size", self.kernel_size, 1)
        _check_int("second_kernel_size", self.second_kernel_size, 1)
        _check_int("npix", self.npix, 2)
        _check_int("pad", self.pad, 0)
        if self.pad >= self.npix:
            raise ValueError(
                f"pad must be < npix ({self.npix}) for reflection padding, got {self.pad}"
            )
        padded = self.npix + 2 * self.pad
        if padded % 2**self.depth:
            raise ValueError(
                f"npix + 2*pad = {padded} (npix={self.npix}, pad={self.pad}) must be divisible "
                f"by 2**depth = {2**self.depth} (depth={self.depth})"
            )
        _check_int("n_decoder_dropout", self.n_decoder_dropout, 0)
        if self.n_decoder_dropout > self.depth - 1:
            raise ValueError(
                f"n_decoder_dropout must be <= depth - 1 = {self.depth - 1} decoder blocks, "
                f"got {self.n_decoder_dropout}"
            )
        if not (isinstance(self.dropout_rate, (int, float)) and 0 <= self.dropout_rate < 1):
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        for flag in ("two_kernel", "with_ks93", "noise_aware"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        if self.with_ks93 and self.noise_aware:
            raise ValueError(
                "with_ks93 and noise_aware exclude each other: a noise-aware "
                "model computes its KS93 channels itself"
            )
        if not isinstance(self.output_activation, str):
            raise ValueError(
                f"output_activation must be a Keras activation name, got {self.output_activation!r}"
            )
        try:
            keras.activations.get(self.output_activation)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"output_activation must be a Keras activation name, got {self.output_activation!r}"
            ) from err
        if not (isinstance(self.leaky_slope, (int, float)) and self.leaky_slope >= 0):
            raise ValueError(f"leaky_slope must be a number >= 0, got {self.leaky_slope!r}")

    @property
    def in_channels(self) -> int:
        """3 ``(e1, e2, Δε)``, or 4 with the KS93 channel."""
        return 4 if self.with_ks93 else 3

    @property
    def encoder_filters(self) -> tuple[int, ...]:
        """Filters of the ``depth`` encoder blocks."""
        return tuple(min(self.base_filters * 2**i, self.max_filters) for i in range(self.depth))

    @property
    def decoder_filters(self) -> tuple[int, ...]:
        """Filters of the ``depth − 1`` decoder blocks: the encoder's reversed, bottleneck out."""
        return tuple(reversed(self.encoder_filters[:-1]))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Raises
        ------
        ValueError
            On unknown keys (named) or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown UNetConfig fields {unknown}; expected some of {sorted(known)}"
            )
        return cls(**values)


#: Named configurations.
#:
#: ``paper``
#:     The report's model: 8 blocks, 64 → 512 filters, reflection padding 64 px
#:     (128 → 256 px); 30,621,761 parameters.
#: ``lite``
#:     The same design for CPU training: 16 → 128 filters, 6 blocks and 32 px of
#:     reflection padding (128 → 192 px, a 3×3 bottleneck); 1,031,697 parameters
#:     (4.1 MB of float32 weights). A training step at batch 8 on 2 CPU cores
#:     (``train_on_batch``, Adam, MSE; 30 interleaved steps after 3 warm-up ones) took
#:     66 ms (10th percentile) / 111 ms (median), against 115 / 201 ms for depth 8 and
#:     pad 64 (1,918,481 parameters): the padded area, not the width, sets the cost.
#: ``unet2k``
#:     ``paper`` with parallel 3×3 (f//2 filters) and 9×9 (f − f//2) convolutions in every
#:     encoder block; 74,570,561 parameters, most of them in the 9×9 kernels of the
#:     512-filter blocks.
PRESETS: dict[str, UNetConfig] = {
    "paper": UNetConfig(
        base_filters=64,
        max_filters=512,
        depth=8,
        kernel_size=3,
        pad=64,
        n_decoder_dropout=3,
        dropout_rate=0.5,
    ),
    "lite": UNetConfig(
        base_filters=16,
        max_filters=128,
        depth=6,
        kernel_size=3,
        pad=32,
        n_decoder_dropout=3,
        dropout_rate=0.5,
        noise_aware=True,
    ),
    "unet2k": UNetConfig(
        base_filters=64,
        max_filters=512,
        depth=8,
        kernel_size=3,
        pad=64,
        n_decoder_dropout=3,
        dropout_rate=0.5,
        two_kernel=True,
        second_kernel_size=9,
    ),
}


def resolve_config(config: UNetConfig | str) -> UNetConfig:
    """A :class:`UNetConfig`, from itself or from a preset name.

    Raises
    ------
    ValueError
        For an unknown preset name (the known ones are listed).
    TypeError
        For anything else than a config or a string.
    """
    if isinstance(config, UNetConfig):
        return config
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown UNet preset {config!r}; known presets: {sorted(PRESETS)}")
        return PRESETS[config]
    raise TypeError(f"config must be a UNetConfig or a preset name, got {type(config).__name__}")


# --------------------------------------------------------------------------------------
# Custom layers
# --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="lensviz")
class ReflectionPadding2D(keras.layers.Layer):
    """Reflection padding of ``pad`` pixels on each side of the two spatial axes.

    Input ``(N, H, W, C)`` → output ``(N, H + 2·pad, W + 2·pad, C)``, mirroring without
    repeating the edge pixel (``tf.pad`` mode ``REFLECT``), so ``pad`` must be smaller
    than H and W.

    Parameters
    ----------
    pad : int
        Pixels added on each side (≥ 0).
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        _check_int("pad", pad, 0)
        self.pad = int(pad)

    def call(self, inputs):
        if self.pad == 0:
            return inputs
        p = self.pad
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = 2 * self.pad
        return (n, None if h is None else h + grow, None if w is None else w + grow, c)

    def get_config(self):
        config = super().get_config()
        config.update({"pad": self.pad})
        return config


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


@keras.saving.register_keras_serializable(package="lensviz")
class AlwaysDropout(keras.layers.Dropout):
    """Dropout that stays on at inference: the Monte-Carlo-dropout layer (Gal & Ghahramani
    2016). Used only by the stochastic twin of a UNet (``UNet(..., mc_dropout=True)``),
    where BatchNorm still runs in inference mode."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package="lensviz")
class UNet(keras.Model):
    """The lensviz UNet: a functional Keras model built from a :class:`UNetConfig`.

    Parameters
    ----------
    config : UNetConfig, dict or str
        Configuration, its :meth:`UNetConfig.to_dict`, or a :data:`PRESETS` name.

    training_domain : dict, optional
        :meth:`lensviz.depth.TrainingDomain.to_dict` of the data the weights were trained
        on, saved with the model so that the app and the CLI can warn on samples outside
        it (None: unknown).
    mc_dropout : bool
        Build the stochastic twin whose decoder dropout stays on at inference
        (:class:`AlwaysDropout`), for Monte-Carlo-dropout uncertainty maps
        (:mod:`lensviz.nn.uncertainty`). Same layers and weights as the plain model.

    Input ``(N, npix, npix, 3 or 4)`` float32; output ``(N, npix, npix)`` κ. The config is
    kept as ``model.unet_config`` and stored in ``.keras`` files (:func:`save_model`).

    Examples
    --------
    >>> import numpy as np
    >>> model = UNet("lite")
    >>> eps = np.zeros((2, 128, 128, 3), np.float32)
    >>> model(eps, training=False).shape      # κ maps, (N, 128, 128)
    TensorShape([2, 128, 128])
    """

    def __init__(
        self,
        config: UNetConfig | Mapping[str, Any] | str = "paper",
        mc_dropout: bool = False,
        training_domain: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        if isinstance(config, Mapping):
            config = UNetConfig.from_dict(config)
        config = resolve_config(config)
        kwargs.setdefault("name", "unet")
        c = config
        # === Layers ===
        pad = ReflectionPadding2D(c.pad, name="pad")
        enc = []
        for i, f in enumerate(c.encoder_filters, start=1):
            block = {}
            if c.two_kernel:
                block["conv_a"] = keras.layers.Conv2D(
                    f // 2,
                    c.kernel_size,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=_init(),
                    name=f"enc{i}_conv_a",
                )
                block["conv_b"] = keras.layers.Conv2D(
                    f - f // 2,
                    c.second_kernel_size,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=_init(),
                    name=f"enc{i}_conv_b",
                )
                block["cat"] = keras.layers.Concatenate(name=f"enc{i}_cat")
            else:
                block["conv"] = keras.layers.Conv2D(
                    f,
                    c.kernel_size,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=_init(),
                    name=f"enc{i}_conv",
                )
            if i > 1:
                block["bn"] = keras.layers.BatchNormalization(name=f"enc{i}_bn")
            block["act"] = keras.layers.LeakyReLU(negative_slope=c.leaky_slope, name=f"enc{i}_act")
            enc.append(block)
        dec = []
        for i, f in enumerate(c.decoder_filters, start=1):
            block = {
                "convt": keras.layers.Conv2DTranspose(
                    f,
                    c.kernel_size,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=_init(),
                    name=f"dec{i}_convt",
                ),
                "bn": keras.layers.BatchNormalization(name=f"dec{i}_bn"),
            }
            if i <= c.n_decoder_dropout:
                drop = AlwaysDropout if mc_dropout else keras.layers.Dropout
                block["drop"] = drop(c.dropout_rate, name=f"dec{i}_drop")
            block["act"] = keras.layers.ReLU(name=f"dec{i}_act")
            block["skip"] = keras.layers.Concatenate(name=f"dec{i}_skip")
            dec.append(block)
        last = keras.layers.Conv2DTranspose(
            1,
            c.kernel_size,
            strides=2,
            padding="same",
            activation=c.output_activation,
            kernel_initializer=_init(),
            name=LAST_LAYER,
        )
        crop = keras.layers.Cropping2D(c.pad, name="crop")
        squeeze = keras.layers.Reshape((c.npix, c.npix), name="kappa")

        features = LensingFeatures(name="features") if c.noise_aware else None

        # === Functional Model ===
        inputs = keras.Input(shape=(c.npix, c.npix, c.in_channels), name="eps")
        x = pad(features(inputs) if features is not None else inputs)
        skips = []
        for block in enc:
            if c.two_kernel:
                x = block["cat"]([block["conv_a"](x), block["conv_b"](x)])
            else:
                x = block["conv"](x)
            if "bn" in block:
                x = block["bn"](x)
            x = block["act"](x)
            skips.append(x)
        for block, skip in zip(dec, reversed(skips[:-1]), strict=True):
            x = block["bn"](block["convt"](x))
            if "drop" in block:
                x = block["drop"](x)
            x = block["skip"]([block["act"](x), skip])
        outputs = squeeze(crop(last(x)))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.unet_config = config
        self.mc_dropout = bool(mc_dropout)
        self.training_domain = None if training_domain is None else dict(training_domain)

    def get_config(self):
        return {
            "config": self.unet_config.to_dict(),
            "mc_dropout": self.mc_dropout,
            "training_domain": self.training_domain,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config=UNetConfig.from_dict(config.pop("config")), **config)


def build_unet(config: UNetConfig | str = "paper") -> UNet:
    """Build the UNet of a :class:`UNetConfig` or of a preset name (see :class:`UNet`).

    Raises
    ------
    ValueError
        For an unknown preset name, listing the known ones.
    """
    return UNet(resolve_config(config))


def count_params(config: UNetConfig | str) -> int:
    """Number of parameters (trainable + BatchNorm statistics) of a config or preset.

    Builds the model once (a second or two for ``paper``).
    """
    return int(build_unet(config).count_params())


# --------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------


def trainable_layers(model: keras.Model, which: str) -> list[str]:
    """Names of the weight-holding layers in a fine-tuning group.

    Parameters
    ----------
    model : keras.Model
        A :class:`UNet` (or any model with the same layer names).
    which : {"last", "decoder", "all"}
        ``"last"``: the final Conv2DTranspose (:data:`LAST_LAYER`), as in the report's
        fine-tuning; ``"decoder"``: every ``dec*`` layer plus the last one; ``"all"``.

    Raises
    ------
    ValueError
        For another ``which``, or a model without :data:`LAST_LAYER`.
    """
    if which not in _TRAINABLE_GROUPS:
        raise ValueError(f"which must be one of {list(_TRAINABLE_GROUPS)}, got {which!r}")
    names = [layer.name for layer in model.layers if layer.weights]
    if LAST_LAYER not in names:
        raise ValueError(f"model {model.name!r} has no layer named {LAST_LAYER!r}")
    if which == "last":
        return [LAST_LAYER]
    if which == "decoder":
        return [n for n in names if n.startswith("dec") or n == LAST_LAYER]
    return names


def set_trainable(model: keras.Model, which: str) -> list[str]:
    """Freeze every layer except the group ``which`` (see :func:`trainable_layers`).

    Frozen BatchNorm layers run in inference mode (Keras 3 semantics). Recompile the
    model after calling this. Trainable flags are not stored by :func:`save_model`.

    Returns
    -------
    list of str
        The names left trainable.
    """
    keep = set(trainable_layers(model, which))
    model.trainable = True
    for layer in model.layers:
        layer.trainable = layer.name in keep
    return sorted(keep)


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------

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


def predict_kappa(model: keras.Model, eps, batch_size: int = 64) -> np.ndarray:
    """Predict κ maps with a cached ``tf.function`` forward (never ``model.predict``).

    Parameters
    ----------
    model : keras.Model
        A :class:`UNet` or any model mapping ``(N, ny, nx, C)`` to ``(N, ny, nx)``.
    eps : array_like, shape (N, ny, nx, 3) or (ny, nx, 3)
        ε cube(s), channels ``(e1, e2, Δε)``. For a 4-channel model the KS93 channel is
        computed on the fly (:func:`add_ks93_channel`); a 4-channel input is used as is.
    batch_size : int
        Maps per forward call.

    Returns
    -------
    ndarray, float32, shape (N, ny, nx), or (ny, nx) for a single sample.

    Raises
    ------
    ValueError
        If the shape does not fit the model, or ``batch_size`` < 1.
    """
    _check_int("batch_size", batch_size, 1)
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
    if eps.shape[-1] == 3 and want[-1] == 4:
        eps = add_ks93_channel(eps)
    if eps.shape[-1] != want[-1]:
        raise ValueError(
            f"model {model.name!r} takes {want[-1]} input channels, got ε with {eps.shape[-1]}"
        )
    forward = _cached_forward(model)
    out = [np.asarray(forward(eps[i : i + batch_size])) for i in range(0, len(eps), batch_size)]
    kappa = (
        np.concatenate(out).astype(np.float32, copy=False)
        if out
        else np.zeros((0, *want[:2]), np.float32)
    )
    return kappa[0] if single else kappa


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


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
        Naming the file, when it is missing, not a ``.keras`` file, or unreadable.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(f"model file {path!r} must be a '.keras' file")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as err:  # zip, JSON, h5 and Keras errors alike
        raise ValueError(
            f"model file {path!r} is corrupt or not a lensviz model: {type(err).__name__}: {err}"
        ) from err


def unet_predictor(weights: str | os.PathLike, batch_size: int = 64) -> Callable:
    """A predictor running the UNet saved at ``weights`` (a ``.keras`` file).

    The predictor protocol is :mod:`lensviz.evaluation`'s: ``eps (N, 128, 128, 3) ->
    kappa (N, 128, 128)``, so the UNet joins KS93 and Wiener in
    :func:`lensviz.evaluation.evaluate_methods`. The model is loaded once; predictions go
    through the cached ``tf.function`` forward of :func:`predict_kappa`. The loaded model
    is the predictor's ``model`` attribute.
    """
    model = load_model(weights)

    def predict(eps: np.ndarray) -> np.ndarray:
        return predict_kappa(model, eps, batch_size=batch_size)

    predict.__name__ = "unet"
    predict.__doc__ = f"UNet {getattr(model, 'name', '')} from {weights}."
    predict.model = model
    return predict
