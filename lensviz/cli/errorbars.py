"""``errorbars``: calibrate the error bars of KS93 and the Wiener filter (no TensorFlow).

The calibration fields are whole fields of the training mix
(:func:`lensviz.training_data.whole_fields`: mixed depth, masks, pixel scale and field
side, seeds from the calibration range), each scored on its 128² tile. The tables of
:func:`lensviz.errorbars.calibrate_linear` are written as JSON, read by
:func:`lensviz.errorbars.load_error_models`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lensviz.cli import _check_output, _progress
from lensviz.errorbars import calibrate_linear, linear_calibration_data, save_error_models
from lensviz.evaluation import default_power_spectrum
from lensviz.training_data import whole_fields
from lensviz.wiener import PowerSpectrum

__all__ = ["cmd_errorbars"]


def cmd_errorbars(args: argparse.Namespace) -> int:
    """Calibrate KS93 (every smoothing node) and Wiener on ``--n`` fields; write JSON."""
    out = Path(args.out)
    _check_output(out, args.overwrite)
    signal = PowerSpectrum.load(default_power_spectrum())
    seeds = range(args.seed, args.seed + args.n)
    t0 = time.perf_counter()
    with _progress(args.n, "errorbars") as bar:

        def fields():
            for field in whole_fields(seeds):
                yield field
                bar.update(1)

        data = linear_calibration_data(fields(), signal)
    command = f"python -m lensviz errorbars --n {args.n} --seed {args.seed} --out {args.out}"
    models = calibrate_linear(
        data,
        provenance={
            "command": command,
            "fields": args.n,
            "seed_start": args.seed,
            "mix": "lensviz.simulate.FieldMix() (the training mix), one 128² tile per field",
            "wall_s": round(time.perf_counter() - t0, 1),
        },
    )
    save_error_models(models, out, overwrite=args.overwrite)
    print(f"wrote {out}: error models of {', '.join(models)} from {args.n} fields")
    return 0
