"""Streaming batch commands: read-ahead, predict/convert/evaluate batch by batch, atomic outputs."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from lensviz import data
from lensviz._atomic import is_temp_name
from lensviz.cli.data import load_data, read_ahead
from lensviz.evaluation import ks93_predictor
from lensviz.nn.inference import load_model, predict_kappa
from lensviz.simulate import simulate_batch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    """10 simulated samples (seeds 300..309) in an uncompressed HDF5 file."""
    eps, kappa = simulate_batch(10, 300)
    path = tmp_path_factory.mktemp("ten") / "ten.h5"
    data.write_hdf5(path, eps, kappa, [f"s{i:02d}" for i in range(10)], compression=None)
    return path, eps, kappa


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if is_temp_name(p.name))


def _reader_threads():
    return [t for t in threading.enumerate() if t.name == "lensviz-read-ahead"]


# === read_ahead ===


def test_read_ahead_keeps_order_and_stays_within_its_bound():
    produced = []
    consumed_at = []

    def batches():
        for i in range(20):
            produced.append(i)
            yield i

    with read_ahead(batches(), depth=2) as items:
        out = []
        for item in items:
            consumed_at.append(len(produced))
            out.append(item)
    assert out == list(range(20))
    # When item i is taken, at most i + 1 (this one) + 2 (queued) + 1 (being made) exist.
    assert all(n <= i + 4 for i, n in enumerate(consumed_at))
    assert _reader_threads() == []


def test_read_ahead_raises_the_readers_error_in_the_caller_and_closes_the_source():
    closed = threading.Event()

    def batches():
        try:
            yield 1
            raise ValueError("bad.h5: sample 1 is NaN")
        finally:
            closed.set()

    got = []
    with pytest.raises(ValueError, match="bad.h5: sample 1 is NaN"):
        with read_ahead(batches()) as items:
            for item in items:
                got.append(item)
    assert got == [1] and closed.is_set() and _reader_threads() == []


def test_leaving_early_stops_the_reader():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with read_ahead(endless(), depth=1) as items:
        assert next(items) == 0
    assert closed.is_set() and _reader_threads() == []
    with pytest.raises(ValueError, match="depth"):
        with read_ahead([], depth=0):
            pass


# === predict streams: the same maps as in memory, exactly ===


def test_streamed_ks93_predictions_equal_the_in_memory_result_exactly(tmp_path, run_cli, ten):
    path, eps, _ = ten
    status, out, _ = run_cli(
        "predict",
        path,
        "--method",
        "ks93",
        "--sigma",
        1.5,
        "--batch",
        4,
        "--out",
        tmp_path / "p.h5",
    )
    assert status == 0 and "10 maps (ks93)" in out and "maps/s" in out
    kappa, names, attrs = data.read_predictions(tmp_path / "p.h5")
    predictor = ks93_predictor(1.5)
    expected = np.concatenate([predictor(eps[i : i + 4]) for i in range(0, 10, 4)])
    np.testing.assert_array_equal(kappa, expected)  # bit for bit: same batches, same maths
    np.testing.assert_allclose(kappa, predictor(eps), atol=1e-6)  # and as one batch
    assert names == [f"s{i:02d}" for i in range(10)] and attrs["sigma_px"] == 1.5
    status, _, _ = run_cli(
        "predict",
        path,
        "--method",
        "ks93",
        "--sigma",
        1.5,
        "--batch",
        4,
        "--dtype",
        "float16",
        "--out",
        tmp_path / "h.h5",
    )
    assert status == 0
    with h5py.File(tmp_path / "h.h5") as f:
        np.testing.assert_array_equal(f["kappa_pred"][:], expected.astype(np.float16))
        assert f["kappa_pred"].chunks == (1, 128, 128)


def test_streamed_unet_predictions_equal_the_in_memory_result_exactly(
    tmp_path, run_cli, ten, tiny_weights
):
    path, eps, _ = ten
    status, _, _ = run_cli(
        "predict", path, "--weights", tiny_weights, "--batch", 4, "--out", tmp_path / "u.h5"
    )
    assert status == 0
    kappa, _, attrs = data.read_predictions(tmp_path / "u.h5")
    model = load_model(tiny_weights)
    expected = np.concatenate([predict_kappa(model, eps[i : i + 4]) for i in range(0, 10, 4)])
    np.testing.assert_array_equal(kappa, expected)
    assert attrs["method"] == "unet"


# === failures leave nothing behind; --overwrite is needed to replace ===


def test_a_failure_mid_run_leaves_no_output_and_no_temporaries(tmp_path, run_cli, ten, monkeypatch):
    path, _, _ = ten
    calls = []
    real = ks93_predictor(0.0)

    def failing(sigma, pad):
        def predict(eps, **grid):
            calls.append(len(eps))
            if len(calls) == 2:
                raise RuntimeError("the predictor failed on batch 2")
            return real(eps, **grid)

        return predict

    monkeypatch.setattr("lensviz.cli.predict.ks93_predictor", failing)
    out = tmp_path / "p.h5"
    argv = ("predict", path, "--method", "ks93", "--sigma", 0, "--batch", 4, "--out", out)
    status, _, err = run_cli(*argv)
    assert status == 2 and "failed on batch 2" in err and calls == [4, 4]
    assert not out.exists() and _leftovers(tmp_path) == [] and _reader_threads() == []


def test_bad_data_mid_file_leaves_no_output_and_no_temporaries(tmp_path, run_cli, ten):
    _, eps, kappa = ten
    src = tmp_path / "bad.h5"
    data.write_hdf5(src, eps, kappa, compression=None)
    with h5py.File(src, "r+") as f:
        f["epsilon"][6, 10, 20, 0] = np.nan  # sample 6: the third batch of four
    for argv in (
        ("predict", src, "--method", "ks93", "--batch", 3, "--out", tmp_path / "p.h5"),
        ("convert", src, tmp_path / "c.h5", "--batch", 3),
    ):
        status, _, err = run_cli(*argv)
        assert status == 2 and "bad.h5" in err and "NaN" in err
        assert not (tmp_path / "p.h5").exists() and not (tmp_path / "c.h5").exists()
        assert _leftovers(tmp_path) == [] and _reader_threads() == []


def test_overwrite_is_required_to_replace_outputs(tmp_path, run_cli, ten):
    path, eps, _ = ten
    out = tmp_path / "p.h5"
    assert run_cli("predict", path, "--method", "ks93", "--n", 3, "--out", out)[0] == 0
    before = out.read_bytes()
    status, _, err = run_cli("predict", path, "--method", "ks93", "--out", out)
    assert status == 2 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == before
    assert run_cli("predict", path, "--method", "ks93", "--out", out, "--overwrite")[0] == 0
    assert len(data.read_predictions(out)[1]) == 10
    conv = tmp_path / "c.h5"
    assert run_cli("convert", path, conv)[0] == 0
    status, _, err = run_cli("convert", path, conv)
    assert status == 2 and "already exists" in err
    assert run_cli("convert", path, conv, "--overwrite", "--batch", 3)[0] == 0
    np.testing.assert_array_equal(data.read_hdf5(conv)[0], eps)


def test_evaluate_streams_and_scores_every_map(tmp_path, run_cli, ten):
    path, _, _ = ten
    status, _, err = run_cli(
        "evaluate",
        path,
        "--no-unet",
        "--no-wiener",
        "--batch",
        3,
        "--per-map",
        "--json",
        tmp_path / "e.json",
    )
    assert status == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["n_maps"] == 10 and result["names"] == [f"s{i:02d}" for i in range(10)]
    assert len(result["per_map"]["ks93_raw"]["rmse"]) == 10
    assert _reader_threads() == []


def test_load_data_refuses_more_than_one_reads_budget(monkeypatch, ten):
    path, eps, _ = ten
    monkeypatch.setattr("lensviz.cli.data.MAX_READ_BYTES", 5 * (eps[0].nbytes + 128 * 128 * 4))
    assert len(load_data(str(path), n=5)[0]) == 5
    with pytest.raises(data.LimitError, match="pass a smaller --n"):
        load_data(str(path))


# === memory: peak RSS of a child process does not grow with N ===


@pytest.mark.slow  # two child processes that import TensorFlow
def test_peak_memory_of_predict_does_not_grow_with_the_number_of_maps(tmp_path):
    eps, _ = simulate_batch(16, 400)
    big = tmp_path / "eps.npy"
    np.save(big, np.tile(eps, (64, 1, 1, 1)))  # 1,024 ε-only samples, 192 MiB
    peaks = {}
    for n in (256, 1024):  # 8 and 32 batches: the read-ahead queue fills in both
        code = (
            "import resource, subprocess, sys; "
            f"subprocess.run([sys.executable, '-m', 'lensviz', 'predict', {str(big)!r}, "
            f"'--method', 'ks93', '--batch', '32', '--n', '{n}', '--out', "
            f"{str(tmp_path / f'p{n}.h5')!r}], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks[n] = int(proc.stdout.split()[-1]) / 1024  # MiB
    assert len(data.read_predictions(tmp_path / "p1024.h5", 1000)[1]) == 24
    # Keeping the predictions would add 48 MiB (and as much again to concatenate them).
    assert peaks[1024] - peaks[256] < 12, peaks
