"""Known answers for lensviz.profiles: shear profiles of analytic lenses, region areas."""

import numpy as np
import pytest

from lensviz.inversion import ks93inv
from lensviz.profiles import region_masks, region_rmse, tangential_profile

N = 128


def _polar(center, shape=(N, N)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    dy, dx = yy - center[0], xx - center[1]
    return np.hypot(dx, dy), np.arctan2(dy, dx)


def test_point_mass_shear_falls_as_one_over_r_squared():
    # A point mass of m (κ integrated over px²): γt(r) = m / (π r²), no cross shear.
    m, center = 30.0, (60.0, 70.0)
    r, phi = _polar(center)
    gt = m / (np.pi * np.maximum(r, 0.5) ** 2)
    radius, measured, _ = tangential_profile(
        np.zeros((N, N)), -gt * np.cos(2 * phi), -gt * np.sin(2 * phi), center, r_max=40
    )
    # The mean of 1/r² over a continuous ring [r − 1, r + 1) is 1/(r² − 1); a ring of
    # pixels approaches it once it holds many pixels (r ≳ 10 px).
    far = radius >= 10
    assert far.sum() > 10
    np.testing.assert_allclose(measured[far], m / (np.pi * (radius[far] ** 2 - 1.0)), rtol=0.02)


def test_cross_shear_has_no_tangential_part():
    center = (64.0, 64.0)
    r, phi = _polar(center)
    g = 0.05 / (1 + r)
    # γ× pattern: γ1 = g sin 2φ, γ2 = −g cos 2φ is rotated by 45° from tangential.
    _, gt, _ = tangential_profile(
        np.zeros((N, N)), g * np.sin(2 * phi), -g * np.cos(2 * phi), center
    )
    np.testing.assert_allclose(gt, 0.0, atol=1e-12)


def test_gaussian_lens_shear_from_ks93inv_matches_the_analytic_profile():
    # κ = A exp(−r²/2s²): κ̄(<r) = 2As²/r² (1 − exp(−r²/2s²)), γt = κ̄(<r) − κ(r).
    a, s, center = 0.3, 4.0, (64.0, 64.0)
    r, _ = _polar(center)
    kappa = a * np.exp(-(r**2) / (2 * s**2))
    g1, g2 = ks93inv(kappa)
    radius, gt, contrast = tangential_profile(kappa, g1, g2, center, r_max=30)

    def analytic(rad):
        inside = 2 * a * s**2 / rad**2 * (1 - np.exp(-(rad**2) / (2 * s**2)))
        return inside - a * np.exp(-(rad**2) / (2 * s**2))

    # Each annulus averages the profile over its pixels (2 px wide rings).
    edges = np.arange(3.0, 30.0, 2.0)
    expected = np.array(
        [analytic(r[(r >= lo) & (r < hi)]).mean() for lo, hi in zip(edges[:-1], edges[1:])]
    )
    # The FFT's periodic images of the lens and the mean-zero shear cost about 1e-3.
    np.testing.assert_allclose(gt, expected, atol=1.5e-3)
    # κ̄(<θ) on a pixel disc converges to the analytic mean once the disc is large.
    far = radius >= 8
    np.testing.assert_allclose(contrast[far], analytic(radius[far]), atol=2e-3)
    np.testing.assert_allclose(gt[far], contrast[far], atol=2e-3)  # the identity itself


def test_tangential_profile_rejects_bad_input():
    with pytest.raises(ValueError, match="one shape"):
        tangential_profile(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 4)), (4, 4))
    with pytest.raises(ValueError, match="r_max"):
        tangential_profile(
            np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8)), (4, 4), step=2.0, r_max=4.0
        )


def test_region_masks_partition_the_map_with_the_expected_areas():
    radius, border = 10.0, 6
    masks = region_masks((N, N), (64.0, 64.0), radius, border)
    stack = np.stack(list(masks.values())).astype(int)
    assert set(masks) == {"core", "edge band", "rest"}
    assert (stack.sum(axis=0) == 1).all()  # disjoint and covering
    # The disc stays clear of the band, so the band is the whole frame.
    assert masks["edge band"].sum() == N * N - (N - 2 * border) ** 2
    # Gauss circle problem: the lattice points inside r < 10 are close to π r².
    assert masks["core"].sum() == pytest.approx(np.pi * radius**2, rel=0.03)
    assert masks["rest"].sum() == N * N - masks["core"].sum() - masks["edge band"].sum()


def test_a_core_touching_the_border_takes_its_pixels_from_the_band():
    masks = region_masks((32, 32), (0.0, 0.0), 5.0, 3)
    assert masks["core"][0, 0] and not masks["edge band"][0, 0]
    core_off_frame = masks["core"][3:-3, 3:-3].sum()  # (3, 3) only: r = 4.24 < 5
    assert core_off_frame == 1
    assert masks["edge band"].sum() == 32 * 32 - 26 * 26 - (masks["core"].sum() - 1)


def test_region_rmse_of_an_error_confined_to_the_core():
    truth = np.random.default_rng(3).normal(size=(N, N))
    masks = region_masks((N, N), (40.0, 50.0), 8.0, 4)
    pred = truth + 0.2 * masks["core"]
    table = region_rmse(truth, {"p": pred, "exact": truth}, masks)
    assert table["p"]["core"] == pytest.approx(0.2)
    assert table["p"]["edge band"] == 0.0 and table["p"]["rest"] == 0.0
    frac = masks["core"].mean()
    assert table["p"]["whole map"] == pytest.approx(0.2 * np.sqrt(frac))
    assert all(v == 0.0 for v in table["exact"].values())
    empty = {"nothing": np.zeros((N, N), bool)}
    assert np.isnan(region_rmse(truth, {"p": pred}, empty)["p"]["nothing"])
    with pytest.raises(ValueError, match="shape"):
        region_rmse(truth, {"p": pred[:4]}, masks)
