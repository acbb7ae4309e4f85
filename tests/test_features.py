"""lensviz.features: the field features of a field-aware UNet, against known answers."""

import numpy as np
import pytest

from lensviz import constants
from lensviz.augment import apply_symmetry
from lensviz.features import (
    FEATURES,
    e_mode_shear,
    log_scale,
    pad_features,
    pixel_weight,
    unet_features,
)
from lensviz.inversion import ks93, ks93inv
from lensviz.nulltests import rotate_45
from lensviz.simulate import SimulationConfig, simulate_sample


def _mass(n=96):
    y, x = np.mgrid[:n, :n]
    return 0.2 * np.exp(-((x - 40.3) ** 2 + (y - 51.7) ** 2) / 50.0)


def test_e_mode_shear_keeps_an_e_field_and_removes_a_b_field():
    kappa = _mass()
    g1, g2 = ks93inv(kappa, pad=32)
    e1, e2, kappa_e = e_mode_shear(g1, g2, pad=32)
    # a pure-E field is its own E part, up to the shear beyond the field that the crop
    # cut off: E and B do not separate exactly on a bounded field (5 % of the rms here,
    # mostly at the edges; 2 % inside)
    rms = np.sqrt(np.mean(g1**2 + g2**2))
    assert np.sqrt(np.mean((e1 - g1) ** 2 + (e2 - g2) ** 2)) < 0.07 * rms
    inner = (slice(24, -24), slice(24, -24))
    assert np.sqrt(np.mean((e1 - g1)[inner] ** 2 + (e2 - g2)[inner] ** 2)) < 0.03 * rms
    np.testing.assert_allclose(kappa_e, ks93(g1, g2, pad=32)[0], atol=1e-7)
    # on a periodic grid E and B separate exactly: the 45° rotation has no E part
    p1, p2 = ks93inv(kappa)
    b1, b2 = rotate_45(np.stack([p1, p2, 0 * p1], -1))[..., :2].transpose(2, 0, 1)
    z1, z2, z_e = e_mode_shear(b1, b2, pad=0)
    scale = np.abs(p1).max()
    assert max(np.abs(z1).max(), np.abs(z2).max(), np.abs(z_e).max()) < 1e-6 * scale
    # and the E part of the unrotated periodic field is the field
    q1, q2, _ = e_mode_shear(p1, p2, pad=0)
    np.testing.assert_allclose(q1, p1, atol=1e-6 * scale)


def test_weight_channel_values():
    d = np.array([0.0, constants.SIGMA_E / np.sqrt(7.5), 0.1, constants.EMPTY_PIXEL_SIGMA, 5.0])
    w = pixel_weight(d)
    assert w[0] == 1.0 and w[2] == pytest.approx(0.5) and w[3] == 0.0 and w[4] == 0.0
    assert 0.5 < w[1] < 0.6  # LSST depth: a bit under σ_ref


def test_log_scale_and_its_channel():
    assert log_scale(0.5) == 0.0 and log_scale(2.0) == 2.0
    eps, _ = simulate_sample(0)
    f = unet_features(np.stack([eps, eps]), pixel_arcmin=np.array([0.25, 1.0]))
    assert f.shape == (2, 128, 128, len(FEATURES))
    assert np.all(f[0, ..., 4] == -1.0) and np.all(f[1, ..., 4] == 1.0)
    with pytest.raises(ValueError, match="pixel_arcmin"):
        unet_features(eps, pixel_arcmin=0.0)
    with pytest.raises(ValueError, match="one per field"):
        unet_features(np.stack([eps, eps]), pixel_arcmin=np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        unet_features(eps[..., :2])


def test_features_are_those_of_the_masked_ellipticities():
    eps, _ = simulate_sample(4, SimulationConfig(masks=True))
    empty = eps[..., 2] >= constants.EMPTY_PIXEL_SIGMA
    assert empty.any()
    noisy = eps.copy()
    noisy[empty, :2] = 0.7  # values in empty pixels are not data
    np.testing.assert_array_equal(unet_features(noisy), unet_features(eps))
    f = unet_features(eps)
    assert np.all(f[empty, 2] == 0)
    np.testing.assert_allclose(f[..., 3], ks93(eps[..., 0], eps[..., 1], pad=64)[0], atol=1e-6)


@pytest.mark.parametrize("g", range(8))
def test_features_commute_with_the_spin2_symmetries(g):
    # what the training pipeline relies on when it augments stored features
    eps, kappa = simulate_sample(3, SimulationConfig(masks=True))
    moved, _ = apply_symmetry(eps, kappa, g)
    f_moved, _ = apply_symmetry(unet_features(eps)[..., [0, 1, 2]], kappa, g)
    np.testing.assert_allclose(unet_features(moved)[..., :3], f_moved, atol=1e-6)


def test_pad_features_keeps_the_scale_and_empties_the_rest():
    f = unet_features(simulate_sample(0)[0][:100, :90], pixel_arcmin=1.0)
    p = pad_features(f, 128, 128)
    assert p.shape == (128, 128, 5)
    np.testing.assert_array_equal(p[:100, :90], f)
    assert np.all(p[100:, :, :4] == 0) and np.all(p[..., 4] == 1.0)
    assert pad_features(p, 64, 64) is p
