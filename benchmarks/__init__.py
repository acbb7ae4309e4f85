"""Benchmarks of lensviz: medians, and ratios against a baseline timed in the same run.

Run from a checkout (this folder is not part of the installed package)::

    python -m benchmarks [NAME ...] [--quick] [--out benchmarks/results.json]

It prints a table and writes JSON. Absolute times on a shared machine are noise; the
ratios are the figures to quote.

Benchmarks
    ks93
        Batched :func:`lensviz.inversion.ks93` on 1,000 maps against the bare FFTs the
        same computation needs (2 forward + 2 inverse real FFTs of the batch), and
        against a per-map Python loop.
    metrics
        WMAPE, DICEE and DPEAKS of 1,000 float32 map pairs with
        :func:`lensviz.metrics.score` against a per-map loop in the style of the
        challenge's scorer (float64, scipy ``gaussian_filter`` and a ``maximum_filter``
        peak search per map); also all five metrics.
    simulate
        Simulated samples per second; the simulator is single-threaded (scipy.fft with
        one worker, element-wise numpy, no BLAS), so this is one core's rate.
    wiener
        The Wiener filter against KS93 (raw and smoothed), per map.
    inference, training, uncertainty
        TensorFlow benchmarks (:mod:`benchmarks.nn`).
    scale
        The batch commands (``predict``, ``evaluate``) at 256 to 32,768 maps in child
        processes: time, rate and peak memory against N, and training steps per second
        against the batch size (:mod:`benchmarks.scale`). It runs for about an hour and
        writes gigabytes, so it runs only when named:
        ``python -m benchmarks scale --out benchmarks/scale.json``.

The numpy benchmarks live in :mod:`benchmarks.core`, the TensorFlow ones in
:mod:`benchmarks.nn`; :data:`BENCHMARKS` names each as a ``"module:function"`` string,
imported only when it runs, so the numpy benchmarks never load TensorFlow. The app's
responsiveness is measured by ``python benchmarks/bench_app.py`` (Streamlit and a browser).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lensviz.evaluation import default_weights

__all__ = [
    "BENCHMARKS",
    "ON_REQUEST",
    "RESULTS_PATH",
    "ROOT",
    "checkout_relative",
    "field_benchmark_args",
    "mean_se",
    "timeit",
    "run",
    "format_results",
    "save",
]

#: The checkout this folder belongs to.
ROOT = Path(__file__).resolve().parent.parent
#: Where ``python -m benchmarks`` writes its results by default.
RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def field_benchmark_args(
    argv: Sequence[str] | None,
    module: str,
    out: Path,
    quick_help: str,
    option: tuple[str, int, str],
) -> tuple[argparse.Namespace, Path]:
    """The command line of a whole-field benchmark (``python -m benchmarks.MODULE``):
    ``--weights`` (default: the shipped UNet), one sizing ``option`` (flag, default,
    help), ``--quick`` and ``--out``. Returns the arguments and the weights file."""
    doc = importlib.import_module(f"benchmarks.{module}").__doc__ or module
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}", description=doc.splitlines()[0]
    )
    parser.add_argument("--weights", default=None, help="UNet .keras (default: the shipped)")
    parser.add_argument(
        "--previous", default=None, help="the UNet shipped before, scored beside it (.keras)"
    )
    flag, default, help_ = option
    parser.add_argument(flag, type=int, default=default, help=f"{help_} (default {default})")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", default=str(out), help=f"JSON output (default {out})")
    args = parser.parse_args(argv)
    weights = Path(args.weights) if args.weights else default_weights()
    if weights is None:
        parser.error("no --weights given and no shipped weights found")
    return args, weights


def checkout_relative(path) -> str:
    """``path`` relative to the checkout when it lies inside it (JSON stays portable)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def mean_se(values) -> dict[str, float]:
    """``{"mean", "se"}`` of per-field (or per-tile) values: their mean and its standard
    error, ``std(ddof=1) / sqrt(n)``."""
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "se": float(a.std(ddof=1) / np.sqrt(len(a)))}


#: Benchmark name → ``"module:function"``; the function takes ``quick: bool``, returns a dict.
BENCHMARKS: dict[str, str] = {
    "ks93": "benchmarks.core:bench_ks93",
    "metrics": "benchmarks.core:bench_metrics",
    "wiener": "benchmarks.core:bench_wiener",
    "simulate": "benchmarks.core:bench_simulate",
    "inference": "benchmarks.nn:bench_inference",
    "training": "benchmarks.nn:bench_training",
    "uncertainty": "benchmarks.nn:bench_uncertainty",
    "scale": "benchmarks.scale:bench_scale",
}

#: Benchmarks that run only when named (long, or heavy on disk).
ON_REQUEST = ("scale",)


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median, min and max wall time of ``fn()`` over ``repeat`` runs, after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeat": repeat,
    }


def _resolve(name: str) -> Callable[[bool], dict]:
    module, _, func = BENCHMARKS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def run(names: Sequence[str] | None = None, quick: bool = False) -> dict:
    """Run the named benchmarks (all by default) and return their results.

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`BENCHMARKS`; default all but :data:`ON_REQUEST`.
    quick : bool
        Smaller sizes and fewer repeats, for a smoke run.

    Returns
    -------
    dict
        ``machine`` (Python, CPUs, platform, numpy), ``quick`` and ``results``
        (``{name: dict}``, each with its wall time ``bench_wall_s``).
    """
    names = list(names or [n for n in BENCHMARKS if n not in ON_REQUEST])
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; available: {sorted(BENCHMARKS)}")
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "numpy": np.__version__,
        },
        "quick": quick,
        "results": {},
    }
    for name in names:
        t0 = time.perf_counter()
        results["results"][name] = _resolve(name)(quick)
        results["results"][name]["bench_wall_s"] = time.perf_counter() - t0
    return results


def format_results(results: dict) -> str:
    """Plain-text summary of the headline figures."""
    lines = []
    for name, r in results["results"].items():
        lines.append(f"[{name}]")
        for key, value in r.items():
            if isinstance(value, dict) and "median_s" in value:
                lines.append(f"  {key:<28} median {value['median_s'] * 1e3:10.2f} ms")
            elif isinstance(value, float):
                lines.append(f"  {key:<28} {value:12.4g}")
            elif isinstance(value, (int, str)):
                lines.append(f"  {key:<28} {value}")
            elif isinstance(value, dict):
                lines.append(f"  {key:<28} {json.dumps(value)}")
    return "\n".join(lines)


def save(results: dict, path: str | os.PathLike = RESULTS_PATH) -> Path:
    """Write ``results`` as JSON to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    return path
