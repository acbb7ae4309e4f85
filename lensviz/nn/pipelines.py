"""Input pipelines: ``tf.data`` datasets of ``(ε, κ)`` batches, and spin-2 augmentation.

:func:`simulated_dataset` draws samples on the fly from :mod:`lensviz.simulate` (sample
``i`` uses seed ``seed_start + i``, so a run never reuses a sample and a seed range can be
kept disjoint from the test set); :func:`hdf5_dataset` streams an HDF5 file in chunks,
shuffling chunk order and within a buffer. Both apply a random spin-2-correct symmetry
(:func:`apply_symmetry_tf`, the TensorFlow twin of :func:`lensviz.augment.apply_symmetry`)
and, for ``with_ks93`` models, append the KS93 channel, zeroed on a random
``1 − ks93_fraction`` of the samples (the report used 50%). With ``depth_weighting`` each
element carries a third item, its loss weight :func:`lensviz.depth.training_weight`.

Sharding
    With ``shard=(n, i)`` a pipeline yields only its share of the samples, chosen at the
    source: simulator seeds ``seed_start + i``, ``seed_start + i + n``, ... (the union
    over the ``n`` shards is exactly the unsharded stream), or every ``n``-th chunk of an
    HDF5 file. Each worker of a cluster then simulates or reads only its own samples;
    the datasets say so to ``tf.distribute`` (``AutoShardPolicy.OFF``), which would
    otherwise shard by data: every worker producing every sample and keeping 1 in ``n``.
    See :func:`lensviz.nn.distribution.distributed_dataset`.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz.augment import N_SYMMETRIES
from lensviz.data import hdf5_length, read_hdf5
from lensviz.depth import training_weight
from lensviz.features import FEATURES, unet_features
from lensviz.nn.inference import add_ks93_channel
from lensviz.simulate import simulate_sample
from lensviz.training_data import iter_training_set, training_set_length

__all__ = [
    "apply_symmetry_tf",
    "random_symmetry_tf",
    "simulated_dataset",
    "hdf5_dataset",
    "training_set_dataset",
]


def _check_shard(shard) -> tuple[int, int]:
    n, i = (int(v) for v in shard)
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard must be (n, i) with n >= 1 and 0 <= i < n, got {shard!r}")
    return n, i


def _sharded_by_source(ds):
    """Tell ``tf.distribute`` that ``ds`` is already sharded (no DATA auto-sharding)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


# === Spin-2 symmetries in TensorFlow ===


def apply_symmetry_tf(epsilon, kappa, g):
    """TensorFlow version of :func:`lensviz.augment.apply_symmetry` for one sample.

    Parameters
    ----------
    epsilon : tf.Tensor, shape (ny, nx, C)
    kappa : tf.Tensor, shape (ny, nx)
    g : int or scalar int tf.Tensor in 0 … 7
    """
    epsilon = tf.convert_to_tensor(epsilon)
    kappa = tf.convert_to_tensor(kappa)
    g = tf.cast(g, tf.int32)
    transpose = tf.not_equal(tf.bitwise.bitwise_and(g, 4), 0)
    flip_y = tf.not_equal(tf.bitwise.bitwise_and(g, 2), 0)
    flip_x = tf.not_equal(tf.bitwise.bitwise_and(g, 1), 0)
    k = kappa[..., None]
    eps = tf.cond(transpose, lambda: tf.transpose(epsilon, [1, 0, 2]), lambda: epsilon)
    k = tf.cond(transpose, lambda: tf.transpose(k, [1, 0, 2]), lambda: k)
    eps = tf.cond(flip_y, lambda: tf.reverse(eps, [0]), lambda: eps)
    k = tf.cond(flip_y, lambda: tf.reverse(k, [0]), lambda: k)
    eps = tf.cond(flip_x, lambda: tf.reverse(eps, [1]), lambda: eps)
    k = tf.cond(flip_x, lambda: tf.reverse(k, [1]), lambda: k)
    s1 = tf.where(transpose, -1.0, 1.0)
    s2 = tf.where(tf.not_equal(flip_y, flip_x), -1.0, 1.0)
    n_extra = tf.shape(eps)[-1] - 2
    signs = tf.concat([tf.stack([s1, s2]), tf.ones([n_extra])], axis=0)
    return eps * tf.cast(signs, eps.dtype), k[..., 0]


def random_symmetry_tf(epsilon, kappa, seed=None):
    """Apply a uniformly drawn symmetry in TensorFlow (stateless when ``seed`` is a pair)."""
    if seed is None:
        g = tf.random.uniform([], 0, N_SYMMETRIES, dtype=tf.int32)
    else:
        g = tf.random.stateless_uniform([], seed, 0, N_SYMMETRIES, dtype=tf.int32)
    return apply_symmetry_tf(epsilon, kappa, g)


# === Datasets ===


def _noise_var(eps):
    """:func:`lensviz.depth.pixel_noise_var` of one sample, in TensorFlow."""
    de = eps[..., 2]
    filled = tf.cast(de < constants.EMPTY_PIXEL_SIGMA, tf.float32)
    return tf.reduce_sum(filled * de * de) / tf.maximum(tf.reduce_sum(filled), 1.0)


def _inputs_transform(with_ks93: bool, ks93_fraction: float, field_features: bool, seed: int):
    """The map ``(key, ε, κ, noise) -> (key, model input, κ, noise)`` of a model's inputs.

    ``with_ks93``: the KS93 channel appended, zeroed on a random ``1 − ks93_fraction``
    of the samples; ``field_features``: :func:`lensviz.features.unet_features` of each
    sample as its own field (a 128² tile at the challenge's 0.5′ pixels); else None.
    """
    if with_ks93:

        def _np(key, eps):
            x = add_ks93_channel(eps)
            if np.random.default_rng([int(key), seed, 7]).random() >= ks93_fraction:
                x[..., 3] = 0.0
            return x

        channels = 4
    elif field_features:

        def _np(key, eps):
            return unet_features(eps)

        channels = len(FEATURES)
    else:
        return None

    def _map(key, eps, kappa, noise):
        x = tf.numpy_function(_np, [key, eps], tf.float32)
        x.set_shape([*eps.shape[:-1], channels])
        return key, x, kappa, noise

    return _map


def _finish(
    ds,
    batch_size: int,
    augment: bool,
    seed: int,
    drop_remainder: bool = True,
    depth_weighting: bool = False,
    transform=None,
):
    # Elements are (key, x, κ, noise variance); each carries an integer key (its seed or
    # index) so that augmentation and the KS93 mask are deterministic per sample,
    # whatever the parallel order.
    if transform is not None:
        ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:

        def _aug(key, x, kappa, noise):
            g = tf.random.stateless_uniform(
                [], tf.stack([key, tf.cast(seed, tf.int64)]), 0, 8, dtype=tf.int32
            )
            x, kappa = apply_symmetry_tf(x, kappa, g)
            return key, x, kappa, noise

        ds = ds.map(_aug, num_parallel_calls=tf.data.AUTOTUNE)
    if depth_weighting:
        ds = ds.map(lambda key, x, kappa, noise: (x, kappa, training_weight(noise)))
    else:
        ds = ds.map(lambda key, x, kappa, noise: (x, kappa))
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def simulated_dataset(
    batch_size: int = 8,
    seed_start: int = constants.TRAIN_SEED_START,
    n_samples: int | None = None,
    augment: bool = True,
    with_ks93: bool = False,
    ks93_fraction: float = 0.5,
    sim_config=None,
    seed: int = 0,
    npix: int = constants.NPIX,
    depth_weighting: bool = False,
    shard: tuple[int, int] = (1, 0),
    field_features: bool = False,
):
    """A ``tf.data.Dataset`` of simulated ``(ε, κ)`` batches generated on the fly.

    Parameters
    ----------
    batch_size : int
    seed_start : int
        Simulator seed of the first sample; sample ``i`` uses ``seed_start + i``.
    n_samples : int or None
        Number of samples; None for an endless stream.
    augment, with_ks93, ks93_fraction, seed
        See the module docstring.
    sim_config : lensviz.simulate.SimulationConfig or None
    shard : (int, int), optional
        ``(n, i)``: only the seeds ``seed_start + i + k n`` (see the module docstring).
    field_features : bool
        Batches of :func:`lensviz.features.unet_features` instead of ε, each sample its
        own field (a field-aware UNet fine-tuned on simulated tiles).

    Returns
    -------
    tf.data.Dataset
        Batches ``(x (B, npix, npix, C), κ (B, npix, npix))`` float32.
    """
    stop = seed_start + n_samples if n_samples is not None else np.iinfo(np.int64).max
    n_shards, index = _check_shard(shard)
    keys = tf.data.Dataset.range(seed_start, stop).shard(n_shards, index)

    def _sim(key):
        eps, kappa = simulate_sample(int(key), sim_config)
        return eps.astype(np.float32), kappa.astype(np.float32)

    def _map(key):
        eps, kappa = tf.numpy_function(_sim, [key], (tf.float32, tf.float32))
        eps.set_shape([npix, npix, 3])
        kappa.set_shape([npix, npix])
        return key, eps, kappa, _noise_var(eps)

    ds = keys.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _finish(
        ds,
        batch_size,
        augment,
        seed,
        drop_remainder=n_samples is None,
        depth_weighting=depth_weighting,
        transform=_inputs_transform(with_ks93, ks93_fraction, field_features, seed),
    )
    return _sharded_by_source(ds) if n_shards > 1 else ds


def hdf5_dataset(
    path: str | os.PathLike,
    batch_size: int = 8,
    shuffle: bool = True,
    augment: bool = True,
    repeat: bool = True,
    chunk_size: int = 512,
    with_ks93: bool = False,
    ks93_fraction: float = 0.5,
    seed: int = 0,
    start: int = 0,
    stop: int | None = None,
    depth_weighting: bool = False,
    shard: tuple[int, int] = (1, 0),
    field_features: bool = False,
):
    """Stream ``(ε, κ)`` batches from an HDF5 file written by :mod:`lensviz.data`.

    The file is read ``chunk_size`` samples at a time (:func:`lensviz.data.read_hdf5`
    slices), never whole. With ``shuffle`` the chunk order and the samples inside each
    chunk are permuted anew every pass. With ``shard=(n, i)`` only chunks ``i``,
    ``i + n``, ... are read (chunks are made smaller if need be, so that every shard
    has one). ``field_features``: batches of :func:`lensviz.features.unet_features` of
    each sample as its own field, instead of ε. For a training set of field-aware
    tiles (features of whole fields) use :func:`training_set_dataset`.
    """
    n_shards, index = _check_shard(shard)
    n_total = hdf5_length(path)
    stop = n_total if stop is None else min(stop, n_total)
    if not 0 <= start < stop:
        raise ValueError(f"{path}: empty sample range [{start}, {stop}) of {n_total} samples")
    first_eps, first_kappa, _ = read_hdf5(path, start, start + 1)
    if first_kappa is None:
        raise ValueError(f"{path}: training needs a 'kappa' dataset, the file has none")
    npix = first_eps.shape[1]
    chunk_size = min(chunk_size, -(-(stop - start) // n_shards))  # a chunk for every shard

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            starts = np.arange(start, stop, chunk_size)[index::n_shards]
            if shuffle:
                rng.shuffle(starts)
            for c0 in starts:
                eps, kappa, _ = read_hdf5(path, int(c0), int(min(c0 + chunk_size, stop)))
                order = rng.permutation(len(eps)) if shuffle else np.arange(len(eps))
                for i in order:
                    yield np.int64(c0 + i), eps[i], kappa[i]
            if not repeat:
                return

    sig = (
        tf.TensorSpec([], tf.int64),
        tf.TensorSpec([npix, npix, 3], tf.float32),
        tf.TensorSpec([npix, npix], tf.float32),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    ds = ds.map(lambda key, eps, kappa: (key, eps, kappa, _noise_var(eps)))
    ds = _finish(
        ds,
        batch_size,
        augment,
        seed,
        drop_remainder=repeat,
        depth_weighting=depth_weighting,
        transform=_inputs_transform(with_ks93, ks93_fraction, field_features, seed),
    )
    return _sharded_by_source(ds) if n_shards > 1 else ds


def training_set_dataset(
    path: str | os.PathLike,
    batch_size: int = 8,
    shuffle: bool = True,
    augment: bool = True,
    repeat: bool = True,
    chunk_size: int = 64,
    seed: int = 0,
    stop: int | None = None,
    depth_weighting: bool = False,
    shard: tuple[int, int] = (1, 0),
):
    """Stream ``(features, κ)`` batches of a field-aware training set.

    The file is one of :func:`lensviz.training_data.write_training_set`: each sample's
    features were computed on its whole field, so they are used as stored. Every pass
    reads the samples (or the shard ``i, i + n, …`` of them) in a new random order,
    ``chunk_size`` at a time (:func:`lensviz.training_data.iter_training_set`).

    Returns
    -------
    tf.data.Dataset
        Batches ``(features (B, 128, 128, 5), κ (B, 128, 128)[, weight (B,)])`` float32.
    """
    n_shards, index = _check_shard(shard)
    n_total = training_set_length(path)
    stop = n_total if stop is None else min(stop, n_total)
    if stop < 1:
        raise ValueError(f"{path}: no samples to train on")
    mine = np.arange(stop)[index::n_shards]

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(mine) if shuffle else mine
            for x, k, v in iter_training_set(path, order, chunk_size):
                for j in range(len(x)):  # a fresh key per sample and pass: its symmetry
                    yield np.int64(rng.integers(2**62)), x[j], k[j], np.float32(v[j])
            if not repeat:
                return

    t, c = constants.NPIX, len(FEATURES)
    sig = (
        tf.TensorSpec([], tf.int64),
        tf.TensorSpec([t, t, c], tf.float32),
        tf.TensorSpec([t, t], tf.float32),
        tf.TensorSpec([], tf.float32),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    ds = _finish(
        ds, batch_size, augment, seed, drop_remainder=repeat, depth_weighting=depth_weighting
    )
    return _sharded_by_source(ds) if n_shards > 1 else ds
