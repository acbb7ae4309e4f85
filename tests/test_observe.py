"""lensviz.simulate.observe_kappa: any κ map observed with the simulator's physics."""

import math

import numpy as np
import pytest

from lensviz import constants
from lensviz.inversion import ks93inv
from lensviz.simulate import (
    SimulationConfig,
    observe_kappa,
    reduced_shear,
    simulate_sample,
    simulate_truth,
)

ISOLATED = SimulationConfig(margin_px=0, halo_kappa_min=0.0)


def _galaxy_stream(seed: int) -> np.random.Generator:
    """The simulator's galaxy stream of sample ``seed`` (child 2 of its spawn(5))."""
    return np.random.default_rng(seed).spawn(5)[2]


@pytest.mark.parametrize("n_gal", [math.inf, 30.0, 3.0])
def test_an_isolated_simulated_field_is_observed_as_the_simulator_does(n_gal):
    config = ISOLATED.replace(n_gal=n_gal)
    expected, kappa = simulate_sample(5, config)
    eps = observe_kappa(kappa, _galaxy_stream(5), n_gal, pad=config.pad)
    # γ from the float32 κ instead of the float64 canvas: equal to float32 rounding.
    np.testing.assert_allclose(eps, expected, atol=2e-6)


def test_noise_free_observation_is_the_reduced_shear_of_any_map():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:150, 0:230]
    kappa = 0.4 * np.exp(-((yy - 70.0) ** 2 + (xx - 100.0) ** 2) / 50.0) + 0.01
    eps = observe_kappa(kappa, rng, math.inf)
    g1, g2 = reduced_shear(*ks93inv(kappa, pad=115), kappa)  # pad: half the larger side
    assert eps.shape == (150, 230, 3) and eps.dtype == np.float32
    np.testing.assert_allclose(eps[..., 0], g1, atol=1e-7)
    np.testing.assert_allclose(eps[..., 1], g2, atol=1e-7)
    assert np.all(eps[..., 2] == 0)


def test_mask_and_depth():
    kappa = simulate_truth(2)["kappa"]
    mask = np.zeros(kappa.shape, bool)
    mask[10:20, 30:40] = True
    eps = observe_kappa(kappa, np.random.default_rng(1), 30.0, 0.3, 0.5, mask)
    assert np.all(eps[mask, :2] == 0) and np.all(eps[mask, 2] == constants.EMPTY_PIXEL_SIGMA)
    filled = eps[~mask, 2] < constants.EMPTY_PIXEL_SIGMA
    # Δε = σ_e/√N with N ~ Poisson(7.5): ⟨1/Δε²⟩ = ⟨N⟩/σ_e² over the filled pixels.
    assert np.mean(1 / eps[~mask, 2][filled] ** 2) * 0.3**2 == pytest.approx(7.5, rel=0.02)


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"finite 2-D map, got shape \(64,\)"):
        observe_kappa(np.zeros(64), rng)
    bad = np.zeros((64, 64))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite 2-D map"):
        observe_kappa(bad, rng)
    with pytest.raises(ValueError, match=r"mask \(64, 32\) does not fit"):
        observe_kappa(np.zeros((64, 64)), rng, mask=np.zeros((64, 32), bool))
    with pytest.raises(ValueError, match="n_gal must be a number > 0"):
        observe_kappa(np.zeros((64, 64)), rng, n_gal=0)
