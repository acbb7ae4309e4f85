"""NFW lensing profiles (Wright & Brainerd 2000) and the KS93 shear of an NFW map.

The last tests put an NFW κ map on a grid, compute γ with ``lensviz.inversion.ks93inv``
and compare the azimuthally averaged tangential shear with the analytic profile. This
also pins lensviz's sign convention: γt = −(γ1 cos 2φ + γ2 sin 2φ) > 0 around a halo.
"""

import mpmath
import numpy as np
import pytest
from scipy.integrate import quad

from lensviz.halos import (
    nfw_kappa_profile,
    nfw_mean_kappa_profile,
    nfw_shear_profile,
)
from lensviz.inversion import ks93inv


def _f_reference(x: float) -> float:
    """f(x) of Wright & Brainerd in the literal form of docs/reference.md §6, 50 digits."""
    with mpmath.workdps(50):
        x = mpmath.mpf(x)
        if x < 1:
            h = 2 / mpmath.sqrt(1 - x * x) * mpmath.atanh(mpmath.sqrt((1 - x) / (1 + x)))
        elif x > 1:
            h = 2 / mpmath.sqrt(x * x - 1) * mpmath.atan(mpmath.sqrt((x - 1) / (x + 1)))
        else:
            return 1.0 / 3.0
        return float((1 - h) / (x * x - 1))


def test_f_matches_literal_formula_at_high_precision():
    x = np.array([1e-5, 1e-3, 0.1, 0.5, 0.9, 0.999, 0.9999, 1.0001, 1.001, 1.01, 2.0, 10.0, 1e3])
    expected = np.array([2.0 * _f_reference(v) for v in x])
    np.testing.assert_allclose(nfw_kappa_profile(x, 1.0), expected, rtol=1e-11)


@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1.0001e-3, 1e-2])
def test_f_is_one_third_at_one_and_continuous_from_both_sides(delta):
    assert nfw_kappa_profile(1.0, 0.5) == pytest.approx(1.0 / 3.0, rel=1e-15)
    below = nfw_kappa_profile(1.0 - delta, 0.5)
    above = nfw_kappa_profile(1.0 + delta, 0.5)
    # f'(1) = −2/5: both sides approach 1/3 linearly, with no jump at the series switch
    assert below - 1.0 / 3.0 == pytest.approx(0.4 * delta, rel=0.02, abs=1e-15)
    assert 1.0 / 3.0 - above == pytest.approx(0.4 * delta, rel=0.02, abs=1e-15)


def test_profile_integrates_to_analytic_mean():
    kappa_s = 0.17
    for x in [1e-3, 0.05, 0.3, 0.7, 0.9995, 1.0, 1.0005, 1.5, 4.0, 30.0]:
        # ∫_0^x κ(t) t dt with t = e^u: a smooth integrand despite the cusp at t = 0
        lo, hi = np.log(x) - 40.0, np.log(x)
        integral = quad(
            lambda u: nfw_kappa_profile(np.exp(u), kappa_s) * np.exp(2.0 * u),
            lo,
            hi,
            points=[0.0] if lo < 0.0 < hi else None,
            epsabs=0.0,
            epsrel=1e-12,
            limit=200,
        )[0]
        numeric = 2.0 * integral / x**2
        assert nfw_mean_kappa_profile(x, kappa_s) == pytest.approx(numeric, rel=1e-8)


def test_shear_profile_limits_and_sign():
    x = np.geomspace(1e-6, 1e3, 200)
    gt = nfw_shear_profile(x, 0.2)
    assert np.all(gt > 0)
    assert gt[0] == pytest.approx(0.2, rel=1e-3)  # γt → κ_s at the centre
    # far out κ̄ ≈ 4κ_s ln(x/2)/x² and κ ≈ 2κ_s/x², so γt ≈ 2κ_s (2 ln(x/2) − 1)/x²
    assert gt[-1] == pytest.approx(2 * 0.2 * (2 * np.log(x[-1] / 2) - 1) / x[-1] ** 2, rel=1e-3)


def test_profiles_reject_negative_radius():
    with pytest.raises(ValueError, match="x must be"):
        nfw_kappa_profile(-0.1, 1.0)
    with pytest.raises(ValueError, match="x must be > 0"):
        nfw_shear_profile(0.0, 1.0)


def _tangential_profile(kappa_map, x0, y0, pad, edges):
    g1, g2 = ks93inv(kappa_map, pad=pad)
    yy, xx = np.mgrid[0 : kappa_map.shape[0], 0 : kappa_map.shape[1]].astype(float)
    dx, dy = xx - x0, yy - y0
    r = np.hypot(dx, dy)
    phi = np.arctan2(dy, dx)
    gt = -(g1 * np.cos(2 * phi) + g2 * np.sin(2 * phi))
    gx = g1 * np.sin(2 * phi) - g2 * np.cos(2 * phi)
    which = np.digitize(r, edges)
    return r, which, gt, gx


@pytest.mark.parametrize(
    ("x0", "y0", "pad", "rtol"),
    [
        (127.5, 127.5, 256, 0.01),  # centred, between pixels
        (101.3, 142.8, 256, 0.02),  # off-centre: padding keeps the periodic images away
    ],
)
def test_ks93inv_shear_of_nfw_map_matches_analytic_profile(x0, y0, pad, rtol):
    n, r_s, kappa_s = 256, 20.0, 0.1
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    r_map = np.hypot(xx - x0, yy - y0)
    kappa = nfw_kappa_profile(r_map / r_s, kappa_s)

    # radial bins 8–80 px: away from the pixelised cusp and from the map edges
    edges = np.arange(8.0, 84.0, 4.0)
    r, which, gt, gx = _tangential_profile(kappa, x0, y0, pad, edges)
    analytic = nfw_shear_profile(r / r_s, kappa_s)
    for i in range(1, edges.size):
        sel = which == i
        expected = analytic[sel].mean()
        assert gt[sel].mean() == pytest.approx(expected, rel=rtol), f"bin {edges[i - 1]} px"
        assert abs(gx[sel].mean()) < 0.01 * expected  # no B-mode-like cross shear
