"""Model cards: what a set of weights is, how it was made, and how well it does.

:func:`build_card` scores a ``.keras`` file beside KS93 (raw and with the smoothing σ
chosen on the calibration seeds) and the Wiener filter, on a held-out simulated test set
(seeds from :data:`lensviz.constants.TEST_SEED_START`, disjoint from the training and
calibration seeds), and gathers the training record of its run folder
(``config.json``, ``summary.json``, ``history.json`` written by :func:`lensviz.nn.training.train`).
:func:`write_card` writes it as JSON and Markdown. ``python -m lensviz card`` does both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.evaluation import (
    calibration_set,
    choose_ks93_sigma,
    evaluate_methods,
    ks93_predictor,
    wiener_predictor,
)
from lensviz.nn.model import load_model, unet_predictor
from lensviz.simulate import simulate_batch

__all__ = ["HEADLINE", "build_card", "card_markdown", "write_card", "test_set_scores"]

#: Metrics on which the UNet is compared with smoothed KS93 (relative improvement).
HEADLINE = (("dicee", "mean"), ("dpeaks", "mean"), ("wmape", "median"), ("rmse", "mean"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_set_scores(weights, n_test: int = 500, seed: int = constants.TEST_SEED_START,
                    calibration_n: int = 200) -> dict:
    """Summary metrics of the UNet, KS93 raw/smoothed and Wiener on a simulated test set."""
    sigma, table = choose_ks93_sigma(*calibration_set(calibration_n))
    eps, kappa = simulate_batch(n_test, seed)
    predictors = {
        "unet": unet_predictor(weights),
        "wiener": wiener_predictor(),
        "ks93_smoothed": ks93_predictor(sigma),
        "ks93_raw": ks93_predictor(0.0),
    }
    result = evaluate_methods(eps, kappa, predictors)
    return {
        "test_set": {"n_maps": n_test, "seeds": [seed, seed + n_test - 1],
                     "source": "lensviz.simulate defaults (n_gal 30/arcmin², σ_e 0.26, z_s 1)"},
        "ks93_sigma_px": sigma,
        "ks93_sigma_choice": f"lowest mean RMSE on calibration_set(n={calibration_n}), "
                             f"seeds {constants.CALIBRATION_SEED_START}+",
        "calibration_rmse": {f"{k:g}": v for k, v in table.items()},
        "summary": result["summary"],
    }


def build_card(weights, run_dir=None, n_test: int = 500, command: str | None = None,
               extra_weights: dict | None = None) -> dict:
    """The model card of ``weights`` as a dict (see the module docstring).

    ``extra_weights`` (name → path) are scored on the same test set, e.g. a fine-tuned
    variant, and reported beside the main model.
    """
    weights = Path(weights)
    model = load_model(weights)
    card: dict = {
        "name": weights.stem,
        "file": weights.name,
        "size_bytes": weights.stat().st_size,
        "sha256": _sha256(weights),
        "params": int(model.count_params()),
        "config": model.unet_config.to_dict(),
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
    scores = test_set_scores(weights, n_test)
    card["evaluation"] = scores
    summary = scores["summary"]
    card["vs_smoothed_ks93"] = {
        f"{metric}_{stat}": 1.0 - summary["unet"][metric][stat]
        / summary["ks93_smoothed"][metric][stat]
        for metric, stat in HEADLINE
    }
    if extra_weights:
        card["variants"] = {}
        for name, path in extra_weights.items():
            s = test_set_scores(path, n_test)["summary"]
            card["variants"][name] = {"file": Path(path).name,
                                      "sha256": _sha256(Path(path)),
                                      "summary": s["unet"]}
    return card


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def card_markdown(card: dict) -> str:
    """The card as Markdown (what ``weights/*.md`` holds)."""
    s = card["evaluation"]["summary"]
    methods = [("unet", "UNet (this model)"), ("wiener", "Wiener filter"),
               ("ks93_smoothed", f"KS93 smoothed (σ = {card['evaluation']['ks93_sigma_px']:g} px)"),
               ("ks93_raw", "KS93 raw")]
    lines = [f"# Model card: `{card['file']}`", ""]
    cfg = card["config"]
    lines += [
        f"A `{card.get('training_config', {}).get('preset', 'lite')}` UNet "
        f"({card['params']:,} parameters, {card['size_bytes'] / 1e6:.1f} MB): depth "
        f"{cfg['depth']}, filters {cfg['base_filters']}→{cfg['max_filters']}, kernel "
        f"{cfg['kernel_size']}, reflection padding {cfg['pad']} px, dropout "
        f"{cfg['dropout_rate']} on the first {cfg['n_decoder_dropout']} decoder blocks, "
        f"{'with' if cfg['with_ks93'] else 'no'} KS93 input channel. SHA-256 `{card['sha256']}`.",
        "",
    ]
    if "command" in card:
        lines += ["## Reproduce", "", "```bash", card["command"], "```", ""]
    tc, ts = card.get("training_config"), card.get("training_summary")
    if tc and ts:
        lines += [
            "## Training", "",
            f"- Loss: {tc['loss']} with coefficients {tc['coeffs']}; Adam, learning rate "
            f"{tc['learning_rate']}, batch {tc['batch_size']}.",
            f"- Data: simulated on the fly from seed {tc['train_seed']:,} on (never reused; "
            f"disjoint from the test seeds {card['evaluation']['test_set']['seeds']} and the "
            f"calibration seeds), random spin-2 symmetries.",
            f"- {ts['epochs_run']} epochs × {tc['steps_per_epoch']} steps = {ts['steps']:,} "
            f"steps ({ts['samples_seen']:,} maps) in {ts['wall_time_s'] / 60:.0f} min on "
            f"{ts['device']} ({ts['precision']}); best epoch {ts['best_epoch']} by validation "
            f"loss on {tc['val_samples']} calibration-seed maps.",
            "",
        ]
    t = card["evaluation"]["test_set"]
    lines += [
        "## Held-out test set", "",
        f"{t['n_maps']} simulated maps, seeds {t['seeds'][0]}–{t['seeds'][1]} ({t['source']}). "
        f"KS93 σ chosen by {card['evaluation']['ks93_sigma_choice']}. Mean ± bootstrap s.e. "
        "and median; lower is better except r.", "",
        "| method | WMAPE mean | WMAPE median | DICEE mean | DICEE median | DPEAKS mean | "
        "DPEAKS median | RMSE mean | RMSE median | r mean | r median |",
        "|---|" + "---:|" * 10,
    ]
    for key, label in methods:
        if key not in s:
            continue
        cells = []
        for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
            v = s[key][metric]
            cells += [f"{_fmt(v['mean'])} ± {_fmt(v['sem_boot'])}", _fmt(v["median"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Improvement of the UNet over smoothed KS93 (target: 25% on each):", ""]
    for key, value in card["vs_smoothed_ks93"].items():
        mark = "met" if value >= 0.25 else "not met"
        lines.append(f"- {key.replace('_', ' ')}: {100 * value:+.1f}% ({mark})")
    for name, v in card.get("variants", {}).items():
        lines += ["", f"### Variant `{v['file']}` ({name})", "",
                  "| metric | mean | median |", "|---|---:|---:|"]
        for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
            lines.append(f"| {metric} | {_fmt(v['summary'][metric]['mean'])} | "
                         f"{_fmt(v['summary'][metric]['median'])} |")
    lines.append("")
    return "\n".join(lines)


def write_card(card: dict, json_path, md_path=None) -> None:
    """Write the card as JSON (and Markdown), each atomically."""
    write_text(json_path, json.dumps(card, indent=1, default=float))
    if md_path is not None:
        write_text(md_path, card_markdown(card))
