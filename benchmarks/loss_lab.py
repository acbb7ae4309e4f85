"""The loss lab (issue 19): one config, one command; every loss trained, scored and shipped.

    python -m benchmarks.loss_lab [--config benchmarks/loss_lab.toml] [--stage NAME ...]

The lab answers what a user of the loss-weight sliders asks: what does each weight do to
the result? It trains the lite UNet (the shipped architecture, field-aware) once per loss
from one warm start, on the same data, for the same steps, with the same seed and
validation: plain MSE, the focal loss, the report's MultiFocal, MultiFocal without each
of its five weights, and two from-scratch controls; it fine-tunes the MultiFocal model
toward each challenge metric with the Combined loss; it repeats the best variants with a
second seed; and it scores every model, the shipped UNet, KS93 and the Wiener filter on
the same held-out simulations at several depths.

Stages (``--stage``; default all, in this order; each resumes: finished work is kept)

    start     the warm start, from git history, checked by its SHA-256
    train     each ``[[variant]]`` into RUNS/NAME/ (:func:`lensviz.nn.training.train`)
    finetune  each ``[[finetune.variant]]`` into RUNS/NAME.keras
              (:func:`lensviz.nn.finetuning.finetune`)
    export    float16 copies WEIGHTS/NAME.keras (:func:`lensviz.lab.half_precision_copy`)
    score     per-map scores of the exported models and the baselines, cached in RUNS/scores
    repeat    the second seed of the best variants: trained, exported and scored
    report    WEIGHTS/lab.json, WEIGHTS/README.md and the Pareto figure

Why here and not a ``lensviz`` command: the lab is an experiment on this checkout. It
reads git history and the ignored training sets in ``data/``, and writes into
``weights/`` and ``docs/``; an installed lensviz has none of these. The app reads only
what it wrote, through :mod:`lensviz.lab`.

Modules: this one holds the config, the command line and the stages that copy files;
:mod:`benchmarks.loss_lab_scores` the held-out maps, the score caches and the summaries;
:mod:`benchmarks.loss_lab_report` the report stage; :mod:`benchmarks.loss_lab_runs` the
stages that run TensorFlow, imported by name when they run.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import ROOT, checkout_relative
from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.lab import (
    half_precision_copy,
)
from lensviz.loss_weights import check_coeffs
from lensviz.metrics import METRIC_NAMES
from lensviz.simulate import depth_config

__all__ = [
    "CONFIG_PATH",
    "STAGES",
    "LOSSES",
    "METRICS",
    "BASELINES",
    "Variant",
    "LabConfig",
    "load_config",
    "sha256",
    "stage_start",
    "stage_export",
    "main",
]

#: The lab's config file.
CONFIG_PATH = ROOT / "benchmarks" / "loss_lab.toml"
#: Stage name → ``"module:function"``, run in this order; each takes the LabConfig.
STAGES: dict[str, str] = {
    "start": "benchmarks.loss_lab:stage_start",
    "train": "benchmarks.loss_lab_runs:stage_train",
    "finetune": "benchmarks.loss_lab_runs:stage_finetune",
    "export": "benchmarks.loss_lab:stage_export",
    "score": "benchmarks.loss_lab_runs:stage_score",
    "repeat": "benchmarks.loss_lab_runs:stage_repeat",
    "report": "benchmarks.loss_lab_report:stage_report",
}
#: Training losses a variant may name (lensviz.nn.losses.LOSSES but Combined, a fine-tune's).
LOSSES = ("mse", "focal", "multifocal")
#: Metrics a fine-tune may aim at (terms of lensviz.nn.losses.CombinedLoss).
METRICS = ("wmape", "dicee", "dpeaks")
_TRAIN_KEYS = {
    "preset": str,
    "train_data": str,
    "val_data": str,
    "val_samples": int,
    "depth_weighting": bool,
    "learning_rate": float,
    "batch_size": int,
    "epochs": int,
    "steps_per_epoch": int,
    "patience": int,
    "seed": int,
}
_FINETUNE_KEYS = {
    "start": str,
    "which": str,
    "share": float,
    "epochs": int,
    "n_samples": int,
    "learning_rate": float,
    "batch_size": int,
    "seed": int,
}
_REPEAT_KEYS = {"seed": int, "top": int, "rank_by": str, "depth": str, "always": list}
_SCORE_KEYS = {
    "depths": list,
    "n_maps": int,
    "seed": int,
    "n_boot": int,
    "ks93_sigmas": list,
    "shipped": str,
    "references": list,
}
_MOONSHOT_KEYS = {"depth": str, "metric": str, "gain": float, "rmse_ratio": float}
#: Baselines scored beside the variants, and their labels.
BASELINES = {
    "shipped": "UNet shipped (weights/lite.keras)",
    "wiener": "Wiener filter",
    "ks93_best": "KS93, best σ on these maps per metric (oracle)",
    "ks93_rule": "KS93, σ by the depth rule",
}


# === Configuration ===


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of the lab: a training run from the start, or a fine-tune.

    ``coeffs`` are the five MultiFocal coefficients of the loss (the focal loss is
    focal alone; None for MSE). ``init`` is ``"warm"``, ``"scratch"`` or, for a fine-tune,
    the variant it starts from. A fine-tune takes the ``[finetune]`` table's settings
    but those it names itself (``overrides``: ``which``, ``epochs``, ``n_samples``).
    """

    name: str
    kind: str
    loss: str
    coeffs: Mapping[str, float] | None
    init: str
    note: str
    metric: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def which(self) -> str | None:
        return self.overrides.get("which")


@dataclasses.dataclass(frozen=True)
class LabConfig:
    """The lab's config file, checked (:func:`load_config`)."""

    path: Path
    runs: Path
    weights: Path
    figure: Path
    start: Mapping[str, str]
    train: Mapping[str, Any]
    finetune: Mapping[str, Any]
    variants: tuple[Variant, ...]
    repeat: Mapping[str, Any]
    score: Mapping[str, Any]
    moonshot: Mapping[str, Any]

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"{self.path.name}: no variant {name!r}")

    @property
    def start_file(self) -> Path:
        return self.runs / "start.keras"

    def run_model(self, name: str, seed: int | None = None) -> Path:
        """The trained (float32) model of a variant in RUNS; a repeat's with its seed."""
        v = self.variant(name)
        stem = name if seed is None else f"{name}_s{seed}"
        return (
            self.runs / stem / "model.keras" if v.kind == "train" else self.runs / f"{stem}.keras"
        )

    def shipped_model(self, name: str) -> Path:
        return self.weights / f"{name}.keras"

    def repeat_model(self, name: str) -> Path:
        return self.runs / "repeat" / f"{name}_s{self.repeat['seed']}.keras"

    def finetune_settings(self, v: Variant) -> dict[str, Any]:
        """The ``[finetune]`` table with a fine-tune variant's own settings over it."""
        return {**self.finetune, **dict(v.overrides)}

    def steps(self, v: Variant) -> int:
        if v.kind == "train":
            return int(self.train["epochs"]) * int(self.train["steps_per_epoch"])
        f = self.finetune_settings(v)
        return int(f["epochs"]) * max(1, int(f["n_samples"]) // int(f["batch_size"]))


def _section(raw: Mapping, name: str, keys: Mapping[str, type], source: str) -> dict:
    table = raw.get(name)
    if not isinstance(table, dict):
        raise ValueError(f"{source}: missing the [{name}] table")
    out = {}
    for key, kind in keys.items():
        if key not in table:
            raise ValueError(f"{source}: [{name}] has no {key!r}")
        value = table[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ValueError(
                f"{source}: [{name}] {key} = {value!r} is a {type(value).__name__}; "
                f"expected a {kind.__name__}"
            )
        out[key] = value
    for key in ("epochs", "steps_per_epoch", "batch_size", "n_samples", "n_maps", "val_samples"):
        if key in out and out[key] < 1:
            raise ValueError(f"{source}: [{name}] {key} must be at least 1, got {out[key]}")
    return out


def _variant(d: Mapping, source: str, kind: str, start: str | None) -> Variant:
    name = d.get("name")
    if not (isinstance(name, str) and name.replace("_", "").isalnum() and name.islower()):
        raise ValueError(f"{source}: variant name {name!r} must be lower-case letters, digits, _")
    if kind == "finetune":
        metric = d.get("metric")
        if metric not in METRICS:
            raise ValueError(f"{source}: fine-tune {name!r} aims at {metric!r}; expected {METRICS}")
        overrides = {k: d[k] for k in ("which", "epochs", "n_samples") if k in d}
        which = overrides.get("which")
        if which is not None and which not in ("last", "decoder", "all"):
            raise ValueError(f"{source}: fine-tune {name!r} trains {which!r}")
        for key in ("epochs", "n_samples"):
            value = overrides.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{source}: fine-tune {name!r} has {key} = {value!r}")
        return Variant(
            name,
            "finetune",
            "combined",
            check_coeffs(None),
            str(start),
            str(d.get("note", "")),
            metric=metric,
            overrides=overrides,
        )
    loss = d.get("loss")
    if loss not in LOSSES:
        raise ValueError(f"{source}: variant {name!r} has loss {loss!r}; expected {LOSSES}")
    init = d.get("init", "warm")
    if init not in ("warm", "scratch"):
        raise ValueError(f"{source}: variant {name!r} has init {init!r}; expected warm or scratch")
    coeffs = d.get("coeffs")
    if loss == "mse":
        if coeffs is not None:
            raise ValueError(f"{source}: variant {name!r} is plain MSE; it takes no coeffs")
        full = None
    elif loss == "focal":
        if coeffs is not None:
            raise ValueError(f"{source}: variant {name!r} is the focal loss; it takes no coeffs")
        full = {k: float(k == "focal") for k in constants.MULTIFOCAL_COMPONENTS}
    else:
        full = check_coeffs(coeffs)  # ValueError names the component
    return Variant(name, "train", loss, full, init, str(d.get("note", "")))


def load_config(path: str | Path = CONFIG_PATH) -> LabConfig:
    """Read and check the lab's TOML config; ``ValueError`` names the file and the key."""
    path = Path(path)
    source = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc})") from None
    lab = _section(raw, "lab", {"runs": str, "weights": str, "figure": str}, source)
    start = _section(
        raw, "start", {"git_commit": str, "path": str, "sha256": str, "note": str}, source
    )
    train = _section(raw, "train", _TRAIN_KEYS, source)
    overrides = raw["train"].get("model_overrides", {})
    if not isinstance(overrides, dict):
        raise ValueError(f"{source}: [train] model_overrides must be a table")
    train["model_overrides"] = dict(overrides)
    for key in ("train_data", "val_data"):
        train[key] = str(ROOT / train[key])
    finetune = _section(raw, "finetune", _FINETUNE_KEYS, source)
    repeat = _section(raw, "repeat", _REPEAT_KEYS, source)
    score_cfg = _section(raw, "score", _SCORE_KEYS, source)
    moonshot = _section(raw, "moonshot", _MOONSHOT_KEYS, source)
    variants = [_variant(d, source, "train", None) for d in raw.get("variant", [])]
    ft_start = finetune["start"]
    if ft_start not in {v.name for v in variants}:
        raise ValueError(f"{source}: [finetune] start {ft_start!r} is not a training variant")
    ft = raw["finetune"].get("variant", [])
    variants += [_variant(d, source, "finetune", ft_start) for d in ft]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: a variant name appears twice in {names}")
    if not variants:
        raise ValueError(f"{source}: no [[variant]]")
    if not 0 < finetune["share"] < 1:
        raise ValueError(f"{source}: [finetune] share must be in (0, 1), got {finetune['share']}")
    if train["patience"] < train["epochs"]:
        raise ValueError(
            f"{source}: [train] patience {train['patience']} < epochs {train['epochs']}: "
            "early stopping would give the variants different budgets"
        )
    if not score_cfg["references"]:
        raise ValueError(f"{source}: [score] references is empty")
    for name in [*repeat["always"], *score_cfg["references"]]:
        if name not in names:
            raise ValueError(
                f"{source}: {name!r} ([repeat] always, [score] references) is no variant"
            )
    if repeat["rank_by"] not in METRIC_NAMES:
        raise ValueError(
            f"{source}: [repeat] rank_by {repeat['rank_by']!r}; expected {METRIC_NAMES}"
        )
    depths = [str(d) for d in score_cfg["depths"]]
    for d in depths:
        depth_config(d)  # ValueError names a bad spec
    for table, values in (("repeat", repeat), ("moonshot", moonshot)):
        if values["depth"] not in depths:
            raise ValueError(f"{source}: [{table}] depth {values['depth']!r} is not scored")
    if moonshot["metric"] not in METRIC_NAMES or moonshot["metric"] == "r":
        raise ValueError(
            f"{source}: [moonshot] metric {moonshot['metric']!r}; expected one of "
            "wmape, dicee, dpeaks, rmse"
        )
    score_cfg["depths"] = depths
    score_cfg["ks93_sigmas"] = [float(s) for s in score_cfg["ks93_sigmas"]]
    score_cfg["shipped"] = str(ROOT / score_cfg["shipped"])
    return LabConfig(
        path=path,
        runs=ROOT / lab["runs"],
        weights=ROOT / lab["weights"],
        figure=ROOT / lab["figure"],
        start=start,
        train=train,
        finetune=finetune,
        variants=tuple(variants),
        repeat=repeat,
        score=score_cfg,
        moonshot=moonshot,
    )


# === Stages without TensorFlow ===


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage_start(cfg: LabConfig) -> None:
    """Write the warm start (a file of git history) to RUNS/start.keras, checked."""
    out = cfg.start_file
    if out.is_file() and sha256(out) == cfg.start["sha256"]:
        return
    spec = f"{cfg.start['git_commit']}:{cfg.start['path']}"
    blob = subprocess.run(
        ["git", "show", spec], cwd=ROOT, capture_output=True, check=False, timeout=60
    )
    if blob.returncode != 0:
        raise RuntimeError(f"git show {spec} failed: {blob.stderr.decode(errors='replace')}")
    digest = hashlib.sha256(blob.stdout).hexdigest()
    if digest != cfg.start["sha256"]:
        raise RuntimeError(f"{spec}: SHA-256 {digest}, the config expects {cfg.start['sha256']}")
    with atomic_path(out, suffix=".keras") as tmp:
        tmp.write_bytes(blob.stdout)
    print(f"start: {spec} -> {checkout_relative(out)}")


def stage_export(cfg: LabConfig) -> None:
    """float16 copies of every finished variant into WEIGHTS (redone when the run changed)."""
    for v in cfg.variants:
        src, dst = cfg.run_model(v.name), cfg.shipped_model(v.name)
        _export(src, dst)


def _export(src: Path, dst: Path) -> None:
    if not src.is_file():
        print(f"export: {checkout_relative(src)} not trained yet")
        return
    # Which run the copy was made from: a stamp beside the run (never in WEIGHTS).
    stamp = src.with_suffix(".exported")
    digest = f"{sha256(src)} {dst}"
    if dst.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return
    size = half_precision_copy(src, dst)
    stamp.write_text(digest)
    print(f"export: {checkout_relative(dst)} ({size / 1e6:.2f} MB)")


# === Command line ===


def _resolve(stage: str):
    module, _, func = STAGES[stage].partition(":")
    return getattr(importlib.import_module(module), func)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.loss_lab", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--config", default=str(CONFIG_PATH), help="the lab's TOML config")
    parser.add_argument(
        "--stage",
        action="append",
        choices=list(STAGES),
        help="run only these stages (repeatable; default all, in order)",
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    stages = [s for s in STAGES if args.stage is None or s in args.stage]
    for stage in stages:
        t0 = time.perf_counter()
        print(f"== {stage}", flush=True)
        _resolve(stage)(cfg)
        print(f"== {stage} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
