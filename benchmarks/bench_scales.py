"""Pixel scales: the UNet's gain over the best KS93 on 128² tiles at several pixel sides.

    python -m benchmarks.bench_scales [--weights W.keras] [--previous V.keras] [--n 150]
                                      [--quick] [--out benchmarks/scales.json]

At each pixel side of :data:`SCALES` (0.25′, 0.36′, 0.5′ and 1′), ``--n`` held-out
simulated 128² tiles at 30 galaxies per arcmin² (test seeds 0 on; the default simulator
at that pixel side: halo sizes, galaxies per pixel and the LSS spectrum follow it). Each
method's RMSE is averaged over the tiles (mean and standard error):

* ``unet``: the UNet, told the pixel side (a field-aware model reads it as a feature);
* ``previous``: ``--previous`` (the model shipped before, which knows 0.5′ only);
* ``ks93_best``: KS93 at the σ of the grid 0–8 px with the lowest mean RMSE on these very
  tiles (an oracle), and ``ks93_rule``, KS93 at the depth rule's σ for that pixel side;
* ``wiener``: the Wiener filter with S at that pixel side.

The target of the whole-fields issue: at 0.25′, 0.36′ and 1′ the UNet's RMSE gain over the
best KS93, ``1 − RMSE_unet / RMSE_ks93_best``, is within 3 points of its gain at 0.5′.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks import ROOT, checkout_relative, field_benchmark_args, mean_se, save
from lensviz.evaluation import default_power_spectrum, ks93_depth_predictor, wiener_predictor
from lensviz.inversion import gaussian_smooth, ks93
from lensviz.nn.inference import load_model, model_predictor, training_domain
from lensviz.simulate import SimulationConfig, simulate_batch

__all__ = ["SCALES", "bench_scales", "main"]

OUT = ROOT / "benchmarks" / "scales.json"
#: Pixel sides scored [arcmin]; 0.5′ is the reference.
SCALES = (0.25, 0.36, 0.5, 1.0)
#: Depth of the tiles [galaxies per arcmin²].
N_GAL = 30.0
#: The KS93 smoothing grid [pixels] of the oracle baseline.
KS93_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
SEED = 0  # held-out test seeds


def _rmse(pred, true) -> np.ndarray:
    """Per-map RMSE, ``(N,)``."""
    return np.sqrt(np.mean((np.asarray(pred, np.float64) - true) ** 2, axis=(-2, -1)))


def bench_scales(model, n: int, previous=None) -> dict:
    """Per pixel side: the methods' mean RMSE and the UNet's gains over the best KS93."""
    unet = model_predictor(model)
    wiener = wiener_predictor(default_power_spectrum())
    rule = ks93_depth_predictor()
    out = {}
    for scale in SCALES:
        eps, kappa = simulate_batch(n, SEED, SimulationConfig(n_gal=N_GAL, pixel_arcmin=scale))
        raw = ks93(eps[..., 0], eps[..., 1])[0]
        per_sigma = np.stack([_rmse(gaussian_smooth(raw, s), kappa) for s in KS93_SIGMAS])
        best = int(np.argmin(per_sigma.mean(axis=1)))
        rmse = {
            "unet": _rmse(unet(eps, pixel_arcmin=scale), kappa),
            "ks93_best": per_sigma[best],
            "ks93_rule": _rmse(rule(eps, pixel_arcmin=scale), kappa),
            "wiener": _rmse(wiener(eps, pixel_arcmin=scale), kappa),
        }
        if previous is not None:
            rmse["previous"] = _rmse(model_predictor(previous)(eps), kappa)
        row = {k: mean_se(v) for k, v in rmse.items()}
        ks = row["ks93_best"]["mean"]
        out[f"{scale:g}"] = {
            "rmse": row,
            "ks93_best_sigma_px": KS93_SIGMAS[best],
            "gain_over_ks93_best": 1 - row["unet"]["mean"] / ks,
            "previous_gain_over_ks93_best": (
                1 - row["previous"]["mean"] / ks if previous is not None else None
            ),
            "gain_over_wiener": 1 - row["unet"]["mean"] / row["wiener"]["mean"],
        }
        print(
            f"  {scale:g}′: "
            + "  ".join(f"{k} {v['mean']:.5f}" for k, v in row.items())
            + f"  gain over best KS93 {out[f'{scale:g}']['gain_over_ks93_best']:+.1%}",
            flush=True,
        )
    ref = out[f"{0.5:g}"]["gain_over_ks93_best"]
    for scale in SCALES:
        row = out[f"{scale:g}"]
        row["gain_minus_gain_at_0.5"] = row["gain_over_ks93_best"] - ref
        row["target_met"] = bool(abs(row["gain_minus_gain_at_0.5"]) <= 0.03 or scale == 0.5)
    return out


def main(argv: list[str] | None = None) -> int:
    """Score every pixel side, print the gains and write JSON; returns the exit status."""
    args, weights = field_benchmark_args(
        argv, "bench_scales", OUT, "20 tiles per scale", ("--n", 150, "tiles per pixel side")
    )
    t0 = time.perf_counter()
    model = load_model(weights)
    previous = load_model(args.previous) if args.previous else None
    n = 20 if args.quick else args.n
    scores = bench_scales(model, n, previous)
    domain = training_domain(model)
    results = {
        "weights": checkout_relative(weights),
        "previous": args.previous,
        "training_domain": None if domain is None else domain.to_dict(),
        "n_gal": N_GAL,
        "tiles_per_scale": n,
        "seed_start": SEED,
        "scales": scores,
        "target": "|gain(p) - gain(0.5')| <= 3 points at 0.25', 0.36', 1'",
        "wall_s": time.perf_counter() - t0,
    }
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
