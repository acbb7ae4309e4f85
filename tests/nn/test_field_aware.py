"""The field-aware UNet: field features in, a gated share of KS93 plus a correction out.

Covers lensviz.nn.layers.GatedResidual, UNetConfig.field_features, warm_start (growing a
noise-aware UNet into a field-aware one), the training-set pipeline, a short training
run with B-mode validation, and whole-field prediction from the field's own features.
"""

import dataclasses

import numpy as np
import pytest

from lensviz.features import FEATURES, unet_features
from lensviz.fields import predict_tiled
from lensviz.nn.inference import (
    load_model,
    model_inputs,
    model_predictor,
    predict_kappa,
    save_model,
)
from lensviz.nn.layers import GatedResidual
from lensviz.nn.pipelines import training_set_dataset
from lensviz.nn.training import TrainConfig, train
from lensviz.nn.unet import UNet, warm_start
from lensviz.simulate import simulate_sample
from lensviz.training_data import write_training_set


@pytest.fixture(scope="module")
def field_config(tiny_config):
    return dataclasses.replace(tiny_config, field_features=True)


@pytest.fixture(scope="module")
def training_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("ts") / "train.h5"
    write_training_set(path, 12, 1_000_000, b_modes=True)
    return path


def test_gated_residual_is_the_gate_times_kappa_e_plus_the_correction():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2, 4, 4, 2)).astype(np.float32)
    features = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
    out = np.asarray(GatedResidual(3)([z, features]))
    gate = 1 / (1 + np.exp(-z[..., 1]))
    want = features[..., 3] * gate + np.tanh(z[..., 0])
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # the prior w^P: shut for noisy or empty pixels, the gate itself without noise
    features[..., 2] = np.array([1.0, 0.5, 0.0, 1.0])  # weight: noise-free, LSST, empty
    out = np.asarray(GatedResidual(3, 2, 64.0)([z, features]))
    want = features[..., 3] * gate * features[..., 2] ** 64 + np.tanh(z[..., 0])
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[..., 2], np.tanh(z[..., 2, 0]), atol=1e-6)
    with pytest.raises(ValueError, match="kappa_channel"):
        GatedResidual(-1)
    with pytest.raises(ValueError, match="prior_power"):
        GatedResidual(3, 2, -1.0)


def test_field_model_takes_five_features_and_saves_and_loads(field_config, tmp_path):
    model = UNet(field_config)
    assert model.input_shape == (None, 128, 128, len(FEATURES))
    x = unet_features(np.stack([simulate_sample(s)[0] for s in range(2)]))
    path = save_model(model, tmp_path / "f.keras")
    again = load_model(path)
    np.testing.assert_array_equal(predict_kappa(again, x), predict_kappa(model, x))
    with pytest.raises(ValueError, match="exclude"):
        dataclasses.replace(field_config, noise_aware=True)


def test_model_inputs_turn_eps_into_the_field_features(field_config):
    model = UNet(field_config)
    eps = np.stack([simulate_sample(s)[0] for s in range(2)])
    x = model_inputs(model, eps, pixel_arcmin=np.array([0.5, 1.0]))
    np.testing.assert_array_equal(x, unet_features(eps, np.array([0.5, 1.0])))
    assert model_inputs(model, x) is not None and model_inputs(model, x).shape == x.shape
    with pytest.raises(ValueError, match="input channels"):
        model_inputs(model, eps[..., :2])


def test_warm_start_grows_a_noise_aware_model_that_starts_as_it(tiny_config):
    source = UNet(dataclasses.replace(tiny_config, noise_aware=True))
    rng = np.random.default_rng(1)
    source.set_weights(
        [rng.normal(0, 0.05, w.shape).astype(np.float32) for w in source.get_weights()]
    )
    target = UNet(dataclasses.replace(tiny_config, field_features=True))
    grown = warm_start(target, source)
    assert grown == ["enc1_conv", "last_convt"]
    k_src = source.get_layer("enc1_conv").get_weights()[0]
    k_dst = target.get_layer("enc1_conv").get_weights()[0]
    np.testing.assert_array_equal(k_dst[:, :, :4], k_src[:, :, :4])  # e1, e2, weight, κ_E
    assert np.all(k_dst[:, :, 4] == 0)  # log_scale starts silent; κ_B is dropped
    kernel, bias = target.get_layer("last_convt").get_weights()
    assert np.all(kernel[..., 1, :] == 0) and bias[1] == 0.0  # half open, times its prior
    # the same configuration is copied exactly
    twin = UNet(dataclasses.replace(tiny_config, field_features=True))
    assert warm_start(twin, target) == []
    x = unet_features(simulate_sample(0)[0])[None]
    np.testing.assert_array_equal(predict_kappa(twin, x), predict_kappa(target, x))
    with pytest.raises(ValueError, match="only the first and last"):
        warm_start(UNet(dataclasses.replace(tiny_config, base_filters=2)), source)


def test_training_set_dataset_streams_features_with_symmetries(training_set):
    ds = training_set_dataset(
        training_set, batch_size=4, augment=False, repeat=False, shuffle=False
    )
    x, k = next(iter(ds))
    assert x.shape == (4, 128, 128, 5) and k.shape == (4, 128, 128)
    ds = training_set_dataset(training_set, batch_size=4, depth_weighting=True, seed=1)
    x, k, w = next(iter(ds))
    assert w.shape == (4,) and np.all(np.asarray(w) > 0)
    # the shard of worker i of n reads samples i, i + n, ... only
    ds0 = training_set_dataset(training_set, 3, augment=False, repeat=False, shard=(2, 0))
    assert sum(len(b[0]) for b in ds0) == 6


def test_short_run_on_a_training_set_validates_b_modes(field_config, training_set, tmp_path):
    cfg = TrainConfig(
        preset="lite",
        model_overrides={**field_config.to_dict()},
        train_data=str(training_set),
        val_data=str(training_set),
        val_samples=4,
        epochs=2,
        steps_per_epoch=2,
        batch_size=2,
        depth_weighting=True,
    )
    summary = train(cfg, tmp_path / "run")
    best = summary["best"]
    assert {"val_b_loss", "val_b_rms", "val_loss_eb"} <= set(best)
    assert best["val_loss_eb"] == pytest.approx(best["val_loss"] + best["val_b_loss"])
    model = load_model(tmp_path / "run" / "model.keras")
    lo, hi = model.training_domain["pixel_arcmin_range"]
    assert lo < hi  # the training set's tiles come at several pixel scales


def test_whole_field_prediction_reads_the_whole_fields_features(field_config):
    model = UNet(field_config)
    eps, _ = simulate_sample(0)
    field = np.concatenate([eps, eps[:, ::-1]], axis=1)  # 128 × 256
    out = model_predictor(model, overlap=80)(field, pixel_arcmin=0.7)
    whole = unet_features(field, 0.7)
    want = predict_tiled(lambda t: predict_kappa(model, t), field, inputs=lambda f: whole)
    np.testing.assert_allclose(out, want, atol=1e-6)
    # a tile on its own is its own field
    np.testing.assert_array_equal(
        model_predictor(model)(eps, pixel_arcmin=0.7),
        predict_kappa(model, unet_features(eps, 0.7)),
    )
