import numpy as np
import pytest

from lensviz.augment import (
    apply_symmetry,
    inverse_transform_maps,
    symmetry_signs,
    transform_maps,
)
from lensviz.inversion import ks93, ks93inv


@pytest.fixture
def sample(kappa_maps, rng):
    kappa = kappa_maps[0]
    g1, g2 = ks93inv(kappa)
    noise = rng.normal(0, 0.05, size=(128, 128, 2)).astype(np.float32)
    de = rng.uniform(0.05, 0.1, size=(128, 128)).astype(np.float32)
    eps = np.stack([g1 + noise[..., 0], g2 + noise[..., 1], de], axis=-1)
    return eps, kappa


@pytest.mark.parametrize("g", range(8))
def test_ks93_commutes_with_every_symmetry(sample, g):
    eps, kappa = sample
    eps_g, kappa_g = apply_symmetry(eps, kappa, g)
    lhs = ks93(eps_g[..., 0], eps_g[..., 1])
    rhs = [transform_maps(m, g) for m in ks93(eps[..., 0], eps[..., 1])]
    np.testing.assert_allclose(lhs[0], rhs[0], atol=1e-6)
    parity = np.prod(symmetry_signs(g))  # the B mode is a pseudo-scalar: mirrors negate it
    np.testing.assert_allclose(lhs[1], parity * rhs[1], atol=1e-6)
    np.testing.assert_array_equal(kappa_g, transform_maps(kappa, g))
    np.testing.assert_array_equal(eps_g[..., 2], transform_maps(eps[..., 2], g))


def test_wrong_signs_break_commutation(sample):
    """The test above can fail: a rotation without spin-2 signs does not commute."""
    eps, _ = sample
    moved = transform_maps(eps, 6, axes=(-3, -2))
    lhs = ks93(moved[..., 0], moved[..., 1])[0]
    rhs = transform_maps(ks93(eps[..., 0], eps[..., 1])[0], 6)
    assert np.abs(lhs - rhs).max() > 0.01


def test_group_structure():
    assert symmetry_signs(0) == (1, 1)
    assert symmetry_signs(6) == (-1, -1)  # 90° rotation negates both
    assert symmetry_signs(3) == (1, 1)  # 180° rotation
    m = np.arange(12 * 12).reshape(12, 12)
    np.testing.assert_array_equal(transform_maps(m, 6), np.rot90(m))
    assert len({transform_maps(m, g).tobytes() for g in range(8)}) == 8
    for g in range(8):
        np.testing.assert_array_equal(inverse_transform_maps(transform_maps(m, g), g), m)


def test_batches_and_bad_index(sample):
    eps, kappa = sample
    e_b, k_b = apply_symmetry(np.stack([eps, eps]), np.stack([kappa, kappa]), 5)
    e_1, k_1 = apply_symmetry(eps, kappa, 5)
    np.testing.assert_array_equal(e_b[1], e_1)
    np.testing.assert_array_equal(k_b[0], k_1)
    with pytest.raises(ValueError, match="0..7"):
        apply_symmetry(eps, kappa, 8)
