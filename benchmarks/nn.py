"""The TensorFlow benchmarks, registered in :data:`benchmarks.BENCHMARKS`.

inference
    The shipped model (``weights/lite.keras``, or an untrained ``lite`` if absent) on
    CPU: maps per second in batches and single-map latency, warm, through the
    ``tf.function`` forward of :func:`lensviz.nn.inference.predict_kappa`; ``model.predict``
    on the same batch is timed as the baseline.
training
    Training steps per second fed by the HDF5 streaming pipeline
    (:func:`lensviz.nn.pipelines.hdf5_dataset`, shuffled chunks, augmentation; a gzip file and
    an uncompressed one, the setting for hot training files) and
    by the on-the-fly simulation pipeline (:func:`lensviz.nn.pipelines.simulated_dataset`),
    against the same model fed from in-memory arrays; and the time each pipeline takes
    to produce a batch with no training at all, from which the share of step time spent
    producing data follows. On 2 cores the simulator competes with the training step for
    the same cores, so its pipeline cannot reach the in-memory rate.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import keras

from benchmarks import timeit
from lensviz.data import write_hdf5
from lensviz.evaluation import default_weights
from lensviz.nn.inference import load_model, predict_kappa
from lensviz.nn.losses import MultiFocalLoss
from lensviz.nn.pipelines import hdf5_dataset, simulated_dataset
from lensviz.nn.presets import PRESETS
from lensviz.nn.uncertainty import predict_mc_dropout, predict_tta
from lensviz.nn.unet import build_unet
from lensviz.simulate import simulate_batch

__all__ = ["bench_inference", "bench_training", "bench_uncertainty"]


def _model():
    shipped = default_weights()
    if shipped is not None:
        return load_model(shipped), f"weights/{shipped.name}"
    return build_unet(PRESETS["lite"]), "untrained lite (weights/lite.keras not found)"


def bench_inference(quick: bool = False) -> dict:
    model, source = _model()
    n = 64 if quick else 256
    eps, _ = simulate_batch(n, 0)
    predict_kappa(model, eps[:64], batch_size=64)  # trace
    batched = timeit(lambda: predict_kappa(model, eps, batch_size=64), 3 if quick else 5)
    one = eps[0]
    predict_kappa(model, one)
    single = timeit(lambda: predict_kappa(model, one), 10 if quick else 30, warmup=3)
    keras_predict = timeit(lambda: model.predict(eps[:1], verbose=0), 5 if quick else 10, warmup=2)
    return {
        "model": source,
        "maps": n,
        "batched": batched,
        "maps_per_s_batched": n / batched["median_s"],
        "single_map": single,
        "single_map_latency_ms": 1e3 * single["median_s"],
        "model_predict_single_map": keras_predict,
        "speedup_vs_model_predict_single": keras_predict["median_s"] / single["median_s"],
        "targets": ">= 80 maps/s batched; < 50 ms for one map",
    }


def bench_training(quick: bool = False) -> dict:
    batch, steps = 8, (15 if quick else 60)
    keras.utils.set_random_seed(0)
    model = build_unet(PRESETS["lite"])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=MultiFocalLoss())
    eps, kappa = simulate_batch(batch * 4, 2_000_000)
    for _ in range(3):  # trace and warm up
        model.train_on_batch(eps[:batch], kappa[:batch])

    def run_memory():
        t0 = time.perf_counter()
        for i in range(steps):
            j = (i % 4) * batch
            model.train_on_batch(eps[j : j + batch], kappa[j : j + batch])
        return time.perf_counter() - t0

    tmp = tempfile.TemporaryDirectory()
    eps_h5, kappa_h5 = simulate_batch(256, 5_000_000)
    h5_gzip = os.path.join(tmp.name, "gzip.h5")
    h5_raw = os.path.join(tmp.name, "raw.h5")
    write_hdf5(h5_gzip, eps_h5, kappa_h5)  # the default: shuffle + gzip 4
    write_hdf5(h5_raw, eps_h5, kappa_h5, compression=None)  # for hot training files
    iters = {
        "hdf5_gzip": iter(hdf5_dataset(h5_gzip, batch, chunk_size=64)),
        "hdf5_uncompressed": iter(hdf5_dataset(h5_raw, batch, chunk_size=64)),
        "simulated": iter(simulated_dataset(batch, seed_start=3_000_000)),
    }
    for it in iters.values():
        next(it)

    def run_pipeline(it):
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = next(it)
            model.train_on_batch(x, y)
        return time.perf_counter() - t0

    def data_only(it):
        t0 = time.perf_counter()
        for _ in range(steps):
            next(it)
        return (time.perf_counter() - t0) / steps

    # Interleave the runs so that machine load affects all alike.
    mem, pipe = [], {name: [] for name in iters}
    for _ in range(2 if quick else 3):
        mem.append(run_memory())
        for name, it in iters.items():
            pipe[name].append(run_pipeline(it))
    mem_step = statistics.median(mem) / steps
    out = {"batch_size": batch, "steps_per_run": steps, "in_memory_steps_per_s": 1 / mem_step}
    for name, it in iters.items():
        step = statistics.median(pipe[name]) / steps
        produce = data_only(it)
        out[f"{name}_steps_per_s"] = 1 / step
        out[f"{name}_vs_memory"] = mem_step / step
        out[f"{name}_batch_production_s"] = produce
        out[f"{name}_data_share_of_step"] = produce / step
    tmp.cleanup()
    out["cpu_count"] = os.cpu_count()
    out["target"] = "pipeline within 10% of in-memory (ratio >= 0.9)"
    return out


def bench_uncertainty(quick: bool = False) -> dict:
    model, source = _model()
    n, passes = (8, 10) if quick else (32, 20)
    eps, _ = simulate_batch(n, 11)
    predict_kappa(model, eps)
    predict_mc_dropout(model, eps[:2], n_passes=2)
    single = timeit(lambda: predict_kappa(model, eps), 3 if quick else 5)
    mc = timeit(lambda: predict_mc_dropout(model, eps, n_passes=passes), 2 if quick else 3)
    tta = timeit(lambda: predict_tta(model, eps), 2 if quick else 3)
    return {
        "model": source,
        "maps": n,
        "passes": passes,
        "single_pass": single,
        "mc_dropout": mc,
        "tta_8": tta,
        "mc_dropout_vs_single": mc["median_s"] / single["median_s"],
        "tta_vs_single": tta["median_s"] / single["median_s"],
        "mc_dropout_ms_per_map": 1e3 * mc["median_s"] / n,
    }
