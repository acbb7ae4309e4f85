"""The loss lab's report stage (see :mod:`benchmarks.loss_lab`): ``lab.json``, the
lab's README with the table of every variant, the Pareto figure and the main README's
block, all from the cached scores."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

from benchmarks import ROOT, checkout_relative
from benchmarks.loss_lab import BASELINES, LabConfig, Variant, sha256
from benchmarks.loss_lab_scores import (
    _repeat_score_names,
    collect,
    load_scores,
    moonshot_report,
    repeat_report,
    truth_smoothed,
)
from lensviz import constants
from lensviz._atomic import write_text
from lensviz.lab import RESULTS_FILE, LabResults, findings, load_lab
from lensviz.loss_weights import check_coeffs
from lensviz.plots.lab import pareto_figure

__all__ = [
    "README_MARKERS",
    "variant_label",
    "variant_group",
    "variant_records",
    "readme",
    "readme_block",
    "update_readme_block",
    "write_figure",
    "stage_report",
]

# === Report ===


def variant_label(v: Variant, seed: int | None = None) -> str:
    """A variant's display name: "MSE", "MultiFocal − peaks", "fine-tune → DICEE", ..."""
    if v.kind == "finetune":
        part = {"decoder": " (decoder)", "all": " (all layers)"}.get(v.which or "", "")
        label = f"fine-tune → {v.metric.upper()}{part}"
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
        "samples": int(cfg.finetune_settings(v)["epochs"])
        * int(cfg.finetune_settings(v)["n_samples"]),
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
                "which": cfg.finetune_settings(v)["which"] if v.kind == "finetune" else None,
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
