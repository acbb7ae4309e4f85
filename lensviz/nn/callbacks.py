"""Keras callbacks of training runs: progress and cancel, validation metrics, checkpoints.

Progress goes through :class:`ProgressCallback`, which calls a plain function with a
:class:`Progress` record and can be cancelled through a :class:`threading.Event`: the app
uses exactly this. :class:`ValidationMetrics` scores a fixed validation set at each
epoch's end (``val_loss`` and the challenge metrics); :class:`AtomicCheckpoint` writes
the best model atomically (temporary file, then rename), so a cancelled or failed run
never touches the output file; :class:`HistoryWriter` keeps ``history.csv`` and
``history.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lensviz._atomic import write_text
from lensviz.depth import pixel_noise_var, training_weight
from lensviz.metrics import score
from lensviz.nn.inference import predict_kappa, save_model

__all__ = [
    "TrainingCancelled",
    "Progress",
    "summarize_metrics",
    "ValidationMetrics",
    "ProgressCallback",
    "AtomicCheckpoint",
    "HistoryWriter",
]


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

    B modes: given ``x_b``, the inputs of the same fields rotated by 45° (pure B-mode
    shear, whose true κ is 0; :func:`lensviz.training_data.rotate_45`), it also logs
    ``val_b_loss`` (the loss of those maps against κ = 0), ``val_b_rms`` (their rms) and
    ``val_loss_eb = val_loss + val_b_loss``, the validation loss over E and B fields
    together: the monitor of a B-robust run's early stopping and checkpoints.

    Parameters
    ----------
    x : ndarray, shape (N, ny, nx, C)
        Validation inputs: ε (each map a field) or the model's own inputs.
    kappa : ndarray, shape (N, ny, nx)
    loss_fn : keras loss
    batch_size : int
    depth_weighting : bool
        Weight each map's loss as in training (:func:`lensviz.depth.training_weight`).
    noise_var : ndarray, shape (N,), optional
        Each map's pixel noise variance, for the weights; by default read from the Δε
        channel of ``x`` (which must then be ε).
    x_b : ndarray, shape (N, ny, nx, C), optional
        Inputs of the 45°-rotated fields.
    """

    def __init__(
        self,
        x,
        kappa,
        loss_fn,
        batch_size: int = 64,
        depth_weighting: bool = False,
        noise_var=None,
        x_b=None,
    ):
        super().__init__()
        self.eps, self.kappa, self.x_b = x, kappa, x_b
        self.loss_fn, self.batch_size = loss_fn, batch_size
        # Per-map loss weights, as in training (the loss is then comparable across epochs).
        self.weights = None
        if depth_weighting:
            if noise_var is None:
                if x.shape[-1] != 3:
                    raise ValueError("depth weighting of model inputs needs their noise_var")
                noise_var = pixel_noise_var(x[..., 2])
            self.weights = np.asarray(training_weight(np.asarray(noise_var)), np.float32)

    def _loss(self, kappa, pred) -> float:
        losses = []
        for i in range(0, len(pred), self.batch_size):
            t = tf.constant(kappa[i : i + self.batch_size])
            p = tf.constant(pred[i : i + self.batch_size])
            w = None if self.weights is None else tf.constant(self.weights[i : i + self.batch_size])
            losses.append(float(self.loss_fn(t, p, sample_weight=w)) * len(t))
        return sum(losses) / len(pred)

    def evaluate(self) -> dict[str, float]:
        pred = predict_kappa(self.model, self.eps, batch_size=self.batch_size)
        out = {"val_loss": self._loss(self.kappa, pred)}
        out.update({f"val_{k}": v for k, v in summarize_metrics(self.kappa, pred).items()})
        if self.x_b is not None:
            pred_b = predict_kappa(self.model, self.x_b, batch_size=self.batch_size)
            out["val_b_loss"] = self._loss(np.zeros_like(pred_b), pred_b)
            out["val_b_rms"] = float(np.sqrt(np.mean(pred_b.astype(np.float64) ** 2)))
            out["val_loss_eb"] = out["val_loss"] + out["val_b_loss"]
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


def _fmt(v) -> str:
    return "" if v is None else (str(int(v)) if float(v).is_integer() else f"{v:.6g}")
