"""The loss lab end to end on a tiny UNet: every stage of benchmarks.loss_lab, and the
files it ships (float16 models that load and predict as the float32 ones)."""

import dataclasses
import hashlib
import json
import math
import shutil

import keras
import numpy as np
import pytest

from benchmarks import loss_lab, loss_lab_report
from benchmarks.loss_lab_runs import finetune_config, train_config
from lensviz.lab import half_precision_copy, held_out_maps, load_lab, score_summary
from lensviz.nn.inference import load_model, model_predictor, predict_kappa, save_model
from lensviz.nn.unet import build_unet
from lensviz.simulate import simulate_batch
from lensviz.training_data import write_training_set

TINY_LAB = """
[lab]
runs = "{root}/runs"
weights = "{root}/weights"
figure = "{root}/pareto.png"

[start]
git_commit = "none"
path = "tiny.keras"
sha256 = "{sha}"
note = "a tiny untrained UNet"

[train]
preset = "lite"
model_overrides = {overrides}
train_data = "{data}"
val_data = "{data}"
val_samples = 4
depth_weighting = true
learning_rate = 1e-4
batch_size = 2
epochs = 1
steps_per_epoch = 2
patience = 1
seed = 0

[[variant]]
name = "mse"
loss = "mse"

[[variant]]
name = "multifocal"
loss = "multifocal"

[[variant]]
name = "mf_no_peaks"
loss = "multifocal"
coeffs = {{ peaks = 0.0 }}

[finetune]
start = "multifocal"
which = "last"
share = 0.5
epochs = 1
n_samples = 4
learning_rate = 1e-4
batch_size = 2
seed = 0

[[finetune.variant]]
name = "ft_dicee"
metric = "dicee"

[repeat]
seed = 1
top = 1
rank_by = "dicee"
depth = "30"
always = ["mse"]

[score]
depths = ["30", "inf"]
n_maps = 6
seed = 0
n_boot = 50
ks93_sigmas = [0.0, 2.0]
shipped = "{root}/shipped.keras"
references = ["mse", "multifocal"]

[moonshot]
depth = "30"
metric = "dicee"
gain = 0.10
rmse_ratio = 1.05
"""


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory, tiny_config):
    """A lab config over a tiny field-aware UNet and a 12-sample training set."""
    root = tmp_path_factory.mktemp("lab")
    data = root / "train.h5"
    write_training_set(data, 12, 1_000_000, b_modes=True)
    config = dataclasses.replace(tiny_config, field_features=True)
    keras.utils.set_random_seed(0)
    start = root / "runs" / "start.keras"
    save_model(build_unet(config), start)
    shutil.copy(start, root / "shipped.keras")
    sha = hashlib.sha256(start.read_bytes()).hexdigest()
    overrides = (
        "{"
        + ", ".join(f"{k} = {json.dumps(v)}" for k, v in config.to_dict().items() if v is not None)
        + "}"
    )
    path = root / "lab.toml"
    path.write_text(
        TINY_LAB.format(root=root, sha=sha, data=data, overrides=overrides), encoding="utf-8"
    )
    return loss_lab.load_config(path)


@pytest.mark.slow  # trains, fine-tunes and scores five tiny models
def test_every_stage_writes_the_lab(tiny_lab, monkeypatch):
    figures = []
    monkeypatch.setattr(
        loss_lab_report, "write_figure", lambda lab, path: figures.append((lab, path))
    )
    assert loss_lab.main(["--config", str(tiny_lab.path)]) == 0
    lab = load_lab(tiny_lab.weights / "lab.json")
    assert lab.names == ("mse", "multifocal", "mf_no_peaks", "ft_dicee")
    assert [lab.variant(n).steps for n in lab.names] == [2, 2, 2, 2]
    for name in lab.names:  # every model shipped, float16, and loadable
        path = lab.model_path(name)
        assert path is not None and load_model(path) is not None
    for depth in ("30", "inf"):
        summary = lab.scores[depth]["summary"]
        assert {"shipped", "wiener", "ks93_best", "ks93_rule"} <= set(summary)
        for method in summary:
            for metric in ("rmse", "r", "wmape", "dicee", "dpeaks"):
                mean, se = lab.point(method, depth, metric)
                assert math.isfinite(mean) and se >= 0
    # the second seed: the top variant by DICEE and MSE (always), scored beside
    assert "mse_s1" in lab.raw["repeats"]["methods"]
    assert lab.raw["repeats"]["metrics"]["dicee"]["ranking_seed0"]
    # KS93 "best" is, per metric, the σ of the grid that is best on these maps
    s30 = lab.scores["30"]
    for metric in ("rmse", "dicee"):
        sigma = s30["ks93_best_sigma_px"][metric]
        assert sigma in (0.0, 2.0)
    moon = lab.raw["moonshot"]
    assert set(moon["models"]) >= set(lab.names)
    readme = (tiny_lab.weights / "README.md").read_text(encoding="utf-8")
    assert "| `mse` MSE |" in readme and "fine-tune → DICEE" in readme
    assert figures and figures[0][1] == tiny_lab.figure
    # a second run redoes nothing: every stage resumes from its files
    before = {p: p.stat().st_mtime for p in tiny_lab.weights.glob("*.keras")}
    assert loss_lab.main(["--config", str(tiny_lab.path), "--stage", "export"]) == 0
    assert {p: p.stat().st_mtime for p in tiny_lab.weights.glob("*.keras")} == before


def test_variants_differ_only_in_their_loss(tiny_lab):
    configs = [train_config(tiny_lab, v) for v in tiny_lab.variants if v.kind == "train"]
    shared = [
        {k: v for k, v in c.to_dict().items() if k not in ("loss", "coeffs")} for c in configs
    ]
    assert all(s == shared[0] for s in shared)
    assert [c.loss for c in configs] == ["mse", "multifocal", "multifocal"]
    assert configs[2].coeffs["peaks"] == 0 and configs[1].coeffs["peaks"] == 3
    ft = finetune_config(tiny_lab, tiny_lab.variant("ft_dicee"))
    assert ft.combined_weights == {"multifocal": 0.5, "wmape": 0.0, "dicee": 0.5, "dpeaks": 0.0}
    assert ft.depth_weighting and ft.train_data == configs[0].train_data


def test_half_precision_copy_loads_and_predicts_as_the_original(tiny_weights, tmp_path):
    half = tmp_path / "half.keras"
    size = half_precision_copy(tiny_weights, half)
    assert size == half.stat().st_size < tiny_weights.stat().st_size
    a, b = load_model(tiny_weights), load_model(half)
    for wa, wb in zip(a.weights, b.weights):
        x = keras.ops.convert_to_numpy(wa)
        y = keras.ops.convert_to_numpy(wb)
        assert y.dtype == np.float32  # cast back on loading
        np.testing.assert_allclose(y, x.astype(np.float16).astype(np.float32), rtol=0, atol=0)
    eps, _ = simulate_batch(2, 0)
    pa, pb = predict_kappa(a, eps), predict_kappa(b, eps)
    assert np.max(np.abs(pa - pb)) <= 1e-2 * np.max(np.abs(pa)) + 1e-6


@pytest.mark.slow  # loads every shipped lab model and scores one on the lab's 400 maps
def test_the_shipped_lab_models_load_and_reproduce_their_scores():
    cfg = loss_lab.load_config()
    lab = load_lab(cfg.weights / "lab.json")
    eps, _ = simulate_batch(2, 0)
    for name in lab.names:
        model = load_model(lab.model_path(name))  # the archive checks pass on float16
        assert np.isfinite(predict_kappa(model, eps)).all(), name
    # a number of lab.json, recomputed from the shipped file on the lab's own maps
    n_maps, seed = lab.test_maps
    eps, kappa = held_out_maps(n_maps, seed, "30")
    pred = model_predictor(load_model(lab.model_path("mse")))(eps)
    assert score_summary(kappa, pred)["rmse"][0] == pytest.approx(
        lab.point("mse", "30", "rmse")[0], rel=1e-4
    )
