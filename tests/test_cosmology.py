"""Flat ΛCDM background against closed forms, direct quadrature and astropy numbers."""

import numpy as np
import pytest
from scipy.integrate import quad

from lensviz import cosmology as cosmo

# astropy 8.0 FlatLambdaCDM(H0=70, Om0=0.3, Tcmb0=0), converted to Mpc/h (× 0.7).
ASTROPY_COMOVING = {
    0.1: 292.91814134,
    0.3: 836.07780880,
    0.5: 1322.03777715,
    1.0: 2312.68016412,
    2.0: 3625.90345209,
}
ASTROPY_DLS_03_10 = 738.30117766  # angular_diameter_distance_z1z2(0.3, 1.0) [Mpc/h]
ASTROPY_RHO_CRIT0 = 2.7753662725e11  # critical_density0 / h² [(M☉/h)/(Mpc/h)³]
ASTROPY_SIGMA_CRIT_03_10 = 4.0496652689e15  # c²D_s/(4πG D_l D_ls) / h [(M☉/h)/(Mpc/h)²]


def test_einstein_de_sitter_closed_form():
    # Ω_m = 1: χ = 2 c/H0 (1 − 1/√(1+z)), Hogg 1999
    z = np.array([0.0, 0.05, 0.3, 1.0, 2.5, 7.0, 19.9])
    expected = 2.0 * cosmo.HUBBLE_DISTANCE * (1.0 - 1.0 / np.sqrt(1.0 + z))
    np.testing.assert_allclose(cosmo.comoving_distance(z, omega_m=1.0), expected, rtol=1e-9)
    np.testing.assert_allclose(
        cosmo.angular_diameter_distance(z[1:], omega_m=1.0), expected[1:] / (1.0 + z[1:]), rtol=1e-9
    )


def test_comoving_distance_matches_direct_quadrature():
    rng = np.random.default_rng(7)
    for z in rng.uniform(0.01, 5.0, 6):
        direct = (
            cosmo.HUBBLE_DISTANCE
            * quad(
                lambda zz: 1.0 / np.sqrt(0.3 * (1 + zz) ** 3 + 0.7), 0.0, z, epsabs=0, epsrel=1e-13
            )[0]
        )
        assert cosmo.comoving_distance(z) == pytest.approx(direct, rel=1e-9)


def test_distances_match_astropy_reference_numbers():
    z = np.array(list(ASTROPY_COMOVING))
    chi = np.array(list(ASTROPY_COMOVING.values()))
    np.testing.assert_allclose(cosmo.comoving_distance(z), chi, rtol=1e-8)
    np.testing.assert_allclose(cosmo.angular_diameter_distance(z), chi / (1 + z), rtol=1e-8)
    assert cosmo.angular_diameter_distance_between(0.3, 1.0) == pytest.approx(
        ASTROPY_DLS_03_10, rel=1e-8
    )


def test_critical_densities_match_astropy():
    assert cosmo.critical_density(0.0) == pytest.approx(ASTROPY_RHO_CRIT0, rel=1e-8)
    # ρ_crit ∝ E(z)²
    e2 = 0.3 * 1.5**3 + 0.7
    assert cosmo.critical_density(0.5) == pytest.approx(ASTROPY_RHO_CRIT0 * e2, rel=1e-8)
    assert cosmo.sigma_crit(0.3, 1.0) == pytest.approx(ASTROPY_SIGMA_CRIT_03_10, rel=1e-8)


def test_sigma_crit_positive_and_infinite_behind_sources():
    z_l = np.array([0.05, 0.3, 0.6, 0.99, 1.0, 1.5, cosmo.Z_MAX])
    sc = cosmo.sigma_crit(z_l, 1.0)
    assert sc.shape == z_l.shape
    assert np.all(sc[:4] > 0) and np.all(np.isfinite(sc[:4]))
    assert np.all(np.isinf(sc[4:]))
    assert np.isinf(cosmo.sigma_crit(0.5, 0.5))  # scalar in, scalar out
    # lensing efficiency peaks in between: Σ_crit has a minimum at intermediate z_l
    zz = np.linspace(0.05, 0.95, 91)
    s = cosmo.sigma_crit(zz, 1.0)
    assert 0 < np.argmin(s) < zz.size - 1


def test_arcmin_mpc_round_trip_and_value():
    d_a = cosmo.angular_diameter_distance(0.3)
    assert cosmo.arcmin_to_mpc(1.0, 0.3) == pytest.approx(d_a * np.pi / (180 * 60), rel=1e-12)
    r = np.array([0.01, 0.5, 2.0])
    np.testing.assert_allclose(cosmo.arcmin_to_mpc(cosmo.mpc_to_arcmin(r, 0.4), 0.4), r, rtol=1e-12)


def test_hubble_parameter_uses_h():
    assert cosmo.hubble_parameter(0.0) == pytest.approx(70.0)
    assert cosmo.hubble_parameter(1.0, h=1.0) == pytest.approx(100 * np.sqrt(0.3 * 8 + 0.7))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cosmo.comoving_distance(-0.1), "z must lie"),
        (lambda: cosmo.comoving_distance(cosmo.Z_MAX + 1), "z must lie"),
        (lambda: cosmo.comoving_distance(np.nan), "finite"),
        (lambda: cosmo.comoving_distance(1.0, omega_m=0.0), "omega_m"),
        (lambda: cosmo.angular_diameter_distance_between(1.0, 0.5), "z2 must be >= z1"),
        (lambda: cosmo.sigma_crit(0.0, 1.0), "z_l must be > 0"),
        (lambda: cosmo.mpc_to_arcmin(1.0, 0.0), "z must be > 0"),
        (lambda: cosmo.hubble_parameter(0.0, h=-1.0), "h must be"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
