"""The custom Keras layers of the lensviz UNet (:mod:`lensviz.nn.unet`).

Both are registered with Keras under ``package="lensviz"`` (``"lensviz>ReflectionPadding2D"``,
``"lensviz>AlwaysDropout"``), the names stored in ``.keras`` files: they must not change,
or model files saved before would no longer load. The noise-aware input layer,
:class:`lensviz.nn.features.LensingFeatures`, lives in :mod:`lensviz.nn.features`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["ReflectionPadding2D", "AlwaysDropout"]


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
