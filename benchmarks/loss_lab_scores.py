"""The loss lab's scores (see :mod:`benchmarks.loss_lab`): the held-out maps, per-map
scores cached per model file, the baselines, and the summaries of ``lab.json``: paired
means and differences with bootstrap errors, the second seed's ranking, the moonshot."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.loss_lab import LabConfig
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
from lensviz.lab import held_out_maps
from lensviz.metrics import METRIC_NAMES, score
from lensviz.simulate import depth_config

__all__ = [
    "held_out",
    "save_scores",
    "load_scores",
    "baseline_scores",
    "ranked_variants",
    "collect",
    "truth_smoothed",
    "repeat_report",
    "moonshot_report",
]

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
