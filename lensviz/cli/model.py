"""Model commands: ``train``, ``finetune``, ``sigma-net``, ``tune``, and the UNet of ``predict``.

Registered in :data:`lensviz.cli.COMMANDS` as ``"lensviz.cli.model:cmd_…"`` strings, and
the UNet of ``predict`` (:mod:`lensviz.cli.predict`) in :data:`lensviz.cli.PREDICT_METHODS`
as ``"lensviz.cli.model:unet_method"``, so TensorFlow is imported only when one of these
runs. Keras Tuner (the optional ``tune`` extra) is imported by ``tune`` alone, inside
:func:`cmd_tune` and :func:`lensviz.nn.tuning.tuner_hypermodel` (the search space), so
the other commands work without it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import keras
import numpy as np

from lensviz.cli import _check_output
from lensviz.cli.data import data_grid
from lensviz.cli.predict import PredictMethod
from lensviz.depth import DomainTally
from lensviz.evaluation import choose_ks93_sigma, default_weights, ks93_predictor
from lensviz.loss_weights import check_coeffs
from lensviz.nn.callbacks import summarize_metrics
from lensviz.nn.errorbars import (
    calibrate_sigma_net,
    errorbar_predictor,
    file_sha256,
    load_sigma_net,
    save_sigma_net,
    sigma_net_path,
    train_sigma_net,
)
from lensviz.nn.finetuning import FinetuneConfig, finetune
from lensviz.nn.inference import load_model, training_domain, unet_predictor
from lensviz.nn.training import TrainConfig, train, validation_arrays
from lensviz.nn.tuning import OBJECTIVE, ScoredValidation, tuner_hypermodel
from lensviz.nn.uncertainty import predict_uncertainty
from lensviz.training_data import training_set_length

__all__ = [
    "cmd_train",
    "cmd_finetune",
    "cmd_sigma_net",
    "cmd_tune",
    "unet_method",
    "parse_coeffs",
]


def parse_coeffs(text: str | None) -> dict[str, float]:
    """``"focal=1,local=2,..."`` → dict, completed with the report's values and checked."""
    if not text:
        return check_coeffs(None)
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(
                f"--coeffs: expected NAME=VALUE pairs separated by commas, got {part!r}"
            )
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--coeffs: {key.strip()}={value!r} is not a number") from None
    return check_coeffs(out)


def _print_progress(p) -> None:
    eta = "?" if math.isnan(p.eta_s) else f"{p.eta_s:5.0f}s"
    line = f"\repoch {p.epoch + 1}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.5f} eta {eta}"
    if p.stage == "epoch_end" and p.history:
        h = p.history[-1]
        line += (
            f" | val_loss {h.get('val_loss', float('nan')):.5f} "
            f"wmape(med) {h.get('val_wmape_median', float('nan')):.3f} "
            f"dicee {h.get('val_dicee', float('nan')):.3f} "
            f"dpeaks {h.get('val_dpeaks', float('nan')):.1f}\n"
        )
    print(line, end="", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a preset; prints progress and the summary."""
    cfg = TrainConfig(
        preset=args.preset,
        model_overrides=({"with_ks93": True, "field_features": False} if args.with_ks93 else {}),
        loss=args.loss,
        coeffs=parse_coeffs(args.coeffs),
        learning_rate=args.lr,
        batch_size=args.batch,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        train_data=args.train_data,
        train_seed=args.train_seed,
        val_data=args.val_data,
        val_samples=args.val_n,
        patience=args.patience,
        augment=not args.no_augment,
        depth_weighting=args.depth_weighting,
        init_weights=args.init_weights,
        distribution=args.distribution,
        devices=tuple(args.devices.split(",")) if args.devices else None,
        seed=args.seed,
    )
    summary = train(cfg, args.out, on_progress=_print_progress)
    print(json.dumps(summary, indent=1))
    if summary["chief"]:
        print(f"best weights: {Path(args.out) / 'model.keras'}")
    else:
        print(f"a worker: the chief writes {args.out}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune saved weights; writes OUT only on success."""
    _check_output(Path(args.out), args.overwrite)
    cfg = FinetuneConfig(
        loss=args.loss,
        coeffs=parse_coeffs(args.coeffs),
        combined_weights={
            "multifocal": args.w_multifocal,
            "wmape": args.w_wmape,
            "dicee": args.w_dicee,
            "dpeaks": args.w_dpeaks,
        },
        which=args.which,
        epochs=args.epochs,
        n_samples=args.n,
        batch_size=args.batch,
        learning_rate=args.lr,
        train_data=args.train_data,
        val_samples=args.val_n,
        normalize_terms=not args.raw_term_weights,
        distribution=args.distribution,
        seed=args.seed,
    )
    if not Path(args.weights).exists():
        raise FileNotFoundError(f"{args.weights}: no such weights file")
    result = finetune(args.weights, args.out, cfg, on_progress=_print_progress)
    rows = ["metric      before     after"]
    for key in ("wmape", "wmape_median", "dicee", "dpeaks", "rmse", "r"):
        rows.append(f"{key:<10} {result['before'][key]:9.4f} {result['after'][key]:9.4f}")
    print("\n".join(rows))
    if result["term_scales"]:
        print(
            "term scales (initial mean value of each term, the weights were divided by "
            "them): " + ", ".join(f"{k} {v:.3g}" for k, v in result["term_scales"].items())
        )
    print(f"wrote {result['path']} (trainable: {', '.join(result['trainable'])})")
    return 0


def cmd_sigma_net(args: argparse.Namespace) -> int:
    """Train and calibrate the quantile network of a UNet: its calibrated error bars.

    The training set's first ``--train-n`` samples train the network (its last
    ``--val-n`` of them pick the best epoch); the rest give the conformal factors.
    Writes ``NAME.sigma.keras`` beside ``NAME.keras`` (or ``--out``).
    """
    weights = Path(args.weights)
    out = Path(args.out) if args.out else sigma_net_path(weights)
    _check_output(out, args.overwrite)
    n_total = training_set_length(args.data)
    if not args.val_n < args.train_n < n_total:
        raise ValueError(
            f"{args.data}: {n_total} samples; expected --val-n < --train-n < {n_total} so "
            "that some remain to calibrate on"
        )
    model = load_model(weights)
    fit = np.arange(args.train_n - args.val_n)
    val = np.arange(args.train_n - args.val_n, args.train_n)
    calib = np.arange(args.train_n, n_total)
    t0 = time.perf_counter()

    def report(epoch, row):
        print(
            f"epoch {epoch}/{args.epochs}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f}",
            file=sys.stderr,
            flush=True,
        )

    net = train_sigma_net(
        model, args.data, fit, val, args.epochs, args.batch, args.lr, args.seed, report
    )
    command = (
        f"python -m lensviz sigma-net {args.weights} --data {args.data} --train-n {args.train_n} "
        f"--val-n {args.val_n} --epochs {args.epochs} --batch {args.batch} --lr {args.lr:g} "
        f"--seed {args.seed}"
    )
    shipped = calibrate_sigma_net(
        model,
        net,
        args.data,
        calib,
        file_sha256(weights),
        provenance={
            "command": command,
            "train_samples": len(fit),
            "val_samples": len(val),
            "calibration_samples": len(calib),
            "wall_s": round(time.perf_counter() - t0, 1),
        },
    )
    save_sigma_net(shipped, out)
    q = shipped.error_model
    at = q["scale_nodes"].index(0.5) if 0.5 in q["scale_nodes"] else 0
    print(
        f"wrote {out}: quantile network of {weights.name}; conformal factors at 0.5′ pixels "
        f"q68 {[round(v, 3) for v in q['q68'][0][at]]}, q95 "
        f"{[round(v, 3) for v in q['q95'][0][at]]} at n_gal {q['depth_nodes']}"
    )
    return 0


def unet_method(args: argparse.Namespace) -> PredictMethod:
    """``predict --method unet`` (:data:`lensviz.cli.PREDICT_METHODS`): the UNet of
    ``--weights`` (default the shipped ``lite.keras``), a tally of the samples outside its
    training domain; ``--uncertainty calibrated``: its calibrated error bars (its quantile
    network, ``NAME.sigma.keras``); ``mc_dropout`` or ``tta``: the mean and spread of
    ``--passes`` passes, the model's own spread (uncalibrated: not an error bar)."""
    weights = args.weights or default_weights()
    if weights is None:
        raise FileNotFoundError("no --weights given and weights/lite.keras not found")
    predictor = unet_predictor(weights)
    domain = training_domain(predictor.model)
    grid = data_grid(args.data, args.pixel_arcmin)
    tally = None if domain is None else DomainTally(domain, grid.pixel_arcmin)
    attrs = {"method": "unet", "weights": Path(weights).name}
    if args.uncertainty == "calibrated":
        attrs["uncertainty"] = "calibrated"
        predictor = errorbar_predictor(predictor.model, load_sigma_net(weights))
    elif args.uncertainty:  # mean and σ instead of one pass
        attrs.update(
            uncertainty=f"{args.uncertainty} (uncalibrated model spread)", passes=args.passes
        )
        spread = partial(
            predict_uncertainty, predictor.model, method=args.uncertainty, n_passes=args.passes
        )

        def predictor(eps, pixel_arcmin=None):  # the spread is taken at the model's own scale
            return spread(eps)

    return PredictMethod(predictor, attrs, tally)


# === Keras Tuner ===


def cmd_tune(args: argparse.Namespace) -> int:
    """Bayesian search (Keras Tuner) with early stopping, objective ``val_score``.

    The search space and the objective are :mod:`lensviz.nn.tuning`'s.
    """
    try:  # the optional extra: only this command needs it
        import keras_tuner as kt
        import tensorboard  # noqa: F401  (Keras Tuner needs it with TensorFlow)
    except ModuleNotFoundError:
        raise RuntimeError(
            "Keras Tuner is not installed; install the optional extra with "
            "`pip install 'keras-tuner[bayesian]' tensorboard` "
            "(or `pip install .[tune]`)"
        ) from None

    val_eps, val_kappa = validation_arrays(args.val_n)
    sigma, _ = choose_ks93_sigma(val_eps, val_kappa)
    ks = summarize_metrics(val_kappa, ks93_predictor(sigma)(val_eps))

    tuner = kt.BayesianOptimization(
        tuner_hypermodel(args.base_preset),
        objective=kt.Objective(OBJECTIVE, "min"),
        max_trials=args.trials,
        seed=args.seed,
        directory=args.out,
        project_name="lensviz",
        overwrite=False,
    )

    t0 = time.perf_counter()
    tuner.search(
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        verbose=0,
        callbacks=[
            ScoredValidation(val_eps, val_kappa, ks),
            keras.callbacks.EarlyStopping(monitor=OBJECTIVE, mode="min", patience=args.patience),
        ],
    )
    trials = [t for t in tuner.oracle.get_best_trials(args.trials) if t.score is not None]
    if not trials:
        raise RuntimeError(f"no tuning trial finished; see the trial logs under {args.out}")
    best = trials[0].hyperparameters.values
    result = {
        "best_hyperparameters": best,
        "ks93_smoothed_reference": ks,
        "ks93_sigma_px": sigma,
        "wall_time_s": time.perf_counter() - t0,
        "trials": [
            {"id": t.trial_id, "score": t.score, "hyperparameters": t.hyperparameters.values}
            for t in trials
        ],
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "best.json").write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result["best_hyperparameters"], indent=1, default=float))
    print(f"wrote {Path(args.out) / 'best.json'}")
    return 0
