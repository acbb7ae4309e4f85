"""lensviz.nn.training: runs, callbacks, devices and fine-tuning, on the tiny UNet."""

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from lensviz.nn.callbacks import TrainingCancelled
from lensviz.nn.finetuning import FinetuneConfig, combined_term_scales, finetune
from lensviz.nn.inference import load_model, predict_kappa
from lensviz.nn.losses import make_loss
from lensviz.nn.training import TrainConfig, train
from lensviz.simulate import simulate_batch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # trains
def test_train_writes_history_checkpoint_and_summary(tmp_path, tiny_overrides):
    cfg = TrainConfig(
        model_overrides=tiny_overrides,
        epochs=2,
        steps_per_epoch=2,
        batch_size=2,
        val_samples=4,
        patience=3,
    )
    reports = []
    summary = train(cfg, tmp_path / "run", on_progress=reports.append)
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for key in ("loss", "val_loss", "val_wmape", "val_dicee", "val_dpeaks", "val_rmse"):
        assert np.isfinite(history[-1][key]), key
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_dpeaks" in header and "val_wmape" in header
    model = load_model(run / "model.keras")
    assert model.count_params() == summary["params"]
    assert summary["steps"] == 4 and summary["device"].startswith("CPU")
    assert reports and reports[-1].fraction == 1.0
    assert not list(run.glob("*.tmp*"))


def test_cancel_stops_training_and_raises(tmp_path, tiny_overrides):
    cancel = threading.Event()
    steps = []

    def on_progress(p):
        if p.stage == "train":
            steps.append(p.epoch * p.steps + p.step)
        cancel.set()

    cfg = TrainConfig(
        model_overrides=tiny_overrides, epochs=3, steps_per_epoch=50, batch_size=2, val_samples=2
    )
    with pytest.raises(TrainingCancelled):
        train(cfg, tmp_path / "run", on_progress=on_progress, cancel=cancel)
    assert max(steps) < 50  # stopped inside the first epoch, long before 150 steps


def test_finetune_trains_only_the_last_layer_and_saves_atomically(tmp_path, tiny_weights):
    out = tmp_path / "ft.keras"
    cfg = FinetuneConfig(epochs=1, n_samples=4, batch_size=2, val_samples=4)
    result = finetune(tiny_weights, out, cfg)
    assert out.exists() and result["trainable"] == ["last_convt"]
    before, after = load_model(tiny_weights), load_model(out)
    changed = {
        w.path.split("/")[0]
        for w, v in zip(before.weights, after.weights)
        if not np.array_equal(np.asarray(w), np.asarray(v))
    }
    assert changed == {"last_convt"}
    assert set(result["before"]) == set(result["after"]) >= {"wmape", "dicee", "dpeaks"}


def test_cancelled_finetune_leaves_files_untouched(tmp_path, tiny_weights):
    out = tmp_path / "ft.keras"
    out.write_bytes(b"previous")
    cancel = threading.Event()
    cancel.set()
    cfg = FinetuneConfig(epochs=1, n_samples=8, batch_size=2, val_samples=2)
    original = tiny_weights.read_bytes()
    with pytest.raises(TrainingCancelled):
        finetune(tiny_weights, out, cfg, cancel=cancel)
    assert out.read_bytes() == b"previous"
    assert tiny_weights.read_bytes() == original
    with pytest.raises(ValueError, match="overwrite the starting weights"):
        finetune(tiny_weights, tiny_weights, cfg)


@pytest.mark.slow  # trains in a fresh TensorFlow process
def test_mirrored_strategy_over_two_logical_cpus(tmp_path, tiny_overrides):
    script = textwrap.dedent(f"""
        import os, json, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        sys.path.insert(0, {str(ROOT)!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from lensviz.nn.training import TrainConfig, train
        cfg = TrainConfig(model_overrides={tiny_overrides!r}, epochs=1, steps_per_epoch=2,
                          batch_size=4, val_samples=4, devices=("/cpu:0", "/cpu:1"))
        print(json.dumps(train(cfg, {str(tmp_path / "run")!r})))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["replicas"] == 2
    assert np.isfinite(summary["best"]["val_loss"])


def test_predictions_of_saved_checkpoint_are_reproducible(tmp_path, tiny_weights):
    eps, _ = simulate_batch(2, 50)
    a = predict_kappa(load_model(tiny_weights), eps)
    b = predict_kappa(load_model(tiny_weights), eps)
    np.testing.assert_array_equal(a, b)


def test_bad_configs():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="huber")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="which"):
        FinetuneConfig(which="encoder")


@pytest.mark.slow  # trains
def test_finetune_normalises_combined_terms_to_shares_of_the_initial_loss(tmp_path, tiny_weights):
    cfg = FinetuneConfig(epochs=1, n_samples=4, batch_size=2, val_samples=4)
    result = finetune(tiny_weights, tmp_path / "ft.keras", cfg)
    scales, eff = result["term_scales"], result["effective_term_weights"]
    assert set(scales) == {"multifocal", "wmape"}
    assert eff["multifocal"] == pytest.approx(0.95 / scales["multifocal"])
    assert eff["wmape"] == pytest.approx(0.05 / scales["wmape"])
    # The initial loss is then exactly 0.95 + 0.05 = 1 on the validation maps.
    eps, kappa = simulate_batch(4, 500_000)  # the validation maps (calibration seeds)
    pred = predict_kappa(load_model(tiny_weights), eps)
    loss = make_loss("combined", None, eff)
    total = sum(eff[k] * v for k, v in combined_term_scales(loss, kappa, pred).items())
    assert total == pytest.approx(1.0, rel=1e-4)
    raw = finetune(
        tiny_weights,
        tmp_path / "raw.keras",
        FinetuneConfig(epochs=1, n_samples=4, batch_size=2, val_samples=4, normalize_terms=False),
    )
    assert raw["term_scales"] == {} and raw["effective_term_weights"]["wmape"] == 0.05
