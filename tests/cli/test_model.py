"""The model commands of the CLI (lensviz.cli.model): train, finetune, tune, the UNet of predict."""

import json

import h5py
import numpy as np
import pytest

from lensviz import data
from lensviz.evaluation import ks93_predictor
from lensviz.nn.inference import load_model, predict_kappa


@pytest.mark.slow  # trains the lite preset
def test_train_cli(tmp_path, run_cli):
    status, out, _ = run_cli(
        "train",
        "--preset",
        "lite",
        "--out",
        tmp_path / "run",
        "--epochs",
        1,
        "--steps",
        2,
        "--batch",
        2,
        "--val-n",
        4,
        "--coeffs",
        "peaks=4",
    )
    assert status == 0
    assert (tmp_path / "run" / "model.keras").exists()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["coeffs"]["peaks"] == 4.0 and config["coeffs"]["local"] == 2.0
    assert '"steps": 2' in out


def test_finetune_cli_writes_only_the_output(tmp_path, run_cli, tiny_weights):
    original = tiny_weights.read_bytes()
    out = tmp_path / "ft.keras"
    status, stdout, _ = run_cli(
        "finetune",
        "--weights",
        tiny_weights,
        "--out",
        out,
        "--epochs",
        1,
        "--n",
        4,
        "--batch",
        2,
        "--val-n",
        4,
        "--w-dicee",
        0.1,
    )
    assert status == 0 and out.exists()
    assert "before" in stdout and "dpeaks" in stdout
    assert tiny_weights.read_bytes() == original


def test_predict_unet_and_ks93_keep_input_order(tmp_path, run_cli, tiny_weights, dataset):
    path, eps, _ = dataset
    status, _, _ = run_cli(
        "predict",
        path,
        "--method",
        "unet",
        "--weights",
        tiny_weights,
        "--out",
        tmp_path / "u.h5",
        "--batch",
        4,
    )
    assert status == 0
    kappa, names, attrs = data.read_predictions(tmp_path / "u.h5")
    assert names == [f"z{5 - i}" for i in range(6)] and attrs["method"] == "unet"
    np.testing.assert_allclose(kappa, predict_kappa(load_model(tiny_weights), eps), atol=1e-6)
    status, _, _ = run_cli(
        "predict", path, "--method", "ks93", "--sigma", 2, "--out", tmp_path / "k.h5"
    )
    assert status == 0

    kappa, _, attrs = data.read_predictions(tmp_path / "k.h5")
    np.testing.assert_allclose(kappa, ks93_predictor(2.0)(eps), atol=1e-6)
    assert attrs["sigma_px"] == 2.0
    # never overwrite by accident
    status, _, err = run_cli("predict", path, "--method", "ks93", "--out", tmp_path / "k.h5")
    assert status == 2 and "already exists" in err


def test_missing_weights_is_a_clear_error(tmp_path, run_cli, dataset):
    path, _, _ = dataset
    status, _, err = run_cli(
        "predict", path, "--weights", tmp_path / "nope.keras", "--out", tmp_path / "p.h5"
    )
    assert status == 2 and "nope.keras" in err
    status, _, err = run_cli(
        "finetune", "--weights", tmp_path / "nope.keras", "--out", tmp_path / "o.keras"
    )
    assert status == 2 and "nope.keras" in err


@pytest.mark.slow  # a Keras Tuner search
def test_tune_runs_a_tiny_bayesian_search(tmp_path, run_cli):
    pytest.importorskip("keras_tuner")
    status, out, _ = run_cli(
        "tune", "--out", tmp_path / "tune", "--trials", 1, "--epochs", 1, "--steps", 2, "--val-n", 8
    )
    assert status == 0
    best = json.loads((tmp_path / "tune" / "best.json").read_text())
    hp = best["best_hyperparameters"]
    assert {"kernel_size", "depth", "pad", "learning_rate", "batch_size", "a_peaks"} <= set(hp)
    assert best["trials"][0]["score"] > 0


def test_predict_with_uncertainty_and_calibrate(tmp_path, run_cli, tiny_weights, dataset):
    path, _, _ = dataset
    status, _, _ = run_cli(
        "predict",
        path,
        "--weights",
        tiny_weights,
        "--uncertainty",
        "mc_dropout",
        "--passes",
        3,
        "--out",
        tmp_path / "u.h5",
    )
    assert status == 0

    with h5py.File(tmp_path / "u.h5") as f:
        assert (
            f["kappa_std"].shape == (6, 128, 128)
            and f.attrs["uncertainty"] == "mc_dropout (uncalibrated model spread)"
        )
        assert f["kappa_std"][...].mean() > 0
    status, out, _ = run_cli(
        "calibrate",
        path,
        "--weights",
        tiny_weights,
        "--method",
        "tta",
        "--n",
        2,
        "--json",
        tmp_path / "c.json",
    )
    assert status == 0 and "within ±1σ" in out
    assert 0 <= json.loads((tmp_path / "c.json").read_text())["within_2sigma"] <= 1
    status, _, err = run_cli(
        "predict", path, "--method", "ks93", "--uncertainty", "tta", "--out", tmp_path / "x.h5"
    )
    assert status == 2 and "--uncertainty tta is the UNet's own spread (--method unet)" in err
