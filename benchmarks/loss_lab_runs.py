"""The loss lab's TensorFlow stages: train, fine-tune, score and repeat (see
:mod:`benchmarks.loss_lab`, which runs them by name)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from benchmarks import checkout_relative
from benchmarks.loss_lab import LabConfig, Variant, _export, sha256
from benchmarks.loss_lab_scores import (
    baseline_scores,
    held_out,
    load_scores,
    ranked_variants,
    save_scores,
)
from lensviz import constants
from lensviz.metrics import score
from lensviz.nn.finetuning import FinetuneConfig, finetune
from lensviz.nn.inference import load_model, model_predictor
from lensviz.nn.training import TrainConfig, train

__all__ = [
    "train_config",
    "finetune_config",
    "stage_train",
    "stage_finetune",
    "stage_score",
    "stage_repeat",
]


# === Training ===


def train_config(cfg: LabConfig, v: Variant, seed: int | None = None) -> TrainConfig:
    """The TrainConfig of a training variant: the shared [train] table, its loss and start."""
    t = cfg.train
    return TrainConfig(
        preset=t["preset"],
        model_overrides=dict(t["model_overrides"]),
        loss=v.loss,
        coeffs=dict(v.coeffs or constants.MULTIFOCAL_COEFFS),
        learning_rate=t["learning_rate"],
        batch_size=t["batch_size"],
        epochs=t["epochs"],
        steps_per_epoch=t["steps_per_epoch"],
        train_data=t["train_data"],
        val_data=t["val_data"],
        val_samples=t["val_samples"],
        patience=t["patience"],
        depth_weighting=t["depth_weighting"],
        init_weights=str(cfg.start_file) if v.init == "warm" else None,
        seed=t["seed"] if seed is None else seed,
    )


def _train(cfg: LabConfig, v: Variant, seed: int | None = None) -> None:
    out = cfg.run_model(v.name, seed).parent
    if (out / "summary.json").is_file() and (out / "model.keras").is_file():
        return
    print(f"train {out.name}: {v.note}", flush=True)
    t0 = time.perf_counter()
    summary = train(train_config(cfg, v, seed), out, on_progress=_progress)
    keras.backend.clear_session()
    print(
        f"\ntrain {out.name}: best epoch {summary['best_epoch']}, "
        f"{summary['steps']} steps in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )


def _progress(p) -> None:
    if p.stage == "epoch_end" and p.history:
        h = p.history[-1]
        print(
            f"  epoch {p.epoch + 1}/{p.epochs} loss {h.get('loss', float('nan')):.3e} "
            f"val_loss_eb {h.get('val_loss_eb', float('nan')):.3e} "
            f"rmse {h.get('val_rmse', float('nan')):.5f} "
            f"dicee {h.get('val_dicee', float('nan')):.4f} "
            f"dpeaks {h.get('val_dpeaks', float('nan')):.1f} ({p.elapsed_s:.0f} s)",
            flush=True,
        )


def stage_train(cfg: LabConfig) -> None:
    """Train every training variant that has no finished run yet."""
    for v in cfg.variants:
        if v.kind == "train":
            _train(cfg, v)


# === Fine-tuning ===


def finetune_config(cfg: LabConfig, v: Variant, seed: int | None = None) -> FinetuneConfig:
    """The FinetuneConfig of a fine-tune variant: (1 − share) MultiFocal + share · metric."""
    f = cfg.finetune_settings(v)
    weights = {"multifocal": 1.0 - f["share"], "wmape": 0.0, "dicee": 0.0, "dpeaks": 0.0}
    weights[v.metric] = f["share"]
    return FinetuneConfig(
        loss="combined",
        coeffs=dict(v.coeffs),
        combined_weights=weights,
        which=f["which"],
        epochs=f["epochs"],
        n_samples=f["n_samples"],
        batch_size=f["batch_size"],
        learning_rate=f["learning_rate"],
        train_data=cfg.train["train_data"],
        depth_weighting=cfg.train["depth_weighting"],
        seed=f["seed"] if seed is None else seed,
    )


def _finetune(cfg: LabConfig, v: Variant, seed: int | None = None) -> None:
    out = cfg.run_model(v.name, seed)
    start = cfg.run_model(v.init, seed)
    if out.is_file():
        return
    if not start.is_file():
        print(f"finetune {v.name}: {checkout_relative(start)} not trained yet")
        return
    print(f"finetune {out.stem}: {v.note}", flush=True)
    result = finetune(start, out, finetune_config(cfg, v, seed))
    keras.backend.clear_session()
    record = {k: result[k] for k in ("before", "after", "wall_time_s", "term_scales", "trainable")}
    (out.with_suffix(".json")).write_text(json.dumps(record, indent=1))
    print(f"finetune {out.stem}: {result['wall_time_s']:.0f} s", flush=True)


def stage_finetune(cfg: LabConfig) -> None:
    """Fine-tune every fine-tune variant that has no model yet."""
    for v in cfg.variants:
        if v.kind == "finetune":
            _finetune(cfg, v)


# === Scores ===


def score_model(cfg: LabConfig, name: str, path: Path) -> None:
    """Per-map scores of one model file at every depth, cached (keyed by the file's hash)."""
    meta = {"sha256": sha256(path), "file": checkout_relative(path)}
    if load_scores(cfg, name, meta) is not None:
        return
    t0 = time.perf_counter()
    predict = model_predictor(load_model(path))
    per_depth = {}
    for depth in cfg.score["depths"]:
        eps, kappa = held_out(cfg, depth)
        per_depth[depth] = score(kappa, predict(eps))
    save_scores(cfg, name, per_depth, meta)
    keras.backend.clear_session()
    print(f"score {name}: {time.perf_counter() - t0:.0f} s", flush=True)


def stage_score(cfg: LabConfig) -> None:
    """Score the baselines, the shipped UNet and every exported variant."""
    baseline_scores(cfg)
    score_model(cfg, "shipped", Path(cfg.score["shipped"]))
    for v in cfg.variants:
        path = cfg.shipped_model(v.name)
        if path.is_file():
            score_model(cfg, v.name, path)
        else:
            print(f"score {v.name}: {checkout_relative(path)} not exported yet")


# === Second seed ===


def repeat_names(cfg: LabConfig) -> list[str]:
    """The variants to repeat: the ``top`` best scored, the ``always`` ones, and the
    fine-tunes' start when a fine-tune is among them (its repeat starts from it)."""
    r = cfg.repeat
    names = list(dict.fromkeys([*ranked_variants(cfg)[: int(r["top"])], *r["always"]]))
    if any(cfg.variant(n).kind == "finetune" for n in names):
        names.insert(0, cfg.finetune["start"])
    return list(dict.fromkeys(names))


def stage_repeat(cfg: LabConfig) -> None:
    """Train (or fine-tune) the chosen variants with the second seed; export; score."""
    seed = int(cfg.repeat["seed"])
    names = repeat_names(cfg)
    print(f"repeat with seed {seed}: {', '.join(names)}", flush=True)
    order = sorted(names, key=lambda n: cfg.variant(n).kind != "train")  # starts first
    for name in order:
        v = cfg.variant(name)
        (_train if v.kind == "train" else _finetune)(cfg, v, seed)
        src, dst = cfg.run_model(name, seed), cfg.repeat_model(name)
        _export(src, dst)
        if dst.is_file():
            score_model(cfg, f"{name}_s{seed}", dst)
