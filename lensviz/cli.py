"""Command line interface: ``python -m lensviz <command> ...`` (or ``lensviz <command>``).

Commands
--------
convert SRC OUT.h5
    Pack a challenge folder (or anything :func:`lensviz.data.load_dataset` reads) into
    one HDF5 file.
simulate --n N --out OUT [--n-gal G | --survey NAME | --mix] [--sigma-e S]
         [--isolated] [--masks]
    Simulate samples into an HDF5 file (``OUT`` ending in ``.h5``/``.hdf5``) or a
    challenge folder, at a given depth or the training depth mix.
conventions DATA
    Find the sign/axis convention of a dataset's ε (KS93 vs κ correlation).
evaluate DATA
    Score raw and smoothed KS93 with the challenge metrics.

``DATA`` is a challenge folder, ``.h5``/``.hdf5``, ``.npz`` or ``.npy`` file, or
``sim:N[:SEED][@DEPTH]`` for N simulated samples from seed SEED (default
``constants.TEST_SEED_START``) at depth DEPTH: a survey preset of
``constants.SURVEYS`` (``des``, ``lsst``, ``deep``, ``noise-free``), a number of
galaxies per arcmin², ``inf`` (no shape noise) or ``mix`` (the training depth mix);
default the ``lsst`` depth. Examples: ``sim:150``, ``sim:150:3000@des``,
``sim:150@inf``, ``sim:256:500000@mix``.

Bad input prints one line ``error: ...`` to stderr and exits with status 2
(``--traceback`` shows the traceback instead). Every output is written atomically.

Adding a command
----------------
Write ``def cmd_name(args: argparse.Namespace) -> int`` and add one ``Command`` line to
:data:`COMMANDS` listing its arguments with :func:`arg`. ``run`` may be given as the
string ``"module:function"``, which is imported only when that command runs (keeps
``--help`` fast and TensorFlow out of commands that do not need it).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensviz import constants
from lensviz._atomic import write_text

__all__ = ["Command", "arg", "COMMANDS", "build_parser", "main", "load_data", "iter_data"]

ERROR_STATUS = 2  # exit status for bad input (argparse uses 2 too)
INTERRUPT_STATUS = 130  # exit status after Ctrl-C


# === Registry ===


def arg(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    """One argument of a command: the arguments of ``ArgumentParser.add_argument``."""
    return flags, kwargs


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, the function to run, a one-line help and its arguments.

    ``run`` is a callable ``args -> exit status`` or a ``"module:function"`` string
    imported when the command runs.
    """

    name: str
    run: Callable[[argparse.Namespace], int | None] | str
    help: str
    arguments: tuple[tuple[tuple[str, ...], dict], ...] = ()

    def resolve(self) -> Callable[[argparse.Namespace], int | None]:
        if callable(self.run):
            return self.run
        module, _, func = self.run.partition(":")
        return getattr(importlib.import_module(module), func)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {value}")
    return value


def _depth_number(text: str) -> float:
    """A source density for ``--n-gal``: a number > 0 or ``inf``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected galaxies per arcmin² (a number > 0) or inf, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected galaxies per arcmin² (a number > 0) or inf, got {text!r}")
    return value


def _sigma_e(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number ≥ 0, got {value}")
    return value


# === Helpers ===


def _progress(total: int, desc: str, unit: str = "sample"):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None, file=sys.stderr)


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; use --overwrite to replace it")


def _sim_name(seed: int) -> str:
    return f"seed{seed:08d}"


MIX_DEPTH = "mix"  # the DEPTH of a sim: spec that means the training depth mix


@dataclass(frozen=True)
class SimSpec:
    """A parsed ``sim:N[:SEED][@DEPTH]`` data spec.

    ``depth`` is the DEPTH text as given (None: the default depth); :meth:`setup`
    turns it into the simulator's configuration.
    """

    n: int
    seed: int
    depth: str | None = None

    def setup(self):
        """``(SimulationConfig, DepthMix or None)`` of this spec."""
        from lensviz.simulate import DepthMix, SimulationConfig, depth_config

        if self.depth is None:
            return SimulationConfig(), None
        if self.depth.strip().lower() == MIX_DEPTH:
            return SimulationConfig(), DepthMix()
        return depth_config(self.depth), None


def _parse_sim(spec: str) -> SimSpec | None:
    """``sim:N[:SEED][@DEPTH]`` → :class:`SimSpec`; None for anything else.

    Raises ValueError naming the spec if it starts with ``sim:`` but is malformed or
    names an unknown depth.
    """
    if not spec.startswith("sim:"):
        return None
    body, at, depth = spec[4:].partition("@")
    parts = body.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if (len(values) not in (1, 2) or values[0] < 1 or (len(values) == 2 and values[1] < 0)
            or (at and not depth.strip())):
        raise ValueError(f"{spec!r}: expected sim:N[:SEED][@DEPTH] with N ≥ 1, SEED ≥ 0 and "
                         "DEPTH a survey preset, a number, inf or mix")
    sim = SimSpec(values[0], values[1] if len(values) == 2 else constants.TEST_SEED_START,
                  depth if at else None)
    try:
        sim.setup()
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc} (or {MIX_DEPTH})") from None
    return sim


def _iter_simulated(n: int, seed: int, batch: int, config=None, mix=None):
    """Batches of simulated samples; with ``mix``, each sample at the depth it draws."""
    from lensviz.simulate import simulate_batch, simulate_mixed_batch

    for i in range(0, n, batch):
        k = min(batch, n - i)
        if mix is None:
            eps, kappa = simulate_batch(k, seed=seed + i, config=config)
        else:
            eps, kappa, _ = simulate_mixed_batch(k, seed + i, mix, config)
        yield eps, kappa, [_sim_name(seed + i + j) for j in range(k)]


def iter_data(spec: str, batch: int, n: int | None = None
              ) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]]:
    """Batches of a command-line ``DATA`` argument.

    Parameters
    ----------
    spec : str
        A path :func:`lensviz.data.load_dataset` reads, or ``sim:N[:SEED][@DEPTH]``.
    batch : int
        Samples per batch.
    n : int, optional
        Use at most the first ``n`` samples.

    Returns
    -------
    total : int
        Number of samples the batches hold.
    batches : iterator of (eps, kappa or None, names)
    """
    from lensviz import data

    sim = _parse_sim(spec)
    if sim is not None:
        total = sim.n if n is None else min(sim.n, n)
        return total, _iter_simulated(total, sim.seed, batch, *sim.setup())
    total = data.dataset_length(spec)
    total = total if n is None else min(total, n)
    return total, data.iter_dataset(spec, batch, 0, total)


def load_data(spec: str, n: int | None = None, need_kappa: bool = True, batch: int = 256):
    """Load a command-line ``DATA`` argument into memory: ``(eps, kappa, names)``."""
    _, batches = iter_data(spec, batch, n)
    parts = list(batches)
    eps = np.concatenate([p[0] for p in parts])
    kappa = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    if need_kappa and kappa is None:
        raise ValueError(f"{spec}: holds ε only; this command needs true κ as well")
    return eps, kappa, [name for p in parts for name in p[2]]


# === Commands ===


def cmd_convert(args: argparse.Namespace) -> int:
    """Pack a dataset (usually a challenge folder) into one HDF5 file, atomically."""
    from lensviz.data import HDF5_SUFFIXES, HDF5Writer

    out = Path(args.out)
    if out.suffix.lower() not in HDF5_SUFFIXES:
        raise ValueError(f"{out}: the output must end in .h5 or .hdf5")
    _check_output(out, args.overwrite)
    total, batches = iter_data(args.src, args.batch)
    compression = None if args.compression == "none" else args.compression
    writer = HDF5Writer(out, overwrite=args.overwrite, compression=compression,
                        attrs={"source": str(args.src)})
    with writer, _progress(total, "convert") as bar:
        for eps, kappa, names in batches:
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    print(f"wrote {writer.n_written} samples to {out}")
    return 0


def _simulation_setup(args: argparse.Namespace):
    """The ``SimulationConfig`` (and ``DepthMix`` for ``--mix``) of the simulate options."""
    from lensviz.simulate import DepthMix, SimulationConfig, depth_config

    given = [flag for flag, value in (("--n-gal", args.n_gal), ("--survey", args.survey),
                                      ("--mix", args.mix or None)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} cannot be combined: each sets the depth")
    if args.mix and args.masks:
        raise ValueError("--masks and --mix cannot be combined: the mix masks a share of the "
                         "samples itself")
    config = SimulationConfig()
    if args.survey is not None:
        config = depth_config(args.survey, config)
    if args.n_gal is not None:
        config = config.replace(n_gal=args.n_gal)
    if args.sigma_e is not None:
        config = config.replace(sigma_e=args.sigma_e)
    if args.isolated:
        config = config.replace(margin_px=0, halo_kappa_min=0.0)
    if args.masks:
        config = config.replace(masks=True)
    mix = DepthMix(sigma_e=config.sigma_e) if args.mix else None
    return config, mix


def _simulation_attrs(args: argparse.Namespace, config, mix) -> dict:
    """HDF5 file attributes that say how the samples were simulated."""
    attrs = {"source": "lensviz.simulate", "seed_start": args.seed,
             "sigma_e": config.sigma_e, "margin_px": config.margin_px,
             "halo_kappa_min": config.halo_kappa_min, "masks": config.masks,
             "mask_max_fraction": config.mask_max_fraction}
    if mix is None:
        attrs["n_gal"] = config.n_gal
    else:
        attrs["depth_mix"] = json.dumps(
            {"n_gal_range": list(mix.n_gal_range), "noise_free_fraction": mix.noise_free_fraction,
             "masked_fraction": mix.masked_fraction, "sigma_e": mix.sigma_e})
        attrs["n_gal"] = "per sample: lensviz.simulate.mixed_config(seed_start + i, mix).n_gal"
    return attrs


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate samples into an HDF5 file or a challenge folder, atomically."""
    from lensviz.data import HDF5_SUFFIXES, ChallengeDirWriter, HDF5Writer

    config, mix = _simulation_setup(args)
    out = Path(args.out)
    _check_output(out, args.overwrite)
    if out.suffix.lower() in HDF5_SUFFIXES:
        compression = None if args.compression == "none" else args.compression
        writer = HDF5Writer(out, overwrite=args.overwrite, compression=compression,
                            attrs=_simulation_attrs(args, config, mix))
    else:
        writer = ChallengeDirWriter(out, overwrite=args.overwrite)
    with writer, _progress(args.n, "simulate") as bar:
        for eps, kappa, names in _iter_simulated(args.n, args.seed, args.batch, config, mix):
            writer.append(eps, kappa, names)
            bar.update(len(eps))
    depth = "the training depth mix" if mix is not None else f"n_gal {config.n_gal:g}"
    print(f"wrote {writer.n_written} samples (seeds {args.seed}..{args.seed + args.n - 1}, "
          f"{depth}) to {out}")
    return 0


def _variant_label(row: dict) -> str:
    return (f"e1 {'-' if row['negate_e1'] else '+'}  e2 {'-' if row['negate_e2'] else '+'}  "
            f"{'transposed' if row['transpose'] else 'as stored'}")


def cmd_conventions(args: argparse.Namespace) -> int:
    """Report which sign/transpose variant of ε makes KS93 match κ best."""
    from lensviz.evaluation import convention_scores

    eps, kappa, _ = load_data(args.data, args.n)
    rows = convention_scores(eps, kappa, sigma_px=args.sigma)
    print(f"{args.data}: {len(eps)} samples; Pearson r of KS93 (σ = {args.sigma:g} px) "
          "with κ for each variant of ε")
    print(f"   {'variant':<30}  {'mean r':>8}  {'median r':>8}")
    for i, row in enumerate(rows):
        mark = "*" if i == 0 else " "
        note = "  (lensviz convention)" if row["identity"] else ""
        print(f" {mark} {_variant_label(row):<30}  {row['mean_r']:8.4f}  "
              f"{row['median_r']:8.4f}{note}")
    best = rows[0]
    if best["identity"]:
        print("best: the identity; the data already follows lensviz's convention")
    else:
        fix = ", ".join(f"{k}=True" for k in ("negate_e1", "negate_e2", "transpose") if best[k])
        print(f"best: {_variant_label(best)}, NOT lensviz's convention; convert with "
              f"lensviz.data.apply_convention(eps, {fix})")
    return 0


def _choose_sigma(args: argparse.Namespace) -> dict:
    """σ given on the command line, or chosen on the calibration set."""
    from lensviz.evaluation import calibration_set, choose_ks93_sigma

    if args.sigma is not None:
        return {"sigma_px": args.sigma, "sigma_source": "given with --sigma"}
    sim = _parse_sim(args.data)
    cal0 = constants.CALIBRATION_SEED_START
    if sim is not None and sim.seed < cal0 + args.calibration_n and sim.seed + sim.n > cal0:
        print(f"warning: {args.data} overlaps the calibration seeds "
              f"[{cal0}, {cal0 + args.calibration_n})", file=sys.stderr)
    best, table = choose_ks93_sigma(*calibration_set(args.calibration_n), pad=args.pad)
    return {
        "sigma_px": best,
        "sigma_source": (
            f"chosen on calibration_set(n={args.calibration_n}) (simulated seeds "
            f"{cal0}..{cal0 + args.calibration_n - 1}, disjoint from the test seeds) "
            "as the candidate with the lowest mean RMSE"
        ),
        "calibration_mean_rmse": {f"{s:g}": v for s, v in table.items()},
    }


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score KS93 raw and smoothed on DATA; print a table, optionally write JSON."""
    from lensviz.evaluation import (
        N_BOOTSTRAP,
        format_table,
        ks93_predictor,
        score_methods,
        summarize,
    )

    json_path = None if args.json is None else Path(args.json)
    if json_path is not None and not json_path.absolute().parent.is_dir():
        raise FileNotFoundError(f"{json_path}: the folder {json_path.parent} does not exist")
    total, batches = iter_data(args.data, args.batch, args.n)
    first = next(batches)  # read (and check) the data before spending time on σ
    if first[1] is None:
        raise ValueError(f"{args.data}: holds ε only; evaluate needs true κ as well")
    sigma = _choose_sigma(args)
    predictors = {
        "ks93_raw": ks93_predictor(0.0, args.pad),
        "ks93_smoothed": ks93_predictor(sigma["sigma_px"], args.pad),
    }
    predictors.update(_model_predictors(args))
    per_map: dict[str, dict[str, list]] = {}
    names: list[str] = []
    with _progress(total, "evaluate") as bar:
        for eps, kappa, batch_names in itertools.chain([first], batches):
            if kappa is None:
                raise ValueError(f"{args.data}: holds ε only; evaluate needs true κ as well")
            for meth, scores in score_methods(eps, kappa, predictors).items():
                for met, values in scores.items():
                    per_map.setdefault(meth, {}).setdefault(met, []).append(values)
            names.extend(batch_names)
            bar.update(len(eps))
    per_map_arrays = {m: {k: np.concatenate(v) for k, v in s.items()} for m, s in per_map.items()}
    summary = summarize(per_map_arrays, n_boot=N_BOOTSTRAP, seed=args.seed)
    print(f"{args.data}: {len(names)} maps; KS93 pad {args.pad} px; smoothed with "
          f"σ = {sigma['sigma_px']:g} px ({sigma['sigma_source']})")
    print(format_table(summary))
    if json_path is not None:
        result = {
            "data": args.data,
            "n_maps": len(names),
            **sigma,
            "pad_px": args.pad,
            "methods": {m: p.__doc__ for m, p in predictors.items()},
            "bootstrap": {"n_boot": N_BOOTSTRAP, "seed": args.seed},
            "summary": summary,
        }
        if args.per_map:
            result["names"] = names
            result["per_map"] = {m: {k: v.tolist() for k, v in s.items()}
                                 for m, s in per_map_arrays.items()}
        write_text(json_path, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {json_path}")
    return 0


def _model_predictors(args: argparse.Namespace) -> dict:
    """The Wiener filter (shipped power spectrum) and the UNet of ``--weights``."""
    from lensviz.evaluation import (
        default_power_spectrum,
        default_weights,
        unet_predictor,
        wiener_predictor,
    )

    out = {}
    if not args.no_wiener:
        if default_power_spectrum() is None:
            print("note: weights/kappa_power.npz not found; skipping the Wiener filter",
                  file=sys.stderr)
        else:
            out["wiener"] = wiener_predictor(None, args.pad)
    if not args.no_unet:
        weights = args.weights or default_weights()
        if weights is None:
            print("note: no --weights given and weights/lite.keras not found; skipping the "
                  "UNet", file=sys.stderr)
        else:
            out["unet"] = unet_predictor(weights)
    return out


_DATA_HELP = ("challenge folder, .h5/.hdf5, .npz or .npy file, or sim:N[:SEED][@DEPTH] for N "
              f"simulated samples (default SEED {constants.TEST_SEED_START}); DEPTH is a "
              f"survey ({', '.join(constants.SURVEYS)}), galaxies per arcmin², inf (no shape "
              f"noise) or {MIX_DEPTH} (the training depth mix); default "
              f"{constants.DEFAULT_SURVEY}")

COMMANDS: tuple[Command, ...] = (
    Command("convert", cmd_convert, "pack a challenge folder (EPSILON/, KAPPA/) into HDF5", (
        arg("src", help="challenge folder (or any dataset lensviz reads)"),
        arg("out", help="output file, .h5 or .hdf5"),
        arg("--batch", type=_positive_int, default=256, help="samples per read (default 256)"),
        arg("--compression", choices=("gzip", "lzf", "none"), default="gzip",
            help="HDF5 filter (default gzip level 4, with shuffle)"),
        arg("--overwrite", action="store_true", help="replace OUT if it exists"),
    )),
    Command("simulate", cmd_simulate, "simulate samples into HDF5 or a challenge folder", (
        arg("--n", type=_positive_int, required=True, help="number of samples"),
        arg("--seed", type=_non_negative_int, default=constants.TEST_SEED_START,
            help=f"seed of the first sample (default {constants.TEST_SEED_START}, the test "
                 f"range; training uses ≥ {constants.TRAIN_SEED_START})"),
        arg("--out", required=True, help="OUT.h5/.hdf5 for HDF5, anything else for a folder"),
        arg("--n-gal", type=_depth_number, default=None, metavar="G",
            help="source galaxies per arcmin², or inf for no shape noise (default "
                 f"{constants.N_GAL_ARCMIN2:g}); not with --survey or --mix"),
        arg("--survey", choices=tuple(constants.SURVEYS), default=None,
            help="a named survey depth (sets n_gal and sigma_e): "
                 + "; ".join(f"{s.name}: {s.label}" for s in constants.SURVEYS.values())),
        arg("--mix", action="store_true",
            help="the training depth mix: each sample's n_gal log-uniform in "
                 f"{constants.MIX_N_GAL_RANGE[0]:g}-{constants.MIX_N_GAL_RANGE[1]:g} or no "
                 f"noise ({constants.MIX_NOISE_FREE_FRACTION * 100:g}%%), "
                 f"{constants.MIX_MASKED_FRACTION * 100:g}%% masked, drawn from its seed; "
                 "sample i's n_gal is lensviz.simulate.mixed_config(SEED + i).n_gal"),
        arg("--sigma-e", type=_sigma_e, default=None,
            help=f"intrinsic ellipticity dispersion per component (default {constants.SIGMA_E})"),
        arg("--isolated", action="store_true",
            help="an isolated field with no mass outside it (no canvas margin, untruncated "
                 "halos: the samples of earlier lensviz versions)"),
        arg("--masks", action="store_true",
            help="random bright-star discs and stripes on up to "
                 f"{constants.SIM_MASK_MAX_FRACTION * 100:g}%% of each field (empty pixels)"),
        arg("--batch", type=_positive_int, default=64, help="samples per batch (default 64)"),
        arg("--compression", choices=("gzip", "lzf", "none"), default="gzip",
            help="HDF5 filter (default gzip; 'none' reads fastest when training on CPU)"),
        arg("--overwrite", action="store_true", help="replace OUT if it exists"),
    )),
    Command("conventions", cmd_conventions, "find the sign/axis convention of a dataset's ε", (
        arg("data", help=_DATA_HELP),
        arg("--n", type=_positive_int, default=32, help="samples to use (default 32)"),
        arg("--sigma", type=_non_negative_float, default=2.0,
            help="KS93 smoothing σ in pixels (default 2)"),
    )),
    Command("evaluate", cmd_evaluate, "score the UNet, raw KS93 and smoothed KS93 with the "
            "challenge metrics", (
        arg("data", help=_DATA_HELP),
        arg("--weights", default=None,
            help="UNet .keras file (default: the shipped weights/lite.keras)"),
        arg("--no-unet", action="store_true", help="do not score the UNet"),
        arg("--no-wiener", action="store_true", help="do not score the Wiener filter"),
        arg("--n", type=_positive_int, default=None, help="use the first N samples (default all)"),
        arg("--sigma", type=_non_negative_float, default=None,
            help="smoothing σ in pixels (default: chosen on the calibration set)"),
        arg("--calibration-n", type=_positive_int, default=200,
            help="calibration samples for choosing σ (default 200)"),
        arg("--pad", type=_non_negative_int, default=0,
            help="KS93 zero-padding per side, pixels (default 0)"),
        arg("--json", default=None, help="also write the results to this JSON file"),
        arg("--per-map", action="store_true", help="include per-map values in the JSON"),
        arg("--batch", type=_positive_int, default=256, help="samples per batch (default 256)"),
        arg("--seed", type=int, default=0, help="bootstrap seed (default 0)"),
    )),
    Command("predict", "lensviz.cli_model:cmd_predict",
            "predict κ maps with the UNet or KS93 and write them to HDF5", (
        arg("data", help=_DATA_HELP),
        arg("--method", choices=("unet", "ks93", "wiener"), default="unet"),
        arg("--weights", default=None, help="UNet .keras file (default: weights/lite.keras)"),
        arg("--sigma", type=_non_negative_float, default=0.0,
            help="KS93 smoothing σ in pixels (default 0: raw)"),
        arg("--pad", type=_non_negative_int, default=0, help="KS93 zero-padding, pixels"),
        arg("--n", type=_positive_int, default=None, help="use the first N samples"),
        arg("--batch", type=_positive_int, default=256, help="samples per batch"),
        arg("--uncertainty", choices=("mc_dropout", "tta"), default=None,
            help="UNet only: also write kappa_std, by Monte-Carlo dropout or by the 8 "
                 "symmetries; kappa_pred is then the mean"),
        arg("--passes", type=_positive_int, default=20, help="Monte-Carlo dropout passes"),
        arg("--out", required=True, help="output PRED.h5 (kappa_pred, names)"),
        arg("--overwrite", action="store_true", help="replace OUT if it exists"),
    )),
    Command("calibrate", "lensviz.cli_model:cmd_calibrate",
            "check UNet uncertainty maps: share of true pixels within ±1σ and ±2σ", (
        arg("data", help=_DATA_HELP),
        arg("--weights", default=None, help="UNet .keras file (default: weights/lite.keras)"),
        arg("--method", choices=("mc_dropout", "tta"), default="mc_dropout"),
        arg("--passes", type=_positive_int, default=20),
        arg("--n", type=_positive_int, default=100, help="maps to use (default 100)"),
        arg("--json", default=None, help="also write the results (with the curve) to JSON"),
    )),
    Command("powerspec", "lensviz.cli_model:cmd_powerspec",
            "estimate the κ power spectrum of simulated maps (the Wiener filter's S)", (
        arg("--n", type=_positive_int, default=2000, help="simulated maps (default 2000)"),
        arg("--seed", type=_non_negative_int, default=constants.TRAIN_SEED_START + 90_000_000,
            help="first simulator seed (default: a training-side range, disjoint from tests)"),
        arg("--bins", type=_positive_int, default=48, help="|k| bins (default 48)"),
        arg("--out", required=True, help="output .npz"),
    )),
    Command("card", "lensviz.cli_model:cmd_card",
            "write the model card of a .keras file (JSON + Markdown)", (
        arg("weights", help=".keras file"),
        arg("--run", default=None, help="its training run folder (config/summary/history)"),
        arg("--n", type=_positive_int, default=500, help="test maps (default 500)"),
        arg("--command", default=None, help="the exact command that produced the weights"),
        arg("--variant", action="append", default=[], metavar="NAME=PATH",
            help="also score another .keras file on the same test set"),
        arg("--out", required=True, help="output stem: writes STEM.json and STEM.md"),
    )),
    Command("train", "lensviz.cli_model:cmd_train", "train a UNet preset from scratch", (
        arg("--preset", default="lite", help="model preset: lite, paper or unet2k"),
        arg("--out", required=True, help="run folder (model.keras, history.csv/json, ...)"),
        arg("--loss", default="multifocal", choices=("mse", "focal", "multifocal", "combined")),
        arg("--coeffs", default=None, help="MultiFocal coefficients, e.g. focal=1,local=2,"
            "peaks=3,structure=1.5,edges=1 (default: the report's)"),
        arg("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)"),
        arg("--batch", type=_positive_int, default=8, help="batch size (default 8)"),
        arg("--epochs", type=_positive_int, default=20),
        arg("--steps", type=_positive_int, default=200, help="steps per epoch (default 200)"),
        arg("--train-data", default=None, help="HDF5 to stream (default: simulate on the fly)"),
        arg("--train-seed", type=_non_negative_int, default=constants.TRAIN_SEED_START,
            help=f"first simulator seed (default {constants.TRAIN_SEED_START})"),
        arg("--val-data", default=None, help="validation HDF5 (default: simulated)"),
        arg("--val-n", type=_positive_int, default=256, help="validation maps (default 256)"),
        arg("--patience", type=_non_negative_int, default=5, help="early-stopping patience"),
        arg("--with-ks93", action="store_true", help="add the KS93 input channel"),
        arg("--no-augment", action="store_true", help="no random spin-2 symmetries"),
        arg("--devices", default=None, help="comma-separated devices for MirroredStrategy"),
        arg("--seed", type=int, default=0),
    )),
    Command("finetune", "lensviz.cli_model:cmd_finetune",
            "fine-tune saved weights with the Combined loss (report §4.2)", (
        arg("--weights", required=True, help="starting .keras weights"),
        arg("--out", required=True, help="output .keras file (written only on success)"),
        arg("--loss", default="combined", choices=("mse", "focal", "multifocal", "combined")),
        arg("--coeffs", default=None, help="MultiFocal coefficients, as for train"),
        arg("--w-multifocal", type=_non_negative_float, default=0.95),
        arg("--w-wmape", type=_non_negative_float, default=0.05),
        arg("--w-dicee", type=_non_negative_float, default=0.0),
        arg("--w-dpeaks", type=_non_negative_float, default=0.0),
        arg("--raw-term-weights", action="store_true",
            help="use the term weights as they are; by default each Combined term is first "
                 "divided by its initial value, so the weights are shares of the loss"),
        arg("--which", choices=("last", "decoder", "all"), default="last",
            help="what trains (default: the last layer, as in the report)"),
        arg("--epochs", type=_positive_int, default=2),
        arg("--n", type=_positive_int, default=512, help="training samples per epoch"),
        arg("--lr", type=float, default=1e-4),
        arg("--batch", type=_positive_int, default=8),
        arg("--train-data", default=None, help="HDF5 to train on (default: simulated)"),
        arg("--val-n", type=_positive_int, default=64),
        arg("--seed", type=int, default=0),
    )),
    Command("tune", "lensviz.cli_model:cmd_tune",
            "Bayesian hyperparameter search with Keras Tuner (optional extra)", (
        arg("--out", required=True, help="tuner folder"),
        arg("--trials", type=_positive_int, default=10),
        arg("--epochs", type=_positive_int, default=30),
        arg("--steps", type=_positive_int, default=100),
        arg("--val-n", type=_positive_int, default=128),
        arg("--patience", type=_non_negative_int, default=3),
        arg("--base-preset", default="lite"),
        arg("--seed", type=int, default=0),
    )),
    Command("bench", "lensviz.cli_model:cmd_bench",
            "run the benchmarks and write JSON (medians and ratios)", (
        arg("--only", nargs="*", default=None,
            help="benchmarks to run (ks93 metrics simulate inference training app)"),
        arg("--out", default="benchmarks/results.json", help="JSON output"),
        arg("--quick", action="store_true", help="smaller sizes, for a smoke run"),
    )),
)


def build_parser(commands: tuple[Command, ...] = COMMANDS) -> argparse.ArgumentParser:
    """The argparse parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m lensviz",
        description="lensviz: weak-lensing mass mapping (KS93, Wiener, UNet).",
    )
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        for flags, kwargs in command.arguments:
            p.add_argument(*flags, **kwargs)
        p.set_defaults(_command=command)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ERROR_STATUS
    try:
        return int(args._command.resolve()(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted; no output was written", file=sys.stderr)
        return INTERRUPT_STATUS
    except BrokenPipeError:  # stdout closed early, e.g. piped into `head`
        _silence_stdout()
        return 1
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        if args.traceback:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return ERROR_STATUS
