"""Model commands: ``train``, ``finetune``, ``predict``, ``tune``.

Registered in :data:`lensviz.cli.COMMANDS` as ``"lensviz.cli.model:cmd_…"`` strings, so
TensorFlow is imported only when one of these commands runs. Keras Tuner (the optional
``tune`` extra) is imported by ``tune`` alone, inside :func:`cmd_tune` and
:func:`lensviz.nn.tuning.tuner_hypermodel` (the search space), so the other commands work
without it.
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

from lensviz import data
from lensviz.cli import _check_output, _progress
from lensviz.cli.data import iter_data, read_ahead
from lensviz.cli.fields import read_field
from lensviz.constants import FITS_SUFFIXES
from lensviz.data import PredictionWriter
from lensviz.depth import DomainTally
from lensviz.evaluation import (
    choose_ks93_sigma,
    default_weights,
    ks93_predictor,
    wiener_predictor,
)
from lensviz.fields import field_mask
from lensviz.loss_weights import check_coeffs
from lensviz.nn.inference import training_domain, unet_predictor
from lensviz.nn.training import (
    FinetuneConfig,
    TrainConfig,
    finetune,
    summarize_metrics,
    train,
    validation_arrays,
)
from lensviz.nn.tuning import OBJECTIVE, ScoredValidation, tuner_hypermodel
from lensviz.nn.uncertainty import predict_uncertainty

__all__ = [
    "cmd_train",
    "cmd_finetune",
    "cmd_predict",
    "cmd_tune",
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
        model_overrides={"with_ks93": True} if args.with_ks93 else {},
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


def _tallied(batches, tally: DomainTally):
    """``batches``, each counted by ``tally`` (outside the training domain) on the way."""
    try:
        for batch in batches:
            tally.add(batch[0])
            yield batch
    finally:
        if hasattr(batches, "close"):
            batches.close()


def _predict_fits_field(args, out: Path, predictor, attrs: dict, tally) -> int:
    """``predict`` of one field to FITS: κ with the input's WCS cards and its mask."""
    field = read_field(args.data)
    if field is None:
        raise ValueError(
            f"--out {out.name}: a FITS output holds one field's κ; DATA must be cosmos, "
            f"fits:G1,G2,… or a .fits field file, got {args.data!r} (write .h5 for the rest)"
        )
    if args.uncertainty:
        raise ValueError("--uncertainty writes kappa_std beside κ: use an .h5 output")
    t0 = time.perf_counter()
    if tally is not None:
        tally.add(field.eps[None])
    kappa = predictor(field.eps[None])[0]
    cards = {k: ("depth rule" if v is None else v) for k, v in attrs.items()}
    data.write_kappa_fits(
        out, kappa, field.header, field.mask, overwrite=args.overwrite, attrs=cards
    )
    for line in [] if tally is None else tally.warnings():
        print(f"warning: {line}", file=sys.stderr)
    ny, nx = kappa.shape
    print(
        f"wrote {out}: the {ny} × {nx} κ map of {args.data} ({args.method}) in "
        f"{time.perf_counter() - t0:.1f} s, with its WCS and a MASK extension "
        f"({int(field.mask.sum())} pixels without galaxies)"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict κ for DATA with one method; writes ``kappa_pred`` and ``names`` in input order.

    Streams: a background thread reads the next batches (:func:`lensviz.cli.data.read_ahead`)
    while the current one is predicted and appended to the output
    (:class:`lensviz.data.PredictionWriter`), so memory holds a few batches whatever the
    number of maps, and the output appears, complete, only when every map is written.

    There is no ``--resume``. The output exists only once complete (a failed run deletes
    its temporary), and keeping a partial file to resume from would need a check that the
    data, method, weights and options are the same as in the run that wrote it, which
    costs more than it saves: a rerun of a 76,000-map challenge set takes 30-45 s with
    KS93 and 5-8 min with the UNet on a 2-core CPU (``benchmarks/scale.json``), far less
    on a GPU. To split a very long job, predict parts of the data (``--n``, or split
    files) into separate outputs.
    """
    out = Path(args.out)
    _check_output(out, args.overwrite)
    if args.uncertainty and args.method != "unet":
        raise ValueError(f"--uncertainty needs --method unet, got --method {args.method}")
    tally = None
    if args.method == "wiener":
        predictor = wiener_predictor(None, args.pad)
        attrs = {"method": "wiener", "pad_px": args.pad}
    elif args.method == "unet":
        weights = args.weights or default_weights()
        if weights is None:
            raise FileNotFoundError("no --weights given and weights/lite.keras not found")
        predictor = unet_predictor(weights)
        domain = training_domain(predictor.model)
        tally = None if domain is None else DomainTally(domain)
        attrs = {"method": "unet", "weights": str(weights)}
        if args.uncertainty:  # mean and σ instead of one pass
            attrs.update(uncertainty=args.uncertainty, passes=args.passes)
            predictor = partial(
                predict_uncertainty, predictor.model, method=args.uncertainty, n_passes=args.passes
            )
    else:
        predictor = ks93_predictor(args.sigma, args.pad)
        attrs = {"method": "ks93", "sigma_px": args.sigma, "pad_px": args.pad}
    attrs["data"] = args.data
    if out.suffix.lower() in FITS_SUFFIXES:
        return _predict_fits_field(args, out, predictor, attrs, tally)
    total, batches = iter_data(args.data, args.batch, args.n)
    writer = PredictionWriter(
        out,
        overwrite=args.overwrite,
        dtype=args.dtype,
        compression=None if args.compression == "none" else args.compression,
        attrs=attrs,
    )
    if tally is not None:  # checked in the reading thread, off the model's path
        batches = _tallied(batches, tally)
    t0 = time.perf_counter()
    bar = _progress(total, f"predict ({args.method})")
    with read_ahead(batches) as batches, writer, bar:
        for eps, _, names in batches:
            result = predictor(eps)
            std = None
            if isinstance(result, tuple):
                result, std = result
            writer.append(result, names, std, field_mask(eps))
            bar.update(len(eps))
        if tally is not None:
            writer.update_attrs({"outside_training_domain": tally.n_outside})
    wall = time.perf_counter() - t0
    for line in [] if tally is None else tally.warnings():
        print(f"warning: {line}", file=sys.stderr)
    print(
        f"wrote {out}: {writer.n_written} map{'' if writer.n_written == 1 else 's'} "
        f"({args.method}) in {wall:.1f} s, "
        f"{writer.n_written / wall:.0f} maps/s"
    )
    return 0


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
