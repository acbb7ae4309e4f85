"""Command line interface: ``python -m lensviz <command> ...`` (or ``lensviz <command>``).

Commands, by domain (one module each)
-------------------------------------
:mod:`lensviz.cli.data`
    ``convert`` (a challenge folder into one HDF5 file), ``simulate`` (samples into HDF5
    or a challenge folder), ``conventions`` (the sign/axis convention of a dataset's ε);
    and the data specs every command reads (:func:`lensviz.cli.data.iter_data`).
:mod:`lensviz.cli.evaluate`
    ``evaluate`` (KS93, Wiener and the UNet with the challenge metrics), ``calibrate``
    (coverage of UNet uncertainty maps), ``card`` (model cards), ``powerspec`` (the κ
    power spectrum of the Wiener filter).
:mod:`lensviz.cli.predict`
    ``predict`` (κ maps of any data by one method, to HDF5 or one field's FITS). Each
    method's predictor is named in :data:`PREDICT_METHODS` and imported when it runs:
    KS93 and the Wiener filter never load TensorFlow, the UNet's comes from
    :mod:`lensviz.cli.model`.
:mod:`lensviz.cli.model`
    ``train``, ``finetune``, ``tune`` (Keras Tuner, an optional extra), and the UNet of
    ``predict``.

``DATA`` is a challenge folder, ``.h5``/``.hdf5``, ``.npz`` or ``.npy`` file, or
``sim:N`` / ``sim:N:SEED`` for N simulated samples from seed SEED (default
``constants.TEST_SEED_START``).

Bad input prints one line ``error: ...`` to stderr and exits with status 2
(``--traceback`` shows the traceback instead). Every output is written atomically.

Adding a command
----------------
Write ``def cmd_name(args: argparse.Namespace) -> int`` in the module of its domain and
add one ``Command`` line to :data:`COMMANDS` listing its arguments with :func:`arg`.
``run`` is the string ``"module:function"``: the registry resolves it with
:mod:`importlib` (:func:`resolve`) only when that command runs, so ``--help`` stays
fast and the data commands never load TensorFlow. (A callable is accepted too.) This
module imports none of the command modules; they import their shared helpers from it.

The usage line names the program as it was started: ``lensviz`` (the installed script,
:func:`main`'s default) or ``python -m lensviz`` (:mod:`lensviz.__main__`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lensviz import _native_logs, constants

__all__ = ["Command", "arg", "resolve", "COMMANDS", "PREDICT_METHODS", "build_parser", "main"]

ERROR_STATUS = 2  # exit status for bad input (argparse uses 2 too)
INTERRUPT_STATUS = 130  # exit status after Ctrl-C
PROG = "lensviz"  # the program name in usage lines: the installed script's


# === Registry ===


def arg(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    """One argument of a command: the arguments of ``ArgumentParser.add_argument``."""
    return flags, kwargs


def resolve(spec: str) -> Callable:
    """The function named by ``"module:function"``, its module imported now.

    The one way the command line defers an import: commands (:class:`Command`) and the
    methods of ``predict`` (:data:`PREDICT_METHODS`) are named this way.
    """
    module, _, func = spec.partition(":")
    with _native_logs.captured():  # the module may import TensorFlow: keep its chatter
        return getattr(importlib.import_module(module), func)


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
        return self.run if callable(self.run) else resolve(self.run)


def _number(parse: type, accept: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: ``parse(text)`` (int or float) when ``accept`` takes the value."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            shown = text if value is None or parse is float else value
            raise argparse.ArgumentTypeError(f"expected {expected}, got {shown!r}")
        return value

    convert.__name__ = expected  # argparse names the type in its own messages
    return convert


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer ≥ 0")
_non_negative_float = _number(float, lambda v: np.isfinite(v) and v >= 0, "a finite number ≥ 0")
_positive_float = _number(float, lambda v: np.isfinite(v) and v > 0, "a finite number > 0")
#: A source density for ``--n-gal``: a number > 0 or ``inf``.
_depth_number = _number(float, lambda v: v > 0, "galaxies per arcmin² (a number > 0) or inf")
_sigma_e = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
#: A pixel side [arcmin]; the data layer checks its bounds when it is used
#: (:func:`lensviz.data.sky.check_pixel_arcmin`), so --help does not load the readers.
_pixel_arcmin = _number(float, lambda v: np.isfinite(v) and v > 0, "a pixel side in arcmin > 0")


_field_side = _number(
    int,
    lambda v: constants.SIM_MIN_SIDE_PX <= v <= constants.SIM_MAX_SIDE_PX,
    f"a field side in pixels from {constants.SIM_MIN_SIDE_PX} to {constants.SIM_MAX_SIDE_PX}",
)


def _pixel_scales(text: str) -> tuple[float, ...]:
    """Comma-separated pixel sides [arcmin], increasing, each as :data:`_pixel_arcmin`."""
    values = tuple(_pixel_arcmin(part.strip()) for part in text.split(","))
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise argparse.ArgumentTypeError(f"expected increasing pixel sides, got {text!r}")
    return values


def _keras_file(text: str) -> str:
    """A ``.keras`` file that exists and is a zip archive (what Keras writes): checked
    before any command imports TensorFlow."""
    path = Path(text)
    if path.suffix.lower() != ".keras":
        raise argparse.ArgumentTypeError(f"expected a .keras file, got {text!r}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not zipfile.is_zipfile(path):
        raise argparse.ArgumentTypeError(
            f"{text}: not a zip archive; a .keras file is the zip archive that Keras "
            "writes (model.save), so this one is truncated or something else renamed"
        )
    return text


_HDF5 = (".h5", ".hdf5")  # lensviz.data.HDF5_SUFFIXES, named here without importing h5py


def _output(kinds: dict[str, tuple[str, ...]], folder: str | None = None):
    """An argparse type: an output path ending in one of the suffixes of ``kinds``
    (``{what it holds: suffixes}``), or, where the command writes ``folder``, a name
    without a suffix (or ending in ``/``, to keep a dot in a folder's name).

    Any other name is an error that lists the accepted suffixes, given before the
    command runs, so nothing is created.
    """
    accepted = tuple(suffix for suffixes in kinds.values() for suffix in suffixes)
    expected = " or ".join(f"{'/'.join(suffixes)} ({what})" for what, suffixes in kinds.items())
    if folder is not None:
        expected += f", or a folder name without a suffix, or ending in /, for {folder}"

    def convert(text: str) -> str:
        path = Path(text)
        if path.suffix.lower() in accepted:
            return text
        if folder is not None and (not path.suffix or text.endswith(("/", os.sep))):
            return text
        raise argparse.ArgumentTypeError(f"expected an output ending in {expected}, got {text!r}")

    convert.__name__ = "output"  # argparse names the type in its own messages
    return convert


_hdf5_output = _output({"HDF5": _HDF5})
_prediction_output = _output(
    {"HDF5, any data": _HDF5, "FITS, one field's κ": constants.FITS_SUFFIXES}
)
_simulate_output = _output({"HDF5": _HDF5}, folder="a challenge folder (EPSILON/, KAPPA/)")
_observe_output = _output(
    {"a whole field": (*constants.FITS_SUFFIXES, ".npz", *_HDF5)},
    folder="a challenge folder of its 128 x 128 tiles",
)
_npz_output = _output({"NumPy archive": (".npz",)})
_keras_output = _output({"Keras model": (".keras",)})
_json_output = _output({"JSON file": (".json",)})


# === Helpers shared by the command modules ===


def _progress(total: int, desc: str, unit: str = "sample"):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None, file=sys.stderr)


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace ``out`` unless ``--overwrite`` was given."""
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; use --overwrite to replace it")


# === Commands ===

#: The training losses (lensviz.nn.losses.LOSSES) and what each one is.
_LOSSES = ("mse", "focal", "multifocal", "combined")
_LOSS_HELP = (
    "mse; focal, MSE weighted by 1 + |κ|/max|κ| (Hong et al. 2021); multifocal, MSE weighted "
    "by 1 + w, w the mean of the focal, local, peaks, structure and edges weight maps "
    "weighted by --coeffs (report §3.1); combined, multifocal plus the WMAPE, soft-DICEE and "
    "peak-shift terms weighted by --w-multifocal, --w-wmape, --w-dicee and --w-dpeaks "
    "(report §3.2)"
)

_DATA_HELP = (
    "challenge folder, .h5/.hdf5, .npz, .npy or .fits file, or sim:N[:SEED][@DEPTH] for N "
    f"simulated samples (default SEED {constants.TEST_SEED_START}); DEPTH is a "
    f"survey ({', '.join(constants.SURVEYS)}), galaxies per arcmin², inf (no shape "
    f"noise) or mix (the training depth mix); default {constants.DEFAULT_SURVEY}; or cosmos "
    "(the real COSMOS field, shipped) or fits:G1,G2,counts=N[,mask=M][,sigma_e=S] "
    "(or sigma=S instead of counts) for separate FITS images"
)

#: The methods of ``predict``: the ``"module:function"`` that builds each one's predictor
#: (``args -> lensviz.cli.predict.PredictMethod``), imported when the command runs, so
#: KS93 and the Wiener filter never load TensorFlow.
PREDICT_METHODS = {
    "unet": "lensviz.cli.model:unet_method",
    "ks93": "lensviz.cli.predict:ks93_method",
    "wiener": "lensviz.cli.predict:wiener_method",
}

COMMANDS: tuple[Command, ...] = (
    Command(
        "convert",
        "lensviz.cli.data:cmd_convert",
        "pack a challenge folder (EPSILON/, KAPPA/) into HDF5",
        (
            arg("src", help="challenge folder (or any dataset lensviz reads)"),
            arg("out", type=_hdf5_output, help="output file, .h5 or .hdf5"),
            arg("--batch", type=_positive_int, default=256, help="samples per read (default 256)"),
            arg(
                "--compression",
                choices=("gzip", "lzf", "none"),
                default="gzip",
                help="HDF5 filter (default gzip level 4, with shuffle)",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "simulate",
        "lensviz.cli.data:cmd_simulate",
        "simulate samples into HDF5 or a challenge folder",
        (
            arg("--n", type=_positive_int, required=True, help="number of samples"),
            arg(
                "--seed",
                type=_non_negative_int,
                default=constants.TEST_SEED_START,
                help=f"seed of the first sample (default {constants.TEST_SEED_START}, the test "
                f"range; training uses ≥ {constants.TRAIN_SEED_START})",
            ),
            arg(
                "--out",
                type=_simulate_output,
                required=True,
                help="OUT.h5/.hdf5 for HDF5, or a folder name without a suffix (or ending "
                "in /) for a challenge folder",
            ),
            arg(
                "--n-gal",
                type=_depth_number,
                default=None,
                metavar="G",
                help="source galaxies per arcmin², or inf for no shape noise (default "
                f"{constants.N_GAL_ARCMIN2:g}); not with --survey or --mix",
            ),
            arg(
                "--survey",
                choices=tuple(constants.SURVEYS),
                default=None,
                help="a named survey depth (sets n_gal and sigma_e): "
                + "; ".join(f"{s.name}: {s.label}" for s in constants.SURVEYS.values()),
            ),
            arg(
                "--mix",
                action="store_true",
                help="the training depth mix: each sample's n_gal log-uniform in "
                f"{constants.MIX_N_GAL_RANGE[0]:g}-{constants.MIX_N_GAL_RANGE[1]:g} or no "
                f"noise ({constants.MIX_NOISE_FREE_FRACTION * 100:g}%%), "
                f"{constants.MIX_MASKED_FRACTION * 100:g}%% masked, drawn from its seed; "
                "sample i's n_gal is lensviz.simulate.mixed_config(SEED + i).n_gal",
            ),
            arg(
                "--sigma-e",
                type=_sigma_e,
                default=None,
                help="intrinsic ellipticity dispersion per component "
                f"(default {constants.SIGMA_E})",
            ),
            arg(
                "--isolated",
                action="store_true",
                help="an isolated field with no mass outside it (no canvas margin, untruncated "
                "halos: the samples of earlier lensviz versions)",
            ),
            arg(
                "--masks",
                action="store_true",
                help="random bright-star discs and stripes on up to "
                f"{constants.SIM_MASK_MAX_FRACTION * 100:g}%% of each field (empty pixels)",
            ),
            arg(
                "--size",
                type=_field_side,
                default=None,
                metavar="N",
                help=f"a square field of N pixels a side, {constants.SIM_MIN_SIDE_PX}-"
                f"{constants.SIM_MAX_SIDE_PX} (default {constants.NPIX}); halos, galaxies per "
                "pixel and the LSS spectrum follow the sky, not the pixels",
            ),
            arg(
                "--pixel-arcmin",
                type=_pixel_arcmin,
                default=None,
                metavar="P",
                help=f"pixel side in arcmin (default {constants.PIXEL_ARCMIN:g})",
            ),
            arg(
                "--fields",
                action="store_true",
                help="a training set of a field-aware UNet: 128² tiles cut from whole fields "
                "of the field mix (depth, masks, pixel side 0.2-2′, side 128-384), each "
                "with the features of its field (lensviz.training_data); not with the depth, "
                "size and scale options",
            ),
            arg(
                "--b-modes",
                action="store_true",
                help="with --fields: also the features of every field rotated by 45° (a "
                "validation set's B-mode fields)",
            ),
            arg("--batch", type=_positive_int, default=64, help="samples per batch (default 64)"),
            arg(
                "--compression",
                choices=("gzip", "lzf", "none"),
                default="gzip",
                help="HDF5 filter (default gzip; 'none' reads fastest when training on CPU)",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "conventions",
        "lensviz.cli.data:cmd_conventions",
        "find the sign/axis convention of a dataset's ε",
        (
            arg("data", help=_DATA_HELP),
            arg("--n", type=_positive_int, default=32, help="samples to use (default 32)"),
            arg(
                "--sigma",
                type=_non_negative_float,
                default=2.0,
                help="KS93 smoothing σ in pixels (default 2)",
            ),
        ),
    ),
    Command(
        "observe",
        "lensviz.cli.fields:cmd_observe",
        "observe your own κ map: its reduced shear, galaxies at a depth, a mask",
        (
            arg("kappa", help="κ map, .fits (first image) or .npy (ny, nx), any size ≥ 64"),
            arg(
                "--pixel-arcmin",
                type=_positive_float,
                required=True,
                metavar="P",
                help="pixel side of the map in arcmin",
            ),
            arg(
                "--n-gal",
                type=_depth_number,
                required=True,
                metavar="G",
                help="source galaxies per arcmin², or inf for no shape noise",
            ),
            arg(
                "--sigma-e",
                type=_sigma_e,
                default=constants.SIGMA_E,
                metavar="S",
                help=f"intrinsic ellipticity dispersion per component (default "
                f"{constants.SIGMA_E})",
            ),
            arg(
                "--mask",
                default=None,
                metavar="M",
                help="mask image, .fits or .npy of the map's size (nonzero = masked)",
            ),
            arg(
                "--seed", type=_non_negative_int, default=0, help="seed of the galaxies (default 0)"
            ),
            arg(
                "--out",
                type=_observe_output,
                required=True,
                help="a whole field (.fits, .npz or .h5, with the true κ), or a folder name "
                "without a suffix (or ending in /) for a challenge folder of its 128 x 128 "
                "tiles",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "evaluate",
        "lensviz.cli.evaluate:cmd_evaluate",
        "score the UNet, the Wiener filter, raw KS93 and smoothed KS93 with the challenge metrics",
        (
            arg("data", help=_DATA_HELP),
            arg(
                "--weights",
                type=_keras_file,
                default=None,
                help="UNet .keras file (default: the shipped weights/lite.keras)",
            ),
            arg("--no-unet", action="store_true", help="do not score the UNet"),
            arg("--no-wiener", action="store_true", help="do not score the Wiener filter"),
            arg(
                "--n",
                type=_positive_int,
                default=None,
                help="use the first N samples (default all)",
            ),
            arg(
                "--sigma",
                type=_non_negative_float,
                default=None,
                help="KS93 smoothing σ in pixels (default: each map's σ from the depth rule, "
                "lensviz.depth.ks93_sigma of its Δε)",
            ),
            arg(
                "--depths",
                default=None,
                metavar="D1,D2,...",
                help="score at each of these depths (survey names, galaxies per arcmin² or "
                "inf; e.g. 10,30,100,inf) on the same sim:N[:SEED] fields, one table each",
            ),
            arg(
                "--pad",
                type=_non_negative_int,
                default=0,
                help="KS93 zero-padding per side, pixels (default 0)",
            ),
            arg(
                "--uncertainty",
                choices=("calibrated",),
                default=None,
                help="also score each method's calibrated error bars: the share of pixels "
                "within κ̂ ± kappa_std (68.3%% expected) and ± kappa_hw95 (95.4%%), the mean σ",
            ),
            arg(
                "--pixel-arcmin",
                type=_pixel_arcmin,
                default=None,
                help="pixel side [arcmin] for data that do not state one (default: the "
                "data's, else 0.5)",
            ),
            arg("--json", default=None, help="also write the results to this JSON file"),
            arg("--per-map", action="store_true", help="include per-map values in the JSON"),
            arg("--overwrite", action="store_true", help="replace the --json file if it exists"),
            arg("--batch", type=_positive_int, default=256, help="samples per batch (default 256)"),
            arg("--seed", type=int, default=0, help="bootstrap seed (default 0)"),
        ),
    ),
    Command(
        "predict",
        "lensviz.cli.predict:cmd_predict",
        "predict κ maps with the UNet, the Wiener filter or KS93 and write them to HDF5 "
        "(or one field's κ to FITS)",
        (
            arg("data", help=_DATA_HELP),
            arg(
                "--method",
                choices=tuple(PREDICT_METHODS),
                default="unet",
                help="reconstruction method (default unet); ks93 and wiener do not load TensorFlow",
            ),
            arg(
                "--weights",
                type=_keras_file,
                default=None,
                help="UNet .keras file (default: the shipped weights/lite.keras)",
            ),
            arg(
                "--sigma",
                type=_non_negative_float,
                default=None,
                help="KS93 smoothing σ in pixels (default: each map's σ from the depth rule, "
                "lensviz.depth.ks93_sigma of its Δε, as evaluate and the app smooth; 0 for "
                "raw KS93)",
            ),
            arg(
                "--pad",
                type=_non_negative_int,
                default=0,
                help="KS93/Wiener zero-padding per side, pixels (default 0)",
            ),
            arg(
                "--n",
                type=_positive_int,
                default=None,
                help="use the first N samples (default all)",
            ),
            arg("--batch", type=_positive_int, default=256, help="samples per batch (default 256)"),
            arg(
                "--uncertainty",
                choices=("calibrated", "mc_dropout", "tta"),
                default=None,
                help="calibrated (every method): also write kappa_std (κ ± kappa_std holds "
                "the truth in 68.3%% of the pixels) and kappa_hw95 (the 95.4%% band); "
                "mc_dropout or tta (UNet only): the model's own spread, not an error bar, "
                "as kappa_std, with kappa_pred the mean",
            ),
            arg(
                "--pixel-arcmin",
                type=_pixel_arcmin,
                default=None,
                help="pixel side [arcmin] for data that do not state one (default: the "
                "data's, else 0.5)",
            ),
            arg(
                "--passes",
                type=_positive_int,
                default=20,
                help="Monte-Carlo dropout passes (default 20)",
            ),
            arg(
                "--out",
                type=_prediction_output,
                required=True,
                help="output PRED.h5 or .hdf5 (kappa_pred, names), or PRED.fits for one "
                "field (cosmos, fits:…, a .fits field file): κ with the input's WCS and "
                "a MASK extension",
            ),
            arg(
                "--dtype",
                choices=("float32", "float16"),
                default="float32",
                help="storage type of the maps (default float32; float16 halves the file, "
                "like the challenge's own files)",
            ),
            arg(
                "--compression",
                choices=("none", "gzip", "lzf"),
                default="none",
                help="HDF5 filter of the maps (default none: predicted maps hardly compress "
                "and gzip writes slower than KS93 computes)",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "calibrate",
        "lensviz.cli.evaluate:cmd_calibrate",
        "check UNet uncertainty maps: share of true pixels within ±1σ and ±2σ",
        (
            arg("data", help=_DATA_HELP),
            arg(
                "--weights",
                type=_keras_file,
                default=None,
                help="UNet .keras file (default: the shipped weights/lite.keras)",
            ),
            arg(
                "--method",
                choices=("mc_dropout", "tta"),
                default="mc_dropout",
                help="Monte-Carlo dropout or the 8-symmetry ensemble (default mc_dropout)",
            ),
            arg(
                "--passes",
                type=_positive_int,
                default=20,
                help="Monte-Carlo dropout passes (default 20)",
            ),
            arg("--n", type=_positive_int, default=100, help="maps to use (default 100)"),
            arg("--json", default=None, help="also write the results (with the curve) to JSON"),
            arg("--overwrite", action="store_true", help="replace the --json file if it exists"),
        ),
    ),
    Command(
        "powerspec",
        "lensviz.cli.data:cmd_powerspec",
        "estimate the κ power spectrum of simulated maps (the Wiener filter's S)",
        (
            arg("--n", type=_positive_int, default=2000, help="simulated maps (default 2000)"),
            arg(
                "--seed",
                type=_non_negative_int,
                default=constants.TRAIN_SEED_START + 90_000_000,
                help="first simulator seed (default: a training-side range, disjoint from tests)",
            ),
            arg("--bins", type=_positive_int, default=48, help="|k| bins (default 48)"),
            arg(
                "--pixel-arcmin",
                type=_pixel_scales,
                default=(constants.PIXEL_ARCMIN,),
                help="pixel sides to measure S at [arcmin], comma-separated; --n maps at "
                "each (default 0.5; the shipped S: 0.2,0.25,0.3,0.36,0.5,0.7,1,1.4,2)",
            ),
            arg("--out", type=_npz_output, required=True, help="output .npz"),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "sigma-net",
        "lensviz.cli.model:cmd_sigma_net",
        "train and calibrate a UNet's quantile network (its calibrated error bars)",
        (
            arg("weights", type=_keras_file, help="the UNet .keras file (the mean model, frozen)"),
            arg(
                "--data",
                required=True,
                help="a training set of field tiles from calibration seeds "
                "(lensviz.training_data; not the UNet's own training data)",
            ),
            arg(
                "--train-n",
                type=_positive_int,
                default=6000,
                help="samples that train the network (default 6000); the rest calibrate it",
            ),
            arg(
                "--val-n",
                type=_positive_int,
                default=500,
                help="of those, the last ones that pick the best epoch (default 500)",
            ),
            arg("--epochs", type=_positive_int, default=20, help="epochs (default 20)"),
            arg("--batch", type=_positive_int, default=16, help="batch size (default 16)"),
            arg(
                "--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)"
            ),
            arg("--seed", type=_non_negative_int, default=0, help="seed (default 0)"),
            arg(
                "--out",
                type=_keras_output,
                default=None,
                help="output .keras (default NAME.sigma.keras beside WEIGHTS)",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "errorbars",
        "lensviz.cli.errorbars:cmd_errorbars",
        "calibrate the error bars of KS93 and the Wiener filter on simulated fields",
        (
            arg(
                "--n",
                type=_positive_int,
                default=2400,
                help="calibration fields of the training mix (default 2400)",
            ),
            arg(
                "--seed",
                type=_non_negative_int,
                default=constants.CALIBRATION_SEED_START + 100_000,
                help="first seed (default 600000: calibration seeds, past the validation set)",
            ),
            arg("--out", type=_json_output, required=True, help="output .json"),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
        ),
    ),
    Command(
        "card",
        "lensviz.cli.evaluate:cmd_card",
        "write the model card of a .keras file (JSON + Markdown)",
        (
            arg("weights", type=_keras_file, help=".keras file"),
            arg("--run", default=None, help="its training run folder (config/summary/history)"),
            arg(
                "--n",
                type=_positive_int,
                default=150,
                help="held-out test maps per depth (default 150); the depths are "
                "lensviz.nn.card.CARD_DEPTHS",
            ),
            arg("--command", default=None, help="the exact command that produced the weights"),
            arg(
                "--variant",
                action="append",
                default=[],
                metavar="NAME=PATH",
                help="also score another .keras file on the same test set",
            ),
            arg(
                "--benchmark",
                action="append",
                default=[],
                metavar="KIND=PATH",
                help="add a benchmark's results (errorbars, fields, scales, cosmos: the JSON "
                "of python -m benchmarks.bench_KIND, which must name these weights)",
            ),
            arg("--out", required=True, help="output stem: writes STEM.json and STEM.md"),
            arg("--overwrite", action="store_true", help="replace STEM.json and STEM.md"),
        ),
    ),
    Command(
        "train",
        "lensviz.cli.model:cmd_train",
        "train a UNet preset from scratch",
        (
            arg("--preset", default="lite", help="model preset: lite, paper or unet2k"),
            arg("--out", required=True, help="run folder (model.keras, history.csv/json, ...)"),
            arg(
                "--loss",
                default="multifocal",
                choices=_LOSSES,
                help=f"training loss (default multifocal, the report's): {_LOSS_HELP}",
            ),
            arg(
                "--coeffs",
                default=None,
                help="MultiFocal coefficients, e.g. focal=1,local=2,"
                "peaks=3,structure=1.5,edges=1 (default: the report's)",
            ),
            arg("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)"),
            arg("--batch", type=_positive_int, default=8, help="batch size (default 8)"),
            arg(
                "--epochs",
                type=_positive_int,
                default=20,
                help="at most this many epochs (default 20)",
            ),
            arg("--steps", type=_positive_int, default=200, help="steps per epoch (default 200)"),
            arg("--train-data", default=None, help="HDF5 to stream (default: simulate on the fly)"),
            arg(
                "--train-seed",
                type=_non_negative_int,
                default=constants.TRAIN_SEED_START,
                help=f"first simulator seed (default {constants.TRAIN_SEED_START})",
            ),
            arg("--val-data", default=None, help="validation HDF5 (default: simulated)"),
            arg("--val-n", type=_positive_int, default=256, help="validation maps (default 256)"),
            arg("--patience", type=_non_negative_int, default=5, help="early-stopping patience"),
            arg("--with-ks93", action="store_true", help="add the KS93 input channel"),
            arg(
                "--init-weights",
                type=_keras_file,
                default=None,
                help="start from the weights of this .keras file (same preset): continue a run",
            ),
            arg(
                "--depth-weighting",
                action="store_true",
                help="weight each map's loss by its depth (lensviz.depth.training_weight), for "
                "training sets of mixed depth",
            ),
            arg("--no-augment", action="store_true", help="no random spin-2 symmetries"),
            arg(
                "--distribution",
                choices=("auto", "one", "mirrored", "multiworker"),
                default="auto",
                help="one device; MirroredStrategy over the local GPUs; or "
                "MultiWorkerMirroredStrategy over the machines of TF_CONFIG (default auto: "
                "multiworker if TF_CONFIG lists several tasks, mirrored if there are several "
                "GPUs, else one). --batch is the global batch. See docs/distributed.md",
            ),
            arg("--devices", default=None, help="comma-separated devices for MirroredStrategy"),
            arg(
                "--seed",
                type=int,
                default=0,
                help="seed of the initial weights, shuffling and augmentation (default 0)",
            ),
        ),
    ),
    Command(
        "finetune",
        "lensviz.cli.model:cmd_finetune",
        "fine-tune saved weights with the Combined loss (report §4.2)",
        (
            arg("--weights", type=_keras_file, required=True, help="starting .keras weights"),
            arg(
                "--out",
                type=_keras_output,
                required=True,
                help="output .keras file (written only on success)",
            ),
            arg("--overwrite", action="store_true", help="replace OUT if it exists"),
            arg(
                "--loss",
                default="combined",
                choices=_LOSSES,
                help=f"fine-tuning loss (default combined, the report's): {_LOSS_HELP}",
            ),
            arg("--coeffs", default=None, help="MultiFocal coefficients, as for train"),
            arg(
                "--w-multifocal",
                type=_non_negative_float,
                default=0.95,
                help="Combined loss: weight of the MultiFocal term (default 0.95, the report's)",
            ),
            arg(
                "--w-wmape",
                type=_non_negative_float,
                default=0.05,
                help="Combined loss: weight of the WMAPE term (default 0.05, the report's)",
            ),
            arg(
                "--w-dicee",
                type=_non_negative_float,
                default=0.0,
                help="Combined loss: weight of the soft-DICEE term (default 0)",
            ),
            arg(
                "--w-dpeaks",
                type=_non_negative_float,
                default=0.0,
                help="Combined loss: weight of the peak-shift term (default 0)",
            ),
            arg(
                "--raw-term-weights",
                action="store_true",
                help="use the term weights as they are; by default each Combined term is first "
                "divided by its initial value, so the weights are shares of the loss",
            ),
            arg(
                "--which",
                choices=("last", "decoder", "all"),
                default="last",
                help="what trains (default: the last layer, as in the report)",
            ),
            arg("--epochs", type=_positive_int, default=2, help="epochs (default 2)"),
            arg(
                "--n",
                type=_positive_int,
                default=512,
                help="training samples per epoch (default 512)",
            ),
            arg("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)"),
            arg("--batch", type=_positive_int, default=8, help="batch size (default 8)"),
            arg("--train-data", default=None, help="HDF5 to train on (default: simulated)"),
            arg(
                "--val-n",
                type=_positive_int,
                default=64,
                help="validation maps for the before/after scores (default 64)",
            ),
            arg(
                "--distribution",
                choices=("auto", "one", "mirrored", "multiworker"),
                default="auto",
                help="as for train (default auto)",
            ),
            arg(
                "--seed", type=int, default=0, help="seed of shuffling and augmentation (default 0)"
            ),
        ),
    ),
    Command(
        "tune",
        "lensviz.cli.model:cmd_tune",
        "Bayesian hyperparameter search with Keras Tuner (optional extra)",
        (
            arg("--out", required=True, help="tuner folder (trials, best hyperparameters)"),
            arg("--trials", type=_positive_int, default=10, help="search trials (default 10)"),
            arg(
                "--epochs",
                type=_positive_int,
                default=30,
                help="epochs per trial, with early stopping (default 30, the report's)",
            ),
            arg("--steps", type=_positive_int, default=100, help="steps per epoch (default 100)"),
            arg(
                "--val-n",
                type=_positive_int,
                default=128,
                help="validation maps scoring each trial (default 128)",
            ),
            arg(
                "--patience",
                type=_non_negative_int,
                default=3,
                help="early-stopping patience in epochs (default 3)",
            ),
            arg(
                "--base-preset",
                default="lite",
                help="the preset whose fields are searched around (default lite)",
            ),
            arg("--seed", type=int, default=0, help="seed of the search (default 0)"),
        ),
    ),
)


class UsageError(ValueError):
    """A bad command line (unknown option, bad value): reported as one ``error:`` line."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors raised as :class:`UsageError` instead of usage text + exit."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser(
    commands: tuple[Command, ...] = COMMANDS, prog: str = PROG
) -> argparse.ArgumentParser:
    """The argparse parser with one subparser per command; ``prog`` names the program
    in usage lines and errors (``lensviz``, or ``python -m lensviz``)."""
    parser = _Parser(
        prog=prog,
        description="lensviz: weak-lensing mass mapping (KS93, Wiener, UNet).",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
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


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).
    prog : str, optional
        The program's name in usage lines: ``lensviz`` (the installed script, which
        calls ``main()``), or ``python -m lensviz`` (:mod:`lensviz.__main__`).
    """
    parser = build_parser(prog=prog)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR_STATUS
    if getattr(args, "_command", None) is None:  # no command (`card --command` is an option)
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
