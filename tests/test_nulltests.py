"""lensviz.nulltests and lensviz.cosmos: B modes, noise maps, peak significance, COSMOS."""

import numpy as np
import pytest

from lensviz import cosmos, fields, nulltests
from lensviz.inversion import gaussian_smooth, ks93, ks93inv
from lensviz.simulate import SimulationConfig, simulate_sample

# === Rotations ===


def test_rotating_by_45_degrees_turns_e_into_b():
    rng = np.random.default_rng(0)
    kappa = gaussian_smooth(rng.normal(0, 1, (96, 128)), 3.0)
    g1, g2 = ks93inv(kappa)  # a pure E field
    eps = np.stack([g1, g2, np.full_like(g1, 0.1)], -1).astype(np.float32)
    rot = nulltests.rotate_45(eps)
    e, b = ks93(eps[..., 0], eps[..., 1])
    e_rot, b_rot = ks93(rot[..., 0], rot[..., 1])
    np.testing.assert_allclose(b_rot, e, atol=1e-5)  # κ_B' = κ_E
    np.testing.assert_allclose(e_rot, -b, atol=1e-5)  # κ_E' = −κ_B ≈ 0 here
    assert np.abs(e_rot).max() < 1e-4 * np.abs(e).max()
    np.testing.assert_array_equal(rot[..., 2], eps[..., 2])
    # Twice: e → −e (a rotation by 90°).
    np.testing.assert_array_equal(nulltests.rotate_45(rot)[..., :2], -eps[..., :2])


def test_random_orientations_keep_the_moduli_and_kill_the_signal():
    eps, kappa = simulate_sample(11, SimulationConfig(n_gal=np.inf))  # signal only
    eps[5:9, 5:9] = (0.0, 0.0, 1.0)  # empty pixels stay empty
    out = nulltests.randomise_orientations(eps, np.random.default_rng(3))
    np.testing.assert_allclose(
        np.hypot(out[..., 0], out[..., 1]), np.hypot(eps[..., 0], eps[..., 1]), atol=1e-7
    )
    np.testing.assert_array_equal(out[..., 2], eps[..., 2])
    assert np.all(out[5:9, 5:9, :2] == 0)
    r = np.corrcoef(ks93(out[..., 0], out[..., 1])[0].ravel(), kappa.ravel())[0, 1]
    assert (
        abs(r) < 0.1 < np.corrcoef(ks93(eps[..., 0], eps[..., 1])[0].ravel(), kappa.ravel())[0, 1]
    )
    again = nulltests.randomise_orientations(eps, np.random.default_rng(3))
    np.testing.assert_array_equal(out, again)  # seeded
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        nulltests.randomise_orientations(eps, 3)


# === E/B and peaks ===


def test_e_over_b_on_signal_and_on_noise():
    footprint = np.ones((128, 128), bool)
    eps, _ = simulate_sample(12, SimulationConfig(n_gal=100.0))
    ks = lambda e: fields.ks93_field(e, sigma_px=3.0)  # noqa: E731
    signal = nulltests.e_over_b(ks(eps), ks(nulltests.rotate_45(eps)), footprint)
    noise = nulltests.randomise_orientations(eps, np.random.default_rng(0))
    null = nulltests.e_over_b(ks(noise), ks(nulltests.rotate_45(noise)), footprint)
    assert signal > 2.0 and 0.8 < null < 1.25
    assert nulltests.footprint_rms(np.full((4, 4), 7.0), np.ones((4, 4), bool)) == 0.0
    with pytest.raises(ValueError, match="no pixel"):
        nulltests.footprint_rms(np.ones((4, 4)), np.zeros((4, 4), bool))


def test_noise_realisations_are_seeded_per_realisation():
    eps, _ = simulate_sample(13)
    recon = lambda e: fields.ks93_field(e, sigma_px=2.0)  # noqa: E731
    maps = nulltests.noise_realisations(recon, eps, 6, seed=4, batch=4)
    assert maps.shape == (6, 128, 128)
    np.testing.assert_array_equal(maps[3:5], nulltests.noise_realisations(recon, eps, 6, 4)[3:5])
    one = nulltests.randomise_orientations(eps, np.random.default_rng([4, 5]))
    np.testing.assert_allclose(maps[5], recon(one[None])[0], atol=1e-7)


def test_a_planted_peak_stands_out_and_edges_are_ignored():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (300, 80, 80))
    kappa = rng.normal(0, 0.01, (80, 80))
    kappa[40, 50] = 0.06  # 6 σ
    kappa[1, 40] = 0.5  # at the footprint's edge: not counted
    footprint = np.ones((80, 80), bool)
    peaks = nulltests.peak_significance(kappa, noise, footprint, edge_px=4)
    top = peaks[0]
    assert (top.y, top.x) == (40, 50) and top.snr == pytest.approx(6.0, rel=0.1)
    assert top.false_alarm == 0.0 and top.noise_rms == pytest.approx(0.01, rel=0.1)
    assert all(p.y >= 4 for p in peaks) and all(p.height > 0 for p in peaks)
    # A noise-level peak is as likely as the noise maps' own highest peaks to be beaten.
    assert peaks[-1].false_alarm == 1.0
    assert len(nulltests.peak_significance(kappa, noise, footprint, n_peaks=2)) == 2


# === COSMOS ===


def test_cosmos_facts_of_its_readme():
    field = cosmos.load_cosmos()
    assert field.eps.shape == (256, 256, 3) and field.kappa is None
    assert (~field.mask).sum() == 43_900 and field.sigma_e == pytest.approx(0.2828, abs=1e-4)
    # 198,781 galaxies over 43,900 pixels of 0.352′ (the measured WCS, tests/test_cosmos.py)
    assert cosmos.galaxy_density(field) == pytest.approx(36.5, abs=0.1)
    with pytest.raises(ValueError, match="read-only"):
        field.eps[0, 0, 0] = 1.0
    assert (cosmos.COSMOS_DIR / "LICENCE-lenspack.txt").read_text().startswith("MIT License")


def test_cosmos_ks93_e_over_b_as_measured():
    field = cosmos.load_cosmos()
    e = fields.ks93_field(field.eps, sigma_px=6.0)
    b = fields.ks93_field(nulltests.rotate_45(field.eps), sigma_px=6.0)
    assert nulltests.e_over_b(e, b, ~field.mask) == pytest.approx(1.175, abs=0.001)


def test_null_tests_of_two_methods_on_cosmos():
    field = cosmos.load_cosmos()
    methods = {
        "ks93": lambda e: fields.ks93_field(e, sigma_px=4.0),
        "ks93_raw": lambda e: fields.ks93_field(e, sigma_px=0.0),
    }
    progress = []
    out = nulltests.null_tests(
        methods, field.eps, ~field.mask, n_noise=24, seed=0, on_progress=progress.append
    )
    assert set(out) == {"ks93", "ks93_raw"}
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) == 4
    smooth = out["ks93"]
    assert smooth["e_over_b"] == pytest.approx(smooth["e_rms"] / smooth["b_rms"])
    mean, std = smooth["e_over_b_null"]  # 12 pairs of noise maps
    assert abs(mean - 1) < 2.5 * std / np.sqrt(12) + 0.01 and 0 < std < 0.2
    assert smooth["e_over_b_interior"] > smooth["e_over_b"]  # the edges dilute E/B
    assert smooth["e_over_b"] > out["ks93_raw"]["e_over_b"]
    assert smooth["noise_rms"].shape == (256, 256)
    top = smooth["peaks"][0]
    assert top.snr > 3.5 and top.height > 0 and not field.mask[top.y, top.x]


def test_false_alarm_rate_has_its_binomial_interval_and_peaks_their_error_bars():
    from lensviz.nulltests import Peak, wilson_interval, with_errorbars

    # hand-computed Wilson 68.3 % interval of 10 in 200: centre 0.0525/1.005, half
    # sqrt(0.05·0.95/200 + 1/160000)/1.005
    lo, hi = wilson_interval(10, 200)
    assert lo == pytest.approx(0.052239 - 0.015535, abs=1e-5)
    assert hi == pytest.approx(0.052239 + 0.015535, abs=1e-5)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(0, 50)[1] > 0.0
    peak = Peak(3, 4, 0.05, 0.01, 5.0, 0.05, 200)
    assert peak.detected and peak.false_alarm_interval == pytest.approx((lo, hi))
    assert not Peak(3, 4, 0.05, 0.01, 5.0, 0.06, 200).detected
    std = np.zeros((8, 8))
    std[3, 4] = 0.02
    (p,) = with_errorbars([peak], std, 2 * std)
    assert (p.std, p.hw95) == (0.02, 0.04) and p.height == 0.05
