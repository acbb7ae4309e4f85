"""The scaling benchmark: batch commands against the number of maps; training against batch.

Registered in :data:`benchmarks.BENCHMARKS` as ``scale``; run it alone, it takes a while::

    python -m benchmarks scale --out benchmarks/scale.json

What it measures
    One uncompressed simulated HDF5 file of the largest N is written once, by
    ``python -m lensviz simulate --compression none`` in a temporary folder (32,768 maps
    are 8.6 GB; the sizes that do not fit the free disk are dropped and the result says
    so). Then, for each N, every command runs in its own child process, reading the
    first N maps:

    * ``predict --method ks93``, ``--method wiener``, ``--method unet`` (the shipped
      weights, else an untrained ``lite``);
    * ``evaluate`` (KS93 raw and smoothed, Wiener, UNet).

    For each: wall time (start-up included), CPU time (user + system, every thread),
    maps per second, the command's own rate from its first batch to its last write
    (``predict`` prints it), and the command's peak resident memory (``ru_maxrss``,
    read by a small launcher process: a child forked from this process would count this
    process's memory too). The file-writing ``simulate`` itself is measured the same way.

Baselines, in the same run
    Right before each ``predict`` command, under the same machine load: bare KS93 and
    Wiener (the predictors on 2,048 maps already in memory, batches of 256) or the UNet's
    ``tf.function`` forward (:func:`lensviz.nn.inference.predict_kappa`, 512 maps in
    batches of 64) in this process, median of 3; the ratios ``predict`` rate / bare rate
    (median over the sizes from 2,048 maps) are the figures to quote.

Whole fields
    Seconds to reconstruct one square field against its side (256 to 2,048 pixels):
    KS93 and Wiener on the whole field (:func:`lensviz.fields.ks93_field`,
    :func:`~lensviz.fields.wiener_field`), the UNet on overlapping 128² tiles
    (:func:`lensviz.nn.fields.predict_field`). The fields are shape noise (the time does
    not depend on the content).

Training
    Training steps per second of the ``lite`` UNet against the batch size, fed from
    arrays in memory (the step alone, as in :func:`benchmarks.nn.bench_training`).

Targets
    Peak RSS of ``predict`` at the largest N within 10% of its value at 2,048; time
    linear in N (the time per map between consecutive sizes within 25%; judged on CPU
    time too, which another process on the machine disturbs less than wall time); KS93
    ``predict`` at least half the bare KS93 rate; UNet ``predict`` at least 80% of the
    ``tf.function`` rate. ``checks`` in the result says which hold.

``LENSVIZ_SCALE_SIZES`` (e.g. ``256,2048``) replaces the sizes, ``LENSVIZ_SCALE_DIR``
the temporary folder's parent.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from lensviz.data import read_hdf5
from lensviz.evaluation import (
    default_power_spectrum,
    default_weights,
    ks93_predictor,
    wiener_predictor,
)
from lensviz.fields import ks93_field, wiener_field
from lensviz.nn.fields import predict_field
from lensviz.nn.inference import load_model, predict_kappa, save_model
from lensviz.nn.losses import MultiFocalLoss
from lensviz.nn.presets import resolve_config
from lensviz.nn.unet import build_unet
from lensviz.simulate import simulate_batch
from lensviz.wiener import PowerSpectrum

__all__ = ["SIZES", "QUICK_SIZES", "bench_scale", "run_child"]

ROOT = Path(__file__).resolve().parent.parent

#: Numbers of maps of the full run, and of ``--quick``.
SIZES = (256, 2048, 8192, 32768)
QUICK_SIZES = (64, 256)
#: Bytes per map of the uncompressed input file (ε and κ, float32, 128 × 128).
BYTES_PER_MAP = 128 * 128 * 4 * 4
#: Free disk kept beyond the input file and one output (bytes).
DISK_MARGIN = 2 * 2**30
#: Sides (pixels) of the whole fields timed (and of ``--quick``).
FIELD_SIDES = (256, 512, 1024, 2048)
QUICK_FIELD_SIDES = (256, 512)
#: Batch sizes of the training measurement (and of ``--quick``).
TRAIN_BATCHES = (2, 4, 8, 16, 32)
QUICK_TRAIN_BATCHES = (2, 4)

_RATE = re.compile(r"in ([0-9.]+) s, ([0-9.]+) maps/s")


# Runs the command in a grandchild and reports the grandchild's peak RSS. A process
# forked from this one (TensorFlow loaded, over 1 GiB) would count this process's memory
# in its own ru_maxrss (Linux keeps the high-water mark of the image it replaced at
# exec); the small launcher's child does not inherit that.
_LAUNCHER = (
    "import resource, subprocess, sys; "
    "rc = subprocess.call(sys.argv[1:]); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print('peak_rss_kib', u.ru_maxrss, 'cpu_s', u.ru_utime + u.ru_stime, file=sys.stderr); "
    "sys.exit(rc)"
)


def run_child(argv: list[str], timeout_s: float = 3600.0) -> dict:
    """Run ``python -m lensviz ARGV`` in a child; its wall time, peak RSS and output.

    Returns
    -------
    dict
        ``wall_s``, ``cpu_s`` (user + system, all threads), ``peak_rss_mib`` (the
        command's ``ru_maxrss``), ``load_1min`` (the machine's load average when it
        ended) and ``stdout``.

    Raises
    ------
    RuntimeError
        If the command fails (its stderr's end in the message) or runs past
        ``timeout_s``.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "lensviz", *argv]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"lensviz {' '.join(argv)}: still running after {timeout_s} s") from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lensviz {' '.join(argv)} failed: {proc.stderr[-1500:]}")
    usage = re.findall(r"^peak_rss_kib (\d+) cpu_s ([0-9.]+)$", proc.stderr, re.MULTILINE)
    return {
        "wall_s": wall,
        "cpu_s": float(usage[-1][1]),
        "peak_rss_mib": int(usage[-1][0]) / 1024,
        "load_1min": os.getloadavg()[0],
        "stdout": proc.stdout,
    }


def _sizes(quick: bool) -> tuple[int, ...]:
    text = os.environ.get("LENSVIZ_SCALE_SIZES", "").strip()
    if text:
        return tuple(sorted(int(v) for v in text.split(",")))
    return QUICK_SIZES if quick else SIZES


def _fitting_sizes(sizes, folder: Path) -> tuple[list[int], list[str]]:
    free = shutil.disk_usage(folder).free
    keep, notes = [], []
    for n in sizes:
        need = n * BYTES_PER_MAP + n * 128 * 128 * 4 + DISK_MARGIN
        if need <= free:
            keep.append(n)
        else:
            notes.append(f"N = {n} skipped: needs {need / 2**30:.1f} GiB, {free / 2**30:.1f} free")
    return keep, notes


def _weights(folder: Path) -> tuple[str, str]:
    shipped = default_weights()
    if shipped is not None:
        return str(shipped), f"weights/{shipped.name}"
    path = folder / "lite.keras"
    save_model(build_unet(resolve_config("lite")), path)
    return str(path), "untrained lite (weights/lite.keras not found)"


def _rate(samples: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return samples / (time.perf_counter() - t0)


def _bare_rate(method: str, eps: np.ndarray, model, repeat: int = 3) -> float:
    """Median maps/s of one method on arrays in memory: the predictors in batches of 256
    (KS93, Wiener; 2,048 maps), the UNet's ``tf.function`` forward in batches of 64 (512)."""
    if method == "unet":
        maps = eps[:512]
        return statistics.median(
            _rate(len(maps), lambda: predict_kappa(model, maps, batch_size=64))
            for _ in range(repeat)
        )
    predictor = ks93_predictor(0.0) if method == "ks93" else wiener_predictor()

    def run():
        for i in range(0, len(eps), 256):
            predictor(eps[i : i + 256])

    return statistics.median(_rate(len(eps), run) for _ in range(repeat))


def _field_times(model, sides) -> dict[str, dict[str, float]]:
    """Seconds per whole square field of each side, by KS93, Wiener and the tiled UNet."""
    signal = PowerSpectrum.load(default_power_spectrum())
    methods = {
        "ks93": lambda eps: ks93_field(eps, sigma_px=2.0),
        "wiener": lambda eps: wiener_field(eps, signal),
        "unet_tiles": lambda eps: predict_field(model, eps),
    }
    rng = np.random.default_rng(0)
    out = {}
    for side in sides:
        eps = np.empty((side, side, 3), np.float32)
        eps[..., :2] = rng.normal(0.0, 0.05, (side, side, 2))
        eps[..., 2] = 0.05
        if side == sides[0]:
            for fn in methods.values():  # warm up (traces the tiled forward)
                fn(eps)
        out[str(side)] = {name: _seconds(fn, eps) for name, fn in methods.items()}
    return out


def _seconds(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _training_rates(batches, steps: int) -> dict[str, dict[str, float]]:
    keras.utils.set_random_seed(0)
    model = build_unet(resolve_config("lite"))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=MultiFocalLoss())
    eps, kappa = simulate_batch(max(batches), 2_000_000)
    out = {}
    for b in batches:
        for _ in range(2):  # trace and warm up
            model.train_on_batch(eps[:b], kappa[:b])
        t0 = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(eps[:b], kappa[:b])
        step = (time.perf_counter() - t0) / steps
        out[str(b)] = {"steps_per_s": 1 / step, "maps_per_s": b / step}
    return out


def _linear(times: dict[int, float]) -> dict:
    """Seconds per map between consecutive sizes; linear if they agree within 25%."""
    ns = sorted(times)
    marginal = {
        f"{a}-{b}": (times[b] - times[a]) / (b - a) for a, b in zip(ns, ns[1:], strict=False)
    }
    values = list(marginal.values())
    ok = bool(values) and max(values) <= 1.25 * min(values) and min(values) > 0
    return {"marginal_s_per_map": marginal, "linear_within_25pct": ok}


def bench_scale(quick: bool = False) -> dict:
    load_start = os.getloadavg()
    sizes = _sizes(quick)
    parent = os.environ.get("LENSVIZ_SCALE_DIR") or None
    folder = Path(tempfile.mkdtemp(prefix="lensviz-scale-", dir=parent))
    try:
        sizes, notes = _fitting_sizes(sizes, folder)
        if not sizes:
            return {"skipped": notes}
        n_max = sizes[-1]
        data = folder / "sim.h5"
        simulate = run_child(
            ["simulate", "--n", str(n_max), "--out", str(data), "--compression", "none",
             "--batch", "256"]
        )  # fmt: skip
        weights, source = _weights(folder)
        model = load_model(weights)
        eps = read_hdf5(data, 0, min(n_max, 2048))[0]
        predict_kappa(model, eps[:64], batch_size=64)  # trace
        results: dict[str, dict] = {}
        commands = {
            "predict_ks93": ["predict", str(data), "--method", "ks93"],
            "predict_wiener": ["predict", str(data), "--method", "wiener"],
            "predict_unet": ["predict", str(data), "--method", "unet", "--weights", weights],
            "evaluate": ["evaluate", str(data), "--weights", weights],
        }
        for name, argv in commands.items():
            results[name] = {}
            for n in sizes:
                out = folder / "out.h5"
                extra = ["--n", str(n)] + (["--out", str(out)] if name != "evaluate" else [])
                method = name.removeprefix("predict_")
                # The baseline right before the command, under the same machine load.
                bare = _bare_rate(method, eps, model) if name != "evaluate" else None
                r = run_child(argv + extra)
                row = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "maps_per_s": n / r["wall_s"],
                       "peak_rss_mib": r["peak_rss_mib"], "load_1min": r["load_1min"]}  # fmt: skip
                match = _RATE.search(r["stdout"])
                if match:
                    row["command_maps_per_s"] = float(match[2])
                if bare is not None:
                    row["bare_maps_per_s"] = bare
                    row["vs_bare"] = row.get("command_maps_per_s", float("nan")) / bare
                results[name][str(n)] = row
                out.unlink(missing_ok=True)
        fields = _field_times(model, QUICK_FIELD_SIDES if quick else FIELD_SIDES)
        training = _training_rates(
            QUICK_TRAIN_BATCHES if quick else TRAIN_BATCHES, 5 if quick else 20
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    checks: dict[str, object] = {}
    largest = str(sizes[-1])
    for name, rows in results.items():
        checks[f"{name}_wall_time"] = _linear({int(n): r["wall_s"] for n, r in rows.items()})
        checks[f"{name}_cpu_time"] = _linear({int(n): r["cpu_s"] for n, r in rows.items()})
        if "2048" in rows and largest != "2048":
            ratio = rows[largest]["peak_rss_mib"] / rows["2048"]["peak_rss_mib"]
            checks[f"{name}_rss_{largest}_vs_2048"] = ratio
            checks[f"{name}_rss_flat_within_10pct"] = ratio <= 1.10
    for method, target in (("ks93", 0.5), ("wiener", 0.5), ("unet", 0.8)):
        rows = results[f"predict_{method}"]
        big = [r["vs_bare"] for n, r in rows.items() if int(n) >= 2048]
        ratio = statistics.median(big or [rows[largest]["vs_bare"]])  # sizes from 2,048
        checks[f"predict_{method}_vs_bare"] = ratio
        checks[f"predict_{method}_vs_bare_target"] = target
        checks[f"predict_{method}_meets_target"] = bool(ratio >= target)
    return {
        "sizes": list(sizes),
        "notes": notes,
        "model": source,
        "load_average_start": list(load_start),
        "simulate": {
            "maps": n_max,
            "wall_s": simulate["wall_s"],
            "maps_per_s": n_max / simulate["wall_s"],
            "peak_rss_mib": simulate["peak_rss_mib"],
        },
        "commands": results,
        "whole_field_seconds": fields,
        "training_lite_in_memory": training,
        "checks": checks,
        "cpu_count": os.cpu_count(),
        "load_average_end": list(os.getloadavg()),
    }
