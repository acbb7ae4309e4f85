"""The pix2pix-style UNet of the Barrienlens report (§2), as a pure Keras 3 builder.

Architecture (report §2.1; docs/reference.md §9)
    ``(npix, npix, C)`` ε cube, ``C = 3`` channels ``(e1, e2, Δε)`` or ``C = 4`` with the
    KS93 map appended (:func:`lensviz.nn.inference.add_ks93_channel`), or ``C = 5``
    field features (:func:`lensviz.features.unet_features`, ``field_features``)
    → :class:`lensviz.nn.layers.ReflectionPadding2D` of ``pad`` px per side
    → ``depth`` encoder blocks: Conv2D(kernel, stride 2, ``same``, no bias), BatchNorm on
    all but the first, LeakyReLU; filters ``base · 2^i`` capped at ``max_filters``
    → ``depth − 1`` decoder blocks: Conv2DTranspose(stride 2, no bias), BatchNorm,
    Dropout on the first ``n_decoder_dropout``, ReLU, concatenation with the encoder
    output of the same resolution; filters mirror the encoder (bottleneck excluded)
    → final Conv2DTranspose to 1 channel (stride 2, bias, ``tanh``)
    → Cropping2D of ``pad`` px per side → Reshape to ``(npix, npix)``.

    With ``field_features`` the final Conv2DTranspose has 2 linear channels, a correction
    and a gate, and the output is ``sigmoid(gate)·κ_E + tanh(correction)``
    (:class:`lensviz.nn.layers.GatedResidual`, layer ``kappa``), κ_E being the whole
    field's KS93 map among the input features.

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
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from lensviz import constants
from lensviz.features import FEATURES, KAPPA_E_CHANNEL
from lensviz.nn.features import FEATURES as NOISE_AWARE_FEATURES
from lensviz.nn.features import LensingFeatures
from lensviz.nn.layers import AlwaysDropout, GatedResidual, ReflectionPadding2D, check_int

__all__ = [
    "UNetConfig",
    "LAST_LAYER",
    "UNet",
    "build_unet",
    "count_params",
    "trainable_layers",
    "set_trainable",
    "warm_start",
]

#: Name of the final Conv2DTranspose: the only trainable layer in ``set_trainable("last")``.
LAST_LAYER = "last_convt"

_TRAINABLE_GROUPS = ("last", "decoder", "all")

#: P of the field-aware output's gate prior ``w^P`` (:class:`lensviz.nn.layers.GatedResidual`).
GATE_PRIOR_POWER = 64.0


# === Configuration ===


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Hyperparameters of the UNet; the defaults are the report's model.

    The defaults equal the ``paper`` preset (:data:`lensviz.nn.presets.PRESETS`).

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
    field_features : bool
        The model takes the 5 features of :func:`lensviz.features.unet_features`,
        computed on the whole field before it is cut into tiles (E-mode shear, weight,
        the field's KS93 κ_E, the pixel scale), and its output is a gated share of κ_E
        plus a correction (:class:`lensviz.nn.layers.GatedResidual`). Excludes
        ``with_ks93`` and ``noise_aware``.
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
    field_features: bool = False
    npix: int = constants.NPIX
    output_activation: str = "tanh"
    leaky_slope: float = 0.2

    def __post_init__(self):
        check_int("base_filters", self.base_filters, 2 if self.two_kernel else 1)
        check_int("max_filters", self.max_filters, 1)
        if self.max_filters < self.base_filters:
            raise ValueError(
                f"max_filters must be >= base_filters ({self.base_filters}), got {self.max_filters}"
            )
        check_int("depth", self.depth, 1)
        check_int("kernel_size", self.kernel_size, 1)
        check_int("second_kernel_size", self.second_kernel_size, 1)
        check_int("npix", self.npix, 2)
        check_int("pad", self.pad, 0)
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
        check_int("n_decoder_dropout", self.n_decoder_dropout, 0)
        if self.n_decoder_dropout > self.depth - 1:
            raise ValueError(
                f"n_decoder_dropout must be <= depth - 1 = {self.depth - 1} decoder blocks, "
                f"got {self.n_decoder_dropout}"
            )
        if not (isinstance(self.dropout_rate, (int, float)) and 0 <= self.dropout_rate < 1):
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        for flag in ("two_kernel", "with_ks93", "noise_aware", "field_features"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        if self.with_ks93 and self.noise_aware:
            raise ValueError(
                "with_ks93 and noise_aware exclude each other: a noise-aware "
                "model computes its KS93 channels itself"
            )
        if self.field_features and (self.with_ks93 or self.noise_aware):
            raise ValueError(
                "field_features excludes with_ks93 and noise_aware: its inputs are the "
                "field features of lensviz.features"
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
        """3 ``(e1, e2, Δε)``, 4 with the KS93 channel, 5 field features."""
        if self.field_features:
            return len(FEATURES)
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


# === Model ===


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


@keras.saving.register_keras_serializable(package="lensviz")
class UNet(keras.Model):
    """The lensviz UNet: a functional Keras model built from a :class:`UNetConfig`.

    Parameters
    ----------
    config : UNetConfig or dict
        Configuration, or its :meth:`UNetConfig.to_dict`. For a named preset pass
        :func:`lensviz.nn.presets.resolve_config` of the name.
    training_domain : dict, optional
        :meth:`lensviz.depth.TrainingDomain.to_dict` of the data the weights were trained
        on, saved with the model so that the app and the CLI can warn on samples outside
        it (None: unknown).
    mc_dropout : bool
        Build the stochastic twin whose decoder dropout stays on at inference
        (:class:`lensviz.nn.layers.AlwaysDropout`), for Monte-Carlo-dropout uncertainty maps
        (:mod:`lensviz.nn.uncertainty`). Same layers and weights as the plain model.

    Input ``(N, npix, npix, 3 or 4)`` float32; output ``(N, npix, npix)`` κ. The config is
    kept as ``model.unet_config`` and stored in ``.keras`` files
    (:func:`lensviz.nn.inference.save_model`).

    Examples
    --------
    >>> import numpy as np
    >>> from lensviz.nn.presets import PRESETS
    >>> from lensviz.features import unet_features
    >>> model = UNet(PRESETS["lite"])
    >>> x = unet_features(np.zeros((2, 128, 128, 3), np.float32))  # (N, 128, 128, 5)
    >>> model(x, training=False).shape      # κ maps, (N, 128, 128)
    TensorShape([2, 128, 128])
    """

    def __init__(
        self,
        config: UNetConfig | Mapping[str, Any] | None = None,
        mc_dropout: bool = False,
        training_domain: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        config = _as_config(config)
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
            2 if c.field_features else 1,
            c.kernel_size,
            strides=2,
            padding="same",
            activation=None if c.field_features else c.output_activation,
            kernel_initializer=_init(),
            name=LAST_LAYER,
        )
        crop = keras.layers.Cropping2D(c.pad, name="crop")
        if c.field_features:
            head = GatedResidual(
                KAPPA_E_CHANNEL, FEATURES.index("weight"), GATE_PRIOR_POWER, name="kappa"
            )
        else:
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
        if c.field_features:
            outputs = head([crop(last(x)), inputs])
        else:
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


def _as_config(config: UNetConfig | Mapping[str, Any] | None) -> UNetConfig:
    """A :class:`UNetConfig` from itself, its dict or None (the defaults)."""
    if config is None:
        return UNetConfig()
    if isinstance(config, UNetConfig):
        return config
    if isinstance(config, Mapping):
        return UNetConfig.from_dict(config)
    if isinstance(config, str):
        raise TypeError(
            f"config must be a UNetConfig or a dict, got the string {config!r}; for a "
            "preset use lensviz.nn.presets.resolve_config(name)"
        )
    raise TypeError(f"config must be a UNetConfig or a dict, got {type(config).__name__}")


def build_unet(config: UNetConfig | Mapping[str, Any] | None = None) -> UNet:
    """Build the UNet of a :class:`UNetConfig` (see :class:`UNet`; None: the defaults).

    A named preset is ``build_unet(resolve_config("lite"))``
    (:func:`lensviz.nn.presets.resolve_config`).

    Raises
    ------
    ValueError
        For invalid fields of a dict.
    TypeError
        For anything else than a config, a dict or None.
    """
    return UNet(_as_config(config))


def count_params(config: UNetConfig | Mapping[str, Any] | None = None) -> int:
    """Number of parameters (trainable + BatchNorm statistics) of a config.

    Builds the model once (a second or two for ``paper``).
    """
    return int(build_unet(config).count_params())


# === Fine-tuning ===


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
    model after calling this. Trainable flags are not stored by
    :func:`lensviz.nn.inference.save_model`.

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


# === Warm starts ===

#: Bias of a new gate channel (:class:`lensviz.nn.layers.GatedResidual`) grown by
#: :func:`warm_start`: sigmoid(0) = 1/2, so that the gate learns (a gate closed at
#: sigmoid(−6) = 0.0025 has no gradient to open by, as the first v3 run found); its prior
#: ``w^P`` keeps it shut for noisy pixels, so the grown model starts as the model it grew
#: from on every field with shape noise.
_GROWN_GATE_BIAS = 0.0
#: Feature channels of a noise-aware UNet (:data:`lensviz.nn.features.FEATURES`) that
#: carry the same role in a field-aware one (:data:`lensviz.features.FEATURES`).
_GROWN_CHANNELS = {"e1": "e1_E", "e2": "e2_E", "weight": "weight", "kappa_E": "kappa_E"}


def _input_names(config: UNetConfig) -> tuple[str, ...]:
    if config.field_features:
        return FEATURES
    if config.noise_aware:
        return NOISE_AWARE_FEATURES
    return ("e1", "e2", "delta_e", "kappa_ks93")[: config.in_channels]


def warm_start(target: UNet, source: UNet) -> list[str]:
    """Start ``target`` from the trained weights of ``source``; returns what was grown.

    Layers are matched by name (:class:`UNet`'s stable names). Weights of equal shape
    are copied, so a model of the same configuration becomes an exact copy (a run
    continued). A noise-aware UNet grows into a field-aware one of the same size:

    * the first convolution's kernels are copied channel by channel where the roles
      match (``e1 → e1_E``, ``e2 → e2_E``, ``weight``, ``kappa_E``; κ_B, which a
      field-aware model no longer reads, is dropped); a new channel (``log_scale``)
      starts at zero, so it changes nothing until trained;
    * the last layer's single output becomes the correction channel, and the new gate
      channel starts half open (zero kernel, bias 0), times its prior ``w^P``, which is
      ≈ 0 wherever there is shape noise.

    The grown model therefore starts as ``source`` did on noisy fields; without shape
    noise it adds half of κ_E, which training then sets.

    Parameters
    ----------
    target, source : UNet

    Returns
    -------
    list of str
        Names of the layers whose weights were grown rather than copied.

    Raises
    ------
    ValueError
        If a layer of ``target`` is missing from ``source``, or has weights that can be
        neither copied nor grown.
    """
    grown = []
    src_layers = {layer.name: layer for layer in source.layers if layer.weights}
    src_names = _input_names(source.unet_config)
    dst_names = _input_names(target.unet_config)
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in src_layers:
            raise ValueError(f"warm start: {source.name!r} has no layer {layer.name!r}")
        old = src_layers[layer.name].get_weights()
        new = layer.get_weights()
        if [w.shape for w in old] == [w.shape for w in new] and (
            layer.name != "enc1_conv" or src_names == dst_names
        ):
            layer.set_weights(old)
            continue
        grows_inputs = (
            layer.name == "enc1_conv"
            and len(old) == len(new) == 1
            and old[0].shape[:2] + old[0].shape[3:] == new[0].shape[:2] + new[0].shape[3:]
        )
        grows_gate = (
            layer.name == LAST_LAYER
            and len(old) == len(new) == 2
            and (old[0].shape[2], new[0].shape[2]) == (1, 2)
            and old[0].shape[:2] + old[0].shape[3:] == new[0].shape[:2] + new[0].shape[3:]
        )
        if grows_inputs:
            kernel = np.zeros_like(new[0])
            for i, name in enumerate(dst_names):
                role = {v: k for k, v in _GROWN_CHANNELS.items()}.get(name, name)
                if role in src_names:
                    kernel[:, :, i, :] = old[0][:, :, src_names.index(role), :]
                elif name in src_names:
                    kernel[:, :, i, :] = old[0][:, :, src_names.index(name), :]
            layer.set_weights([kernel])
        elif grows_gate:
            kernel, bias = np.zeros_like(new[0]), np.zeros_like(new[1])
            kernel[:, :, :1, :], bias[:1] = old[0], old[1]
            bias[1] = _GROWN_GATE_BIAS
            layer.set_weights([kernel, bias])
        else:
            raise ValueError(
                f"warm start: layer {layer.name!r} has weights "
                f"{[w.shape for w in new]} in {target.name!r} but {[w.shape for w in old]} "
                f"in {source.name!r}; only the first and last layers can grow"
            )
        grown.append(layer.name)
    return grown
