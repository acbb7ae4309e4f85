"""Scoring commands: ``evaluate``, ``calibrate``, ``card``, ``powerspec``.

``evaluate`` scores KS93 (raw and smoothed), the Wiener filter and the UNet with the
challenge metrics; ``calibrate`` checks UNet uncertainty maps; ``card`` writes a model
card; ``powerspec`` estimates the κ power spectrum the Wiener filter needs. These
commands load TensorFlow (the UNet is one of the methods scored).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

from lensviz import constants
from lensviz._atomic import write_text
from lensviz.cli import _check_output, _progress
from lensviz.cli.data import _parse_sim, data_grid, iter_data, load_data, read_ahead
from lensviz.cli.predict import with_errorbars
from lensviz.depth import DomainTally, ks93_sigma
from lensviz.errorbars import COVERAGE_68, COVERAGE_95, default_error_models
from lensviz.evaluation import (
    N_BOOTSTRAP,
    default_power_spectrum,
    default_weights,
    evaluate_depths,
    format_table,
    ks93_depth_predictor,
    ks93_predictor,
    score_methods,
    summarize,
    wiener_predictor,
)
from lensviz.nn.card import build_card, card_markdown, write_card
from lensviz.nn.errorbars import errorbar_predictor, load_sigma_net
from lensviz.nn.inference import load_model, training_domain, unet_predictor
from lensviz.nn.uncertainty import calibration, predict_uncertainty
from lensviz.simulate import depth_config
from lensviz.wiener import PowerSpectrum

__all__ = ["cmd_evaluate", "cmd_calibrate", "cmd_card"]


def _ks93_smoothed(args: argparse.Namespace):
    """``(predictor, description, σ of a map)`` of smoothed KS93: ``--sigma``, or the rule."""
    if args.sigma is not None:
        return (
            ks93_predictor(args.sigma, args.pad),
            f"σ = {args.sigma:g} px (given with --sigma)",
            lambda e, p: args.sigma,
        )
    return (
        ks93_depth_predictor(args.pad),
        "σ from each map's depth (lensviz.depth.ks93_sigma)",
        lambda e, p: ks93_sigma(e[..., 2], pixel_arcmin=p),
    )


class _Bands:
    """Error-bar predictors that hand κ to the scores and keep their bands for coverage.

    Each wrapped predictor returns κ; its last ``(kappa_std, kappa_hw95)`` waits in
    :attr:`last` until :meth:`add` counts, per method, the pixels whose true κ lies
    within the 68.3 % and 95.4 % bands and the sum of ``kappa_std``.
    """

    def __init__(self, errorbars: dict):
        self.last: dict = {}
        self.counts = {name: [0, 0, 0, 0.0] for name in errorbars}
        self.predictors = {name: self._keep(name, f) for name, f in errorbars.items()}

    def _keep(self, name, errorbar_predictor):
        def predict(eps, pixel_arcmin=constants.PIXEL_ARCMIN):
            kappa, std, hw95 = errorbar_predictor(eps, pixel_arcmin=pixel_arcmin)
            self.last[name] = (kappa, std, hw95)
            return kappa

        predict.__doc__ = getattr(errorbar_predictor, "__doc__", None)
        return predict

    def add(self, kappa_true) -> None:
        for name, (kappa, std, hw95) in self.last.items():
            err = np.abs(kappa_true - kappa)
            row = self.counts[name]
            row[0] += err.size
            row[1] += int((err <= std).sum())
            row[2] += int((err <= hw95).sum())
            row[3] += float(std.sum())
        self.last.clear()

    def table(self) -> dict:
        return {
            name: {
                "coverage_68": c[1] / c[0],
                "coverage_95": c[2] / c[0],
                "mean_std": c[3] / c[0],
                "pixels": c[0],
            }
            for name, c in self.counts.items()
            if c[0]
        }


def _errorbar_predictors(args, smoothed, sigma_of, models: dict) -> dict:
    """Calibrated error-bar predictors of the methods ``evaluate`` scores."""
    error_models = default_error_models()
    signal = PowerSpectrum.load(default_power_spectrum())
    out = {
        "ks93_raw": with_errorbars(
            ks93_predictor(0.0, args.pad), error_models["ks93"], signal, lambda e, p: 0.0, args.pad
        ),
        "ks93_smoothed": with_errorbars(smoothed, error_models["ks93"], signal, sigma_of, args.pad),
    }
    if "wiener" in models:
        out["wiener"] = with_errorbars(
            models["wiener"], error_models["wiener"], signal, lambda e, p: 0.0, args.pad
        )
    if "unet" in models:
        weights = args.weights or default_weights()
        out["unet"] = errorbar_predictor(models["unet"].model, load_sigma_net(weights))
    return out


def _domain_tally(predictors: dict, pixel_arcmin: float = 0.5) -> DomainTally | None:
    """A :class:`DomainTally` for the UNet among ``predictors`` (None without one)."""
    unet = predictors.get("unet")
    domain = None if unet is None else training_domain(unet.model)
    return None if domain is None else DomainTally(domain, pixel_arcmin)


def _print_domain_warnings(tally: DomainTally | None, prefix: str = "") -> None:
    for line in [] if tally is None else tally.warnings():
        print(f"warning: {prefix}{line}", file=sys.stderr)


def _json_output(args: argparse.Namespace) -> Path | None:
    """``--json`` as a path, checked before any work: its folder exists, and an existing
    file is replaced only with ``--overwrite``."""
    if args.json is None:
        return None
    path = Path(args.json)
    if not path.absolute().parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    _check_output(path, args.overwrite)
    return path


def _nan_as_null(value):
    """``value`` with every NaN float as None, written ``null``: an undefined value (one
    map's standard error) rather than Python's non-standard ``NaN``. Infinities stay
    (``Infinity``: the n_gal of noise-free data, as ever)."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _nan_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_as_null(v) for v in value]
    return value


def _write_json(json_path: Path | None, result: dict) -> None:
    if json_path is not None:
        text = json.dumps(_nan_as_null(result), indent=2, ensure_ascii=False)
        write_text(json_path, text + "\n")
        print(f"wrote {json_path}")


def _evaluate_depths(args: argparse.Namespace, json_path: Path | None) -> int:
    """``evaluate sim:N[:SEED] --depths ...``: one table per depth, the same fields."""
    sim = _parse_sim(args.data)
    if sim is None or sim.depth is not None:
        raise ValueError(
            f"{args.data}: --depths needs a sim:N[:SEED] spec without @DEPTH "
            "(each depth simulates the same seeds)"
        )
    depths = [d.strip() for d in args.depths.split(",") if d.strip()]
    if not depths:
        raise ValueError(
            f"--depths {args.depths!r}: expected a comma-separated list such as "
            "10,30,100,inf or des,lsst,deep,noise-free"
        )
    for d in depths:
        depth_config(d)  # a bad depth fails before any work
    n = sim.n if args.n is None else min(sim.n, args.n)
    models = _model_predictors(args)
    tallies = {}

    def check(spec: str, eps: np.ndarray) -> None:
        tallies[spec] = _domain_tally(models)
        if tallies[spec] is not None:
            tallies[spec].add(eps)

    with _progress(len(depths), "depths", unit="depth") as bar:
        results = evaluate_depths(
            models,
            depths,
            n,
            sim.seed,
            pad=args.pad,
            boot_seed=args.seed,
            on_depth=lambda d: bar.set_postfix_str(d),
            on_samples=check,
        )
        bar.update(len(depths))
    for spec, tally in tallies.items():
        _print_domain_warnings(tally, f"at depth {spec}: ")
    for d, r in results.items():
        print(
            f"\n{r['label']} ({d}): {n} maps from seed {sim.seed}; KS93 pad {args.pad} px, "
            f"smoothed with σ = {r['ks93_sigma_px']:g} px (depth rule)"
        )
        print(format_table(r["summary"]))
    _write_json(
        json_path,
        {
            "data": args.data,
            "n_maps": n,
            "seed": sim.seed,
            "pad_px": args.pad,
            "bootstrap": {"n_boot": N_BOOTSTRAP, "seed": args.seed},
            "depths": results,
        },
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score KS93 raw and smoothed on DATA; print a table, optionally write JSON."""
    json_path = _json_output(args)
    if args.depths is not None:
        return _evaluate_depths(args, json_path)
    total, batches = iter_data(args.data, args.batch, args.n)
    # Read before the reading thread opens the file: an HDF5 file open in two threads at
    # once can lose the other's chunk reads when one closes it.
    grid = data_grid(args.data, args.pixel_arcmin)
    # The next batches are read in a background thread while this one is scored.
    with read_ahead(batches) as batches:
        first = next(batches)  # read (and check) the data before loading any model
        if first[1] is None:
            raise ValueError(f"{args.data}: holds ε only; evaluate needs true κ as well")
        smoothed, sigma_text, sigma_of = _ks93_smoothed(args)
        predictors = {"ks93_raw": ks93_predictor(0.0, args.pad), "ks93_smoothed": smoothed}
        models = _model_predictors(args)
        predictors.update(models)
        tally = _domain_tally(predictors, grid.pixel_arcmin)
        bands = None
        if args.uncertainty == "calibrated":
            bands = _Bands(_errorbar_predictors(args, smoothed, sigma_of, models))
            predictors = {**predictors, **bands.predictors}
        per_map: dict[str, dict[str, list]] = {}
        names: list[str] = []
        with _progress(total, "evaluate") as bar:
            for eps, kappa, batch_names in itertools.chain([first], batches):
                if kappa is None:
                    raise ValueError(f"{args.data}: holds ε only; evaluate needs true κ as well")
                if tally is not None:
                    tally.add(eps)
                scored = score_methods(eps, kappa, predictors, pixel_arcmin=grid.pixel_arcmin)
                if bands is not None:
                    bands.add(kappa)
                for meth, scores in scored.items():
                    for met, values in scores.items():
                        per_map.setdefault(meth, {}).setdefault(met, []).append(values)
                names.extend(batch_names)
                bar.update(len(eps))
    per_map_arrays = {m: {k: np.concatenate(v) for k, v in s.items()} for m, s in per_map.items()}
    summary = summarize(per_map_arrays, n_boot=N_BOOTSTRAP, seed=args.seed)
    _print_domain_warnings(tally)
    maps = f"{len(names)} map{'' if len(names) == 1 else 's'}"
    print(
        f"{args.data}: {maps} of {grid.pixel_arcmin:g}′ pixels; KS93 pad {args.pad} px; "
        f"smoothed with {sigma_text}"
    )
    print(format_table(summary))
    coverage = None if bands is None else bands.table()
    if coverage:
        print(
            f"\ncalibrated error bars: the share of pixels whose true κ lies within "
            f"κ̂ ± kappa_std (expect {COVERAGE_68:.1%}) and κ̂ ± kappa_hw95 "
            f"(expect {COVERAGE_95:.1%}), and the mean kappa_std"
        )
        print(f"{'method':<14} {'±kappa_std':>10} {'±kappa_hw95':>11} {'mean σ':>9}")
        for name, row in coverage.items():
            print(
                f"{name:<14} {row['coverage_68']:>10.1%} {row['coverage_95']:>11.1%} "
                f"{row['mean_std']:>9.4f}"
            )
    if json_path is not None:
        result = {
            "data": args.data,
            "n_maps": len(names),
            "ks93_smoothing": sigma_text,
            "pad_px": args.pad,
            "pixel_arcmin": grid.pixel_arcmin,
            "methods": {m: p.__doc__ for m, p in predictors.items()},
            "errorbars": coverage,
            "bootstrap": {"n_boot": N_BOOTSTRAP, "seed": args.seed},
            "summary": summary,
        }
        if args.per_map:
            result["names"] = names
            result["per_map"] = {
                m: {k: v.tolist() for k, v in s.items()} for m, s in per_map_arrays.items()
            }
        _write_json(json_path, result)
    return 0


def _model_predictors(args: argparse.Namespace) -> dict:
    """The Wiener filter (shipped power spectrum) and the UNet of ``--weights``."""
    out = {}
    if not args.no_wiener:
        if default_power_spectrum() is None:
            print(
                "note: weights/kappa_power.npz not found; skipping the Wiener filter",
                file=sys.stderr,
            )
        else:
            out["wiener"] = wiener_predictor(None, args.pad)
    if not args.no_unet:
        weights = args.weights or default_weights()
        if weights is None:
            print(
                "note: no --weights given and weights/lite.keras not found; skipping the UNet",
                file=sys.stderr,
            )
        else:
            out["unet"] = unet_predictor(weights)
    return out


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Coverage of UNet uncertainty maps on data with truth."""
    json_path = _json_output(args)
    weights = args.weights or default_weights()
    if weights is None:
        raise FileNotFoundError("no --weights given and weights/lite.keras not found")
    eps, kappa, _ = load_data(args.data, args.n, need_kappa=True)
    mean, std = predict_uncertainty(load_model(weights), eps, args.method, args.passes)
    c = calibration(kappa, mean, std)
    what = f"{args.passes} passes" if args.method == "mc_dropout" else "8 symmetries"
    print(f"{args.method} ({what}) on {len(eps)} maps of {args.data}:")
    print(f"  within ±1σ: {c['within_1sigma']:.3f} (Gaussian {c['expected_1sigma']:.3f})")
    print(f"  within ±2σ: {c['within_2sigma']:.3f} (Gaussian {c['expected_2sigma']:.3f})")
    print(f"  mean σ {c['mean_sigma']:.4f} vs RMSE {c['rmse']:.4f}")
    _write_json(
        json_path,
        {
            "data": args.data,
            "method": args.method,
            "passes": args.passes,
            "weights": str(weights),
            **c,
        },
    )
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    """Score weights on the held-out test set and write the model card."""
    variants = {}
    for item in args.variant:
        name, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--variant: expected NAME=PATH, got {item!r}")
        variants[name] = path
    for suffix in (".json", ".md"):
        _check_output(Path(f"{args.out}{suffix}"), args.overwrite)
    benchmarks = {}
    for item in args.benchmark:
        kind, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--benchmark: expected KIND=PATH, got {item!r}")
        benchmarks[kind] = path
    card = build_card(
        args.weights, args.run, args.n, args.command, variants or None, benchmarks or None
    )
    write_card(card, f"{args.out}.json", f"{args.out}.md")
    print(card_markdown(card))
    print(f"wrote {args.out}.json and {args.out}.md")
    return 0
