"""The ``predict`` command: κ maps of any data by one method, to HDF5 or to FITS.

Each method's predictor is built by the function that :data:`lensviz.cli.PREDICT_METHODS`
names as ``"module:function"`` and resolves when the command runs: KS93 and the Wiener
filter are built here (numpy), the UNet in :func:`lensviz.cli.model.unet_method`. So
``predict --method ks93`` or ``--method wiener`` never loads TensorFlow.

Every predictor is told the data's pixel side (:func:`lensviz.cli.data.data_grid`,
``--pixel-arcmin`` for data that do not state one). With ``--uncertainty calibrated`` it
also returns the calibrated error bars, ``kappa_std`` (the 68.3 % band) and
``kappa_hw95`` (the 95.4 % band) (:mod:`lensviz.errorbars`, the UNet's quantile network of
:mod:`lensviz.nn.errorbars`); ``mc_dropout`` and ``tta`` give the UNet's own spread,
which is not an error bar (it does not cover the truth as it claims).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lensviz import constants, data
from lensviz.cli import PREDICT_METHODS, _check_output, _progress, resolve
from lensviz.cli.data import data_grid, iter_data, read_ahead
from lensviz.cli.fields import read_field
from lensviz.constants import FITS_SUFFIXES
from lensviz.data import PredictionWriter
from lensviz.depth import DomainTally, ks93_sigma
from lensviz.errorbars import default_error_models, linear_errorbars
from lensviz.evaluation import (
    default_power_spectrum,
    ks93_depth_predictor,
    ks93_predictor,
    wiener_predictor,
)
from lensviz.fields import field_mask
from lensviz.wiener import PowerSpectrum

__all__ = ["PredictMethod", "with_errorbars", "ks93_method", "wiener_method", "cmd_predict"]

#: The ``sigma_px`` attribute of KS93 smoothed by each map's own σ (the depth rule).
DEPTH_RULE = "depth rule"


class PredictMethod(NamedTuple):
    """A method of ``predict``, as its builder returns it.

    Attributes
    ----------
    predictor : callable
        ``eps (N, ny, nx, 3), pixel_arcmin -> kappa (N, ny, nx)``, or
        ``(kappa, kappa_std)`` (the UNet's spread), or ``(kappa, kappa_std, kappa_hw95)``
        (calibrated error bars).
    attrs : dict
        What the output records about the method (``method``, its settings).
    tally : DomainTally or None
        Counts the samples outside the model's training domain (the UNet's only).
    """

    predictor: Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]]
    attrs: dict
    tally: DomainTally | None = None


def with_errorbars(predictor, model, signal, sigma_of, pad: int):
    """``predictor`` returning ``(κ, kappa_std, kappa_hw95)`` of a linear method."""

    def predict(eps, pixel_arcmin=constants.PIXEL_ARCMIN):
        kappa = predictor(eps, pixel_arcmin=pixel_arcmin)
        bands = [
            linear_errorbars(e, model, signal, sigma_of(e, pixel_arcmin), pad, pixel_arcmin)
            for e in eps
        ]
        return kappa, np.stack([b[0] for b in bands]), np.stack([b[1] for b in bands])

    return predict


def _check_linear_uncertainty(args: argparse.Namespace) -> None:
    if args.uncertainty not in (None, "calibrated"):
        raise ValueError(
            f"--uncertainty {args.uncertainty} is the UNet's own spread (--method unet); "
            f"{args.method} takes --uncertainty calibrated"
        )


def ks93_method(args: argparse.Namespace) -> PredictMethod:
    """KS93 smoothed with ``--sigma`` px, or by each map's depth rule when it is not given
    (:func:`lensviz.evaluation.ks93_depth_predictor`, as ``evaluate`` and the app do);
    ``--sigma 0`` is raw KS93. ``--uncertainty calibrated`` adds its error bars."""
    _check_linear_uncertainty(args)
    if args.sigma is None:
        predictor, sigma = ks93_depth_predictor(args.pad), DEPTH_RULE

        def sigma_of(e, p):
            return ks93_sigma(e[..., 2], pixel_arcmin=p)

    else:
        predictor, sigma = ks93_predictor(args.sigma, args.pad), args.sigma

        def sigma_of(e, p):
            return args.sigma

    attrs = {"method": "ks93", "sigma_px": sigma, "pad_px": args.pad}
    if args.uncertainty == "calibrated":
        models = default_error_models()
        signal = PowerSpectrum.load(default_power_spectrum())
        predictor = with_errorbars(predictor, models["ks93"], signal, sigma_of, args.pad)
        attrs["uncertainty"] = "calibrated"
    return PredictMethod(predictor, attrs)


def wiener_method(args: argparse.Namespace) -> PredictMethod:
    """The Wiener filter with the shipped κ power spectrum (taken at the data's pixel
    scale); ``--uncertainty calibrated`` adds its error bars."""
    _check_linear_uncertainty(args)
    signal = PowerSpectrum.load(default_power_spectrum())
    predictor = wiener_predictor(signal, args.pad)
    attrs = {"method": "wiener", "pad_px": args.pad}
    if args.uncertainty == "calibrated":
        models = default_error_models()
        predictor = with_errorbars(predictor, models["wiener"], signal, lambda e, p: 0.0, args.pad)
        attrs["uncertainty"] = "calibrated"
    return PredictMethod(predictor, attrs)


def _tallied(batches, tally: DomainTally):
    """``batches``, each counted by ``tally`` (outside the training domain) on the way."""
    try:
        for batch in batches:
            tally.add(batch[0])
            yield batch
    finally:
        if hasattr(batches, "close"):
            batches.close()


def _print_domain_warnings(tally: DomainTally | None) -> None:
    for line in [] if tally is None else tally.warnings():
        print(f"warning: {line}", file=sys.stderr)


def _predict_fits_field(args, out: Path, method: PredictMethod, attrs: dict) -> int:
    """``predict`` of one field to FITS: κ with the input's WCS cards and its mask."""
    field = read_field(args.data)
    if field is None:
        raise ValueError(
            f"--out {out.name}: a FITS output holds one field's κ; DATA must be cosmos, "
            f"fits:G1,G2,… or a .fits field file, got {args.data!r} (write .h5 for the rest)"
        )
    if args.uncertainty not in (None, "calibrated"):
        raise ValueError(
            f"--uncertainty {args.uncertainty} writes kappa_std beside κ: use an .h5 output "
            "(FITS outputs take --uncertainty calibrated: extensions STD and HW95)"
        )
    t0 = time.perf_counter()
    grid = field.grid.given(args.pixel_arcmin, args.data)  # its WCS and pixel scale
    if method.tally is not None:
        method.tally.add(field.eps[None])
    result = method.predictor(field.eps[None], pixel_arcmin=grid.pixel_arcmin)
    kappa, std, hw95 = result if isinstance(result, tuple) else (result, None, None)
    data.write_kappa_fits(
        out,
        kappa[0],
        grid.header,
        field.mask,
        overwrite=args.overwrite,
        attrs=attrs,
        pixel_arcmin=grid.pixel_arcmin if grid.known else None,
        std=None if std is None else std[0],
        hw95=None if hw95 is None else hw95[0],
    )
    _print_domain_warnings(method.tally)
    ny, nx = kappa.shape[-2:]
    print(
        f"wrote {out}: the {ny} × {nx} κ map of {args.data} ({args.method}) in "
        f"{time.perf_counter() - t0:.1f} s, "
        f"{'with its WCS' if grid.wcs is not None else 'without WCS (the input has none)'}"
        f"{', STD and HW95 extensions' if std is not None else ''} and a MASK extension "
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
    method = resolve(PREDICT_METHODS[args.method])(args)
    attrs = {**method.attrs, "data": args.data}
    if out.suffix.lower() in FITS_SUFFIXES:
        return _predict_fits_field(args, out, method, attrs)
    grid = data_grid(args.data, args.pixel_arcmin)
    attrs["pixel_arcmin"] = grid.pixel_arcmin
    total, batches = iter_data(args.data, args.batch, args.n)
    writer = PredictionWriter(
        out,
        overwrite=args.overwrite,
        dtype=args.dtype,
        compression=None if args.compression == "none" else args.compression,
        attrs=attrs,
    )
    if method.tally is not None:  # checked in the reading thread, off the model's path
        batches = _tallied(batches, method.tally)
    t0 = time.perf_counter()
    bar = _progress(total, f"predict ({args.method})")
    with read_ahead(batches) as batches, writer, bar:
        for eps, _, names in batches:
            result = method.predictor(eps, pixel_arcmin=grid.pixel_arcmin)
            kappa, std, hw95 = (
                (*result, None)[:3] if isinstance(result, tuple) else (result, None, None)
            )
            writer.append(kappa, names, std, field_mask(eps), hw95)
            bar.update(len(eps))
        if method.tally is not None:
            writer.update_attrs({"outside_training_domain": method.tally.n_outside})
    wall = time.perf_counter() - t0
    _print_domain_warnings(method.tally)
    print(
        f"wrote {out}: {writer.n_written} map{'' if writer.n_written == 1 else 's'} "
        f"({args.method}) in {wall:.1f} s, "
        f"{writer.n_written / wall:.0f} maps/s"
    )
    return 0
