"""Training a UNet from scratch (or from a warm start): the fit loop of :func:`train`.

Data
    Training batches come from :mod:`lensviz.nn.pipelines` (on-the-fly simulation, an
    HDF5 stream, or a field-aware training set of :mod:`lensviz.training_data`, with
    random spin-2 symmetries); validation uses a fixed set, :func:`validation_arrays`.

Runs
    :func:`train` fits a preset with validation on a fixed set from the calibration seed
    range, early stopping and a best checkpoint written atomically, and writes the
    per-epoch history — loss, val_loss and the validation WMAPE, DICEE, DPEAKS and RMSE —
    to ``history.csv`` and ``history.json`` (:mod:`lensviz.nn.callbacks`). Several GPUs
    or machines: :mod:`lensviz.nn.distribution`. Fine-tuning: :mod:`lensviz.nn.finetuning`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.data import read_hdf5
from lensviz.depth import measure_domain, pixel_noise_var
from lensviz.nn.callbacks import (
    AtomicCheckpoint,
    HistoryWriter,
    Progress,
    ProgressCallback,
    TrainingCancelled,
    ValidationMetrics,
)
from lensviz.nn.devices import describe_device
from lensviz.nn.distribution import (
    BACKUP_DIR,
    ClusterBackupAndRestore,
    backup_epoch,
    check_distribution,
    configure_precision,
    distributed_dataset,
    distribution_strategy,
    is_chief,
    keras_multiworker_fixes,
    n_workers,
    strategy_kind,
    task_label,
    worker_dir,
)
from lensviz.nn.inference import load_model
from lensviz.nn.losses import LOSSES, make_loss
from lensviz.nn.pipelines import hdf5_dataset, simulated_dataset, training_set_dataset
from lensviz.nn.presets import resolve_config
from lensviz.nn.unet import UNet, UNetConfig, warm_start
from lensviz.simulate import simulate_batch
from lensviz.training_data import (
    has_b_modes,
    is_training_set,
    iter_training_set,
    read_training_column,
)

__all__ = [
    "DOMAIN_SAMPLES",
    "TrainConfig",
    "ValidationSet",
    "validation_arrays",
    "validation_set",
    "train_dataset",
    "train",
]

#: Training samples read to measure a model's :class:`lensviz.depth.TrainingDomain`.
DOMAIN_SAMPLES = 2048


# === Configuration ===


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; every field has the default used for ``lite``.

    Attributes
    ----------
    preset : str
        Model preset of :data:`lensviz.nn.presets.PRESETS`.
    model_overrides : dict
        Fields of :class:`lensviz.nn.unet.UNetConfig` replacing the preset's.
    loss : str
        One of :data:`LOSSES`.
    coeffs : dict
        MultiFocal coefficients (report defaults).
    combined_weights : dict
        Term weights of the Combined loss (``multifocal``, ``wmape``, ``dicee``, ``dpeaks``).
    learning_rate, batch_size, epochs, steps_per_epoch : float, int, int, int
        Adam learning rate (report: 1e-4), maps per step (report: 8), epochs, steps each.
    train_data : str or None
        HDF5 file to stream; None simulates on the fly from ``train_seed``.
    train_seed : int
        First simulator seed of the training data (disjoint from test seeds).
    val_data : str or None
        HDF5 file for validation; None uses ``val_samples`` simulated maps from the
        calibration seed range.
    val_samples : int
        Validation maps.
    patience : int
        Early-stopping patience in epochs on ``val_loss``.
    augment : bool
        Random spin-2 symmetries.
    ks93_fraction : float
        Share of samples whose KS93 channel is filled (``with_ks93`` models only).
    depth_weighting : bool
        Weight each sample's loss by :func:`lensviz.depth.training_weight` of its noise,
        so that maps of every depth count alike (for training sets of mixed depth).
    domain : dict or None
        :meth:`lensviz.depth.TrainingDomain.to_dict` of the training data, saved in the
        model file; None leaves it unknown.
    init_weights : str or None
        A ``.keras`` file to start from (:func:`lensviz.nn.unet.warm_start`): the same
        architecture continues a run; a noise-aware UNet grows into a field-aware one.
        None starts from a fresh initialisation.
    distribution : str
        One of :data:`DISTRIBUTIONS`, see :func:`distribution_strategy`.
    devices : tuple of str or None
        Devices for :class:`tf.distribute.MirroredStrategy`; None picks the GPUs.
    mixed_precision : bool or None
        None: mixed float16 on GPU, float32 on CPU.
    seed : int
        Seed of the weights' initialisation, shuffling and augmentation.

    ``batch_size`` is the global batch: with several replicas each computes
    ``batch_size / replicas`` maps per step, so it must be a multiple of their number.
    """

    preset: str = "lite"
    model_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    loss: str = "multifocal"
    coeffs: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(constants.MULTIFOCAL_COEFFS)
    )
    combined_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"multifocal": 0.95, "wmape": 0.05, "dicee": 0.0, "dpeaks": 0.0}
    )
    learning_rate: float = 1e-4
    batch_size: int = 8
    epochs: int = 20
    steps_per_epoch: int = 200
    train_data: str | None = None
    train_seed: int = constants.TRAIN_SEED_START
    val_data: str | None = None
    val_samples: int = 256
    patience: int = 5
    augment: bool = True
    ks93_fraction: float = 0.5
    depth_weighting: bool = False
    domain: Mapping[str, Any] | None = None
    init_weights: str | None = None
    distribution: str = "auto"
    devices: tuple[str, ...] | None = None
    mixed_precision: bool | None = None
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        check_distribution(self.distribution)
        for name in ("batch_size", "epochs", "steps_per_epoch", "val_samples"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0 <= self.ks93_fraction <= 1:
            raise ValueError(f"ks93_fraction must be in [0, 1], got {self.ks93_fraction!r}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_overrides"] = dict(self.model_overrides)
        d["coeffs"] = dict(self.coeffs)
        d["combined_weights"] = dict(self.combined_weights)
        d["devices"] = list(self.devices) if self.devices else None
        d["domain"] = dict(self.domain) if self.domain else None
        return d


@dataclasses.dataclass(frozen=True)
class ValidationSet:
    """A fixed validation set: inputs, true κ, each map's noise, and optionally B modes.

    Attributes
    ----------
    x : ndarray, shape (N, 128, 128, C)
        ε (each map its own field) or, from a training set, the field features.
    kappa : ndarray, shape (N, 128, 128)
    noise_var : ndarray, shape (N,)
        Mean pixel noise variance of each map (:func:`lensviz.depth.pixel_noise_var`).
    x_b : ndarray or None
        Features of the same fields rotated by 45° (a training set written with
        ``b_modes``), for the B-mode validation loss.
    eps : ndarray, shape (N, 128, 128, 3)
        ε of the maps (for the training domain).
    pixel_arcmin : ndarray, shape (N,)
    """

    x: np.ndarray
    kappa: np.ndarray
    noise_var: np.ndarray
    x_b: np.ndarray | None
    eps: np.ndarray
    pixel_arcmin: np.ndarray


def validation_arrays(
    n: int = 256,
    path: str | None = None,
    seed_start: int = constants.CALIBRATION_SEED_START,
    sim_config=None,
):
    """A fixed validation set ``(ε, κ)``: the first ``n`` maps of ``path``, or simulated."""
    if path is not None:
        eps, kappa, _ = read_hdf5(path, 0, n)
        if kappa is None:
            raise ValueError(f"{path}: validation needs a 'kappa' dataset, the file has none")
        return eps, kappa
    return simulate_batch(n, seed_start, sim_config)


def validation_set(n: int = 256, path: str | None = None, field_features: bool = False):
    """The :class:`ValidationSet` of a run: the first ``n`` maps of ``path``, or simulated.

    A training set (:mod:`lensviz.training_data`) gives its stored features (and B-mode
    features when it has them) to a field-aware model; any other file, or the simulator
    (calibration seeds), gives ε.
    """
    if path is not None and field_features and is_training_set(path):
        x, kappa, noise = next(iter_training_set(path, np.arange(n), n))
        x_b = None
        if has_b_modes(path):
            x_b = next(iter_training_set(path, np.arange(n), n, key="features_b"))[0]
        eps, _, _ = read_hdf5(path, 0, n)
        scale = read_training_column(path, "pixel_arcmin", n)
        return ValidationSet(x, kappa, noise, x_b, eps, scale)
    eps, kappa = validation_arrays(n, path)
    scale = np.full(len(eps), constants.PIXEL_ARCMIN)
    return ValidationSet(eps, kappa, pixel_noise_var(eps[..., 2]), None, eps, scale)


# === Runs ===


def train_dataset(
    cfg,
    model_cfg: UNetConfig,
    batch_size: int,
    shard=(1, 0),
    n_samples: int | None = None,
    resumed_epochs: int = 0,
):
    """The training pipeline of ``cfg`` for a model of ``model_cfg``.

    A training set of field-aware tiles (:mod:`lensviz.training_data`) streams its
    stored features; another HDF5 file streams ε (turned into a field-aware model's
    features map by map); without a file the simulator draws samples on the fly. A
    resumed run continues with fresh samples.
    """
    depth_weighting = getattr(cfg, "depth_weighting", False)
    seed = cfg.seed + resumed_epochs  # a new shuffle, not the first epochs' order again
    if cfg.train_data and is_training_set(cfg.train_data):
        if not model_cfg.field_features:
            raise ValueError(
                f"{cfg.train_data} is a training set of field features; it trains field-aware "
                "models only (UNetConfig.field_features)"
            )
        return training_set_dataset(
            cfg.train_data,
            batch_size,
            augment=cfg.augment,
            seed=seed,
            stop=n_samples,
            depth_weighting=depth_weighting,
            shard=shard,
        )
    if cfg.train_data:
        return hdf5_dataset(
            cfg.train_data,
            batch_size,
            augment=cfg.augment,
            with_ks93=model_cfg.with_ks93,
            seed=seed,
            ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
            stop=n_samples,
            depth_weighting=depth_weighting,
            shard=shard,
            field_features=model_cfg.field_features,
        )
    seen = resumed_epochs * getattr(cfg, "steps_per_epoch", 0) * cfg.batch_size
    return simulated_dataset(
        batch_size,
        cfg.train_seed + seen,  # the samples after those the earlier epochs used
        n_samples=n_samples,
        augment=cfg.augment,
        with_ks93=model_cfg.with_ks93,
        ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
        seed=cfg.seed,
        depth_weighting=depth_weighting,
        shard=shard,
        field_features=model_cfg.field_features,
    )


def _measure_training_domain(train_data: str | None, val: ValidationSet):
    """The :class:`lensviz.depth.TrainingDomain` of (a prefix of) the training data."""
    if train_data is None:
        return measure_domain(val.eps, pixel_arcmin=val.pixel_arcmin)
    eps = read_hdf5(train_data, 0, DOMAIN_SAMPLES)[0]
    scale = constants.PIXEL_ARCMIN
    if is_training_set(train_data):
        scale = read_training_column(train_data, "pixel_arcmin", len(eps))
    return measure_domain(eps, pixel_arcmin=scale)


def _earlier_history(out: Path, epochs: int) -> list[dict]:
    """Rows of epochs ``1..epochs`` of ``out/history.json`` (a resumed run's past)."""
    path = out / "history.json"
    if epochs == 0 or not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [r for r in rows if 1 <= int(r["epoch"]) <= epochs]
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise ValueError(
            f"{path}: not a lensviz training history; cannot resume from {out / BACKUP_DIR}"
        ) from None


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train a UNet from scratch; write ``model.keras``, history and a run summary.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Created if needed. Receives ``model.keras`` (best ``val_loss``, written
        atomically), ``history.csv``, ``history.json``, ``config.json``, ``summary.json``,
        and while the run lasts ``backup/`` (the state to resume from). Written by the
        chief only (see "Distribution" in the module docstring).
    on_progress, cancel
        See :class:`ProgressCallback`.

    Returns
    -------
    dict
        The summary: best epoch, best validation metrics, steps, wall time, device,
        replicas, workers, and ``resumed_from_epoch`` (0 for a fresh run).

    Raises
    ------
    TrainingCancelled
        If ``cancel`` was set; the best checkpoint written so far stays in place.

    Notes
    -----
    Restart: a run that stops on an error (not a cancel) keeps ``OUT/backup``; the same
    call (the same command on every worker) then resumes after the last complete epoch,
    keeps the earlier epochs' history and best checkpoint, and draws fresh training
    samples. A completed or cancelled run deletes the backup.
    """
    strategy = distribution_strategy(cfg.distribution, cfg.devices)  # first: see its notes
    chief = is_chief(strategy)
    out = Path(out_dir)
    with worker_dir(out, chief, task_label(strategy)) as write_dir:
        write_text(write_dir / "config.json", json.dumps(cfg.to_dict(), indent=1))
        keras.utils.set_random_seed(cfg.seed)
        policy = configure_precision(cfg.mixed_precision)
        base = resolve_config(cfg.preset)
        model_cfg = UNetConfig.from_dict({**base.to_dict(), **dict(cfg.model_overrides)})
        with strategy.scope():
            model = UNet(model_cfg, training_domain=cfg.domain)
            if cfg.init_weights:  # warm start: continue a run, or grow a model into another
                warm_start(model, load_model(cfg.init_weights))
            loss = make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights)
            model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
        keras_multiworker_fixes(model, strategy)
        resumed = backup_epoch(out / BACKUP_DIR)
        earlier = _earlier_history(out, resumed)
        ds = distributed_dataset(
            strategy,
            lambda batch, shard: train_dataset(
                cfg, model_cfg, batch, shard, resumed_epochs=resumed
            ),
            cfg.batch_size,
        )
        val = validation_set(cfg.val_samples, cfg.val_data, model_cfg.field_features)
        if cfg.domain is None:  # what the model sees: measured on (a prefix of) its data
            model.training_domain = _measure_training_domain(cfg.train_data, val).to_dict()
        # With B-mode validation fields, early stopping and the checkpoint watch the loss
        # over E and B fields together (a model that answers B modes is not the best).
        monitor = "val_loss" if val.x_b is None else "val_loss_eb"
        progress = ProgressCallback(on_progress, cfg.epochs, cfg.steps_per_epoch, cancel)
        best_row = min(earlier, key=lambda r: r.get(monitor, math.inf), default=None)
        checkpoint = AtomicCheckpoint(
            write_dir / "model.keras",
            monitor=monitor,
            best=math.inf if best_row is None else best_row.get(monitor, math.inf),
            best_epoch=-1 if best_row is None else int(best_row["epoch"]),
        )
        callbacks = [
            ValidationMetrics(
                val.x,
                val.kappa,
                make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights),
                depth_weighting=cfg.depth_weighting,
                noise_var=val.noise_var,
                x_b=val.x_b,
            ),
            checkpoint,
            HistoryWriter(write_dir, earlier),
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="min", patience=cfg.patience, restore_best_weights=False
            ),
            ClusterBackupAndRestore(out / BACKUP_DIR, write_dir / BACKUP_DIR),
            progress,
        ]
        t0 = time.perf_counter()
        model.fit(
            ds,
            epochs=cfg.epochs,
            steps_per_epoch=cfg.steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        wall = time.perf_counter() - t0
        keras.mixed_precision.set_global_policy("float32")
        if progress.cancelled:
            raise TrainingCancelled(f"training cancelled after epoch {len(progress.history)}")
        rows = earlier + progress.history
        best = min(rows, key=lambda r: r.get(monitor, math.inf))
        summary = {
            "best_epoch": checkpoint.best_epoch,
            "best": best,
            "epochs_run": len(progress.history),
            "resumed_from_epoch": resumed,
            "steps": len(progress.history) * cfg.steps_per_epoch,
            "samples_seen": len(progress.history) * cfg.steps_per_epoch * cfg.batch_size,
            "wall_time_s": wall,
            "device": describe_device(),
            "replicas": strategy.num_replicas_in_sync,
            "workers": n_workers(strategy),
            "chief": chief,
            "distribution": strategy_kind(strategy),
            "precision": policy,
            "params": int(model.count_params()),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        }
        write_text(write_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
