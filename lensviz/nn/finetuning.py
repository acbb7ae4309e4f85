"""Fine-tuning (report §4.2): every layer frozen but the last (or the decoder), Combined loss.

:func:`finetune` starts from saved weights, trains the chosen group on a few hundred
maps, scores a fixed validation set before and after, and saves the result atomically;
a cancelled or failed run leaves every file as it was. The Combined loss's terms are
normalised to their values for the starting model (:func:`combined_term_scales`), so
that its term weights mean shares of the loss.
"""

from __future__ import annotations

import dataclasses
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
from lensviz.nn.callbacks import (
    Progress,
    ProgressCallback,
    TrainingCancelled,
    ValidationMetrics,
    summarize_metrics,
)
from lensviz.nn.distribution import (
    check_distribution,
    distributed_dataset,
    distribution_strategy,
    is_chief,
    keras_multiworker_fixes,
    task_label,
    worker_dir,
)
from lensviz.nn.inference import load_model, predict_kappa, save_model
from lensviz.nn.losses import LOSSES, make_loss
from lensviz.nn.training import train_dataset, validation_arrays
from lensviz.nn.unet import set_trainable

__all__ = ["FinetuneConfig", "finetune", "combined_term_scales"]


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """A fine-tuning run (report §4.2). Defaults: last layer, 0.95 MultiFocal + 0.05 WMAPE.

    With ``normalize_terms`` (default) each Combined term is divided by its value for the
    starting model on the validation maps, so the term weights are shares of the initial
    loss: "0.95 MultiFocal + 0.05 WMAPE" then means what it says. Raw, the terms differ
    by orders of magnitude (MultiFocal ≈ 3e-4, WMAPE ≈ 5 on simulated maps) and a 0.05
    WMAPE weight is 99.9% of the loss, which drives the maps towards zero.

    ``depth_weighting`` weights each training map's loss by its depth, as
    :class:`lensviz.nn.training.TrainConfig` does (for training sets of mixed depth).
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
    depth_weighting: bool = False
    distribution: str = "auto"
    devices: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        check_distribution(self.distribution)
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
    keras_multiworker_fixes(model, strategy)
    steps = max(1, cfg.n_samples // cfg.batch_size)

    def make_dataset(batch, shard):
        ds = train_dataset(cfg, model.unet_config, batch, shard, n_samples=cfg.n_samples)
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
    with worker_dir(out_path.parent, chief, task_label(strategy)) as write_dir:
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
