"""The UNet's calibrated error bars: a quantile network and its conformal factors.

Conformalized quantile regression (Romano, Patterson & Candès 2019; for mass maps,
Leterme et al. 2025). A small network, :class:`QuantileNet`, reads what the UNet read
(the field features, :mod:`lensviz.features`) and what it answered (κ̂), and returns
``s(x)``, the 68.3 % quantile of the UNet's absolute error ``|κ − κ̂|`` there, trained
with the pinball loss of that quantile,

.. math::

    \\mathcal L = \\big\\langle \\max\\big(\\tau (|r| - s),\\ (\\tau - 1)(|r| - s)\\big)
    \\big\\rangle,\\qquad \\tau = 0.683,\\ r = \\kappa - \\hat\\kappa ,

whose minimum is that quantile, pixel by pixel: the narrowest band that holds 68.3 % of
the errors like the ones at ``x``. The net knows where the UNet errs (cluster cores,
holes, the field's edges, each pixel's noise). The UNet's errors are heavy-tailed near
cluster cores, so a second moment (a *moment network*, Jeffrey & Wandelt 2020, trained
on ``r²``) spends width where rare large errors inflate the variance; the quantile is
what a 68.3 % band needs. Its band is then made to hold by split-conformal factors per
depth and pixel scale, for 68.3 % and 95.4 % apart (:class:`lensviz.errorbars.ErrorModel`,
measured on calibration fields it was not trained on), which the network's file keeps
with the SHA-256 of the UNet it was fitted to: calibration belongs to the model it was
fitted on, and a pair that does not match is refused.

Files: ``NAME.sigma.keras`` beside ``NAME.keras`` (:func:`sigma_net_path`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz.augment import N_SYMMETRIES, apply_symmetry
from lensviz.errorbars import (
    COVERAGE_68,
    COVERAGE_95,
    DEPTH_NODES,
    SCALE_NODES,
    ErrorModel,
    conformal_quantiles,
    depth_node_index,
    field_depth,
    fill_nodes,
    scale_node_index,
)
from lensviz.features import FEATURES
from lensviz.fields import DEFAULT_OVERLAP_PX, TILE_PX, cut_tiles, merge_tiles, pad_field
from lensviz.nn.inference import load_model, model_inputs, predict_kappa, save_model
from lensviz.nn.layers import ReflectionPadding2D
from lensviz.training_data import iter_training_set, read_training_column

__all__ = [
    "QuantileNet",
    "sigma_net_path",
    "file_sha256",
    "sigma_inputs",
    "pinball_loss",
    "TAU",
    "train_sigma_net",
    "calibrate_sigma_net",
    "load_sigma_net",
    "save_sigma_net",
    "errorbar_predictor",
]

_PAD = 16
_FILTERS = (16, 32, 64, 64)
_LOG_SIGMA_START = math.log(0.02)


def file_sha256(path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sigma_net_path(weights) -> Path:
    """``NAME.sigma.keras`` beside ``NAME.keras``: where a UNet's quantile network lives."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(".keras") + ".sigma.keras")


# === The network ===


@keras.saving.register_keras_serializable(package="lensviz")
class QuantileNet(keras.Model):
    """The 68.3 % quantile of a mean model's absolute error, from ``(features, κ̂)``:
    ``(N, 128, 128, 6) -> (N, 128, 128)``.

    A small UNet: reflection padding of 16 px, four stride-2 encoder blocks (16, 32, 64,
    64 filters), three decoder blocks with skips, a final transposed convolution to
    ``ln s``, cropped, and ``s = exp(ln s)`` (about 110,000 parameters).

    Parameters
    ----------
    npix : int
        Tile side.
    error_model : dict, optional
        :meth:`lensviz.errorbars.ErrorModel.to_dict` of its conformal factors.
    mean_sha256 : str, optional
        SHA-256 of the mean model's file it was fitted to.
    """

    def __init__(
        self,
        npix: int = TILE_PX,
        error_model: Mapping[str, Any] | None = None,
        mean_sha256: str | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "sigma_net")
        inputs = keras.Input((npix, npix, len(FEATURES) + 1), name="features_and_kappa")
        x = ReflectionPadding2D(_PAD, name="pad")(inputs)
        skips = []
        for i, f in enumerate(_FILTERS, start=1):
            x = keras.layers.Conv2D(f, 3, strides=2, padding="same", name=f"enc{i}_conv")(x)
            if i > 1:
                x = keras.layers.BatchNormalization(name=f"enc{i}_bn")(x)
            x = keras.layers.LeakyReLU(0.2, name=f"enc{i}_act")(x)
            skips.append(x)
        for i, f in enumerate(reversed(_FILTERS[:-1]), start=1):
            x = keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", name=f"dec{i}_convt")(
                x
            )
            x = keras.layers.BatchNormalization(name=f"dec{i}_bn")(x)
            x = keras.layers.ReLU(name=f"dec{i}_act")(x)
            x = keras.layers.Concatenate(name=f"dec{i}_skip")([x, skips[-1 - i]])
        # ln s starts near ln 0.02, the size of a UNet's error, not at ln 1
        x = keras.layers.Conv2DTranspose(
            1,
            3,
            strides=2,
            padding="same",
            bias_initializer=keras.initializers.Constant(_LOG_SIGMA_START),
            name="log_sigma",
        )(x)
        x = keras.layers.Cropping2D(_PAD, name="crop")(x)
        x = keras.layers.Reshape((npix, npix), name="squeeze")(x)
        sigma = keras.layers.Activation("exponential", name="sigma")(x)
        super().__init__(inputs=inputs, outputs=sigma, **kwargs)
        self.npix = int(npix)
        self.error_model = None if error_model is None else dict(error_model)
        self.mean_sha256 = mean_sha256

    def get_config(self):
        return {
            "npix": self.npix,
            "error_model": self.error_model,
            "mean_sha256": self.mean_sha256,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def sigma_inputs(features, kappa_hat) -> np.ndarray:
    """``(N, 128, 128, 6)``: the features and the mean model's κ̂ as a last channel."""
    features = np.asarray(features, np.float32)
    kappa_hat = np.asarray(kappa_hat, np.float32)
    return np.concatenate([features, kappa_hat[..., None]], axis=-1)


#: The quantile of ``|κ − κ̂|`` the network learns: the share of the 68.3 % band.
TAU = COVERAGE_68


def pinball_loss(resid, width):
    """The pinball loss of the :data:`TAU` quantile of ``|resid|`` (Keras: ``y_true`` is r)."""
    diff = tf.abs(tf.cast(resid, tf.float32)) - tf.cast(width, tf.float32)
    return tf.reduce_mean(tf.maximum(TAU * diff, (TAU - 1.0) * diff), axis=(-2, -1))


# === Training and calibration ===


def _tiles_and_residuals(mean_model, path, indices, batch: int = 256):
    """Inputs ``(features, κ̂)`` and residuals ``κ − κ̂`` of a training set's samples."""
    xs, rs = [], []
    for x, k, _ in iter_training_set(path, indices, batch):
        pred = predict_kappa(mean_model, x)
        xs.append(sigma_inputs(x, pred))
        rs.append((k - pred).astype(np.float32))
    return np.concatenate(xs), np.concatenate(rs)


class _SymmetricBatches(keras.utils.PyDataset):
    """Batches of ``(x, r)`` in a new random order every epoch, each batch under one random
    spin-2 symmetry (:func:`lensviz.augment.apply_symmetry`: channels 0 and 1 of the
    features are the shear; κ̂ and r are scalars). Slices numpy arrays: no copy of the
    whole set into a ``tf.data`` buffer."""

    def __init__(self, x: np.ndarray, r: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.x, self.r, self.batch_size = x, r, int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __getitem__(self, i: int):
        rows = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        x, r = apply_symmetry(self.x[rows], self.r[rows], int(self.rng.integers(N_SYMMETRIES)))
        return x, r

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


def train_sigma_net(
    mean_model,
    path,
    indices,
    val_indices,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> QuantileNet:
    """Train a :class:`QuantileNet` on a frozen UNet's residuals (the pinball loss).

    Parameters
    ----------
    mean_model : keras.Model
        The field-aware UNet, frozen (only run forward).
    path : path
        A training set of field tiles (:mod:`lensviz.training_data`) from calibration
        seeds, disjoint from the mean model's training data.
    indices, val_indices : array_like of int
        Samples to train on and to pick the best epoch by (lowest validation loss).
    epochs, batch_size, learning_rate, seed
        Adam; random spin-2 symmetries of every sample.
    on_epoch : callable, optional
        Called with the epoch and its logs.

    Returns
    -------
    QuantileNet
        With the best epoch's weights; no conformal factors yet
        (:func:`calibrate_sigma_net`).
    """
    keras.utils.set_random_seed(seed)
    x, r = _tiles_and_residuals(mean_model, path, indices)
    xv, rv = _tiles_and_residuals(mean_model, path, val_indices)
    batches = _SymmetricBatches(x, r, batch_size, seed)
    net = QuantileNet(x.shape[1])
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=pinball_loss)
    best, best_weights = math.inf, None
    for epoch in range(epochs):
        logs = net.fit(batches, epochs=1, verbose=0).history
        val = float(
            np.mean(
                [
                    pinball_loss(rv[i : i + 64], predict_kappa(net, xv[i : i + 64])).numpy().mean()
                    for i in range(0, len(xv), 64)
                ]
            )
        )
        row = {"loss": float(logs["loss"][-1]), "val_loss": val}
        if val < best:
            best, best_weights = val, net.get_weights()
        if on_epoch is not None:
            on_epoch(epoch + 1, row)
    net.set_weights(best_weights)
    return net


def calibrate_sigma_net(
    mean_model, net: QuantileNet, path, indices, mean_sha256: str, provenance: dict | None = None
) -> QuantileNet:
    """The quantile network with its conformal factors per depth node, ready to ship.

    ``q68``, ``q95`` of ``|κ − κ̂| / σ`` over the pixels of the tiles ``indices`` of each
    depth and pixel-scale node (:data:`lensviz.errorbars.DEPTH_NODES`,
    :data:`~lensviz.errorbars.SCALE_NODES`), a node with fewer than 10 tiles taking its
    nearest depth node's.
    """
    x, r = _tiles_and_residuals(mean_model, path, indices)
    sigma = predict_kappa(net, x)
    rows = np.asarray(indices)
    nodes = np.array([depth_node_index(n) for n in read_training_column(path, "n_gal")[rows]])
    scales = np.array(
        [scale_node_index(p) for p in read_training_column(path, "pixel_arcmin")[rows]]
    )

    def quantiles(pick):
        if pick.sum() < 10:
            return (None, None)
        return conformal_quantiles(r[pick], sigma[pick], (COVERAGE_68, COVERAGE_95))

    # every scale pooled, for a scale node with no depth node of enough tiles
    pooled = [quantiles(nodes == j) for j in range(len(DEPTH_NODES))]
    q68, q95 = [], []
    for k in range(len(SCALE_NODES)):
        row = [quantiles((nodes == j) & (scales == k)) for j in range(len(DEPTH_NODES))]
        if all(q[0] is None for q in row):
            row = pooled
        q68.append(fill_nodes([q[0] for q in row]))
        q95.append(fill_nodes([q[1] for q in row]))
    model = ErrorModel(
        method="unet",
        depth_nodes=DEPTH_NODES,
        q68=(tuple(tuple(r) for r in q68),),
        q95=(tuple(tuple(r) for r in q95),),
        scale_nodes=SCALE_NODES,
        provenance=dict(provenance or {}),
    )
    shipped = QuantileNet(net.npix, error_model=model.to_dict(), mean_sha256=mean_sha256)
    shipped.set_weights(net.get_weights())
    return shipped


def load_sigma_net(weights) -> QuantileNet:
    """The quantile network of the model file ``weights``, checked against it.

    Raises
    ------
    FileNotFoundError
        When ``NAME.sigma.keras`` does not exist beside ``weights``.
    ValueError
        When it is not a calibrated quantile network, or was fitted to another model
        (SHA-256 of ``weights`` differs).
    """
    path = sigma_net_path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no quantile network beside {Path(weights).name}; calibrated error bars "
            "are fitted to one model (python -m lensviz sigma-net)"
        )
    net = load_model(path)
    if not isinstance(net, QuantileNet) or net.error_model is None:
        raise ValueError(f"{path}: not a calibrated lensviz quantile network")
    if net.mean_sha256 != file_sha256(weights):
        raise ValueError(
            f"{path} was calibrated on another model than {Path(weights).name} (SHA-256 "
            "differs); calibration belongs to the model it was fitted on"
        )
    return net


# === Prediction ===


def errorbar_predictor(
    model, net: QuantileNet, batch_size: int = 64, overlap: int = DEFAULT_OVERLAP_PX
) -> Callable:
    """A predictor of ``(κ̂, kappa_std, kappa_hw95)`` for tiles and whole fields.

    Each map is a field: its features are computed whole, cut into overlapping tiles
    (one tile for a 128² map), the UNet and its quantile network run on every tile, κ̂ is
    blended as :func:`lensviz.nn.inference.model_predictor` blends it, and σ² with the
    same weights. The conformal factors of the field's depth turn σ into the 68.3 %
    and 95.4 % half-widths.

    Returns
    -------
    callable
        ``predict(eps, pixel_arcmin=0.5) -> (kappa, std, hw95)``, each ``(N, ny, nx)``
        (or one map for ``(ny, nx, 3)``).
    """
    error_model = ErrorModel.from_dict(net.error_model)
    tile = TILE_PX

    def sigmas(x: np.ndarray) -> np.ndarray:
        return predict_kappa(net, x, batch_size)  # the cached tf.function forward

    def factors(eps: np.ndarray, pixel_arcmin) -> np.ndarray:
        scales = np.broadcast_to(np.asarray(pixel_arcmin, np.float64), len(eps))
        q = [
            error_model.factors(field_depth(e, p), 0.0, p) for e, p in zip(eps, scales, strict=True)
        ]
        return np.asarray(q, np.float32).reshape(len(eps), 2, 1, 1)

    def tiles_at_once(eps: np.ndarray, pixel_arcmin):
        """Maps of one tile each: every forward batched."""
        features = model_inputs(model, eps, pixel_arcmin)
        kappa = predict_kappa(model, features, batch_size)
        s = sigmas(sigma_inputs(features, kappa))
        q = factors(eps, pixel_arcmin)
        return kappa, q[:, 0] * s, q[:, 1] * s

    def one(eps: np.ndarray, pixel_arcmin: float):
        ny, nx = eps.shape[:2]
        padded = pad_field(eps, tile, tile)
        features = model_inputs(model, padded[None], pixel_arcmin)[0]
        tiles, _ = cut_tiles(features, tile, overlap)
        kappa = predict_kappa(model, tiles, batch_size)
        sigma = sigmas(sigma_inputs(tiles, kappa))
        shape = padded.shape[:2]
        k = merge_tiles(kappa, shape, tile, overlap)[:ny, :nx]
        var = merge_tiles(sigma.astype(np.float64) ** 2, shape, tile, overlap)[:ny, :nx]
        q68, q95 = error_model.factors(field_depth(eps, pixel_arcmin), 0.0, pixel_arcmin)
        s = np.sqrt(np.maximum(var, 0.0))
        return k, (q68 * s).astype(np.float32), (q95 * s).astype(np.float32)

    def predict(eps, pixel_arcmin=constants.PIXEL_ARCMIN):
        eps = np.asarray(eps, np.float32)
        if eps.ndim == 3:
            if eps.shape[:2] == (tile, tile):
                return tuple(a[0] for a in tiles_at_once(eps[None], pixel_arcmin))
            return one(eps, float(pixel_arcmin))
        if eps.shape[1:3] == (tile, tile):
            return tiles_at_once(eps, pixel_arcmin)
        scales = np.broadcast_to(np.asarray(pixel_arcmin, np.float64), len(eps))
        parts = [one(e, float(p)) for e, p in zip(eps, scales, strict=True)]
        return tuple(np.stack([p[i] for p in parts]) for i in range(3))

    predict.model = model
    predict.net = net
    return predict


def save_sigma_net(net: QuantileNet, path: str | os.PathLike) -> str:
    """Save a quantile network as ``.keras``, atomically (:func:`save_model`)."""
    return save_model(net, path)
