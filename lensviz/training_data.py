"""Training sets of a field-aware UNet: tiles cut from whole simulated fields.

A field-aware UNet (:mod:`lensviz.features`) reads features computed on a whole field;
training must show it the same thing. A training sample is therefore drawn by
:func:`lensviz.simulate.field_draw` (depth, masks, pixel scale, field side, tile
position, all from the sample's seed), the whole field is simulated, its features are
computed, and the 128² tile is cut from both (:func:`training_sample`). Lone 128²
fields, whose tile is the whole field, are one of the field sides drawn.

Files (:func:`write_training_set`) are lensviz HDF5 dataset files (``epsilon`` and
``kappa`` of the tiles, ``names``; readable by :func:`lensviz.data.read_hdf5`) with
four more per-sample datasets:

``features`` ``(N, 128, 128, 5)`` float32
    The tile's crop of its field's :func:`lensviz.features.unet_features`.
``features_b`` ``(N, 128, 128, 5)`` float32, optional
    The same for the field rotated by 45° (:func:`lensviz.nulltests.rotate_45`: a pure
    B-mode field of the same mass, which no mass makes; its κ is 0), for the B-mode
    validation metric.
``pixel_arcmin``, ``n_gal``, ``field_px`` ``(N,)``
    What was drawn (``n_gal = inf``: no shape noise).
``noise_var`` ``(N,)`` float64
    The tile's mean pixel noise variance (:func:`lensviz.depth.pixel_noise_var`), for
    the depth weighting of the loss (:func:`lensviz.depth.training_weight`).

Write them uncompressed: training streams them faster than it simulates on 2 cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from lensviz import constants
from lensviz.data.errors import DataError
from lensviz.data.hdf5 import HDF5_LOCK, _GrowingFile, open_hdf5, streaming_hdf5
from lensviz.depth import pixel_noise_var
from lensviz.features import FEATURES, unet_features
from lensviz.nulltests import rotate_45
from lensviz.simulate import FieldMix, field_draw, simulate_sample

__all__ = [
    "TRAINING_SET_DATASETS",
    "training_sample",
    "whole_fields",
    "TrainingSetWriter",
    "write_training_set",
    "is_training_set",
    "has_b_modes",
    "training_set_length",
    "read_training_column",
    "iter_training_set",
]

#: The per-sample datasets a training set holds beyond ``epsilon``, ``kappa``, ``names``.
TRAINING_SET_DATASETS = ("features", "pixel_arcmin", "n_gal", "field_px", "noise_var")
_TILE = constants.NPIX


def training_sample(seed: int, mix: FieldMix | None = None, b_modes: bool = False) -> dict:
    """One training sample: a 128² tile of a whole simulated field, with its features.

    Parameters
    ----------
    seed : int
        Non-negative sample seed (training seeds ≥ 10⁶, calibration 500 000–10⁶).
    mix : FieldMix, optional
        What is drawn (default ``FieldMix()``).
    b_modes : bool
        Also return ``features_b``, the features of the 45°-rotated field.

    Returns
    -------
    dict
        ``epsilon`` (128, 128, 3), ``kappa`` (128, 128), ``features`` (128, 128, 5)
        [, ``features_b``], all float32; ``pixel_arcmin``, ``n_gal``, ``field_px``,
        ``noise_var``.

    Examples
    --------
    >>> s = training_sample(1_000_000)
    >>> s["features"].shape, s["field_px"]
    ((128, 128, 5), 384)
    """
    draw = field_draw(seed, mix)
    cfg = draw.config
    eps, kappa = simulate_sample(seed, cfg)
    (y0, x0), t = draw.origin, _TILE
    tile = (slice(y0, y0 + t), slice(x0, x0 + t))
    out = {
        "epsilon": eps[tile],
        "kappa": kappa[tile],
        "features": unet_features(eps, cfg.pixel_arcmin)[tile],
        "pixel_arcmin": float(cfg.pixel_arcmin),
        "n_gal": float(cfg.n_gal),
        "field_px": int(cfg.npix),
        "noise_var": float(pixel_noise_var(eps[tile][..., 2])),
    }
    if b_modes:
        out["features_b"] = unet_features(rotate_45(eps), cfg.pixel_arcmin)[tile]
    return out


def whole_fields(seeds, mix: FieldMix | None = None):
    """The whole fields of training-mix samples: ``(eps, kappa, origin, pixel_arcmin)``.

    For each seed, the field :func:`training_sample` cuts its tile from, with the
    tile's origin: what a method that runs on the whole field (KS93, Wiener) sees.
    """
    for seed in seeds:
        draw = field_draw(int(seed), mix)
        eps, kappa = simulate_sample(int(seed), draw.config)
        yield eps, kappa, draw.origin, float(draw.config.pixel_arcmin)


class TrainingSetWriter(_GrowingFile):
    """Write a training set (module docstring) incrementally and atomically.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file to create.
    b_modes : bool
        Write ``features_b`` too (validation sets).
    overwrite : bool
        Replace an existing file (atomically).
    attrs : dict, optional
        Provenance attributes (seeds, mix).
    """

    FORMAT = ("lensviz", 1)
    NOUN = "training samples"

    def __init__(self, path, *, b_modes: bool = False, overwrite: bool = False, attrs=None):
        super().__init__(path, overwrite, None, 0, attrs)
        self.b_modes = bool(b_modes)

    def _format_attrs(self) -> dict:
        return {
            **super()._format_attrs(),
            "channels": "e1,e2,delta_e",
            "features": ",".join(FEATURES),
        }

    def append(self, samples: list[dict], names: list[str]) -> None:
        """Append samples of :func:`training_sample` with their names."""
        self._check_open()
        if self._n == 0:
            t, c = _TILE, len(FEATURES)
            self._new_dataset("epsilon", (t, t, 3), np.float32, 1)
            self._new_dataset("kappa", (t, t), np.float32, 1)
            self._new_dataset("features", (t, t, c), np.float32, 1)
            if self.b_modes:
                self._new_dataset("features_b", (t, t, c), np.float32, 1)
            for key in ("pixel_arcmin", "n_gal", "noise_var"):
                self._new_dataset(key, (), np.float64, 1024)
            self._new_dataset("field_px", (), np.int32, 1024)
            self._new_names()
        keys = ["epsilon", "kappa", "features", *TRAINING_SET_DATASETS[1:]]
        if self.b_modes:
            keys.append("features_b")
        rows = {k: np.stack([np.asarray(s[k]) for s in samples]) for k in keys}
        self._append_rows(rows, list(names))


def write_training_set(
    path,
    n: int,
    seed: int,
    mix: FieldMix | None = None,
    b_modes: bool = False,
    overwrite: bool = False,
    batch: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Simulate ``n`` training samples (seeds ``seed … seed + n − 1``) into ``path``.

    Parameters
    ----------
    path : str or path-like
    n : int
        Number of samples, ≥ 1.
    seed : int
        Seed of the first sample.
    mix : FieldMix, optional
    b_modes : bool
        Store ``features_b`` (for validation sets).
    overwrite : bool
    batch : int
        Samples per write.
    on_progress : callable, optional
        Called with the number of samples written after each batch.

    Returns
    -------
    Path
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    mix = FieldMix() if mix is None else mix
    attrs = {
        "seed_start": int(seed),
        "field_mix": repr(mix),
        "b_modes": bool(b_modes),
    }
    with TrainingSetWriter(path, b_modes=b_modes, overwrite=overwrite, attrs=attrs) as writer:
        for i in range(seed, seed + n, batch):
            seeds = range(i, min(i + batch, seed + n))
            writer.append(
                [training_sample(s, mix, b_modes) for s in seeds], [str(s) for s in seeds]
            )
            if on_progress is not None:
                on_progress(writer.n_written)
    return Path(path)


def _features_dataset(f, root, key: str, source: str):
    if key.encode() not in root:
        raise DataError(
            f"{source}: has no dataset '{key}'; expected a lensviz training set "
            "(lensviz.training_data.write_training_set)"
        )
    ds = f[key]
    want = (_TILE, _TILE, len(FEATURES))
    if ds.ndim != 4 or ds.shape[1:] != want or ds.dtype != np.float32:
        raise DataError(
            f"{source}: dataset '{key}' has shape {ds.shape} dtype {ds.dtype}; "
            f"expected (N, {want[0]}, {want[1]}, {want[2]}) float32"
        )
    return ds


def is_training_set(path) -> bool:
    """Whether an HDF5 file holds a ``features`` dataset (checked as a hostile file)."""
    with open_hdf5(path, str(path)) as (_, root):
        return b"features" in root


def has_b_modes(path) -> bool:
    """Whether a training set holds ``features_b`` (45°-rotated fields)."""
    with open_hdf5(path, str(path)) as (_, root):
        return b"features_b" in root


def read_training_column(path, key: str, n: int | None = None) -> np.ndarray:
    """The first ``n`` values of a per-sample column (``pixel_arcmin``, ``n_gal``, …)."""
    if key not in TRAINING_SET_DATASETS[1:]:
        raise ValueError(f"key must be one of {TRAINING_SET_DATASETS[1:]}, got {key!r}")
    source = str(path)
    with open_hdf5(path, source) as (f, root):
        if key.encode() not in root or f[key].ndim != 1:
            raise DataError(f"{source}: has no per-sample dataset '{key}'")
        values = np.asarray(f[key][slice(None, n)], dtype=np.float64)
    if not np.all(np.isfinite(values) | (np.isinf(values) & (key == "n_gal"))):
        raise DataError(f"{source}: dataset '{key}' holds non-finite values")
    return values


def training_set_length(path) -> int:
    """Number of samples of a training set (the length of its ``features``)."""
    with open_hdf5(path, str(path)) as (f, root):
        return int(_features_dataset(f, root, "features", str(path)).shape[0])


def iter_training_set(
    path,
    indices,
    batch: int,
    key: str = "features",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(features, kappa, noise_var)`` of the samples ``indices``, in batches.

    Parameters
    ----------
    path : str or path-like
        A training set (:func:`write_training_set`), checked as a hostile file.
    indices : array_like of int
        Samples to read, in this order.
    batch : int
        Samples per yielded batch (read in one sorted HDF5 selection each).
    key : {"features", "features_b"}
        ``features_b``: the 45°-rotated fields, whose κ is 0 (the κ yielded is zeros).
    """
    source = str(path)
    indices = np.asarray(indices, dtype=np.int64)
    with streaming_hdf5(path, source) as (f, root):  # the lock per batch, not across yields
        with HDF5_LOCK:
            feats = _features_dataset(f, root, key, source)
            n = feats.shape[0]
            kappa, noise = f["kappa"], f["noise_var"]
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise DataError(f"{source}: sample indices outside [0, {n})")
        for i in range(0, len(indices), batch):
            chunk = indices[i : i + batch]
            order = np.argsort(chunk)
            rows = chunk[order]
            back = np.argsort(order)
            with HDF5_LOCK:
                x = feats[rows][back]
                k = np.zeros(x.shape[:3], np.float32) if key == "features_b" else kappa[rows][back]
                v = np.asarray(noise[rows], np.float64)[back]
            if not (np.all(np.isfinite(x)) and np.all(np.isfinite(k))):
                raise DataError(f"{source}: non-finite values among samples {chunk[:4]}…")
            yield x, k, v
