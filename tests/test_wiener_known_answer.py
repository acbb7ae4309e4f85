"""The Wiener filter's noise power through its whole path, against a known answer
(issue 21, item 9: a noise power off by 2× was caught only by the slow model-card test).

With a flat signal spectrum S and the same Δε = σ in every pixel, the filter S/(S + N)
is one number, so the Wiener map is exactly ``S/(S + σ²)`` times the KS93 E-mode map: ½
when S = σ², ⅓ if N came out twice too large, ⅔ if half.
"""

import numpy as np
import pytest

from lensviz.evaluation import wiener_predictor
from lensviz.inversion import ks93
from lensviz.wiener import PowerSpectrum, noise_power, wiener


@pytest.fixture
def flat():
    rng = np.random.default_rng(21)
    eps = np.empty((2, 64, 96, 3), np.float32)
    eps[..., :2] = rng.normal(0, 0.2, (2, 64, 96, 2))
    eps[..., 2] = 0.2
    signal = PowerSpectrum(np.array([0.0, 1.0]), np.array([0.04]))  # S = σ² = 0.04
    return eps, signal


def test_noise_power_is_the_mean_variance_of_the_filled_pixels(flat):
    eps, _ = flat
    np.testing.assert_allclose(noise_power(eps[..., 2]), [0.04, 0.04], rtol=1e-6)
    d = eps[0, ..., 2].copy()
    d[:, :48] = 0.1  # half the pixels at 0.1: N = (0.01 + 0.04) / 2
    d[0, 0] = 1.0  # an empty pixel is left out
    assert float(noise_power(d)) == pytest.approx(
        (0.01 * (48 * 64 - 1) + 0.04 * 48 * 64) / (96 * 64 - 1)
    )


def test_a_flat_spectrum_halves_the_ks93_map_when_signal_equals_noise(flat):
    eps, signal = flat
    kappa_e = ks93(eps[..., 0], eps[..., 1])[0]
    by_hand = wiener(eps[..., 0], eps[..., 1], 0.04, signal)
    np.testing.assert_allclose(by_hand, 0.5 * kappa_e, atol=2e-6)
    predicted = wiener_predictor(signal)(eps)  # N from each sample's own Δε channel
    np.testing.assert_allclose(predicted, 0.5 * kappa_e, atol=2e-6)
    quarter = wiener(eps[..., 0], eps[..., 1], 0.12, signal)  # N = 3 S: a quarter
    np.testing.assert_allclose(quarter, 0.25 * kappa_e, atol=2e-6)
