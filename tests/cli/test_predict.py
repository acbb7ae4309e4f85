"""``predict`` (lensviz.cli.predict): KS93 and the Wiener filter, without TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from lensviz import data
from lensviz.evaluation import ks93_depth_predictor, ks93_predictor, wiener_predictor

ROOT = Path(__file__).resolve().parents[2]


def test_predict_ks93_smooths_by_the_depth_rule_unless_sigma_is_given(tmp_path, run_cli, dataset):
    path, eps, _ = dataset
    status, _, err = run_cli("predict", path, "--method", "ks93", "--out", tmp_path / "d.h5")
    assert status == 0, err
    kappa, _, attrs = data.read_predictions(tmp_path / "d.h5")
    np.testing.assert_allclose(kappa, ks93_depth_predictor()(eps), atol=1e-6)
    assert attrs["sigma_px"] == "depth rule" and attrs["method"] == "ks93"
    status, _, err = run_cli(
        "predict", path, "--method", "ks93", "--sigma", 0, "--out", tmp_path / "r.h5"
    )
    assert status == 0, err
    raw, _, attrs = data.read_predictions(tmp_path / "r.h5")
    np.testing.assert_allclose(raw, ks93_predictor(0.0)(eps), atol=1e-6)
    assert attrs["sigma_px"] == 0.0
    assert np.abs(raw - kappa).max() > 10 * np.abs(kappa).std()  # smoothing did something


def test_predict_wiener(tmp_path, run_cli, dataset):
    path, eps, _ = dataset
    status, _, _ = run_cli("predict", path, "--method", "wiener", "--out", tmp_path / "w.h5")
    assert status == 0

    kappa, _, attrs = data.read_predictions(tmp_path / "w.h5")
    np.testing.assert_allclose(kappa, wiener_predictor()(eps), atol=1e-6)
    assert attrs["method"] == "wiener"


def test_predict_ks93_and_wiener_never_load_tensorflow(tmp_path, dataset):
    # `predict` runs in a grandchild that reports what it imported; its parent, a small
    # fresh process, reports the grandchild's peak RSS (a child forked from pytest itself
    # would inherit the high-water mark of pytest's memory, TensorFlow included).
    path, _, _ = dataset
    for method in ("ks93", "wiener"):
        argv = ["predict", str(path), "--method", method, "--out", str(tmp_path / f"{method}.h5")]
        command = (
            "import sys\n"
            "from lensviz.cli import main\n"
            f"rc = main({argv!r})\n"
            "print('heavy:', [m for m in ('tensorflow', 'keras') if m in sys.modules])\n"
            "sys.exit(rc)\n"
        )
        code = (
            "import resource, subprocess, sys\n"
            f"proc = subprocess.run([sys.executable, '-c', {command!r}], capture_output=True, "
            "text=True)\n"
            "print(proc.returncode, proc.stdout.strip().splitlines()[-1:], proc.stderr[-2000:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        report, peak_mib = proc.stdout.strip().rsplit("\n", 1)
        assert report.startswith("0 ['heavy: []']"), (method, report, proc.stderr)
        assert float(peak_mib) < 400, (method, peak_mib)  # with Keras it was 830 MiB
