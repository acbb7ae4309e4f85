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
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
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
    "distribution_strategy",
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
    devices : tuple of str or None
        Devices for :class:`tf.distribute.MirroredStrategy`; None picks the GPUs.
    mixed_precision : bool or None
        None: mixed float16 on GPU, float32 on CPU.
    seed : int
        Seed of the weights' initialisation, shuffling and augmentation.
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
    devices: tuple[str, ...] | None = None
    mixed_precision: bool | None = None
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
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
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
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
        return d


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


def distribution_strategy(devices: Sequence[str] | None = None):
    """MirroredStrategy over ``devices`` (or all GPUs) when there are several, else default."""
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    return tf.distribute.get_strategy()


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

    def _emit(self, stage: str, step: int, loss: float) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self._t0
        done = self._epoch * self.steps + step
        total = self.epochs * self.steps
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

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss"):
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.best = math.inf
        self.best_epoch = -1

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            save_model(self.model, self.path)


class HistoryWriter(keras.callbacks.Callback):
    """Append every epoch's logs to ``history.csv`` and ``history.json`` (atomically)."""

    def __init__(self, out_dir: str | os.PathLike):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        write_text(self.out_dir / "history.json", json.dumps(self.rows, indent=1))
        lines = [",".join(keys)]
        lines += [",".join(_fmt(r.get(k)) for k in keys) for r in self.rows]
        write_text(self.out_dir / "history.csv", "\n".join(lines) + "\n")


def _fmt(v) -> str:
    return "" if v is None else (str(int(v)) if float(v).is_integer() else f"{v:.6g}")


# === Runs ===


def _train_dataset(cfg, with_ks93: bool, n_samples: int | None = None):
    if cfg.train_data:
        return hdf5_dataset(
            cfg.train_data,
            cfg.batch_size,
            augment=cfg.augment,
            with_ks93=with_ks93,
            seed=cfg.seed,
            ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
            stop=n_samples,
            depth_weighting=getattr(cfg, "depth_weighting", False),
        )
    return simulated_dataset(
        cfg.batch_size,
        cfg.train_seed,
        n_samples=n_samples,
        augment=cfg.augment,
        with_ks93=with_ks93,
        ks93_fraction=getattr(cfg, "ks93_fraction", 0.5),
        seed=cfg.seed,
        depth_weighting=getattr(cfg, "depth_weighting", False),
    )


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
        atomically), ``history.csv``, ``history.json``, ``config.json``, ``summary.json``.
    on_progress, cancel
        See :class:`ProgressCallback`.

    Returns
    -------
    dict
        The summary: best epoch, best validation metrics, steps, wall time, device.

    Raises
    ------
    TrainingCancelled
        If ``cancel`` was set; the best checkpoint written so far stays in place.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=1))
    keras.utils.set_random_seed(cfg.seed)
    policy = configure_precision(cfg.mixed_precision)
    base = resolve_config(cfg.preset)
    model_cfg = UNetConfig.from_dict({**base.to_dict(), **dict(cfg.model_overrides)})
    strategy = distribution_strategy(cfg.devices)
    with strategy.scope():
        model = UNet(model_cfg, training_domain=cfg.domain)
        loss = make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights)
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    ds = _train_dataset(cfg, model_cfg.with_ks93)
    val_eps, val_kappa = validation_arrays(cfg.val_samples, cfg.val_data)
    if cfg.domain is None:  # what the model sees: measured on (a prefix of) its data
        seen = read_hdf5(cfg.train_data, 0, DOMAIN_SAMPLES)[0] if cfg.train_data else val_eps
        model.training_domain = measure_domain(seen).to_dict()
    progress = ProgressCallback(on_progress, cfg.epochs, cfg.steps_per_epoch, cancel)
    checkpoint = AtomicCheckpoint(out / "model.keras")
    callbacks = [
        ValidationMetrics(
            val_eps,
            val_kappa,
            make_loss(cfg.loss, cfg.coeffs, cfg.combined_weights),
            depth_weighting=cfg.depth_weighting,
        ),
        checkpoint,
        HistoryWriter(out),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=cfg.patience, restore_best_weights=False
        ),
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
    best = min(progress.history, key=lambda r: r.get("val_loss", math.inf))
    summary = {
        "best_epoch": checkpoint.best_epoch,
        "best": best,
        "epochs_run": len(progress.history),
        "steps": len(progress.history) * cfg.steps_per_epoch,
        "samples_seen": len(progress.history) * cfg.steps_per_epoch * cfg.batch_size,
        "wall_time_s": wall,
        "device": describe_device(),
        "replicas": strategy.num_replicas_in_sync,
        "precision": policy,
        "params": int(model.count_params()),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary


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
    keras.utils.set_random_seed(cfg.seed)
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
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    with_ks93 = model.input_shape[-1] == 4
    steps = max(1, cfg.n_samples // cfg.batch_size)
    ds = _train_dataset(cfg, with_ks93, n_samples=cfg.n_samples)
    if not cfg.train_data:
        ds = ds.repeat()
    progress = ProgressCallback(on_progress, cfg.epochs, steps, cancel)
    callbacks = [ValidationMetrics(val_eps, val_kappa, loss), progress]
    t0 = time.perf_counter()
    model.fit(ds, epochs=cfg.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
    wall = time.perf_counter() - t0
    if progress.cancelled:
        raise TrainingCancelled(f"fine-tuning cancelled after epoch {len(progress.history)}")
    after = summarize_metrics(val_kappa, predict_kappa(model, val_eps))
    model.trainable = True
    save_model(model, out_path)
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
