"""Training and fine-tuning: runs, callbacks, distribution, precision, atomic checkpoints.

Data
    Training batches come from :mod:`lensviz.nn.pipelines` (on-the-fly simulation or an
    HDF5 stream, with random spin-2 symmetries); validation uses a fixed set,
    :func:`validation_arrays`.

Runs
    :func:`train` fits a preset with validation on a fixed simulated set from the
    calibration seed range, early stopping and a best checkpoint written atomically
    (temporary file, then rename), and writes the per-epoch history — loss, val_loss
    and the validation WMAPE, DICEE, DPEAKS and RMSE — to ``history.csv`` and
    ``history.json``. :func:`finetune` reproduces the report's fine-tuning: every
    layer frozen except the last (or the decoder), Combined loss.

Progress goes through :class:`ProgressCallback`, which calls a plain function with a
:class:`Progress` record and can be cancelled through a :class:`threading.Event`:
the app uses exactly this. A cancelled or failed run never touches the output file.

Distribution
    TensorFlow's own engine (:mod:`tf.distribute`), chosen by :func:`distribution_strategy`:
    one device, :class:`tf.distribute.MirroredStrategy` over the local GPUs, or
    :class:`tf.distribute.MultiWorkerMirroredStrategy` over the machines listed in the
    ``TF_CONFIG`` environment variable (synchronous data parallelism: every replica
    holds the whole model, gradients are all-reduced each step). ``batch_size`` is the
    global batch, split evenly over the replicas. Each worker simulates or reads only
    its own share of the training samples (:func:`distributed_dataset`, sharded at the
    source). Only the chief writes the run folder (model, history, config, summary);
    the other workers write the same files into a private temporary folder, deleted at
    the end, because saving may need every worker. :class:`ClusterBackupAndRestore`
    (Keras' ``BackupAndRestore``) saves the training state every epoch, so a run that
    fails (a worker lost, a pre-emption) resumes from its last complete epoch when the
    same command is started again. The cluster recipe is in ``docs/distributed.md``.
    Mixed precision (float16 compute, float32 weights) is on whenever a GPU is present.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.data import read_hdf5
from lensviz.depth import measure_domain, pixel_noise_var, training_weight
from lensviz.metrics import score
from lensviz.nn.devices import describe_device
from lensviz.nn.inference import load_model, predict_kappa, save_model
from lensviz.nn.losses import CombinedLoss, FocalLoss, MSELoss, MultiFocalLoss
from lensviz.nn.pipelines import hdf5_dataset, simulated_dataset
from lensviz.nn.presets import resolve_config
from lensviz.nn.unet import UNet, UNetConfig, set_trainable
from lensviz.simulate import simulate_batch

__all__ = [
    "LOSSES",
    "TrainConfig",
    "FinetuneConfig",
    "Progress",
    "TrainingCancelled",
    "make_loss",
    "validation_arrays",
    "ValidationMetrics",
    "ProgressCallback",
    "AtomicCheckpoint",
    "HistoryWriter",
    "ClusterBackupAndRestore",
    "backup_epoch",
    "DISTRIBUTIONS",
    "BACKUP_DIR",
    "cluster_config",
    "distribution_strategy",
    "is_chief",
    "distributed_dataset",
    "configure_precision",
    "train",
    "finetune",
    "combined_term_scales",
    "summarize_metrics",
]

#: Training samples read to measure a model's :class:`lensviz.depth.TrainingDomain`.
DOMAIN_SAMPLES = 2048

#: Loss names accepted by :func:`make_loss`.
LOSSES = ("mse", "focal", "multifocal", "combined")

#: Kinds of :func:`distribution_strategy`.
DISTRIBUTIONS = ("auto", "one", "mirrored", "multiworker")

#: Folder of a training run where :class:`ClusterBackupAndRestore` keeps its state.
BACKUP_DIR = "backup"


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
        A ``.keras`` file of the same architecture to start from (continue a run); None
        starts from a fresh initialisation.
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
        _check_distribution(self.distribution)
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
class FinetuneConfig:
    """A fine-tuning run (report §4.2). Defaults: last layer, 0.95 MultiFocal + 0.05 WMAPE.

    With ``normalize_terms`` (default) each Combined term is divided by its value for the
    starting model on the validation maps, so the term weights are shares of the initial
    loss: "0.95 MultiFocal + 0.05 WMAPE" then means what it says. Raw, the terms differ
    by orders of magnitude (MultiFocal ≈ 3e-4, WMAPE ≈ 5 on simulated maps) and a 0.05
    WMAPE weight is 99.9% of the loss, which drives the maps towards zero.
    """

    loss: str = "combined"
    coeffs: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(constants.MULTIFOCAL_COEFFS)
    )
    combined_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"multifocal": 0.95, "wmape": 0.05, "dicee": 0.0, "dpeaks": 0.0}
    )
    which: str = "last"
    epochs: int = 2
    n_samples: int = 512
    batch_size: int = 8
    learning_rate: float = 1e-4
    train_data: str | None = None
    train_seed: int = constants.TRAIN_SEED_START + 50_000_000
    val_samples: int = 64
    augment: bool = True
    normalize_terms: bool = True
    distribution: str = "auto"
    devices: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        _check_distribution(self.distribution)
        if self.which not in ("last", "decoder", "all"):
            raise ValueError(f"which must be 'last', 'decoder' or 'all', got {self.which!r}")
        for name in ("epochs", "n_samples", "batch_size", "val_samples"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["coeffs"] = dict(self.coeffs)
        d["combined_weights"] = dict(self.combined_weights)
        d["devices"] = list(self.devices) if self.devices else None
        return d


def _check_distribution(kind: str) -> None:
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {kind!r}")


def make_loss(
    name: str,
    coeffs: Mapping[str, float] | None = None,
    combined_weights: Mapping[str, float] | None = None,
):
    """A Keras loss by name: ``mse``, ``focal``, ``multifocal`` or ``combined``."""
    if name == "mse":
        return MSELoss()
    if name == "focal":
        return FocalLoss()
    if name == "multifocal":
        return MultiFocalLoss(coeffs=dict(coeffs or constants.MULTIFOCAL_COEFFS))
    if name == "combined":
        w = dict(combined_weights or {})
        return CombinedLoss(coeffs=dict(coeffs or constants.MULTIFOCAL_COEFFS), **w)
    raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSSES)}")


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


# === Distribution and precision ===


def cluster_config() -> dict[str, Any] | None:
    """The cluster described by the ``TF_CONFIG`` environment variable, checked.

    ``TF_CONFIG`` is TensorFlow's own cluster description, the same on every machine
    except for ``task``::

        {"cluster": {"worker": ["host1:12345", "host2:12345"]},
         "task": {"type": "worker", "index": 0}}

    An optional ``"chief": ["host0:12345"]`` entry names a separate chief; without
    one, worker 0 is the chief.

    Returns
    -------
    dict or None
        The parsed value; None when ``TF_CONFIG`` is unset or empty.

    Raises
    ------
    ValueError
        Not JSON, or no ``cluster.worker`` list of ``"host:port"`` strings, or a
        ``task`` that is not in the cluster. The message names ``TF_CONFIG``.
    """
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return None
    expected = (
        'expected {"cluster": {"worker": ["host:port", ...]}, '
        '"task": {"type": "worker", "index": i}}'
    )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON ({exc}); {expected}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker"), list):
        raise ValueError(f"TF_CONFIG has no cluster.worker list; {expected}")
    for role, hosts in cluster.items():
        if (
            role not in ("chief", "worker")
            or not isinstance(hosts, list)
            or not all(isinstance(h, str) and h.rpartition(":")[2].isdigit() for h in hosts)
        ):
            raise ValueError(
                f"TF_CONFIG: cluster.{role} = {hosts!r}; expected chief and "
                "worker lists of 'host:port' strings"
            )
    if (
        not isinstance(task, dict)
        or task.get("type") not in cluster
        or not isinstance(task.get("index"), int)
        or not 0 <= task["index"] < len(cluster[task["type"]])
    ):
        raise ValueError(
            f"TF_CONFIG: task = {task!r} is not a task of the cluster {cluster!r}; {expected}"
        )
    return config


def distribution_strategy(kind: str = "auto", devices: Sequence[str] | None = None):
    """The :mod:`tf.distribute` strategy of a training run.

    Parameters
    ----------
    kind : {"auto", "one", "mirrored", "multiworker"}
        ``one``: one device (the first GPU, else the CPU; or ``devices[0]``).
        ``mirrored``: :class:`tf.distribute.MirroredStrategy` over ``devices`` or every
        local GPU (the CPU when there is none).
        ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` over the
        cluster of ``TF_CONFIG`` (:func:`cluster_config`), which must be set.
        ``auto``: ``multiworker`` when ``TF_CONFIG`` lists more than one task, else
        ``mirrored`` when there are several GPUs (or ``devices``), else ``one``.
    devices : sequence of str, optional
        E.g. ``("/gpu:0", "/gpu:1")``.

    Raises
    ------
    ValueError
        An unknown kind, ``multiworker`` without a valid ``TF_CONFIG``, or several
        ``devices`` for ``one``.

    Notes
    -----
    A multi-worker strategy must be created before TensorFlow runs anything else in the
    process (it configures the collective operations at start-up): call this first.
    """
    _check_distribution(kind)
    cluster = cluster_config()
    devices = list(devices) if devices else None
    if kind == "auto":
        n_tasks = 0 if cluster is None else sum(len(h) for h in cluster["cluster"].values())
        if n_tasks > 1:
            kind = "multiworker"
        elif devices is not None:
            kind = "mirrored" if len(devices) > 1 else "one"
        else:
            kind = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if kind == "multiworker":
        if cluster is None:
            raise ValueError(
                "--distribution multiworker needs the cluster in the TF_CONFIG "
                "environment variable (see docs/distributed.md)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if devices is not None and len(devices) > 1:
        raise ValueError(f"--distribution one takes one device, got {devices}")
    if devices is not None:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()  # the default: one device (the first GPU if any)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on non-chief workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def _keras_multiworker_fixes(model: keras.Model, strategy) -> None:
    """Work around two faults of Keras 3 (3.15) under ``MultiWorkerMirroredStrategy``.

    Keras' own multi-worker path fails in ``fit`` (keras-team/keras#20585):

    * before training it builds the model from one batch averaged over the replicas
      with ``strategy.reduce``, which this strategy cannot do for a tuple ("Attempt to
      convert a value (PerReplica...) to a Tensor"); the batch serves only for its
      shapes, so the model is built from this worker's own part of the batch instead;
    * after each step it averages the scalar logs (the loss) with
      ``strategy.reduce("MEAN", value, axis=0)``, an axis a scalar does not have
      ("Invalid reduction dimension 0"); scalars are averaged over the replicas alone.

    Only ``model`` and ``strategy`` themselves are changed, and only for this strategy.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    reduce = strategy.reduce

    def reduce_scalars_over_replicas(reduce_op, value, axis=None):
        local = value
        if isinstance(value, tf.distribute.DistributedValues):
            local = strategy.experimental_local_results(value)[0]
        if axis is not None and getattr(local, "shape", None) is not None and local.shape.rank == 0:
            axis = None
        return reduce(reduce_op, value, axis=axis)

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], next(it)
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    strategy.reduce = reduce_scalars_over_replicas
    model._maybe_symbolic_build = build


def _strategy_kind(strategy) -> str:
    """``"multiworker"``, ``"mirrored"`` or ``"one"``: the kind of a strategy, by its class."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "one"


def _task_label(strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return "local"
    return f"{resolver.task_type}{resolver.task_id}"


def distributed_dataset(strategy, make_dataset: Callable, global_batch: int):
    """The training data of a strategy: each input pipeline makes only its own share.

    Parameters
    ----------
    strategy : tf.distribute.Strategy
    make_dataset : callable ``(batch_size, shard) -> tf.data.Dataset``
        Builds a batched dataset of ``batch_size`` maps per batch holding the share
        ``shard = (n, i)`` of the samples (see :mod:`lensviz.nn.pipelines`).
    global_batch : int
        Maps per step over all replicas.

    Returns
    -------
    tf.data.Dataset or tf.distribute.DistributedDataset
        With one replica, ``make_dataset(global_batch, (1, 0))``. Otherwise
        :meth:`~tf.distribute.Strategy.distribute_datasets_from_function`: worker ``i`` of
        ``n`` builds ``make_dataset(global_batch / replicas, (n, i))``, and its replicas
        take its batches in turn. No sample is produced twice, unlike the
        ``AutoShardPolicy.DATA`` sharding that ``tf.distribute`` would otherwise apply
        (every worker producing every sample and keeping its share): a pipeline built
        on generators has no files to shard by.

    Raises
    ------
    ValueError
        If ``global_batch`` is not a multiple of the number of replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(
            f"the batch size {global_batch} is the global batch and must be a "
            f"multiple of the {replicas} replicas"
        )
    if replicas == 1:
        return make_dataset(global_batch, (1, 0))

    def per_worker(ctx: tf.distribute.InputContext):
        batch = ctx.get_per_replica_batch_size(global_batch)
        return make_dataset(batch, (ctx.num_input_pipelines, ctx.input_pipeline_id))

    return strategy.distribute_datasets_from_function(per_worker)


def configure_precision(mixed: bool | None = None) -> str:
    """Set Keras' global dtype policy: mixed float16 on GPU (or when asked), else float32."""
    if mixed is None:
        mixed = bool(tf.config.list_physical_devices("GPU"))
    policy = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


# === Callbacks ===


class TrainingCancelled(RuntimeError):
    """Raised by :func:`train` / :func:`finetune` when the cancel event was set."""


@dataclasses.dataclass
class Progress:
    """A progress report: where the run is, how fast it goes, and the history so far."""

    stage: str  # "train", "epoch_end" or "done"
    epoch: int  # 0-based epoch in progress
    epochs: int
    step: int  # steps done in this epoch
    steps: int  # steps per epoch
    loss: float
    elapsed_s: float
    eta_s: float
    history: list[dict[str, float]]

    @property
    def fraction(self) -> float:
        total = self.epochs * self.steps
        return min(1.0, (self.epoch * self.steps + self.step) / total) if total else 0.0


def summarize_metrics(kappa_true: np.ndarray, kappa_pred: np.ndarray) -> dict[str, float]:
    """Mean WMAPE, DICEE, DPEAKS, RMSE and r plus the median WMAPE of a set of maps."""
    s = score(kappa_true, kappa_pred)
    out = {name: float(np.mean(v)) for name, v in s.items()}
    out["wmape_median"] = float(np.median(s["wmape"]))
    return out


class ValidationMetrics(keras.callbacks.Callback):
    """At each epoch end: ``val_loss`` and the challenge metrics on a fixed set.

    One forward pass over the validation maps (a ``tf.function``, never
    ``model.predict``) serves both the loss and the metrics, written into the epoch
    logs as ``val_loss``, ``val_wmape``, ``val_wmape_median``, ``val_dicee``,
    ``val_dpeaks``, ``val_rmse`` and ``val_r``. Put it first in the callback list so
    that early stopping and checkpoints see these values.
    """

    def __init__(self, eps, kappa, loss_fn, batch_size: int = 64, depth_weighting: bool = False):
        super().__init__()
        self.eps, self.kappa = eps, kappa
        self.loss_fn, self.batch_size = loss_fn, batch_size
        # Per-map loss weights, as in training (the loss is then comparable across epochs).
        self.weights = (
            np.asarray(training_weight(pixel_noise_var(eps[..., 2])), np.float32)
            if depth_weighting
            else None
        )

    def evaluate(self) -> dict[str, float]:
        pred = predict_kappa(self.model, self.eps, batch_size=self.batch_size)
        losses = []
        for i in range(0, len(pred), self.batch_size):
            t = tf.constant(self.kappa[i : i + self.batch_size])
            p = tf.constant(pred[i : i + self.batch_size])
            w = None if self.weights is None else tf.constant(self.weights[i : i + self.batch_size])
            losses.append(float(self.loss_fn(t, p, sample_weight=w)) * len(t))
        out = {"val_loss": sum(losses) / len(pred)}
        out.update({f"val_{k}": v for k, v in summarize_metrics(self.kappa, pred).items()})
        return out

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.evaluate())


class ProgressCallback(keras.callbacks.Callback):
    """Reports :class:`Progress` to ``on_progress`` and honours a cancel event.

    Parameters
    ----------
    on_progress : callable(Progress) or None
    epochs, steps : int
        Planned epochs and steps per epoch (for the ETA).
    cancel : threading.Event or None
        When set, training stops after the current step.
    min_interval_s : float
        Minimum time between two per-step reports.
    """

    def __init__(
        self,
        on_progress: Callable[[Progress], None] | None,
        epochs: int,
        steps: int,
        cancel: threading.Event | None = None,
        min_interval_s: float = 0.5,
    ):
        super().__init__()
        self.on_progress, self.epochs, self.steps = on_progress, epochs, steps
        self.cancel, self.min_interval_s = cancel, min_interval_s
        self.history: list[dict[str, float]] = []
        self.cancelled = False
        self._t0 = self._last = 0.0
        self._epoch = 0
        self._first_epoch: int | None = None  # a resumed run starts after epoch 0

    def _emit(self, stage: str, step: int, loss: float) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self._t0
        first = self._first_epoch or 0
        done = (self._epoch - first) * self.steps + step  # in this run, for the rate
        total = (self.epochs - first) * self.steps
        eta = elapsed / done * (total - done) if done else float("nan")
        self.on_progress(
            Progress(
                stage,
                self._epoch,
                self.epochs,
                step,
                self.steps,
                float(loss),
                elapsed,
                eta,
                list(self.history),
            )
        )

    def on_train_begin(self, logs=None):
        self._t0 = self._last = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            self.model.stop_training = True
        now = time.perf_counter()
        if now - self._last >= self.min_interval_s or batch + 1 == self.steps:
            self._last = now
            self._emit("train", batch + 1, float((logs or {}).get("loss", float("nan"))))

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.history.append(row)
        self._emit("epoch_end", self.steps, row.get("loss", float("nan")))


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model when ``monitor`` improves: temp file, then ``os.replace``."""

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        best: float = math.inf,
        best_epoch: int = -1,
    ):
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.best = best  # a resumed run starts from the best of its earlier epochs
        self.best_epoch = best_epoch

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            save_model(self.model, self.path)


class HistoryWriter(keras.callbacks.Callback):
    """Append every epoch's logs to ``history.csv`` and ``history.json`` (atomically).

    ``rows`` are earlier epochs (a resumed run), kept at the start of the files.
    """

    def __init__(self, out_dir: str | os.PathLike, rows: Sequence[dict] = ()):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.rows: list[dict[str, float]] = [dict(r) for r in rows]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        write_text(self.out_dir / "history.json", json.dumps(self.rows, indent=1))
        lines = [",".join(keys)]
        lines += [",".join(_fmt(r.get(k)) for k in keys) for r in self.rows]
        write_text(self.out_dir / "history.csv", "\n".join(lines) + "\n")


class ClusterBackupAndRestore(keras.callbacks.Callback):
    """Keras' ``BackupAndRestore`` for a cluster: every worker restores the chief's state.

    At the start of training every worker loads the weights, optimizer state and epoch
    saved in ``backup_dir`` (if any), so that a failed run resumes, on all workers alike,
    from its last complete epoch. At each epoch end the chief saves there; other
    workers save into their own ``write_dir`` (every worker must save, because reading
    distributed variables may need all of them), which is deleted at the end. A run
    that completes deletes the backup. ``backup_dir`` must be on storage that every
    worker reads (the run folder on a shared file system).

    Parameters
    ----------
    backup_dir : path
    write_dir : path, optional
        Where this worker saves; default ``backup_dir`` (the chief).
    """

    def __init__(self, backup_dir: str | os.PathLike, write_dir: str | os.PathLike | None = None):
        super().__init__()
        self.restore = keras.callbacks.BackupAndRestore(str(backup_dir))
        same = write_dir is None or Path(write_dir) == Path(backup_dir)
        self.save = self.restore if same else keras.callbacks.BackupAndRestore(str(write_dir))

    def set_model(self, model):
        super().set_model(model)
        self.restore.set_model(model)
        self.save.set_model(model)

    def on_train_begin(self, logs=None):
        self.restore.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.save.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        self.save.on_train_end(logs)


def backup_epoch(backup_dir: str | os.PathLike) -> int:
    """Epochs completed by the run whose state is saved in ``backup_dir`` (0 if none)."""
    path = Path(backup_dir) / "training_metadata.json"
    if not path.is_file():
        return 0
    try:
        epoch = json.loads(path.read_text(encoding="utf-8"))["epoch"]
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise ValueError(
            f"{path}: not the training state Keras' BackupAndRestore writes; "
            f"delete {path.parent} to start the run afresh"
        ) from None
    if not isinstance(epoch, int) or epoch < 0:
        raise ValueError(
            f"{path}: epoch {epoch!r} is not a count of epochs; delete "
            f"{path.parent} to start the run afresh"
        )
    return epoch


def _fmt(v) -> str:
    return "" if v is None else (str(int(v)) if float(v).is_integer() else f"{v:.6g}")


# === Runs ===


def _train_dataset(
    cfg,
    with_ks93: bool,
    batch_size: int,
    shard=(1, 0),
    n_samples: int | None = None,
    resumed_epochs: int = 0,
):
    """The training pipeline of ``cfg``; a resumed run continues with fresh samples."""
    if cfg.train_data:
        return hdf5_dataset(
            cfg.train_data,
            batch_size,
            augment=cfg.augment,
            with_ks93=with_ks93,
            seed=cfg.seed + resumed_epochs,  # a new shuffle, not the first epochs' order again
            ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
            stop=n_samples,
            depth_weighting=getattr(cfg, "depth_weighting", False),
            shard=shard,
        )
    seen = resumed_epochs * getattr(cfg, "steps_per_epoch", 0) * cfg.batch_size
    return simulated_dataset(
        batch_size,
        cfg.train_seed + seen,  # the samples after those the earlier epochs used
        n_samples=n_samples,
        augment=cfg.augment,
        with_ks93=with_ks93,
        ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
        seed=cfg.seed,
        depth_weighting=getattr(cfg, "depth_weighting", False),
        shard=shard,
    )


@contextlib.contextmanager
def _write_dir(out: Path, chief: bool, label: str):
    """``out`` for the chief; a private temporary folder, deleted at the end, for others."""
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"lensviz-{label}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    with _write_dir(out, chief, _task_label(strategy)) as write_dir:
        write_text(write_dir / "config.json", json.dumps(cfg.to_dict(), indent=1))
        keras.utils.set_random_seed(cfg.seed)
        policy = configure_precision(cfg.mixed_precision)
        base = resolve_config(cfg.preset)
        model_cfg = UNetConfig.from_dict({**base.to_dict(), **dict(cfg.model_overrides)})
        with strategy.scope():
            model = UNet(model_cfg, training_domain=cfg.domain)
            if cfg.init_weights:  # warm start: continue a run from its saved weights
                model.load_weights(cfg.init_weights)
            loss = make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights)
            model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
        _keras_multiworker_fixes(model, strategy)
        resumed = backup_epoch(out / BACKUP_DIR)
        earlier = _earlier_history(out, resumed)
        ds = distributed_dataset(
            strategy,
            lambda batch, shard: _train_dataset(
                cfg, model_cfg.with_ks93, batch, shard, resumed_epochs=resumed
            ),
            cfg.batch_size,
        )
        val_eps, val_kappa = validation_arrays(cfg.val_samples, cfg.val_data)
        if cfg.domain is None:  # what the model sees: measured on (a prefix of) its data
            seen = read_hdf5(cfg.train_data, 0, DOMAIN_SAMPLES)[0] if cfg.train_data else val_eps
            model.training_domain = measure_domain(seen).to_dict()
        progress = ProgressCallback(on_progress, cfg.epochs, cfg.steps_per_epoch, cancel)
        best_row = min(earlier, key=lambda r: r.get("val_loss", math.inf), default=None)
        checkpoint = AtomicCheckpoint(
            write_dir / "model.keras",
            best=math.inf if best_row is None else best_row.get("val_loss", math.inf),
            best_epoch=-1 if best_row is None else int(best_row["epoch"]),
        )
        callbacks = [
            ValidationMetrics(
                val_eps,
                val_kappa,
                make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights),
                depth_weighting=cfg.depth_weighting,
            ),
            checkpoint,
            HistoryWriter(write_dir, earlier),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.patience, restore_best_weights=False
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
        best = min(rows, key=lambda r: r.get("val_loss", math.inf))
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
            "workers": _n_workers(strategy),
            "chief": chief,
            "distribution": _strategy_kind(strategy),
            "precision": policy,
            "params": int(model.count_params()),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        }
        write_text(write_dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def _n_workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return max(1, sum(resolver.cluster_spec().num_tasks(j) for j in resolver.cluster_spec().jobs))


def finetune(
    weights: str | os.PathLike,
    out_path: str | os.PathLike,
    cfg: FinetuneConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Fine-tune saved weights (report §4.2) and save the result atomically.

    Every layer is frozen except ``cfg.which`` (``"last"`` by default); the model is
    compiled with ``cfg.loss`` (Combined by default) and trained on ``cfg.n_samples``
    maps for ``cfg.epochs`` epochs. The metrics on a fixed validation set are measured
    before and after. ``out_path`` is written only when the run succeeds; a cancelled
    or failed run leaves every file as it was.

    Returns
    -------
    dict
        ``path``, ``before`` and ``after`` metric dicts, ``history``, ``trainable`` layers,
        ``wall_time_s``.
    """
    cfg = cfg or FinetuneConfig()
    out_path = Path(out_path)
    if out_path.suffix != ".keras":
        raise ValueError(f"fine-tuned weights must be saved as .keras, got {out_path.name!r}")
    if out_path.resolve() == Path(weights).resolve():
        raise ValueError(f"refusing to overwrite the starting weights {weights}")
    strategy = distribution_strategy(cfg.distribution, cfg.devices)  # first: see its notes
    chief = is_chief(strategy)
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        model = load_model(weights)
    trainable = set_trainable(model, cfg.which)
    val_eps, val_kappa = validation_arrays(cfg.val_samples)
    val_pred = predict_kappa(model, val_eps)
    before = summarize_metrics(val_kappa, val_pred)
    term_weights = dict(cfg.combined_weights)
    scales = {}
    if cfg.loss == "combined" and cfg.normalize_terms:
        scales = combined_term_scales(
            make_loss("combined", cfg.coeffs, term_weights), val_kappa, val_pred
        )
        term_weights = {k: (w / scales[k] if k in scales else w) for k, w in term_weights.items()}
    loss = make_loss(cfg.loss, cfg.coeffs, term_weights)
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    _keras_multiworker_fixes(model, strategy)
    with_ks93 = model.input_shape[-1] == 4
    steps = max(1, cfg.n_samples // cfg.batch_size)

    def make_dataset(batch, shard):
        ds = _train_dataset(cfg, with_ks93, batch, shard, n_samples=cfg.n_samples)
        return ds if cfg.train_data else ds.repeat()

    ds = distributed_dataset(strategy, make_dataset, cfg.batch_size)
    progress = ProgressCallback(on_progress, cfg.epochs, steps, cancel)
    callbacks = [ValidationMetrics(val_eps, val_kappa, loss), progress]
    t0 = time.perf_counter()
    model.fit(ds, epochs=cfg.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
    wall = time.perf_counter() - t0
    if progress.cancelled:
        raise TrainingCancelled(f"fine-tuning cancelled after epoch {len(progress.history)}")
    after = summarize_metrics(val_kappa, predict_kappa(model, val_eps))
    model.trainable = True
    # Every worker saves (saving may need all of them); only the chief's file is kept.
    with _write_dir(out_path.parent, chief, _task_label(strategy)) as write_dir:
        save_model(model, write_dir / out_path.name)
    return {
        "path": str(out_path),
        "before": before,
        "after": after,
        "history": progress.history,
        "trainable": trainable,
        "wall_time_s": wall,
        "config": cfg.to_dict(),
        "weights": str(weights),
        "term_scales": scales,
        "effective_term_weights": term_weights,
    }


def combined_term_scales(
    loss, kappa_true: np.ndarray, kappa_pred: np.ndarray, batch_size: int = 64
) -> dict[str, float]:
    """Mean value of each Combined-loss term (with a non-zero weight) on given maps."""
    sums: dict[str, float] = {}
    for i in range(0, len(kappa_true), batch_size):
        parts = loss.components(
            tf.constant(kappa_true[i : i + batch_size]), tf.constant(kappa_pred[i : i + batch_size])
        )
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + float(tf.reduce_sum(value))
    return {name: max(total / len(kappa_true), 1e-12) for name, total in sums.items()}
