"""Whole fields: the UNet's speed on a 360² field and its accuracy on 384² fields.

    python -m benchmarks.bench_fields [--weights W.keras] [--previous V.keras] [--n 30]
                                      [--quick] [--out benchmarks/fields.json]

speed
    One 360 × 360 field (simulated, LSST depth): the UNet by blended 128² tiles
    (:func:`lensviz.nn.fields.predict_field`, overlap 80) and convolutionally (the same
    weights rebuilt for a 384² input), KS93 and the Wiener filter on the whole field
    (zero-padded by 64 px). Medians of warm runs (the first call, which traces the
    forward, is not timed).
accuracy
    ``--n`` simulated fields of 384² per setting (held-out seeds 3000 on; the default
    simulator with ``npix=384`` at the pixel side of the setting, the default halo
    density per deg²; one main cluster per field): 0.5′ pixels at 10, 30, 30 with masks,
    100 galaxies per arcmin² and without shape noise, 0.3′ pixels at 30, 100 and without
    shape noise. Each method is scored by the RMSE and the Pearson r over the whole
    field, averaged over the fields (mean and standard error):

    * ``unet_tiles``: the UNet on overlapping tiles of the field's own features, blended
      (the default);
    * ``unet_convolutional``: the UNet over the whole field at once;
    * ``unet_single_tiles``: the UNet on the nine non-overlapping 128² tiles of the same
      field, each on its own (what a user of 128² tiles gets);
    * ``previous``: ``--previous`` (the model shipped before) on overlapping tiles;
    * ``ks93``: KS93 of the whole field, zero-padded, smoothed by the depth rule
      (:func:`lensviz.evaluation.ks93_depth_predictor`);
    * ``ks93_best_rmse``, ``ks93_best_r``: KS93 at the σ of the grid 0–8 px that gives
      the lowest mean RMSE (the highest mean r) on these very fields, an oracle no user
      has, so the strictest baseline;
    * ``wiener``: the Wiener filter of the whole field, zero-padded, with S at the
      field's pixel scale.

    The ratios are of the means; the targets of the whole-fields issue compare
    ``unet_tiles`` with the better of ``ks93_best_*`` and ``wiener``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from benchmarks import ROOT, checkout_relative, field_benchmark_args, mean_se, save, timeit
from lensviz.evaluation import default_power_spectrum, ks93_depth_predictor
from lensviz.fields import FIELD_PAD_PX, ks93_field, wiener_field
from lensviz.inversion import gaussian_smooth
from lensviz.nn.fields import predict_field
from lensviz.nn.inference import load_model, model_predictor, predict_kappa, training_domain
from lensviz.simulate import SimulationConfig, simulate_sample
from lensviz.wiener import PowerSpectrum

__all__ = ["FIELD_CONFIG", "SETTINGS", "bench_speed", "bench_accuracy", "main"]

OUT = ROOT / "benchmarks" / "fields.json"

#: The 384² fields: the default simulator at the default halo density per deg².
FIELD_CONFIG = SimulationConfig(npix=384)
#: Settings scored: (label, pixel side [arcmin], n_gal, masks).
SETTINGS = (
    ("0.5′, 10", 0.5, 10.0, False),
    ("0.5′, 30", 0.5, 30.0, False),
    ("0.5′, 30 masked", 0.5, 30.0, True),
    ("0.5′, 100", 0.5, 100.0, False),
    ("0.5′, no noise", 0.5, math.inf, False),
    ("0.3′, 30", 0.3, 30.0, False),
    ("0.3′, 100", 0.3, 100.0, False),
    ("0.3′, no noise", 0.3, math.inf, False),
)
#: The KS93 smoothing grid [pixels] of the oracle baselines.
KS93_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
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


def _r(pred, true) -> float:
    return float(np.corrcoef(np.ravel(pred), np.ravel(true))[0, 1])


def _single_tiles(model, eps, pixel_arcmin) -> np.ndarray:
    """The field predicted tile by tile, nine non-overlapping 128² tiles, no blending."""
    out = np.empty(eps.shape[:2], np.float32)
    corners = [(y, x) for y in range(0, 384, 128) for x in range(0, 384, 128)]
    tiles = np.stack([eps[y : y + 128, x : x + 128] for y, x in corners])
    pred = predict_kappa(model, tiles, pixel_arcmin=pixel_arcmin)
    for (y, x), tile in zip(corners, pred, strict=True):
        out[y : y + 128, x : x + 128] = tile
    return out


def bench_accuracy(model, signal: PowerSpectrum, n: int, previous=None) -> dict:
    """Per setting: mean per-field RMSE and r of every method, and the target ratios."""
    out = {}
    for label, pixel, n_gal, masks in SETTINGS:
        config = FIELD_CONFIG.replace(n_gal=n_gal, masks=masks, pixel_arcmin=pixel)
        rmse: dict[str, list[float]] = {}
        corr: dict[str, list[float]] = {}
        ks_rmse = np.zeros((n, len(KS93_SIGMAS)))
        ks_r = np.zeros((n, len(KS93_SIGMAS)))
        for i, seed in enumerate(range(SEED, SEED + n)):
            eps, kappa = simulate_sample(seed, config)
            maps = {
                "unet_tiles": model_predictor(model)(eps, pixel_arcmin=pixel),
                "unet_convolutional": predict_field(model, eps, method="convolutional")
                if pixel == 0.5
                else None,
                "unet_single_tiles": _single_tiles(model, eps, pixel),
                "previous": None if previous is None else model_predictor(previous)(eps),
                "ks93": ks93_depth_predictor(FIELD_PAD_PX)(eps[None], pixel_arcmin=pixel)[0],
                "wiener": wiener_field(eps, signal, pixel_arcmin=pixel),
            }
            for name, m in maps.items():
                if m is not None:
                    rmse.setdefault(name, []).append(_rmse(m, kappa))
                    corr.setdefault(name, []).append(_r(m, kappa))
            raw = ks93_field(eps, sigma_px=0.0)
            for j, sigma in enumerate(KS93_SIGMAS):
                smooth = gaussian_smooth(raw, sigma)
                ks_rmse[i, j], ks_r[i, j] = _rmse(smooth, kappa), _r(smooth, kappa)
        j_rmse, j_r = int(np.argmin(ks_rmse.mean(0))), int(np.argmax(ks_r.mean(0)))
        rmse["ks93_best_rmse"], corr["ks93_best_rmse"] = (
            list(ks_rmse[:, j_rmse]),
            list(ks_r[:, j_rmse]),
        )
        rmse["ks93_best_r"], corr["ks93_best_r"] = list(ks_rmse[:, j_r]), list(ks_r[:, j_r])
        row = {
            "pixel_arcmin": pixel,
            "n_gal": n_gal,
            "masks": masks,
            "ks93_best_sigma_px": {"rmse": KS93_SIGMAS[j_rmse], "r": KS93_SIGMAS[j_r]},
            "rmse": {k: mean_se(v) for k, v in rmse.items()},
            "r": {k: mean_se(v) for k, v in corr.items()},
        }
        m_rmse = {k: v["mean"] for k, v in row["rmse"].items()}
        m_r = {k: v["mean"] for k, v in row["r"].items()}
        best_rmse = min(m_rmse["ks93_best_rmse"], m_rmse["wiener"])
        best_r = max(m_r["ks93_best_r"], m_r["wiener"])
        row["unet_over_best_baseline_rmse"] = m_rmse["unet_tiles"] / best_rmse
        row["unet_minus_best_baseline_r"] = m_r["unet_tiles"] - best_r
        row["tiles_over_single_tiles_rmse"] = m_rmse["unet_tiles"] / m_rmse["unet_single_tiles"]
        row["target_met"] = bool(
            row["unet_over_best_baseline_rmse"] <= 1.0 and row["unet_minus_best_baseline_r"] >= 0
        )
        out[label] = row
        print(
            f"  {label:>16}: "
            + "  ".join(f"{k} {m_rmse[k]:.5f}/{m_r[k]:.3f}" for k in m_rmse)
            + f"  -> {'met' if row['target_met'] else 'MISSED'}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both parts, print them and write JSON; returns the exit status."""
    args, weights = field_benchmark_args(
        argv, "bench_fields", OUT, "3 fields per depth, 3 repeats", ("--n", 30, "fields per depth")
    )
    model = load_model(weights)
    previous = load_model(args.previous) if args.previous else None
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
    accuracy = bench_accuracy(model, signal, n, previous)
    results = {
        "weights": checkout_relative(weights),
        "previous": args.previous,
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
            "unet_over_best_baseline_rmse": "<= 1 (the better of KS93 at its best σ and Wiener)",
            "unet_minus_best_baseline_r": ">= 0",
        },
        "wall_s": time.perf_counter() - t0,
    }
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
