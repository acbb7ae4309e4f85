"""Distributed training: ``tf.distribute`` strategies, sharded input, backups, precision.

TensorFlow's own engine (:mod:`tf.distribute`), chosen by :func:`distribution_strategy`:
one device, :class:`tf.distribute.MirroredStrategy` over the local GPUs, or
:class:`tf.distribute.MultiWorkerMirroredStrategy` over the machines listed in the
``TF_CONFIG`` environment variable (synchronous data parallelism: every replica holds the
whole model, gradients are all-reduced each step). ``batch_size`` is the global batch,
split evenly over the replicas. Each worker simulates or reads only its own share of the
training samples (:func:`distributed_dataset`, sharded at the source). Only the chief
writes the run folder (model, history, config, summary); the other workers write the same
files into a private temporary folder (:func:`worker_dir`), deleted at the end, because
saving may need every worker. :class:`ClusterBackupAndRestore` (Keras'
``BackupAndRestore``) saves the training state every epoch, so a run that fails (a worker
lost, a pre-emption) resumes from its last complete epoch when the same command is
started again. The cluster recipe is in ``docs/distributed.md``. Mixed precision (float16
compute, float32 weights) is on whenever a GPU is present (:func:`configure_precision`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

__all__ = [
    "DISTRIBUTIONS",
    "BACKUP_DIR",
    "check_distribution",
    "cluster_config",
    "distribution_strategy",
    "is_chief",
    "keras_multiworker_fixes",
    "strategy_kind",
    "task_label",
    "n_workers",
    "distributed_dataset",
    "configure_precision",
    "ClusterBackupAndRestore",
    "backup_epoch",
    "worker_dir",
]

#: Kinds of :func:`distribution_strategy`.
DISTRIBUTIONS = ("auto", "one", "mirrored", "multiworker")

#: Folder of a training run where :class:`ClusterBackupAndRestore` keeps its state.
BACKUP_DIR = "backup"


def check_distribution(kind: str) -> None:
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {kind!r}")


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
    check_distribution(kind)
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


def keras_multiworker_fixes(model: keras.Model, strategy) -> None:
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


def strategy_kind(strategy) -> str:
    """``"multiworker"``, ``"mirrored"`` or ``"one"``: the kind of a strategy, by its class."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "one"


def task_label(strategy) -> str:
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


@contextlib.contextmanager
def worker_dir(out: Path, chief: bool, label: str):
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


def n_workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return max(1, sum(resolver.cluster_spec().num_tasks(j) for j in resolver.cluster_spec().jobs))
