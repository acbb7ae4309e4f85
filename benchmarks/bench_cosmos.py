"""COSMOS null tests: E/B ratios of the UNet, KS93 and Wiener, and the significant peaks.

    python -m benchmarks.bench_cosmos [--weights W.keras] [--previous V.keras]
                                      [--n-noise 200] [--quick] [--out benchmarks/cosmos.json]

E/B
    The rms of each method's map of the real data over that of its map of the
    45°-rotated data (:func:`lensviz.nulltests.e_over_b`), inside the footprint (pixels
    with galaxies) and inside its interior (8 px from the survey edge and the star
    holes). KS93 at several Gaussian σ (0, 2, 4 px and the depth rule's σ); the UNet as it
    comes out and smoothed by the same σ; the Wiener filter likewise. All whole-field
    methods are zero-padded by 64 px; the UNet runs on blended 128² tiles. Beside each
    ratio, the mean and spread of the same ratio over 30 noise realisations: a field with
    no signal scatters by that much around 1.
Peaks
    Each method's peaks (UNet as is, KS93 at the depth rule's σ, Wiener) against
    ``--n-noise`` noise maps from randomised orientations, the same realisations for
    every method (:func:`lensviz.nulltests.null_tests`): S/N = height / noise rms at the
    peak, and the false-alarm rate (share of noise maps with a higher highest peak). The
    peaks with S/N ≥ 3 are listed, with positions in pixels and arcmin from the field's
    corner (0.352′ pixels, :data:`lensviz.cosmos.COSMOS_PIXEL_ARCMIN`, which every method
    is given). Beside them, the share of each method's B-map pixels beyond ±3 noise rms
    (:func:`lensviz.nulltests.b_outlier_share`; Gaussian noise: 0.27 %). ``--previous``
    adds the model shipped before, as it ran then (its own pixel scale).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks import ROOT, checkout_relative, field_benchmark_args, save
from lensviz import cosmos, depth, nulltests
from lensviz.evaluation import default_power_spectrum
from lensviz.fields import ks93_field, wiener_field
from lensviz.inversion import gaussian_smooth
from lensviz.nn.inference import load_model, model_predictor
from lensviz.wiener import PowerSpectrum

__all__ = ["SIGMAS", "e_over_b_table", "peaks", "main"]

OUT = ROOT / "benchmarks" / "cosmos.json"
SIGMAS = (0.0, 2.0, 4.0)  # smoothing σ [px] of the E/B table, plus the depth rule's
INTERIOR_PX = 8  # the interior of the footprint: this far from its edge and holes
N_NULL = 30  # noise realisations for the spread of the E/B ratio
MIN_SNR = 3.0  # peaks listed


def e_over_b_table(methods: dict, field, n_null: int) -> dict:
    """E/B of every method at every σ, over the footprint and its interior.

    Returns ``{method: {"footprint": {σ: ratio}, "interior": {σ: ratio},
    "null_footprint": {σ: [mean, std]}}}``: the interior is the footprint eroded by
    :data:`INTERIOR_PX` (away from the survey edge and the star holes, where every method
    extrapolates), and the null values are the E/B of ``n_null`` noise realisations
    (randomised orientations), whose spread is the uncertainty of one field's ratio.
    """
    eps, footprint = field.eps, ~field.mask
    interior = nulltests.peak_region(footprint, INTERIOR_PX)
    rule = depth.ks93_sigma(eps[..., 2], pixel_arcmin=cosmos.COSMOS_PIXEL_ARCMIN)
    sigmas = (*SIGMAS, round(rule, 2))
    fakes = [
        nulltests.randomise_orientations(eps, np.random.default_rng([7, i])) for i in range(n_null)
    ]
    table = {}
    for name, reconstruct in methods.items():
        e, b = reconstruct(np.stack([eps, nulltests.rotate_45(eps)]))
        null = [reconstruct(np.stack([f, nulltests.rotate_45(f)])) for f in fakes]
        row = {"footprint": {}, "interior": {}, "null_footprint": {}}
        for s in sigmas:
            es, bs = gaussian_smooth(e, s), gaussian_smooth(b, s)
            row["footprint"][f"{s:g}"] = nulltests.e_over_b(es, bs, footprint)
            row["interior"][f"{s:g}"] = nulltests.e_over_b(es, bs, interior)
            ratios = [
                nulltests.e_over_b(gaussian_smooth(ne, s), gaussian_smooth(nb, s), footprint)
                for ne, nb in null
            ]
            row["null_footprint"][f"{s:g}"] = [float(np.mean(ratios)), float(np.std(ratios))]
        table[name] = row
    table["depth_rule_sigma_px"] = rule
    return table


def peaks(methods: dict, field, n_noise: int) -> dict:
    """Peaks with S/N ≥ :data:`MIN_SNR` of each method, and its E/B as used."""
    tests = nulltests.null_tests(methods, field.eps, ~field.mask, n_noise=n_noise, seed=0)
    out = {}
    for name, result in tests.items():
        out[name] = {
            "e_over_b": result["e_over_b"],
            "b_outlier_share": result["b_outlier_share"],
            "e_rms": result["e_rms"],
            "b_rms": result["b_rms"],
            "median_noise_rms": float(
                sorted(result["noise_rms"][~field.mask])[int((~field.mask).sum()) // 2]
            ),
            "peaks": [
                {
                    "y": p.y,
                    "x": p.x,
                    "y_arcmin": p.y * cosmos.COSMOS_PIXEL_ARCMIN,
                    "x_arcmin": p.x * cosmos.COSMOS_PIXEL_ARCMIN,
                    "height": p.height,
                    "noise_rms": p.noise_rms,
                    "snr": p.snr,
                    "false_alarm": p.false_alarm,
                }
                for p in result["peaks"]
                if p.snr >= MIN_SNR
            ],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the null tests on COSMOS, print the headline figures and write JSON."""
    args, weights = field_benchmark_args(
        argv, "bench_cosmos", OUT, "20 noise maps", ("--n-noise", 200, "noise maps")
    )
    t0 = time.perf_counter()
    model = load_model(weights)
    signal = PowerSpectrum.load(default_power_spectrum())
    field = cosmos.load_cosmos()
    scale = cosmos.COSMOS_PIXEL_ARCMIN
    rule = depth.ks93_sigma(field.eps[..., 2], pixel_arcmin=scale)
    unet = model_predictor(model)
    raw = {
        "unet": lambda e: unet(e, pixel_arcmin=scale),
        "ks93": lambda e: ks93_field(e, sigma_px=0.0),
        "wiener": lambda e: wiener_field(e, signal, pixel_arcmin=scale),
    }
    if args.previous:
        previous = model_predictor(load_model(args.previous))
        raw["previous"] = lambda e: previous(e)
    table = e_over_b_table(raw, field, 5 if args.quick else N_NULL)
    as_used = {
        "unet": raw["unet"],
        "ks93_depth_rule": lambda e: ks93_field(e, pixel_arcmin=scale),
        "wiener": raw["wiener"],
    }
    if args.previous:
        as_used["previous"] = raw["previous"]
    found = peaks(as_used, field, 20 if args.quick else args.n_noise)
    results = {
        "weights": checkout_relative(weights),
        "previous": args.previous,
        "pixel_arcmin": cosmos.COSMOS_PIXEL_ARCMIN,
        "sigma_e": field.sigma_e,
        "footprint_pixels": int((~field.mask).sum()),
        "depth_rule_sigma_px": rule,
        "e_over_b": table,
        "null_tests": found,
        "n_noise": 20 if args.quick else args.n_noise,
        "wall_s": time.perf_counter() - t0,
    }
    for name in [m for m in raw if m in table]:
        row = table[name]
        print(
            f"E/B {name:>7}: "
            + "  ".join(
                f"σ={s} {v:.3f} (interior {row['interior'][s]:.3f}, null "
                f"{row['null_footprint'][s][0]:.3f}±{row['null_footprint'][s][1]:.3f})"
                for s, v in row["footprint"].items()
            )
        )
    for name, result in found.items():
        top = ", ".join(
            f"({p['y']},{p['x']}) S/N {p['snr']:.1f} FA {p['false_alarm']:.2f}"
            for p in result["peaks"][:5]
        )
        print(
            f"{name:>16}: E/B {result['e_over_b']:.3f}, B beyond ±3 noise rms "
            f"{result['b_outlier_share']:.2%}; peaks S/N ≥ {MIN_SNR:g}: {top}"
        )
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
