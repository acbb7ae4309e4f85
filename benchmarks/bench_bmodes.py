"""B modes: how much of a map each method makes from shear that gravity does not make.

    python -m benchmarks.bench_bmodes [--weights W.keras] [--previous V.keras] [--n 20]
                                      [--quick] [--out benchmarks/bmodes.json]

``--n`` simulated 384² fields per setting (held-out seeds 3000 on, the fields of
``bench_fields``): 0.5′ pixels without shape noise, at 30 galaxies per arcmin², and at 30
with masks. Each method reconstructs the field twice, from its data and from the same
data rotated by 45° (:func:`lensviz.nulltests.rotate_45`: E and B swapped, so the rotated
shear is pure B up to the field's edges, masks and noise), and the benchmark reports
``b_response``, the rms of the second map over that of the first inside the footprint,
averaged over the fields. A method blind to B modes gives 0 in noise-free data without
edges; a zero-padded KS93 gives a little more, from the E/B mixing at a finite field's
edges; with shape noise the ratio also counts the noise, the same in both maps.

Methods: the UNet on blended tiles (the default), ``--previous`` likewise, KS93 by the
depth rule and the Wiener filter, both on the whole field zero-padded by 64 px.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from benchmarks import ROOT, checkout_relative, field_benchmark_args, mean_se, save
from benchmarks.bench_fields import FIELD_CONFIG, SEED
from lensviz import constants
from lensviz.evaluation import default_power_spectrum, ks93_depth_predictor
from lensviz.fields import FIELD_PAD_PX, wiener_field
from lensviz.nn.inference import load_model, model_predictor
from lensviz.nulltests import rotate_45
from lensviz.simulate import simulate_sample
from lensviz.wiener import PowerSpectrum

__all__ = ["SETTINGS", "b_response", "bench_bmodes", "main"]

OUT = ROOT / "benchmarks" / "bmodes.json"

#: Settings scored: (label, n_gal, masks), all at 0.5′ per pixel.
SETTINGS = (
    ("no noise", math.inf, False),
    ("30", 30.0, False),
    ("30 masked", 30.0, True),
)


def b_response(predict, eps: np.ndarray) -> float:
    """rms of ``predict``'s map of the 45°-rotated data over that of the data, where the
    field has galaxies (``predict(eps) -> κ``, one field ``(ny, nx, 3)``)."""
    filled = eps[..., 2] < constants.EMPTY_PIXEL_SIGMA
    e_map, b_map = predict(eps), predict(rotate_45(eps))
    return float(np.std(b_map[filled]) / np.std(e_map[filled]))


def bench_bmodes(model, signal: PowerSpectrum, n: int, previous=None) -> dict:
    """Per setting and method: the mean and standard error of :func:`b_response`."""
    ks93 = ks93_depth_predictor(FIELD_PAD_PX)
    methods = {
        "unet": model_predictor(model),
        **({} if previous is None else {"previous": model_predictor(previous)}),
        "ks93": lambda eps: ks93(eps[None])[0],
        "wiener": lambda eps: wiener_field(eps, signal),
    }
    out = {}
    for label, n_gal, masks in SETTINGS:
        config = FIELD_CONFIG.replace(n_gal=n_gal, masks=masks)
        ratios: dict[str, list[float]] = {name: [] for name in methods}
        for seed in range(SEED, SEED + n):
            eps, _ = simulate_sample(seed, config)
            for name, predict in methods.items():
                ratios[name].append(b_response(predict, eps))
        out[label] = {name: mean_se(v) for name, v in ratios.items()}
        print(
            f"  {label:>10}: "
            + "  ".join(f"{k} {v['mean']:.3f} ± {v['se']:.3f}" for k, v in out[label].items()),
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Score every setting, print it and write JSON; returns the exit status."""
    args, weights = field_benchmark_args(
        argv, "bench_bmodes", OUT, "3 fields per setting", ("--n", 20, "fields per setting")
    )
    model = load_model(weights)
    previous = load_model(args.previous) if args.previous else None
    signal = PowerSpectrum.load(default_power_spectrum())
    n = 3 if args.quick else args.n
    t0 = time.perf_counter()
    results = {
        "weights": checkout_relative(weights),
        "previous": args.previous,
        "fields_per_setting": n,
        "seed_start": SEED,
        "pixel_arcmin": FIELD_CONFIG.pixel_arcmin,
        "npix": FIELD_CONFIG.npix,
        "b_response": bench_bmodes(model, signal, n, previous),
        "wall_s": 0.0,
    }
    results["wall_s"] = time.perf_counter() - t0
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
