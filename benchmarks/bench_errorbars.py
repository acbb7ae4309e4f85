"""Error bars that hold: coverage, sharpness and cost of every method's calibrated ±σ.

    python -m benchmarks.bench_errorbars [--weights W.keras] [--n 150] [--fields 50]
                                         [--quick] [--out benchmarks/errorbars.json]

Coverage
    At each depth of :data:`DEPTHS` (5, 10, 30, 100, 300 galaxies per arcmin² and no
    shape noise), on ``--n`` held-out masked 128² tiles (test seeds 0 on, masks on: up to
    30 % of the pixels in star discs and stripes) and on ``--fields`` whole 384² fields
    (seeds 3000 on, no masks): the share of pixels whose true κ lies within
    ``κ̂ ± kappa_std`` (target 68.3 % ± 3 points) and ``κ̂ ± kappa_hw95`` (95.4 % ± 1.5),
    over all pixels and per region: ``near_mask`` (within 3 px of an empty pixel),
    ``edge`` (within 8 px of the map's border), ``core`` (true κ > 0.1, cluster cores),
    ``rest``. Methods: KS93 raw, KS93 smoothed by the depth rule, the Wiener filter (each
    on the whole field, zero-padded by 64 px) and the UNet (field features, blended tiles,
    its quantile network).
Sharpness
    The mean ``kappa_std`` of each method, and the UNet's over the Wiener filter's (target
    ≤ 0.9 at 10, 30 and 100).
Cost
    Median time of ``--uncertainty calibrated`` over the plain prediction of the same
    method (target ≤ 2×): of the functions on 256 tiles in memory, and of the command
    ``python -m lensviz predict`` on 1,024 tiles in an HDF5 file (``--weights`` for the
    UNet; each run a fresh process, the two variants alternated, 3 runs each).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks import ROOT, checkout_relative, field_benchmark_args, save
from lensviz import constants
from lensviz.data import write_hdf5
from lensviz.depth import ks93_sigma
from lensviz.errorbars import COVERAGE_68, COVERAGE_95, linear_errorbars, load_error_models
from lensviz.evaluation import default_power_spectrum, ks93_predictor, wiener_predictor
from lensviz.fields import FIELD_PAD_PX
from lensviz.nn.errorbars import errorbar_predictor, load_sigma_net
from lensviz.nn.inference import load_model, model_predictor
from lensviz.simulate import SimulationConfig, depth_config, simulate_batch, simulate_sample
from lensviz.wiener import PowerSpectrum

__all__ = ["DEPTHS", "REGIONS", "bench_cli_cost", "bench_coverage", "bench_cost", "main"]

OUT = ROOT / "benchmarks" / "errorbars.json"
DEPTHS = ("5", "10", "30", "100", "300", "inf")
REGIONS = ("all", "near_mask", "edge", "core", "rest")
TILE_SEED, FIELD_SEED = 0, 3000


def _regions(eps, kappa) -> dict[str, np.ndarray]:
    empty = eps[..., 2] >= constants.EMPTY_PIXEL_SIGMA
    near = ndimage.binary_dilation(empty, iterations=3) if empty.any() else empty
    edge = np.ones(kappa.shape, bool)
    edge[8:-8, 8:-8] = False
    core = kappa > 0.1
    return {
        "all": np.ones(kappa.shape, bool),
        "near_mask": near,
        "edge": edge,
        "core": core,
        "rest": ~(near | edge | core),
    }


def _methods(unet, signal, error_models):
    """name -> (eps field, pixel) -> (κ̂, std, hw95), each on one whole field."""
    wiener = wiener_predictor(signal, FIELD_PAD_PX)

    def ks93(eps, sigma):
        pred = ks93_predictor(sigma, FIELD_PAD_PX)(eps[None])[0]
        std, hw = linear_errorbars(eps, error_models["ks93"], signal, sigma, FIELD_PAD_PX)
        return pred, std, hw

    def wf(eps):
        pred = wiener(eps[None])[0]
        std, hw = linear_errorbars(eps, error_models["wiener"], signal, 0.0, FIELD_PAD_PX)
        return pred, std, hw

    methods = {
        "ks93_raw": lambda eps: ks93(eps, 0.0),
        "ks93_rule": lambda eps: ks93(eps, ks93_sigma(eps[..., 2])),
        "wiener": wf,
    }
    if unet is not None:
        methods["unet"] = lambda eps: unet(eps)
    return methods


def _score(acc: dict, name: str, eps, kappa, pred, std, hw) -> None:
    err = np.abs(kappa - pred)
    for region, where in _regions(eps, kappa).items():
        n = int(where.sum())
        if n == 0:
            continue
        row = acc.setdefault(name, {}).setdefault(region, [0, 0, 0, 0.0])
        row[0] += n
        row[1] += int((err[where] <= std[where]).sum())
        row[2] += int((err[where] <= hw[where]).sum())
        row[3] += float(std[where].sum())


def _finish(acc: dict) -> dict:
    out = {}
    for name, regions in acc.items():
        out[name] = {}
        for region, (n, in68, in95, sum_std) in regions.items():
            out[name][region] = {
                "pixels": n,
                "coverage_68": in68 / n,
                "coverage_95": in95 / n,
                "mean_std": sum_std / n,
            }
        all_ = out[name]["all"]
        all_["target_met"] = bool(
            abs(all_["coverage_68"] - COVERAGE_68) <= 0.03
            and abs(all_["coverage_95"] - COVERAGE_95) <= 0.015
        )
    return out


def bench_coverage(methods: dict, n_tiles: int, n_fields: int) -> dict:
    """Per depth: coverage and mean σ of each method on masked tiles and on 384² fields."""
    out = {}
    for depth in DEPTHS:
        row = {}
        tiles_cfg = depth_config(depth).replace(masks=True)
        eps, kappa = simulate_batch(n_tiles, TILE_SEED, tiles_cfg)
        acc: dict = {}
        for e, k in zip(eps, kappa, strict=True):
            for name, method in methods.items():
                _score(acc, name, e, k, *method(e))
        row["masked_tiles"] = _finish(acc)
        acc = {}
        field_cfg = depth_config(depth, SimulationConfig(npix=384))
        for seed in range(FIELD_SEED, FIELD_SEED + n_fields):
            e, k = simulate_sample(seed, field_cfg)
            for name, method in methods.items():
                _score(acc, name, e, k, *method(e))
        row["fields_384"] = _finish(acc)
        if "unet" in row["masked_tiles"]:
            for kind in ("masked_tiles", "fields_384"):
                r = row[kind]
                r["unet_std_over_wiener"] = (
                    r["unet"]["all"]["mean_std"] / r["wiener"]["all"]["mean_std"]
                )
        out[depth] = row
        print(
            f"  {depth:>4}: "
            + "  ".join(
                f"{m} {v['all']['coverage_68']:.3f}/{v['all']['coverage_95']:.3f} "
                f"σ {v['all']['mean_std']:.4f}"
                for m, v in row["masked_tiles"].items()
                if isinstance(v, dict)
            ),
            flush=True,
        )
    return out


def _median_time(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_cost(model, errorbars, signal, error_models, n: int = 256) -> dict:
    """Median time of the calibrated prediction over the plain one, per method, on tiles."""
    eps, _ = simulate_batch(n, TILE_SEED, depth_config("30"))
    plain_unet = model_predictor(model)
    ks = ks93_predictor(4.0)
    wf = wiener_predictor(signal)
    pairs = {
        "ks93": (
            lambda: ks(eps),
            lambda: (ks(eps), linear_errorbars(eps, error_models["ks93"], signal, 4.0)),
        ),
        "wiener": (
            lambda: wf(eps),
            lambda: (wf(eps), linear_errorbars(eps, error_models["wiener"], signal)),
        ),
        "unet": (lambda: plain_unet(eps), lambda: errorbars(eps)),
    }
    out = {}
    for name, (plain, calibrated) in pairs.items():
        a, b = _median_time(plain), _median_time(calibrated)
        out[name] = {"plain_s": a, "calibrated_s": b, "ratio": b / a, "maps": n}
        print(f"  cost {name}: {a:.3f} s plain, {b:.3f} s calibrated ({b / a:.2f}×)", flush=True)
    return out


def bench_cli_cost(weights, n: int = 1024, repeat: int = 3) -> dict:
    """Median wall time of ``predict --uncertainty calibrated`` over plain ``predict``,
    per method, each run a fresh process on ``n`` tiles at 30 gal/arcmin² in HDF5."""
    eps, _ = simulate_batch(n, TILE_SEED, depth_config("30"))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tiles.h5"
        write_hdf5(data, eps)
        for method in ("ks93", "wiener", "unet"):
            base = [sys.executable, "-m", "lensviz", "predict", str(data), "--method", method]
            base += ["--weights", str(weights)] if method == "unet" else []
            times: dict[str, list[float]] = {"plain": [], "calibrated": []}
            for _ in range(repeat):
                for kind, extra in (("plain", []), ("calibrated", ["--uncertainty", "calibrated"])):
                    argv = [*base, *extra, "--out", str(Path(tmp) / f"{kind}.h5"), "--overwrite"]
                    t0 = time.perf_counter()
                    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
                    times[kind].append(time.perf_counter() - t0)
            a, b = float(np.median(times["plain"])), float(np.median(times["calibrated"]))
            out[method] = {"plain_s": a, "calibrated_s": b, "ratio": b / a, "maps": n}
            print(f"  predict {method}: {a:.2f} s plain, {b:.2f} s calibrated ({b / a:.2f}×)")
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure coverage, sharpness and cost; print and write JSON."""
    args, weights = field_benchmark_args(
        argv,
        "bench_errorbars",
        OUT,
        "10 tiles, 3 fields per depth",
        ("--n", 150, "tiles per depth"),
    )
    t0 = time.perf_counter()
    signal = PowerSpectrum.load(default_power_spectrum())
    error_models = load_error_models(constants.WEIGHTS_DIR / "errorbars.json")
    model = load_model(weights)
    errorbars = errorbar_predictor(model, load_sigma_net(weights))
    methods = _methods(errorbars, signal, error_models)
    n_tiles, n_fields = (10, 3) if args.quick else (args.n, max(1, args.n // 3))
    coverage = bench_coverage(methods, n_tiles, n_fields)
    cost = bench_cost(model, errorbars, signal, error_models)
    cli_cost = bench_cli_cost(weights, n=64 if args.quick else 1024)
    results = {
        "weights": checkout_relative(weights),
        "tiles_per_depth": n_tiles,
        "fields_per_depth": n_fields,
        "coverage": coverage,
        "cost": cost,
        "cli_cost": cli_cost,
        "targets": {
            "coverage_68": f"{COVERAGE_68:.3f} ± 0.03",
            "coverage_95": f"{COVERAGE_95:.3f} ± 0.015",
            "unet_std_over_wiener": "<= 0.9 at 10, 30, 100",
            "cost": "<= 2x the plain prediction",
        },
        "wall_s": time.perf_counter() - t0,
    }
    print(f"wrote {save(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
