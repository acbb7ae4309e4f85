"""Monte-Carlo dropout and test-time-augmentation uncertainty, and calibration."""

import dataclasses

import numpy as np
import pytest

from lensviz.nn.inference import predict_kappa
from lensviz.nn.uncertainty import calibration, predict_mc_dropout, predict_tta, predict_uncertainty
from lensviz.nn.unet import build_unet
from lensviz.simulate import simulate_batch


@pytest.fixture(scope="module")
def model(tiny_config):
    """The tiny UNet with dropout in two decoder blocks."""
    return build_unet(dataclasses.replace(tiny_config, n_decoder_dropout=2))


@pytest.fixture(scope="module")
def eps():
    return simulate_batch(3, 90)[0]


def test_mc_dropout_is_stochastic_reproducible_and_leaves_model_alone(model, eps):
    before = predict_kappa(model, eps)
    mean, std = predict_mc_dropout(model, eps, n_passes=8, seed=1)
    assert mean.shape == std.shape == (3, 128, 128)
    assert std.mean() > 0  # dropout is on
    mean2, std2 = predict_mc_dropout(model, eps, n_passes=8, seed=1)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)
    np.testing.assert_array_equal(predict_kappa(model, eps), before)  # deterministic again
    assert np.abs(mean - before).mean() < 5 * std.mean()


def test_mc_dropout_twin_uses_current_weights(model, eps):
    twin_mean, _ = predict_mc_dropout(model, eps[:1], n_passes=4)
    w = model.get_weights()
    model.set_weights([np.zeros_like(a) for a in w])
    try:
        zero_mean, zero_std = predict_mc_dropout(model, eps[:1], n_passes=4)
        assert np.abs(zero_mean).max() < 1e-6 and zero_std.max() < 1e-6
    finally:
        model.set_weights(w)
    assert np.abs(twin_mean).max() > 0


def test_model_without_dropout_is_rejected(eps, tiny_config):
    m = build_unet(dataclasses.replace(tiny_config, n_decoder_dropout=0))
    with pytest.raises(ValueError, match="no dropout"):
        predict_mc_dropout(m, eps[:1], n_passes=2)


def test_tta_single_and_batch(model, eps):
    mean, std = predict_tta(model, eps)
    m1, s1 = predict_tta(model, eps[1])
    np.testing.assert_allclose(m1, mean[1], atol=1e-6)
    assert std.min() >= 0 and std.mean() > 0  # an untrained net is not symmetric
    with pytest.raises(ValueError, match="method"):
        predict_uncertainty(model, eps, method="ensemble")


def test_calibration_of_a_known_gaussian(rng):
    truth = rng.normal(size=(50, 32, 32))
    sigma = np.full(truth.shape, 0.5)
    mean = truth + 0.5 * rng.normal(size=truth.shape)
    c = calibration(truth, mean, sigma)
    assert c["within_1sigma"] == pytest.approx(0.683, abs=0.01)
    assert c["within_2sigma"] == pytest.approx(0.954, abs=0.01)
    np.testing.assert_allclose(c["observed"], c["expected"], atol=0.015)
    over = calibration(truth, mean, 2 * sigma)  # σ too large: over-covers
    assert over["within_1sigma"] > 0.9
