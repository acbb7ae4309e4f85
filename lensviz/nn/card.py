"""Model cards: what a set of weights is, how it was made, and how well it does at every depth.

:func:`build_card` scores a ``.keras`` file at the survey depths of :data:`CARD_DEPTHS` —
the same held-out simulated fields (seeds from :data:`lensviz.constants.TEST_SEED_START`,
disjoint from the training and calibration seeds) observed with each depth's galaxies —
beside raw KS93, KS93 smoothed by the depth rule (:func:`lensviz.depth.ks93_sigma`) and
the Wiener filter, and gathers the training record of its run folder (``config.json``,
``summary.json``, ``history.json`` written by :func:`lensviz.nn.training.train`).
:func:`write_card` writes it as JSON and Markdown. ``python -m lensviz card`` does both.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.evaluation import evaluate_depths, wiener_predictor
from lensviz.nn.inference import load_model, training_domain, unet_predictor

__all__ = [
    "CARD_DEPTHS",
    "CARD_MAPS_PER_DEPTH",
    "METHOD_LABELS",
    "build_card",
    "card_markdown",
    "depth_table",
    "write_card",
    "BENCHMARK_KINDS",
    "test_set_scores",
]

#: Depths a card scores (galaxies per arcmin², ``inf``: no shape noise).
CARD_DEPTHS = ("5", "10", "30", "100", "300", "inf")
#: Held-out maps per depth.
CARD_MAPS_PER_DEPTH = 150
#: Human names of the scored methods, in table order.
METHOD_LABELS = {
    "unet": "UNet (this model)",
    "wiener": "Wiener filter",
    "ks93_smoothed": "KS93, smoothed by the depth rule",
    "ks93_raw": "KS93 raw",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_set_scores(
    weights,
    n_test: int = CARD_MAPS_PER_DEPTH,
    seed: int = constants.TEST_SEED_START,
    depths: tuple[str, ...] = CARD_DEPTHS,
    extra_weights: dict | None = None,
) -> dict:
    """Scores of the UNet (and ``extra_weights``), Wiener and KS93 at every depth."""
    predictors = {"unet": unet_predictor(weights), "wiener": wiener_predictor()}
    for name, path in (extra_weights or {}).items():
        predictors[name] = unet_predictor(path)
    return {
        "test_set": {
            "n_maps_per_depth": n_test,
            "seeds": [seed, seed + n_test - 1],
            "source": "lensviz.simulate defaults (the central 128² of a 384² canvas, "
            "σ_e 0.26, z_s 1), the same fields at every depth",
        },
        "ks93_sigma_choice": "lensviz.depth.ks93_sigma of each map's Δε (the depth rule)",
        "depths": evaluate_depths(predictors, depths, n_test, seed),
    }


def _relative_gain(unet: float, other: float, higher_is_better: bool = False) -> float:
    """How much better the UNet is than ``other``, as a fraction of ``other``'s error."""
    if higher_is_better:
        return (unet - other) / max(1.0 - other, 1e-12)  # share of the missing correlation
    return 1.0 - unet / other


def build_card(
    weights,
    run_dir=None,
    n_test: int = CARD_MAPS_PER_DEPTH,
    command: str | None = None,
    extra_weights: dict | None = None,
    benchmarks: dict | None = None,
) -> dict:
    """The model card of ``weights`` as a dict (see the module docstring).

    ``extra_weights`` (name → path) are scored on the same maps at every depth, e.g. the
    previously shipped model, and reported beside the main model. ``benchmarks`` (kind →
    JSON path) adds the results of the benchmarks that measured this model:
    ``errorbars`` (``benchmarks/errorbars.json``: calibrated coverage per depth),
    ``fields`` (whole 384² fields), ``scales`` (pixel scales) and ``cosmos`` (the real
    field's null tests); each must name this file's weights.
    """
    weights = Path(weights)
    model = load_model(weights)
    domain = training_domain(model)
    card: dict = {
        "name": weights.stem,
        "file": weights.name,
        "size_bytes": weights.stat().st_size,
        "sha256": _sha256(weights),
        "params": int(model.count_params()),
        "config": model.unet_config.to_dict(),
        "training_domain": None if domain is None else domain.to_dict(),
    }
    if run_dir is not None:
        run = Path(run_dir)
        for key in ("config", "summary"):
            path = run / f"{key}.json"
            if path.exists():
                card[f"training_{key}"] = json.loads(path.read_text())
        hist = run / "history.json"
        if hist.exists():
            card["training_history"] = json.loads(hist.read_text())
    if command:
        card["command"] = command
    card["evaluation"] = test_set_scores(weights, n_test, extra_weights=extra_weights)
    for kind, path in (benchmarks or {}).items():
        if kind not in BENCHMARK_KINDS:
            raise ValueError(f"benchmark kind must be one of {BENCHMARK_KINDS}, got {kind!r}")
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        if Path(str(values.get("weights", ""))).name != weights.name:
            raise ValueError(
                f"{path} measured {values.get('weights')!r}, not {weights.name}: rerun it"
            )
        card[kind] = {"file": Path(path).name, **values}
    card["variants"] = {
        name: {"file": Path(path).name, "sha256": _sha256(Path(path))}
        for name, path in (extra_weights or {}).items()
    }
    card["vs_baselines"] = {
        spec: {
            f"{metric} vs {other}": _relative_gain(
                r["summary"]["unet"][metric]["mean"],
                r["summary"][other][metric]["mean"],
                metric == "r",
            )
            for metric in ("rmse", "r", "dicee")
            for other in ("ks93_smoothed", "wiener")
        }
        for spec, r in card["evaluation"]["depths"].items()
    }
    return card


#: The benchmark results a card can carry (``build_card(benchmarks=...)``).
BENCHMARK_KINDS = ("errorbars", "fields", "scales", "cosmos")


def _fmt(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.4g}"


def _cell(stats: dict) -> str:
    return f"{_fmt(stats['mean'])} ± {_fmt(stats['sem_boot'])}"


def card_markdown(card: dict) -> str:
    """The card as Markdown (what ``weights/*.md`` holds)."""
    ev = card["evaluation"]
    lines = [f"# Model card: `{card['file']}`", ""]
    cfg = card["config"]
    if cfg.get("field_features"):
        inputs = (
            "field-aware inputs (the whole field's E-mode ellipticities, an inverse-variance "
            "weight from Δε, its KS93 κ_E and the pixel scale) and a gated output "
            "(a share of κ_E plus a correction)"
        )
    elif cfg.get("noise_aware"):
        inputs = (
            "noise-aware inputs (masked e1, e2, an inverse-variance weight from Δε, and the "
            "KS93 E and B modes computed inside the model)"
        )
    else:
        inputs = f"{'a KS93 channel' if cfg['with_ks93'] else 'the raw (e1, e2, Δε)'} input"
    lines += [
        f"A `{card.get('training_config', {}).get('preset', 'lite')}` UNet "
        f"({card['params']:,} parameters, {card['size_bytes'] / 1e6:.1f} MB): depth "
        f"{cfg['depth']}, filters {cfg['base_filters']}→{cfg['max_filters']}, kernel "
        f"{cfg['kernel_size']}, reflection padding {cfg['pad']} px, dropout "
        f"{cfg['dropout_rate']} on the first {cfg['n_decoder_dropout']} decoder blocks, "
        f"{inputs}. SHA-256 `{card['sha256']}`.",
        "",
    ]
    dom = card.get("training_domain")
    if dom:
        lo, hi = dom["n_gal_range"]
        lines += [
            f"**Training domain** (saved in the file; the app and the CLI warn outside it): "
            f"noise of {lo:.3g}–{hi:.3g} galaxies per arcmin² (read from Δε)"
            f"{' and no shape noise' if dom['noise_free'] else ''}, up to "
            f"{dom['max_masked_fraction']:.0%} of the pixels empty or masked, |ε| ≤ "
            f"{dom['max_abs_e']:.3g}.",
            "",
        ]
    if "command" in card:
        lines += ["## Reproduce", "", "```bash", card["command"], "```", ""]
    tc, ts = card.get("training_config"), card.get("training_summary")
    if tc and ts:
        data = (
            f"the HDF5 file `{Path(tc['train_data']).name}`"
            if tc.get("train_data")
            else f"simulated on the fly from seed {tc['train_seed']:,} on"
        )
        weighting = (
            ", each map weighted by its depth (lensviz.depth.training_weight)"
            if tc.get("depth_weighting")
            else ""
        )
        lines += [
            "## Training",
            "",
            f"- Loss: {tc['loss']} with coefficients {tc['coeffs']}{weighting}; Adam, "
            f"learning rate {tc['learning_rate']}, batch {tc['batch_size']}.",
            f"- Data: {data} (training seeds, disjoint from the test seeds "
            f"{ev['test_set']['seeds']} and the calibration seeds), random spin-2 symmetries.",
            f"- {ts['epochs_run']} epochs × {tc['steps_per_epoch']} steps = {ts['steps']:,} "
            f"steps ({ts['samples_seen']:,} maps) in {ts['wall_time_s'] / 60:.0f} min on "
            f"{ts['device']} ({ts['precision']}); best epoch {ts['best_epoch']} by validation "
            f"loss on {tc['val_samples']} calibration-seed maps.",
        ]
        if card.get("training_note"):
            lines.append(f"- {card['training_note']}")
        lines.append("")
    t = ev["test_set"]
    lines += [
        "## Held-out test fields at every depth",
        "",
        f"{t['n_maps_per_depth']} simulated maps per depth, seeds {t['seeds'][0]}–{t['seeds'][1]} "
        f"({t['source']}). KS93 σ: {ev['ks93_sigma_choice']}. Mean ± bootstrap standard "
        "error; lower is better except r; WMAPE is the median.",
        "",
    ]
    variants = list(card.get("variants", {}))
    labels = {
        **METHOD_LABELS,
        **{v: f"UNet `{card['variants'][v]['file']}` ({v})" for v in variants},
    }
    for spec, r in ev["depths"].items():
        s = r["summary"]
        lines += [
            f"### {r['label']}",
            "",
            f"KS93 smoothing σ = {r['ks93_sigma_px']:g} px.",
            "",
            "| method | RMSE | Pearson r | DICEE | DPEAKS [px] | WMAPE (median) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key in ["unet", *variants, "wiener", "ks93_smoothed", "ks93_raw"]:
            if key not in s:
                continue
            m = s[key]
            lines.append(
                f"| {labels.get(key, key)} | {_cell(m['rmse'])} | {_cell(m['r'])} | "
                f"{_cell(m['dicee'])} | {_cell(m['dpeaks'])} | "
                f"{_fmt(m['wmape']['median'])} |"
            )
        gains = card["vs_baselines"][spec]
        lines += [
            "",
            "UNet against the baselines: "
            + "; ".join(f"{k} {100 * v:+.0f}%" for k, v in gains.items())
            + " (positive: the UNet is better; "
            "for r, the share of the missing correlation 1 − r recovered).",
            "",
        ]
    lines += _benchmark_markdown(card)
    lines.append("")
    return "\n".join(lines)


def _benchmark_markdown(card: dict) -> list[str]:
    """The sections of the benchmarks a card carries."""
    lines: list[str] = []
    eb = card.get("errorbars")
    if eb:
        lines += [
            "## Calibrated error bars",
            "",
            "κ̂ ± kappa_std should hold the true κ in 68.3 % of the pixels and κ̂ ± kappa_hw95 "
            f"in 95.4 % (targets ± 3 and ± 1.5 points). Measured by `{eb['file']}` "
            f"(`python -m benchmarks.bench_errorbars`) on {eb['tiles_per_depth']} held-out "
            f"masked 128² tiles and {eb['fields_per_depth']} whole 384² fields per depth. "
            "Calibration: KS93 and Wiener by `weights/errorbars.json` (`python -m lensviz "
            "errorbars`), the UNet by its quantile network `lite.sigma.keras` (`python -m "
            "lensviz sigma-net`), on calibration seeds disjoint from training and tests.",
            "",
            "| depth | data | method | ±kappa_std | ±kappa_hw95 | mean kappa_std |",
            "|---|---|---|---:|---:|---:|",
        ]
        for depth, row in eb["coverage"].items():
            for kind in ("masked_tiles", "fields_384"):
                for method, v in row[kind].items():
                    if not isinstance(v, dict) or "all" not in v:
                        continue
                    a = v["all"]
                    lines.append(
                        f"| {depth} | {kind.replace('_', ' ')} | {method} | "
                        f"{a['coverage_68']:.1%} | {a['coverage_95']:.1%} | "
                        f"{a['mean_std']:.4f} |"
                    )
        lines.append("")
    fields = card.get("fields")
    if fields:
        lines += [
            "## Whole fields",
            "",
            f"`{fields['file']}` (`python -m benchmarks.bench_fields`): RMSE / Pearson r, "
            f"mean over {fields['fields_per_depth']} simulated 384² fields per setting; KS93 "
            "at its best σ on these fields (an oracle) and Wiener, zero-padded by 64 px.",
            "",
            "| setting | UNet | previous UNet | KS93, best σ | Wiener | UNet / best baseline |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, row in fields["accuracy"].items():
            rm, rr = row["rmse"], row["r"]

            def cell(key, rm=rm, rr=rr):
                if key not in rm:
                    return "—"
                return f"{rm[key]['mean']:.5f} / {rr[key]['mean']:.3f}"

            ks = f"{rm['ks93_best_rmse']['mean']:.5f} / {rr['ks93_best_r']['mean']:.3f}"
            lines.append(
                f"| {label} | {cell('unet_tiles')} | {cell('previous')} | {ks} | "
                f"{cell('wiener')} | {row['unet_over_best_baseline_rmse']:.3f} |"
            )
        lines.append("")
    scales = card.get("scales")
    if scales:
        lines += [
            "## Pixel scales",
            "",
            f"`{scales['file']}` (`python -m benchmarks.bench_scales`): 128² tiles at "
            f"{scales['n_gal']:g} galaxies per arcmin², {scales['tiles_per_scale']} per scale; "
            "the gain is 1 − RMSE(UNet) / RMSE(KS93 at its best σ).",
            "",
            "| pixel side | UNet RMSE | previous UNet | KS93, best σ | Wiener | gain "
            "| previous gain |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for scale, row in scales["scales"].items():
            r = row["rmse"]
            prev = r.get("previous", {}).get("mean")
            pg = row.get("previous_gain_over_ks93_best")
            lines.append(
                f"| {scale}′ | {r['unet']['mean']:.5f} | "
                f"{'—' if prev is None else f'{prev:.5f}'} | {r['ks93_best']['mean']:.5f} | "
                f"{r['wiener']['mean']:.5f} | {row['gain_over_ks93_best']:+.1%} | "
                f"{'—' if pg is None else f'{pg:+.1%}'} |"
            )
        lines.append("")
    cos = card.get("cosmos")
    if cos:
        lines += [
            "## COSMOS null tests",
            "",
            f"`{cos['file']}` (`python -m benchmarks.bench_cosmos`): the real HST field at "
            f"{cos['pixel_arcmin']:.3f}′ pixels; E/B over the footprint at each smoothing, "
            f"and the share of B pixels beyond ±3 noise rms ({cos['n_noise']} noise maps; "
            "Gaussian noise: 0.27 %).",
            "",
        ]
        table = cos["e_over_b"]
        sigmas = [k for k in next(v for v in table.values() if isinstance(v, dict))["footprint"]]
        lines += [
            "| method | " + " | ".join(f"E/B σ {s} px" for s in sigmas) + " | B beyond ±3 |",
            "|---|" + "---:|" * (len(sigmas) + 1),
        ]
        outliers = {
            "unet": cos["null_tests"].get("unet", {}).get("b_outlier_share"),
            "ks93": cos["null_tests"].get("ks93_depth_rule", {}).get("b_outlier_share"),
            "wiener": cos["null_tests"].get("wiener", {}).get("b_outlier_share"),
            "previous": cos["null_tests"].get("previous", {}).get("b_outlier_share"),
        }
        for name, row in table.items():
            if not isinstance(row, dict):
                continue
            share = outliers.get(name)
            lines.append(
                f"| {name} | "
                + " | ".join(f"{row['footprint'][s]:.2f}" for s in sigmas)
                + f" | {'—' if share is None else f'{share:.2%}'} |"
            )
        lines.append("")
    return lines


def depth_table(card: dict, metric: str = "rmse") -> dict[str, dict[str, float]]:
    """``{method: {depth label: mean}}`` of one metric, for plots and the README."""
    out: dict[str, dict[str, float]] = {}
    for r in card["evaluation"]["depths"].values():
        for method, stats in r["summary"].items():
            out.setdefault(method, {})[r["label"]] = stats[metric]["mean"]
    return out


def write_card(card: dict, json_path, md_path=None) -> None:
    """Write the card as JSON (and Markdown), each atomically."""
    write_text(json_path, json.dumps(card, indent=1, default=float))
    if md_path is not None:
        write_text(md_path, card_markdown(card))
