"""The custom Keras layers of the lensviz UNet (:mod:`lensviz.nn.unet`).

All are registered with Keras under ``package="lensviz"`` (``"lensviz>ReflectionPadding2D"``,
``"lensviz>AlwaysDropout"``, ``"lensviz>GatedResidual"``), the names stored in ``.keras``
files: they must not change, or model files saved before would no longer load. The
noise-aware input layer, :class:`lensviz.nn.features.LensingFeatures`, lives in
:mod:`lensviz.nn.features`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["ReflectionPadding2D", "AlwaysDropout", "GatedResidual"]


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an integer ``>= minimum``.

    The argument check shared by :mod:`lensviz.nn.unet` and :mod:`lensviz.nn.inference`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


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
        check_int("pad", pad, 0)
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


@keras.saving.register_keras_serializable(package="lensviz")
class AlwaysDropout(keras.layers.Dropout):
    """Dropout that stays on at inference: the Monte-Carlo-dropout layer (Gal & Ghahramani
    2016). Used only by the stochastic twin of a UNet (``UNet(..., mc_dropout=True)``),
    where BatchNorm still runs in inference mode."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package="lensviz")
class GatedResidual(keras.layers.Layer):
    """The field-aware UNet's output: a learned share of KS93 plus a learned correction.

    .. math::

        \\hat\\kappa = \\mathrm{sigmoid}(z_g)\\, w^P \\kappa_E + \\tanh(z_c)

    from the network's two output channels ``(z_c, z_g)``, and two of the input features
    (:mod:`lensviz.features`): the KS93 E mode of the whole field ``κ_E`` and the pixel
    weight ``w = σ_ref² / (Δε² + σ_ref²)``. Without shape noise KS93 is exact away from
    the field's edges, and the gate can open so that the network only adds what KS93
    lacks (the reduced shear, the edges, the mass sheet). ``w^P`` is a fixed prior on the
    gate: 1 without noise, ≈ 0.2 at 1000 galaxies per arcmin² on 0.5′ pixels, ``e^{-58}``
    at LSST depth, 0 where there are no galaxies (P = 64): where a pixel's raw KS93 is
    noise, its κ_E cannot enter, and the samples of noisy fields, which are most of
    them, do not pull the gate shut for the noise-free ones. ``tanh`` keeps the
    correction in (−1, 1), as the plain UNet's output.

    Parameters
    ----------
    kappa_channel : int
        Index of κ_E among the input features (≥ 0).
    weight_channel : int
        Index of the pixel weight among the input features (≥ 0).
    prior_power : float
        P, ≥ 0 (0: no prior, the gate is the network's alone).

    Input ``[(N, H, W, 2), (N, H, W, C)]`` → ``(N, H, W)``.
    """

    def __init__(
        self, kappa_channel: int, weight_channel: int = 2, prior_power: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        check_int("kappa_channel", kappa_channel, 0)
        check_int("weight_channel", weight_channel, 0)
        if not (
            isinstance(prior_power, (int, float)) and np.isfinite(prior_power) and prior_power >= 0
        ):
            raise ValueError(f"prior_power must be a number >= 0, got {prior_power!r}")
        self.kappa_channel = int(kappa_channel)
        self.weight_channel = int(weight_channel)
        self.prior_power = float(prior_power)

    def call(self, inputs):
        z, features = inputs
        gate = keras.ops.sigmoid(z[..., 1])
        if self.prior_power:
            weight = keras.ops.maximum(features[..., self.weight_channel], 0.0)
            gate = gate * keras.ops.power(weight, self.prior_power)
        return gate * features[..., self.kappa_channel] + keras.ops.tanh(z[..., 0])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kappa_channel": self.kappa_channel,
                "weight_channel": self.weight_channel,
                "prior_power": self.prior_power,
            }
        )
        return config
