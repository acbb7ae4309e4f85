"""Whole fields: the UNet's speed on a 360² field and its accuracy on 384² fields.

    python -m benchmarks.bench_fields [--weights W.keras] [--n 30] [--quick]
                                      [--out benchmarks/fields.json]

speed
    One 360 × 360 field (simulated, LSST depth): the UNet by blended 128² tiles
    (:func:`lensviz.nn.fields.predict_field`, overlap 64: 25 tiles) and convolutionally
    (the same weights rebuilt for a 384² input), KS93 and the Wiener filter on the whole
    field (zero-padded by 64 px). Medians of warm runs (the first call, which traces the
    forward, is not timed).
accuracy
    ``--n`` simulated fields of 384² per depth (held-out seeds 3000 on; the default
    simulator with ``npix=384``, at the default halo density per deg²; one main cluster
    per field), scored by the RMSE over the whole field:

    * ``unet_tiles``: the UNet on overlapping tiles, blended (the default);
    * ``unet_convolutional``: the UNet over the whole field at once;
    * ``unet_single_tiles``: the UNet on the nine non-overlapping 128² tiles of the same
      field, each on its own (what a user of 128² tiles gets), RMSE over the nine tiles;
    * ``unet_128_sims``: the UNet on ``9 n`` default 128² simulations (seeds 3000 on) at
      the same depth, the model's home ground;
    * ``ks93``: KS93 of the whole field, zero-padded, smoothed by the depth rule
      (:func:`lensviz.evaluation.ks93_depth_predictor`, the "best-smoothed KS93");
    * ``wiener``: the Wiener filter of the whole field, zero-padded.

    Each figure is the mean over fields of the per-field RMSE, with its standard error;
    the ratios are of the means.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import ROOT, checkout_relative, field_benchmark_args, timeit
from lensviz.evaluation import default_power_spectrum
from lensviz.fields import FIELD_PAD_PX, ks93_field, wiener_field
from lensviz.nn.fields import predict_field
from lensviz.nn.inference import load_model, predict_kappa, training_domain
from lensviz.simulate import SimulationConfig, simulate_batch, simulate_sample
from lensviz.wiener import PowerSpectrum

__all__ = ["FIELD_CONFIG", "DEPTHS", "bench_speed", "bench_accuracy", "main"]

OUT = ROOT / "benchmarks" / "fields.json"

#: The 384² fields: the default simulator with the halo density of its 128² field.
FIELD_CONFIG = SimulationConfig(npix=384)
#: Depths scored: (label, n_gal, masks).
DEPTHS = (
    ("10", 10.0, False),
    ("30", 30.0, False),
    ("30 masked", 30.0, True),
    ("100", 100.0, False),
    ("inf", math.inf, False),
)
SEED = 3000  # held-out test seeds (lensviz.constants.TEST_SEED_START range)


def bench_speed(model, signal: PowerSpectrum, repeat: int = 7) -> dict:
    """Median warm times on one 360² field."""
    eps, _ = simulate_sample(SEED, SimulationConfig(npix=360))
    return {
        "field": [360, 360],
        "unet_tiles": timeit(lambda: predict_field(model, eps), repeat),
        "unet_convolutional": timeit(
            lambda: predict_field(model, eps, method="convolutional"), repeat
        ),
        "ks93_whole_field": timeit(lambda: ks93_field(eps), repeat),
        "wiener_whole_field": timeit(lambda: wiener_field(eps, signal), repeat),
        "target": "UNet < 2 s for a 360 x 360 field",
    }


def _rmse(pred, true) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - true) ** 2)))


def _single_tiles(model, eps) -> np.ndarray:
    """The field predicted tile by tile, nine non-overlapping 128² tiles, no blending."""
    out = np.empty(eps.shape[:2], np.float32)
    corners = [(y, x) for y in range(0, 384, 128) for x in range(0, 384, 128)]
    tiles = predict_kappa(model, np.stack([eps[y : y + 128, x : x + 128] for y, x in corners]))
    for (y, x), tile in zip(corners, tiles, strict=True):
        out[y : y + 128, x : x + 128] = tile
    return out


def _summary(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"mean": float(a.mean()), "se": float(a.std(ddof=1) / np.sqrt(len(a)))}


def bench_accuracy(model, signal: PowerSpectrum, n: int) -> dict:
    """Per depth: mean per-field RMSE of every method, and the ratios of the targets."""
    out = {}
    for label, n_gal, masks in DEPTHS:
        config = FIELD_CONFIG.replace(n_gal=n_gal, masks=masks)
        scores = {
            k: []
            for k in ("unet_tiles", "unet_convolutional", "unet_single_tiles", "ks93", "wiener")
        }
        for seed in range(SEED, SEED + n):
            eps, kappa = simulate_sample(seed, config)
            scores["unet_tiles"].append(_rmse(predict_field(model, eps), kappa))
            scores["unet_convolutional"].append(
                _rmse(predict_field(model, eps, method="convolutional"), kappa)
            )
            scores["unet_single_tiles"].append(_rmse(_single_tiles(model, eps), kappa))
            scores["ks93"].append(_rmse(ks93_field(eps), kappa))
            scores["wiener"].append(_rmse(wiener_field(eps, signal), kappa))
        eps128, kappa128 = simulate_batch(9 * n, SEED, SimulationConfig(n_gal=n_gal, masks=masks))
        pred128 = predict_kappa(model, eps128)
        scores["unet_128_sims"] = [_rmse(p, k) for p, k in zip(pred128, kappa128, strict=True)]
        row = {k: _summary(v) for k, v in scores.items()}
        mean = {k: v["mean"] for k, v in row.items()}
        row["tiles_over_single_tiles"] = mean["unet_tiles"] / mean["unet_single_tiles"]
        row["tiles_over_128_sims"] = mean["unet_tiles"] / mean["unet_128_sims"]
        row["tiles_over_ks93"] = mean["unet_tiles"] / mean["ks93"]
        row["tiles_over_wiener"] = mean["unet_tiles"] / mean["wiener"]
        row["convolutional_over_tiles"] = mean["unet_convolutional"] / mean["unet_tiles"]
        out[label] = row
        print(f"  {label:>10}: " + "  ".join(f"{k} {v:.5f}" for k, v in mean.items()), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both parts, print them and write JSON; returns the exit status."""
    args, weights = field_benchmark_args(
        argv, "bench_fields", OUT, "3 fields per depth, 3 repeats", ("--n", 30, "fields per depth")
    )
    model = load_model(weights)
    signal = PowerSpectrum.load(default_power_spectrum())
    domain = training_domain(model)
    n = 3 if args.quick else args.n
    t0 = time.perf_counter()
    speed = bench_speed(model, signal, 3 if args.quick else 7)
    print(
        f"360² field: UNet tiles {speed['unet_tiles']['median_s']:.3f} s, convolutional "
        f"{speed['unet_convolutional']['median_s']:.3f} s, KS93 "
        f"{speed['ks93_whole_field']['median_s']:.4f} s (medians)"
    )
    accuracy = bench_accuracy(model, signal, n)
    results = {
        "weights": checkout_relative(weights),
        "training_domain": None if domain is None else domain.to_dict(),
        "field_config": {
            "npix": FIELD_CONFIG.npix,
            "field_halo_density": FIELD_CONFIG.field_halo_density,
            "margin_px": FIELD_CONFIG.margin_px,
        },
        "fields_per_depth": n,
        "seed_start": SEED,
        "pad_px": FIELD_PAD_PX,
        "speed": speed,
        "accuracy": accuracy,
        "targets": {
            "speed": "UNet < 2 s on a 360 x 360 field",
            "tiles_over_single_tiles": "<= 1.05",
            "tiles_over_ks93": "<= 1",
        },
        "wall_s": time.perf_counter() - t0,
    }
    path = Path(args.out)
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
