"""The UNet on a whole field: overlapping 128 × 128 tiles blended into one map.

A lensviz UNet takes a fixed ``(128, 128, 3)`` input. :func:`predict_field` runs it on a
field of any size by the tiling of :mod:`lensviz.fields` (overlapping tiles, raised-cosine
weights that sum to 1). :func:`convolutional_twin` rebuilds the same network, with the
same weights, for a larger square input, so that it runs over the whole field at once
(``method="convolutional"``); both were measured (``benchmarks/bench_fields.py``) and the
tiles are the default:

* **Accuracy.** The network was trained on 128 × 128 tiles whose in-model KS93
  (:class:`lensviz.nn.features.LensingFeatures`) misses the mass outside the tile; it
  learned to correct exactly those border errors. Run over a whole field it sees other
  statistics (no tile border, a deeper bottleneck with another receptive field). On 30
  simulated 384² fields per depth (the shipped, depth-trained ``lite``;
  ``benchmarks/fields.json``), the convolutional map's RMSE was 1.4 %, 0.1 % and 0.7 %
  lower than the tiles' at 10, 30 and 30 (masked) galaxies per arcmin², 0.7 % higher at
  100 and 13 % higher without shape noise: a wash where the noise dominates, worse where
  the signal does. The tiles are also what the model's training domain describes.
* **Speed.** Both are far inside the budget: a 360² field took 0.22 s by 36 tiles and
  0.03 s convolutionally (medians on the shared 2-core CPU).

See :mod:`lensviz.fields` for the tiling, the weights and the handling of masks.
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np

from lensviz.fields import DEFAULT_OVERLAP_PX, as_field, pad_field
from lensviz.nn.inference import model_predictor, predict_kappa
from lensviz.nn.unet import UNet

__all__ = ["FIELD_METHODS", "predict_field", "convolutional_twin", "convolutional_side"]

#: How :func:`predict_field` runs the UNet over a field.
FIELD_METHODS = ("tiles", "convolutional")

_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tile_side(model: keras.Model) -> int:
    shape = tuple(model.input_shape[1:3])
    if shape[0] != shape[1] or shape[0] is None:
        raise ValueError(
            f"model {model.name!r} takes input {model.input_shape}; expected a "
            "fixed square tile (N, npix, npix, C)"
        )
    return int(shape[0])


def convolutional_side(model: UNet, ny: int, nx: int) -> int:
    """The smallest square side ≥ ``max(ny, nx)`` that the UNet's config accepts.

    ``npix + 2 pad`` must be divisible by ``2**depth`` (:class:`lensviz.nn.unet.UNetConfig`).
    """
    config = model.unet_config
    step = 2**config.depth
    side = max(ny, nx, config.pad + 1)
    return side + (-(side + 2 * config.pad)) % step


def convolutional_twin(model: UNet, side: int) -> UNet:
    """The same UNet (same layers and weights) for ``(side, side, C)`` inputs; cached.

    Parameters
    ----------
    model : UNet
        A lensviz UNet (it has ``unet_config``).
    side : int
        The input side; see :func:`convolutional_side`.

    Returns
    -------
    UNet
        A new model sharing no variables with ``model``: the weights are copied when
        it is built, so a later change of ``model``'s weights needs a new twin (the cache
        holds one per model and side, weakly).

    Raises
    ------
    TypeError
        If ``model`` is not a lensviz :class:`~lensviz.nn.unet.UNet`.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"expected a lensviz UNet, got {type(model).__name__}")
    twins = _TWINS.setdefault(model, {})
    if side not in twins:
        config = dataclasses.replace(model.unet_config, npix=int(side))
        twin = UNet(config, training_domain=model.training_domain, name=f"{model.name}_{side}")
        twin.set_weights(model.get_weights())
        twins[side] = twin
    return twins[side]


def predict_field(
    model: keras.Model,
    eps,
    overlap: int = DEFAULT_OVERLAP_PX,
    method: str = "tiles",
    batch_size: int = 32,
) -> np.ndarray:
    """κ of a whole field (any size) by a 128 × 128 UNet.

    Parameters
    ----------
    model : keras.Model
        A UNet taking ``(N, 128, 128, C)`` (any lensviz model file).
    eps : array_like, shape (ny, nx, 3) or (N, ny, nx, 3)
        Field(s) ``(e1, e2, Δε)``; empty or masked pixels have ``Δε = EMPTY_PIXEL_SIGMA``.
    overlap : int, optional
        Pixels neighbouring tiles share at least, ``64 ≤ overlap < 128``
        (:func:`lensviz.fields.tile_origins`); ``method="tiles"`` only.
    method : {"tiles", "convolutional"}, optional
        Overlapping tiles blended with raised-cosine weights (the default), or the whole
        field at once through :func:`convolutional_twin` (padded with empty pixels to a
        square side it accepts).
    batch_size : int, optional
        Tiles per forward call.

    Returns
    -------
    ndarray, shape (ny, nx) or (N, ny, nx), float32
        κ everywhere, masked pixels included; mark them with
        :func:`lensviz.fields.field_mask`.

    Raises
    ------
    ValueError
        For an unknown ``method``, a bad ``overlap``, or ε of the wrong shape.

    Examples
    --------
    >>> from lensviz.nn.presets import PRESETS
    >>> model = UNet(PRESETS["lite"])
    >>> predict_field(model, np.zeros((200, 300, 3), np.float32)).shape
    (200, 300)
    """
    if method not in FIELD_METHODS:
        raise ValueError(f"method must be one of {FIELD_METHODS}, got {method!r}")
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim == 4:
        return np.stack([predict_field(model, e, overlap, method, batch_size) for e in eps])
    eps = as_field(eps)
    ny, nx = eps.shape[:2]
    _tile_side(model)  # a fixed square tile, or a clear error
    if method == "tiles":
        return model_predictor(model, batch_size, overlap)(eps)
    side = convolutional_side(model, ny, nx)
    twin = convolutional_twin(model, side)
    return predict_kappa(twin, pad_field(eps, side, side), 1)[:ny, :nx]
