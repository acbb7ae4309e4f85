"""NFW halos: the c–M relation, halo parameters, truncation and κ maps (lensviz.halos).

The lensing profiles themselves are checked against high-precision references and the
KS93 shear of a map in ``test_nfw_shear.py``.
"""

import numpy as np
import pytest

from lensviz.cosmology import critical_density, sigma_crit
from lensviz.halos import (
    HaloParams,
    concentration_duffy08,
    halo_kappa_map,
    nfw_kappa_profile,
    nfw_params,
    truncation_radius,
)


def halo(x=40.3, y=37.8, q=1.0, angle=0.0, r_s_arcmin=2.0, kappa_s=0.3):
    return HaloParams("main", 5e14, 0.3, 4.0, x, y, q, angle, r_s_arcmin, kappa_s)


def test_duffy_concentration_values():
    assert concentration_duffy08(2e12, 0.0) == pytest.approx(5.71)
    assert concentration_duffy08(2e14, 1.0) == pytest.approx(5.71 * 100**-0.084 * 2**-0.47)
    with pytest.raises(ValueError, match="m200"):
        concentration_duffy08(0.0, 0.3)


def test_nfw_params_recover_m200():
    m200, z, c = np.array([1e12, 3e14, 2e15]), np.array([0.1, 0.3, 0.6]), np.array([8.0, 5.0, 3.0])
    r_s, kappa_s = nfw_params(m200, z, c, z_source=1.0)
    rho_s = kappa_s * sigma_crit(z, 1.0) / r_s
    mass = 4 * np.pi * rho_s * r_s**3 * (np.log1p(c) - c / (1 + c))  # 3-D NFW mass inside c r_s
    np.testing.assert_allclose(mass, m200, rtol=1e-10)
    np.testing.assert_allclose(
        m200, 4 / 3 * np.pi * 200 * critical_density(z) * (c * r_s) ** 3, rtol=1e-10
    )
    _, behind = nfw_params(1e14, 1.2, 4.0, z_source=1.0)
    assert behind == 0.0


def test_truncation_radius_brackets_the_contour():
    kappa_s = np.array([0.01, 0.05, 0.3, 1.0])
    x = truncation_radius(kappa_s, 1e-4)
    assert np.all(nfw_kappa_profile(x, kappa_s) < 1e-4)
    step = np.exp(-2e-3)  # one table step inside, κ is still above the level
    assert np.all(nfw_kappa_profile(x * step, kappa_s) >= 1e-4)
    # far out κ → 2 κ_s / x², so x ≈ √(2 κ_s / κ_min)
    np.testing.assert_allclose(x, np.sqrt(2 * kappa_s / 1e-4), rtol=0.1)
    assert np.all(np.isinf(truncation_radius(kappa_s, 0.0)))
    with pytest.raises(ValueError, match="kappa_s"):
        truncation_radius(np.array([-0.1]), 1e-4)


def test_round_halo_map_is_nfw_cut_at_kappa_min():
    h = halo()
    kappa = halo_kappa_map([h], 96, pixel_arcmin=0.5, kappa_min=1e-2).astype(np.float64)
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float64)
    exact = nfw_kappa_profile(np.hypot(xx - h.x, yy - h.y) / 4.0, h.kappa_s)
    core = (np.abs(xx - np.rint(h.x)) <= 2) & (np.abs(yy - np.rint(h.y)) <= 2)
    above, below = exact > 1.0001e-2, exact < 0.9999e-2
    assert above.mean() > 0.2 and below.mean() > 0.2  # the cut falls inside the map
    np.testing.assert_allclose(kappa[above & ~core], exact[above & ~core], rtol=2e-5)
    assert np.all(kappa[below] == 0.0)
    # without the cut the whole tail stays on the grid
    full = halo_kappa_map([h], 96, pixel_arcmin=0.5, kappa_min=0.0).astype(np.float64)
    np.testing.assert_allclose(full[~core], exact[~core], rtol=2e-5)
    assert np.array_equal(full[above], kappa[above])


def test_offset_shifts_the_halos_and_maps_add():
    a, b = halo(x=10.2, y=70.6), halo(x=50.0, y=20.5, q=0.6, angle=0.7, kappa_s=0.1)
    shifted = [HaloParams(**{**h.__dict__, "x": h.x + 16, "y": h.y + 16}) for h in (a, b)]
    np.testing.assert_array_equal(
        halo_kappa_map([a, b], 112, offset_px=16), halo_kappa_map(shifted, 112)
    )
    np.testing.assert_allclose(
        halo_kappa_map([a, b], 80), halo_kappa_map([a], 80) + halo_kappa_map([b], 80), atol=1e-7
    )
    assert not np.any(halo_kappa_map([], 8))


def test_halo_map_rejects_bad_arguments():
    for kwargs, name in (
        ({"size": 0}, "size"),
        ({"size": 8.0}, "size"),
        ({"pixel_arcmin": 0.0}, "pixel_arcmin"),
        ({"kappa_min": -1.0}, "kappa_min"),
        ({"core_supersample": 0}, "core_supersample"),
    ):
        with pytest.raises(ValueError, match=name):
            halo_kappa_map([halo()], **{"size": 16, **kwargs})
