"""Detections on COSMOS: how many noise maps make the 5 % false-alarm decision stable.

    python -m benchmarks.bench_detections [--weights W.keras] [--quick]
                                          [--out benchmarks/detections.json]

A peak of a real map is a detection when at most 5 % of the noise maps (randomised
galaxy orientations) reach its height anywhere in the field
(:data:`lensviz.nulltests.DETECTION_FALSE_ALARM`). The rate is a binomial share of the
noise maps, so a peak near 5 % can flip with another set of them. For each method (the
UNet at COSMOS's 0.352′ pixels, KS93 smoothed by the depth rule, the Wiener filter) and
each number of noise maps of :data:`N_NOISE`, the null tests run with two noise seeds;
the agreement is ``|D₀ ∩ D₁| / |D₀ ∪ D₁|`` of the two sets of detections (1 when both are
empty). The target of the error-bars issue: agreement ≥ 0.9 for every method at the
default of the app's Null tests page.
"""

from __future__ import annotations

import sys
import time

from benchmarks import ROOT, checkout_relative, field_benchmark_args, save
from lensviz import cosmos, nulltests
from lensviz.evaluation import default_power_spectrum
from lensviz.fields import ks93_field, wiener_field
from lensviz.nn.inference import load_model, model_predictor
from lensviz.wiener import PowerSpectrum

__all__ = ["N_NOISE", "agreement", "bench_detections", "main"]

OUT = ROOT / "benchmarks" / "detections.json"
#: Numbers of noise maps tried.
N_NOISE = (50, 100, 200, 400)
#: The noise seeds compared.
SEEDS = (0, 1)


def agreement(a: set, b: set) -> float:
    """``|a ∩ b| / |a ∪ b|``; 1 for two empty sets."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def bench_detections(methods: dict, field, n_noise=N_NOISE) -> dict:
    """Per method and number of noise maps: the detections of each seed and their agreement."""
    out = {}
    footprint = ~field.mask
    for n in n_noise:
        runs = [
            nulltests.null_tests(methods, field.eps, footprint, n_noise=n, seed=seed)
            for seed in SEEDS
        ]
        row = {}
        for name in methods:
            found = [{(p.y, p.x) for p in run[name]["peaks"] if p.detected} for run in runs]
            row[name] = {
                "detections": [sorted(map(list, f)) for f in found],
                "agreement": agreement(*found),
            }
        out[str(n)] = row
        print(
            f"  {n:>4} noise maps: "
            + "  ".join(
                f"{m} {v['agreement']:.2f} ({len(v['detections'][0])}/{len(v['detections'][1])})"
                for m, v in row.items()
            ),
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the detections of every method at every number of noise maps; write JSON."""
    args, weights = field_benchmark_args(
        argv, "bench_detections", OUT, "50 and 100 noise maps", ("--n-max", 400, "most noise maps")
    )
    t0 = time.perf_counter()
    field = cosmos.load_cosmos()
    scale = cosmos.COSMOS_PIXEL_ARCMIN
    signal = PowerSpectrum.load(default_power_spectrum())
    unet = model_predictor(load_model(weights))
    methods = {
        "unet": lambda e: unet(e, pixel_arcmin=scale),
        "ks93_depth_rule": lambda e: ks93_field(e, pixel_arcmin=scale),
        "wiener": lambda e: wiener_field(e, signal, pixel_arcmin=scale),
    }
    n_noise = (50, 100) if args.quick else tuple(n for n in N_NOISE if n <= args.n_max)
    results = {
        "weights": checkout_relative(weights),
        "seeds": list(SEEDS),
        "false_alarm": nulltests.DETECTION_FALSE_ALARM,
        "runs": bench_detections(methods, field, n_noise),
        "target": "agreement >= 0.9 for every method at the app's default number of noise maps",
        "wall_s": time.perf_counter() - t0,
    }
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
