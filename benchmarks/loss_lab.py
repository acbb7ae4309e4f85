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
what it wrote, through :mod:`lensviz.lab`. This module needs numpy only; the stages that
run TensorFlow live in :mod:`benchmarks.loss_lab_runs`, imported when they run.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import ROOT, checkout_relative
from lensviz import constants
from lensviz._atomic import atomic_path, write_text
from lensviz.depth import depth_label, ks93_sigma
from lensviz.evaluation import (
    ks93_depth_predictor,
    ks93_predictor,
    score_methods,
    summarize,
    wiener_predictor,
)
from lensviz.inversion import gaussian_smooth
from lensviz.lab import (
    RESULTS_FILE,
    LabResults,
    findings,
    half_precision_copy,
    held_out_maps,
    load_lab,
)
from lensviz.loss_weights import check_coeffs
from lensviz.metrics import METRIC_NAMES, score
from lensviz.plots.lab import pareto_figure
from lensviz.simulate import depth_config

__all__ = [
    "CONFIG_PATH",
    "STAGES",
    "LOSSES",
    "METRICS",
    "Variant",
    "LabConfig",
    "load_config",
    "stage_start",
    "stage_export",
    "held_out",
    "baseline_scores",
    "load_scores",
    "ranked_variants",
    "stage_report",
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
    "report": "benchmarks.loss_lab:stage_report",
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
    the variant it starts from.
    """

    name: str
    kind: str
    loss: str
    coeffs: Mapping[str, float] | None
    init: str
    note: str
    metric: str | None = None
    which: str | None = None


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

    def steps(self, v: Variant) -> int:
        if v.kind == "train":
            return int(self.train["epochs"]) * int(self.train["steps_per_epoch"])
        f = self.finetune
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
        which = d.get("which")
        if which is not None and which not in ("last", "decoder", "all"):
            raise ValueError(f"{source}: fine-tune {name!r} trains {which!r}")
        return Variant(
            name,
            "finetune",
            "combined",
            check_coeffs(None),
            str(start),
            str(d.get("note", "")),
            metric=metric,
            which=which,
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


# === Test set and scores ===


def held_out(cfg: LabConfig, depth: str) -> tuple[np.ndarray, np.ndarray]:
    """The held-out maps of one depth (cached in RUNS/test_DEPTH.npz): ε and κ."""
    n, seed = int(cfg.score["n_maps"]), int(cfg.score["seed"])
    path = cfg.runs / f"test_{depth}_{seed}_{n}.npz"
    if path.is_file():
        with np.load(path) as f:
            return f["eps"], f["kappa"]
    eps, kappa = held_out_maps(n, seed, depth)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, eps=eps, kappa=kappa)
    return eps, kappa


def _scores_path(cfg: LabConfig, name: str) -> Path:
    return cfg.runs / "scores" / f"{name}.json"


def _test_key(cfg: LabConfig) -> dict:
    s = cfg.score
    return {"depths": s["depths"], "n_maps": s["n_maps"], "seed": s["seed"]}


def save_scores(cfg: LabConfig, name: str, per_depth: Mapping[str, Mapping], meta: Mapping) -> None:
    """Cache per-map scores ``{depth: {metric: (N,) array}}`` of one method."""
    data = {
        "test": _test_key(cfg),
        "meta": dict(meta),
        "per_map": {
            d: {m: np.asarray(v, np.float64).tolist() for m, v in s.items()}
            for d, s in per_depth.items()
        },
    }
    write_text(_scores_path(cfg, name), json.dumps(data))


def load_scores(cfg: LabConfig, name: str, meta: Mapping | None = None) -> dict | None:
    """Cached per-map scores of one method, or None (absent, another test set or ``meta``)."""
    path = _scores_path(cfg, name)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("test") != _test_key(cfg) or (meta is not None and data.get("meta") != meta):
        return None
    per_map = {d: {m: np.asarray(v) for m, v in s.items()} for d, s in data["per_map"].items()}
    return {"per_map": per_map, "meta": data["meta"]}


def baseline_scores(cfg: LabConfig) -> dict[str, dict]:
    """Per-map scores of KS93 (depth rule; every σ of the grid) and Wiener, cached.

    Returns ``{depth: {"ks93_rule": ..., "wiener": ..., "ks93_sigma_<σ>": ...}}`` with
    ``{metric: (N,) array}`` each.
    """
    meta = {"ks93_sigmas": cfg.score["ks93_sigmas"]}
    cached = load_scores(cfg, "_baselines", meta)
    if cached is not None:
        return _unflatten(cached["per_map"])
    flat = {}
    for depth in cfg.score["depths"]:
        eps, kappa = held_out(cfg, depth)
        per = score_methods(
            eps, kappa, {"ks93_rule": ks93_depth_predictor(), "wiener": wiener_predictor()}
        )
        raw = ks93_predictor(0.0)(eps)
        for s in cfg.score["ks93_sigmas"]:
            per[f"ks93_sigma_{s:g}"] = score(kappa, gaussian_smooth(raw, s) if s else raw)
        for method, values in per.items():
            flat[f"{depth}|{method}"] = values
    save_scores(cfg, "_baselines", flat, meta)
    return _unflatten({k: {m: np.asarray(v) for m, v in s.items()} for k, s in flat.items()})


def _unflatten(flat: Mapping[str, Mapping]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, values in flat.items():
        depth, _, method = key.partition("|")
        out.setdefault(depth, {})[method] = dict(values)
    return out


def ranked_variants(cfg: LabConfig) -> list[str]:
    """The variants scored so far, best first by ``[repeat] rank_by`` at ``[repeat] depth``."""
    depth, metric = cfg.repeat["depth"], cfg.repeat["rank_by"]
    means = {}
    for v in cfg.variants:
        cached = load_scores(cfg, v.name)
        if cached is not None and depth in cached["per_map"]:
            means[v.name] = float(np.mean(cached["per_map"][depth][metric]))
    sign = -1.0 if metric == "r" else 1.0
    return sorted(means, key=lambda n: sign * means[n])


# === Summaries ===


def _paired(per_map: Mapping[str, Mapping[str, np.ndarray]], n_boot: int) -> dict:
    return summarize(per_map, n_boot=n_boot, seed=0)


def _ratio_gain(a: np.ndarray, b: np.ndarray, n_boot: int, higher_better: bool) -> dict:
    """Relative gain of method a over baseline b, ``1 − mean a / mean b`` (for r, the share of
    the missing correlation recovered, ``1 − (1 − mean a)/(1 − mean b)``), with its
    paired bootstrap standard error."""
    if higher_better:
        a, b = 1.0 - a, 1.0 - b
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = 1.0 - a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return {"gain": float(1.0 - a.mean() / b.mean()), "sem_boot": float(boot.std(ddof=1))}


def _best_sigma(per: Mapping[str, Mapping[str, np.ndarray]], sigmas, metric: str) -> float:
    means = {s: float(np.mean(per[f"ks93_sigma_{s:g}"][metric])) for s in sigmas}
    pick = max if metric == "r" else min
    return pick(sorted(means), key=means.__getitem__)


def collect(cfg: LabConfig) -> dict:
    """Per-depth summaries of every scored method: the content of ``lab.json``'s scores."""
    base = baseline_scores(cfg)
    n_boot = int(cfg.score["n_boot"])
    sigmas = cfg.score["ks93_sigmas"]
    out = {}
    for depth in cfg.score["depths"]:
        per = {}
        for v in cfg.variants:
            cached = load_scores(cfg, v.name)
            if cached is None:
                raise RuntimeError(f"report: {v.name} has no scores; run the score stage")
            per[v.name] = cached["per_map"][depth]
        for cached_name in _repeat_score_names(cfg):
            per[cached_name] = load_scores(cfg, cached_name)["per_map"][depth]
        shipped = load_scores(cfg, "shipped")
        if shipped is None:
            raise RuntimeError("report: the shipped UNet has no scores; run the score stage")
        per["shipped"] = shipped["per_map"][depth]
        per["wiener"] = base[depth]["wiener"]
        per["ks93_rule"] = base[depth]["ks93_rule"]
        best_sigma = {m: _best_sigma(base[depth], sigmas, m) for m in METRIC_NAMES}
        per["ks93_best"] = {
            m: base[depth][f"ks93_sigma_{best_sigma[m]:g}"][m] for m in METRIC_NAMES
        }
        summary = _paired(per, n_boot)
        vs = {}
        for ref in dict.fromkeys([*cfg.score["references"], cfg.finetune["start"]]):
            diffs = {
                name: {m: np.asarray(per[name][m]) - np.asarray(per[ref][m]) for m in METRIC_NAMES}
                for name in per
                if name != ref
            }
            vs[ref] = {
                name: {m: {k: s[k] for k in ("mean", "sem_boot")} for m, s in d.items()}
                for name, d in _paired(diffs, n_boot).items()
            }
        gains = {
            base_name: {
                name: {
                    m: _ratio_gain(
                        np.asarray(per[name][m]), np.asarray(per[base_name][m]), n_boot, m == "r"
                    )
                    for m in METRIC_NAMES
                }
                for name in per
                if name != base_name
            }
            for base_name in ("ks93_best", "shipped")
        }
        config = depth_config(depth)
        eps, _ = held_out(cfg, depth)
        out[depth] = {
            "n_gal": float(config.n_gal) if math.isfinite(config.n_gal) else None,
            "label": depth_label(config.n_gal),
            "ks93_rule_sigma_px": float(ks93_sigma(eps[..., 2])),
            "ks93_best_sigma_px": best_sigma,
            "summary": summary,
            "vs": vs,
            "gain": gains,
        }
    return out


def truth_smoothed(cfg: LabConfig) -> dict:
    """What a perfect but blurred map scores: the true κ of the test maps (the same at
    every depth) smoothed by each σ > 0 of the KS93 grid, against itself; mean ± s.e."""
    _, kappa = held_out(cfg, cfg.score["depths"][0])
    sigmas = [s for s in cfg.score["ks93_sigmas"] if s > 0]
    per = {f"{s:g}": score(kappa, gaussian_smooth(kappa, s)) for s in sigmas}
    summary = _paired(per, int(cfg.score["n_boot"]))
    return {
        "sigmas_px": sigmas,
        "summary": {
            f"{s:g}": {
                m: {k: summary[f"{s:g}"][m][k] for k in ("mean", "sem_boot")} for m in METRIC_NAMES
            }
            for s in sigmas
        },
    }


def _repeat_score_names(cfg: LabConfig) -> list[str]:
    folder = cfg.runs / "scores"
    seed = cfg.repeat["seed"]
    names = []
    for v in cfg.variants:
        name = f"{v.name}_s{seed}"
        if (folder / f"{name}.json").is_file() and load_scores(cfg, name) is not None:
            names.append(name)
    return names


# === Report ===


def variant_label(v: Variant, seed: int | None = None) -> str:
    """A variant's display name: "MSE", "MultiFocal − peaks", "fine-tune → DICEE", ..."""
    if v.kind == "finetune":
        label = f"fine-tune → {v.metric.upper()}" + (" (decoder)" if v.which == "decoder" else "")
    elif v.loss == "mse":
        label = "MSE"
    elif v.loss == "focal":
        label = "focal"
    else:
        off = [k for k, a in v.coeffs.items() if a == 0]
        report = check_coeffs(None)
        if not off and dict(v.coeffs) == report:
            label = "MultiFocal"
        elif len(off) == 1 and all(v.coeffs[k] == report[k] for k in v.coeffs if k not in off):
            label = f"MultiFocal − {off[0]}"
        else:
            label = "MultiFocal (" + ", ".join(f"{k} {a:g}" for k, a in v.coeffs.items()) + ")"
    if v.init == "scratch":
        label += " (scratch)"
    return label if seed is None else f"{label} · seed {seed}"


def variant_group(v: Variant) -> str:
    """The Pareto figure's group of a variant (:data:`lensviz.plots.lab.LAB_GROUPS`)."""
    if v.init == "scratch":
        return "scratch"
    if v.kind == "finetune":
        return "finetune"
    if v.loss in ("mse", "focal"):
        return "plain"
    return "multifocal" if dict(v.coeffs) == check_coeffs(None) else "ablation"


def _run_record(cfg: LabConfig, v: Variant, seed: int | None = None) -> dict:
    """What a run recorded: wall time, best epoch (training), before/after (fine-tune)."""
    model = cfg.run_model(v.name, seed)
    if v.kind == "train":
        path = model.parent / "summary.json"
        if not path.is_file():
            return {}
        s = json.loads(path.read_text(encoding="utf-8"))
        return {
            "wall_time_s": s["wall_time_s"],
            "best_epoch": s["best_epoch"],
            "epochs_run": s["epochs_run"],
            "samples": s["samples_seen"],
        }
    path = model.with_suffix(".json")
    if not path.is_file():
        return {}
    s = json.loads(path.read_text(encoding="utf-8"))
    return {
        "wall_time_s": s["wall_time_s"],
        "samples": int(cfg.finetune["epochs"]) * int(cfg.finetune["n_samples"]),
        "trainable": s["trainable"],
        "term_scales": s["term_scales"],
    }


def variant_records(cfg: LabConfig) -> list[dict]:
    """``lab.json``'s variant records: the config's fields, the run's and the file's."""
    out = []
    for v in cfg.variants:
        path = cfg.shipped_model(v.name)
        out.append(
            {
                "name": v.name,
                "label": variant_label(v),
                "group": variant_group(v),
                "kind": v.kind,
                "loss": v.loss,
                "coeffs": None if v.coeffs is None else dict(v.coeffs),
                "metric": v.metric,
                "which": (v.which or cfg.finetune["which"]) if v.kind == "finetune" else None,
                "share": cfg.finetune["share"] if v.kind == "finetune" else None,
                "init": v.init,
                "steps": cfg.steps(v),
                "seed": cfg.train["seed"] if v.kind == "train" else cfg.finetune["seed"],
                "note": v.note,
                "file": path.name if path.is_file() else None,
                "bytes": path.stat().st_size if path.is_file() else None,
                "sha256": sha256(path) if path.is_file() else None,
                **_run_record(cfg, v),
            }
        )
    return out


def _rank(values: Mapping[str, float], higher_better: bool) -> list[str]:
    return sorted(values, key=lambda n: -values[n] if higher_better else values[n])


def _kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's τ between two orderings of the same names (1: the same order)."""
    pos = {n: i for i, n in enumerate(b)}
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1 if pos[a[i]] < pos[a[j]] else -1
    return s / (n * (n - 1) / 2) if n > 1 else 1.0


def repeat_report(cfg: LabConfig, scores: Mapping[str, Mapping]) -> dict:
    """Whether the ranking holds with the second seed, on ``rank_by`` and on RMSE."""
    seed = int(cfg.repeat["seed"])
    depth = cfg.repeat["depth"]
    summary = scores[depth]["summary"]
    names = [v.name for v in cfg.variants if f"{v.name}_s{seed}" in summary]
    out = {"seed": seed, "depth": depth, "names": names, "metrics": {}}
    for metric in dict.fromkeys([cfg.repeat["rank_by"], "rmse"]):
        first = {n: summary[n][metric]["mean"] for n in names}
        second = {n: summary[f"{n}_s{seed}"][metric]["mean"] for n in names}
        r1, r2 = _rank(first, metric == "r"), _rank(second, metric == "r")
        pairs = []
        for i, a in enumerate(r1):
            for b in r1[i + 1 :]:
                d1, d2 = first[a] - first[b], second[a] - second[b]
                se = math.hypot(summary[a][metric]["sem_boot"], summary[b][metric]["sem_boot"])
                pairs.append(
                    {
                        "pair": [a, b],
                        "diff_seed0": d1,
                        "diff_seed1": d2,
                        "holds": d1 * d2 > 0,
                        "se_unpaired": se,
                    }
                )
        out["metrics"][metric] = {
            "ranking_seed0": r1,
            "ranking_seed1": r2,
            "kendall_tau": _kendall_tau(r1, r2),
            "seed_spread": {
                n: {"seed0": first[n], "seed1": second[n], "diff": second[n] - first[n]}
                for n in names
            },
            "pairs": pairs,
        }
    return out


def moonshot_report(cfg: LabConfig, scores: Mapping[str, Mapping], methods: Sequence[str]) -> dict:
    """Each lab model against the moonshot: its gain over the best KS93 on the metric,
    and its RMSE over the shipped UNet's, both with paired bootstrap standard errors."""
    m = cfg.moonshot
    depth, metric = m["depth"], m["metric"]
    entry = scores[depth]
    ks_mean = entry["summary"]["ks93_best"][metric]["mean"]
    shipped_rmse = entry["summary"]["shipped"]["rmse"]["mean"]
    rows = {}
    for name in methods:
        gain = entry["gain"]["ks93_best"][name][metric]
        vs_shipped = entry["gain"]["shipped"][name]["rmse"]
        ratio = 1.0 - vs_shipped["gain"]
        rows[name] = {
            "gain": gain["gain"],
            "gain_sem": gain["sem_boot"],
            "rmse_ratio": ratio,
            "rmse_ratio_sem": vs_shipped["sem_boot"],
            "met": gain["gain"] >= m["gain"] and ratio <= m["rmse_ratio"],
        }
    best = max(rows, key=lambda n: rows[n]["gain"])
    return {
        **m,
        "ks93_best_sigma_px": entry["ks93_best_sigma_px"][metric],
        "ks93_best": ks_mean,
        "shipped_rmse": shipped_rmse,
        "target_metric": ks_mean * (1.0 - m["gain"]),
        "target_rmse": shipped_rmse * m["rmse_ratio"],
        "models": rows,
        "met_by": [n for n, r in rows.items() if r["met"]],
        "closest": best,
        "shipped_gain": entry["gain"]["ks93_best"]["shipped"][metric],
    }


def _fmt(mean: float, se: float) -> str:
    """``mean ± se`` with the standard error to two significant digits, the mean to match."""
    if not math.isfinite(se) or se <= 0:
        return f"{mean:.4g}"
    digits = max(0, 1 - int(math.floor(math.log10(se))))
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _pct(gain: float, se: float) -> str:
    return f"{100 * gain:+.1f} ± {100 * se:.1f} %"


_README_METRICS = ("rmse", "r", "wmape", "dicee", "dpeaks")


def readme(results: LabResults, figure: str) -> str:
    """``weights/lab/README.md``: what the lab found, and the table of every variant."""
    lab = results.raw
    scores, labels = lab["scores"], lab["labels"]
    t = lab["test_set"]
    lines = [
        "# The loss lab",
        "",
        "Written by `python -m benchmarks.loss_lab` from `benchmarks/loss_lab.toml` (issue 19); "
        "every number below is in `lab.json` beside this file. The models are this folder's "
        "`NAME.keras` (float16 weights, loaded as float32 by `lensviz.nn.inference.load_model`).",
        "",
        "## Protocol",
        "",
        f"- Architecture: preset `{lab['train']['preset']}` (the field-aware v3 UNet). Training "
        f"data `{lab['train']['train_data']}`, validation `{lab['train']['val_data']}` "
        f"({lab['train']['val_samples']} tiles with their 45°-rotated B-mode fields), each map's "
        f"loss weighted by its depth; Adam at {lab['train']['learning_rate']:g}, batch "
        f"{lab['train']['batch_size']}, {lab['train']['epochs']} epochs × "
        f"{lab['train']['steps_per_epoch']} steps, seed {lab['train']['seed']}; each run keeps "
        "its best epoch by its own loss on the validation fields (E + B); no early stop.",
        f"- Start: `{lab['start']['path']}` at commit {lab['start']['git_commit']}, "
        f"{lab['start']['note']}; `scratch` variants start from the seed's random weights.",
        f"- Fine-tunes: the `{lab['finetune']['start']}` model's `{lab['finetune']['which']}` "
        f"layer(s), Combined loss {1 - lab['finetune']['share']:g} MultiFocal + "
        f"{lab['finetune']['share']:g} metric term (terms normalised to their initial values), "
        f"{lab['finetune']['epochs']} epochs × {lab['finetune']['n_samples']} maps at "
        f"{lab['finetune']['learning_rate']:g}.",
        f"- Test: {t['n_maps']} held-out simulated maps per depth (seeds {t['seeds'][0]}–"
        f"{t['seeds'][1]}, the same fields at every depth; {t['simulator']}). Mean ± paired "
        f"bootstrap standard error ({t['n_boot']} resamples). KS93 best: the σ of the grid "
        f"{t['ks93_sigmas']} px best on these maps for each metric (an oracle); KS93 rule: "
        "`lensviz.evaluation.ks93_depth_predictor`.",
        "",
        "## What it showed",
        "",
        *[f"- {line}" for line in findings(results)],
        "",
        f"![The Pareto figure: RMSE against DICEE and DPEAKS]({figure})",
        "",
        "## Every variant",
        "",
        "| variant | loss | budget | n_gal | RMSE | r | WMAPE | DICEE | DPEAKS [px] |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    methods = [(v["name"], v) for v in lab["variants"]]
    methods += [(n, None) for n in lab["repeats"]["methods"]]
    methods += [(n, None) for n in ("shipped", "wiener", "ks93_best", "ks93_rule")]
    for name, v in methods:
        for i, entry in enumerate(scores.values()):
            s = entry["summary"][name]
            first = i == 0
            loss = budget = ""
            if first and v is not None:
                loss = _loss_text(v)
                budget = f"{v['steps']:,} steps" + (
                    f", {v['wall_time_s'] / 60:.0f} min" if v.get("wall_time_s") else ""
                )
            elif first and name in lab["repeats"]["methods"]:
                loss = f"as `{name.rsplit('_s', 1)[0]}`, seed {lab['repeats']['seed']}"
            cells = " | ".join(_fmt(s[m]["mean"], s[m]["sem_boot"]) for m in _README_METRICS)
            label = f"`{name}` {labels[name]}" if first else ""
            lines.append(f"| {label} | {loss} | {budget} | {entry['label']} | {cells} |")
    ref = lab["reference"]
    lines += [
        "",
        f"## Against `{ref}` (paired differences, variant − {ref}; lower is better but for r)",
        "",
    ]
    for entry in scores.values():
        lines += [
            f"### {entry['label']}",
            "",
            "| variant | ΔRMSE | Δr | ΔWMAPE | ΔDICEE | ΔDPEAKS [px] |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, _ in methods:
            if name == ref or name not in entry["vs"][ref]:
                continue
            d = entry["vs"][ref][name]
            cells = " | ".join(_fmt(d[m]["mean"], d[m]["sem_boot"]) for m in _README_METRICS)
            lines.append(f"| {labels[name]} | {cells} |")
        lines.append("")
    lines += _repeat_lines(lab) + _moonshot_lines(lab)
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "python -m benchmarks.loss_lab        # every stage; resumes where it stopped",
        "```",
        "",
        f"Budget on this machine: {lab['budget']['train_steps']:,} training and "
        f"{lab['budget']['finetune_steps']:,} fine-tuning steps, "
        f"{lab['budget']['wall_time_s'] / 3600:.1f} h of training wall time on "
        f"{lab['budget']['device']}.",
        "",
    ]
    return "\n".join(lines)


def _loss_text(v: Mapping) -> str:
    if v["kind"] == "finetune":
        return (
            f"Combined {1 - v['share']:g} MultiFocal + {v['share']:g} {v['metric']}, "
            f"`{v['which']}` from `{v['init']}`"
        )
    start = " from scratch" if v["init"] == "scratch" else ""
    if v["loss"] == "multifocal":
        c = v["coeffs"]
        return (
            "MultiFocal " + "/".join(f"{c[k]:g}" for k in constants.MULTIFOCAL_COMPONENTS) + start
        )
    return v["loss"] + start


def _repeat_lines(lab: Mapping) -> list[str]:
    r = lab["repeats"]
    if not r["names"]:
        return []
    lines = [f"## Second seed (seed {r['seed']}, at {lab['scores'][r['depth']]['label']})", ""]
    for metric, m in r["metrics"].items():
        held = sum(p["holds"] for p in m["pairs"])
        lines.append(
            f"- {metric.upper()}: ranking with seed 0 "
            f"{' < '.join(m['ranking_seed0'])}; with seed {r['seed']} "
            f"{' < '.join(m['ranking_seed1'])} (Kendall τ = {m['kendall_tau']:.2f}); "
            f"{held} of {len(m['pairs'])} pairwise orders hold."
        )
    lines.append("")
    return lines


def _moonshot_lines(lab: Mapping) -> list[str]:
    m = lab["moonshot"]
    depth_label_ = lab["scores"][m["depth"]]["label"]
    shipped = m["shipped_gain"]
    lines = [
        f"## Moonshot ({depth_label_})",
        "",
        f"Target: {m['metric'].upper()} at least {100 * m['gain']:.0f} % below the best KS93 "
        f"({m['ks93_best']:.4f} at σ = {m['ks93_best_sigma_px']:g} px, so ≤ "
        f"{m['target_metric']:.4f}) with RMSE at most {m['rmse_ratio']:g} × the shipped UNet's "
        f"({m['shipped_rmse']:.5f}, so ≤ {m['target_rmse']:.5f}). The shipped UNet's "
        f"{m['metric'].upper()} gain: {_pct(shipped['gain'], shipped['sem_boot'])}.",
        "",
        f"| model | {m['metric'].upper()} gain over best KS93 | RMSE / shipped | met |",
        "|---|---:|---:|---|",
    ]
    for name, row in sorted(m["models"].items(), key=lambda kv: -kv[1]["gain"]):
        lines.append(
            f"| {lab['labels'][name]} | {_pct(row['gain'], row['gain_sem'])} | "
            f"{row['rmse_ratio']:.3f} ± {row['rmse_ratio_sem']:.3f} | "
            f"{'yes' if row['met'] else 'no'} |"
        )
    lines += [
        "",
        "Met by: " + (", ".join(m["met_by"]) if m["met_by"] else "no model") + ".",
        "",
    ]
    return lines


def write_figure(lab: LabResults, path: Path) -> None:
    """The Pareto figure of every depth (PNG through plotly's kaleido and Chromium)."""
    m = lab.raw["moonshot"]
    rows = {lab.scores[d]["label"]: lab.points(d) for d in lab.depths}
    target_row = lab.scores[m["depth"]]["label"]
    targets = {target_row: {m["metric"]: m["target_metric"], "rmse": m["target_rmse"]}}
    fig = pareto_figure(rows, targets=targets, height_per_row=360)
    t = lab.raw["test_set"]
    fig.update_layout(
        width=1250,
        title=dict(
            text=f"The loss lab: {t['n_maps']} held-out maps per depth, mean ± bootstrap s.e. "
            "(lower is better on every axis)",
            x=0.01,
            font=dict(size=14),
        ),
    )
    try:
        fig.write_image(path, scale=2)
    except (ImportError, ValueError, RuntimeError) as exc:
        raise RuntimeError(
            f"cannot write {path.name}: plotly's static export needs kaleido "
            f"(pip install -e '.[docs]'): {exc}"
        ) from exc


def stage_report(cfg: LabConfig) -> None:
    """Write WEIGHTS/lab.json, WEIGHTS/README.md and the Pareto figure."""
    missing = [v.name for v in cfg.variants if not cfg.shipped_model(v.name).is_file()]
    if missing:
        raise RuntimeError(f"report: not exported yet: {missing}")
    scores = collect(cfg)
    records = variant_records(cfg)
    seed = int(cfg.repeat["seed"])
    repeats = _repeat_score_names(cfg)
    labels = {r["name"]: r["label"] for r in records}
    labels.update({n: variant_label(cfg.variant(n.rsplit("_s", 1)[0]), seed) for n in repeats})
    shipped = load_scores(cfg, "shipped")["meta"]
    labels.update(BASELINES)
    labels["shipped"] = f"UNet shipped ({shipped['file']})"
    repeat = repeat_report(cfg, scores)
    repeat["methods"] = repeats
    t = cfg.score
    train_s = sum(r.get("wall_time_s", 0.0) for r in records)
    repeat_s = sum(
        _run_record(cfg, cfg.variant(n.rsplit("_s", 1)[0]), seed).get("wall_time_s", 0.0)
        for n in repeats
    )
    lab = {
        "title": "The loss lab (issue 19)",
        "config": checkout_relative(cfg.path),
        "config_sha256": sha256(cfg.path),
        "written": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "start": dict(cfg.start),
        "train": {
            **cfg.train,
            "train_data": checkout_relative(cfg.train["train_data"]),
            "val_data": checkout_relative(cfg.train["val_data"]),
        },
        "finetune": dict(cfg.finetune),
        "test_set": {
            "depths": t["depths"],
            "n_maps": t["n_maps"],
            "seeds": [t["seed"], t["seed"] + t["n_maps"] - 1],
            "n_boot": t["n_boot"],
            "ks93_sigmas": t["ks93_sigmas"],
            "simulator": "lensviz.simulate defaults: the central 128² of a 384² canvas, 0.5′ "
            "pixels, σ_e 0.26, z_s 1",
        },
        "reference": t["references"][0],
        "references": t["references"],
        "shipped": shipped,
        "variants": records,
        "labels": labels,
        "scores": scores,
        "repeats": repeat,
        "truth_smoothed": truth_smoothed(cfg),
        "moonshot": moonshot_report(cfg, scores, [r["name"] for r in records] + repeats),
        "budget": {
            "train_steps": sum(r["steps"] for r in records if r["kind"] == "train")
            + sum(
                cfg.steps(cfg.variant(n.rsplit("_s", 1)[0]))
                for n in repeats
                if cfg.variant(n.rsplit("_s", 1)[0]).kind == "train"
            ),
            "finetune_steps": sum(r["steps"] for r in records if r["kind"] == "finetune")
            + sum(
                cfg.steps(cfg.variant(n.rsplit("_s", 1)[0]))
                for n in repeats
                if cfg.variant(n.rsplit("_s", 1)[0]).kind == "finetune"
            ),
            "wall_time_s": train_s + repeat_s,
            "device": "2 CPU cores shared with other work (no GPU)",
        },
    }
    write_text(cfg.weights / RESULTS_FILE, json.dumps(lab, indent=1, allow_nan=False))
    results = load_lab(cfg.weights / RESULTS_FILE)
    figure = Path(os.path.relpath(cfg.figure, cfg.weights)).as_posix()
    write_text(cfg.weights / "README.md", readme(results, figure))
    write_figure(results, cfg.figure)
    if cfg.weights == ROOT / "weights" / "lab":  # the checkout's lab: its summary in README.md
        figure = Path(os.path.relpath(cfg.figure, ROOT)).as_posix()
        update_readme_block(ROOT / "README.md", results, figure)
    print(
        f"report: {checkout_relative(cfg.weights / RESULTS_FILE)}, README.md, "
        f"{checkout_relative(cfg.figure)}"
    )


#: The markers of the main README's block that the report stage rewrites.
README_MARKERS = ("<!-- loss-lab:start -->", "<!-- loss-lab:end -->")


def readme_block(results: LabResults, figure: str) -> str:
    """The main README's summary of the lab: its findings, every number from lab.json."""
    return "\n".join(
        [
            README_MARKERS[0],
            *[f"- {line}" for line in findings(results)],
            "",
            f"![The loss lab's Pareto figure]({figure})",
            README_MARKERS[1],
        ]
    )


def update_readme_block(path: Path, results: LabResults, figure: str) -> bool:
    """Rewrite the block between :data:`README_MARKERS` in ``path``; False without them."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_MARKERS[0]), text.find(README_MARKERS[1])
    if start < 0 or end < start:
        return False
    new = text[:start] + readme_block(results, figure) + text[end + len(README_MARKERS[1]) :]
    if new != text:
        write_text(path, new)
    return True


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
