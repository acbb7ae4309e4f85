"""lensviz.nn.features: the noise-aware inputs, and a noise-aware UNet end to end."""

import json

import numpy as np
import pytest

from lensviz import constants
from lensviz.data import write_hdf5
from lensviz.inversion import ks93, ks93inv
from lensviz.nn.features import FEATURES, LensingFeatures
from lensviz.nn.inference import load_model, predict_kappa, save_model, training_domain
from lensviz.nn.training import TrainConfig, train
from lensviz.nn.unet import UNet, UNetConfig
from lensviz.simulate import SimulationConfig, simulate_batch

TINY = {
    "base_filters": 4,
    "max_filters": 8,
    "depth": 3,
    "pad": 0,
    "n_decoder_dropout": 1,
    "noise_aware": True,
    "field_features": False,  # the v2 design over the lite preset's field-aware one
}


def _eps(seed=0, n=2, npix=32):
    rng = np.random.default_rng(seed)
    kappa = rng.normal(0, 0.05, (n, npix, npix)).astype(np.float32)
    g1, g2 = ks93inv(kappa)
    eps = np.stack([g1, g2, np.full_like(g1, 0.1)], axis=-1)
    return eps, kappa


def test_ks93_channels_equal_lensviz_ks93_with_the_same_padding():
    eps, _ = _eps()
    eps[0, 3:9, 5:12, :2] = 0.4  # a masked hole with garbage ε ...
    eps[0, 3:9, 5:12, 2] = constants.EMPTY_PIXEL_SIGMA  # ... that must be ignored
    x = LensingFeatures(ks_pad=16)(eps).numpy()
    assert x.shape == (2, 32, 32, len(FEATURES))
    filled = eps[..., 2] < constants.EMPTY_PIXEL_SIGMA
    k_e, k_b = ks93(np.where(filled, eps[..., 0], 0), np.where(filled, eps[..., 1], 0), pad=16)
    np.testing.assert_allclose(x[..., 3], k_e, atol=1e-6)
    np.testing.assert_allclose(x[..., 4], k_b, atol=1e-6)
    assert np.all(x[0, 3:9, 5:12, :3] == 0)


def test_weight_channel_is_one_noise_free_half_at_sigma_ref_and_zero_when_empty():
    eps = np.zeros((1, 16, 16, 3), np.float32)
    eps[0, 0, :, 2] = 0.0
    eps[0, 1, :, 2] = 0.1
    eps[0, 2, :, 2] = constants.EMPTY_PIXEL_SIGMA
    w = LensingFeatures(sigma_ref=0.1)(eps).numpy()[0, ..., 2]
    assert np.allclose(w[0], 1.0) and np.allclose(w[1], 0.5) and np.all(w[2] == 0)


def test_bad_feature_parameters_are_refused():
    with pytest.raises(ValueError, match="sigma_ref"):
        LensingFeatures(sigma_ref=0)
    with pytest.raises(ValueError, match="ks_pad"):
        LensingFeatures(ks_pad=-1)
    with pytest.raises(ValueError, match="exclude"):
        UNetConfig(**{**TINY, "npix": 32}, with_ks93=True)


def test_noise_aware_unet_saves_and_loads_with_its_domain(tmp_path):
    model = UNet(UNetConfig(**TINY, npix=32), training_domain={"n_gal_range": [3.0, 1000.0]})
    eps, _ = _eps()
    path = save_model(model, tmp_path / "m.keras")
    again = load_model(path)
    np.testing.assert_array_equal(predict_kappa(model, eps), predict_kappa(again, eps))
    assert training_domain(again).n_gal_range == (3.0, 1000.0)
    legacy = UNet(UNetConfig(**{**TINY, "noise_aware": False}, npix=32))
    assert training_domain(legacy).n_gal_range == (25.0, 35.0)


@pytest.mark.slow
def test_depth_weighted_training_on_two_depths_records_the_domain(tmp_path):
    parts = [
        simulate_batch(4, seed=1_000_000 + 10 * i, config=SimulationConfig(n_gal=n))
        for i, n in enumerate((10.0, float("inf")))
    ]
    eps = np.concatenate([p[0] for p in parts])
    kappa = np.concatenate([p[1] for p in parts])
    write_hdf5(tmp_path / "train.h5", eps, kappa)
    cfg = TrainConfig(
        model_overrides=TINY,
        epochs=2,
        steps_per_epoch=2,
        batch_size=2,
        train_data=str(tmp_path / "train.h5"),
        val_data=str(tmp_path / "train.h5"),
        val_samples=8,
        depth_weighting=True,
    )
    train(cfg, tmp_path / "run")
    model = load_model(tmp_path / "run" / "model.keras")
    domain = training_domain(model)
    assert domain.noise_free and domain.n_gal_range[0] == pytest.approx(10.0, rel=0.3)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(r["val_loss"]) for r in history)
    # Warm start: a second run from the first one's weights, with a vanishing learning rate,
    # starts (and so ends) where the first left off; a fresh run does not.
    first = load_model(tmp_path / "run" / "model.keras")
    warm = TrainConfig(
        **{
            **cfg.__dict__,
            "epochs": 1,
            "steps_per_epoch": 1,
            "learning_rate": 1e-12,
            "init_weights": str(tmp_path / "run" / "model.keras"),
        }
    )
    train(warm, tmp_path / "warm")
    again = load_model(tmp_path / "warm" / "model.keras")
    train(TrainConfig(**{**warm.__dict__, "init_weights": None}), tmp_path / "cold")
    cold = load_model(tmp_path / "cold" / "model.keras")
    ref = predict_kappa(first, eps)
    d_warm = np.abs(predict_kappa(again, eps) - ref).max()
    d_cold = np.abs(predict_kappa(cold, eps) - ref).max()
    assert 20 * d_warm < d_cold  # only the BatchNorm statistics moved in the warm run
