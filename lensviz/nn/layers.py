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

        \\hat\\kappa = \\mathrm{sigmoid}(z_g)\\,\\kappa_E + \\tanh(z_c)

    from the network's two output channels ``(z_c, z_g)`` and the KS93 E mode of the whole
    field ``κ_E``, channel ``kappa_channel`` of the input features
    (:mod:`lensviz.features`). Without shape noise KS93 is exact away from the field's
    edges, and the gate can open (→ 1) so that the network only adds what KS93 lacks
    (the reduced shear, the edges, the mass sheet); in noise the gate closes (→ 0) and
    the correction carries the map, as in a plain UNet. ``tanh`` keeps the correction in
    (−1, 1), as the plain UNet's output.

    Parameters
    ----------
    kappa_channel : int
        Index of κ_E among the input features (≥ 0).

    Input ``[(N, H, W, 2), (N, H, W, C)]`` → ``(N, H, W)``.
    """

    def __init__(self, kappa_channel: int, **kwargs):
        super().__init__(**kwargs)
        check_int("kappa_channel", kappa_channel, 0)
        self.kappa_channel = int(kappa_channel)

    def call(self, inputs):
        z, features = inputs
        gate = keras.ops.sigmoid(z[..., 1])
        return gate * features[..., self.kappa_channel] + keras.ops.tanh(z[..., 0])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1])

    def get_config(self):
        config = super().get_config()
        config.update({"kappa_channel": self.kappa_channel})
        return config
