"""The simulator: shapes, reproducibility, noise statistics, physics pieces, validation."""

import math

import numpy as np
import pytest

from lensviz import constants as C
from lensviz.halos import HaloParams, nfw_kappa_profile
from lensviz.inversion import gaussian_smooth, ks93
from lensviz.simulate import (
    DepthMix,
    SimulationConfig,
    add_shape_noise,
    convergence_power_spectrum,
    depth_config,
    draw_mask,
    lens_ellipticities,
    lognormal_shift,
    mixed_config,
    observe_kappa,
    reduced_shear,
    simulate_batch,
    simulate_mixed_batch,
    simulate_mixed_sample,
    simulate_sample,
    simulate_truth,
    truncated_sigma,
)

# a lone round cluster, no LSS, no noise: for checking the halo maps
LONE_HALO = SimulationConfig(
    field_halo_density=0, n_subhalos=0, elliptical=False, lss=False, n_gal=math.inf
)


# === Output contract ===
def test_shapes_and_dtypes():
    eps, kappa = simulate_sample(0)
    assert eps.shape == (C.NPIX, C.NPIX, 3) and eps.dtype == np.float32
    assert kappa.shape == (C.NPIX, C.NPIX) and kappa.dtype == np.float32
    assert np.all(np.isfinite(eps)) and np.all(np.isfinite(kappa))
    small = SimulationConfig(npix=48, pad=16)
    eps, kappa = simulate_sample(0, small)
    assert eps.shape == (48, 48, 3) and kappa.shape == (48, 48)


def test_reproducible_per_seed_and_seeds_differ():
    a = simulate_sample(123)
    b = simulate_sample(123)
    c = simulate_sample(124)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[0][..., 0], c[0][..., 0])


def test_batch_equals_per_sample():
    eps, kappa = simulate_batch(3, seed=40)
    assert eps.shape == (3, C.NPIX, C.NPIX, 3) and kappa.shape == (3, C.NPIX, C.NPIX)
    for i in range(3):
        e_i, k_i = simulate_sample(40 + i)
        assert np.array_equal(eps[i], e_i) and np.array_equal(kappa[i], k_i)
    empty_eps, empty_kappa = simulate_batch(0)
    assert empty_eps.shape == (0, C.NPIX, C.NPIX, 3) and empty_kappa.shape[0] == 0


def test_truth_matches_sample_and_adds_up():
    truth = simulate_truth(9)
    _, kappa = simulate_sample(9)
    assert np.array_equal(truth["kappa"], kappa)
    np.testing.assert_allclose(
        truth["kappa"], truth["kappa_cluster"] + truth["kappa_lss"], atol=1e-6
    )
    g1, g2 = reduced_shear(truth["shear1"], truth["shear2"], truth["kappa"])
    np.testing.assert_allclose(truth["gamma1"], g1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(truth["gamma2"], g2, rtol=1e-5, atol=1e-7)
    halos = truth["halos"]
    assert all(isinstance(h, HaloParams) for h in halos)
    assert halos[0].kind == "main"
    assert C.SIM_M200_RANGE[0] <= halos[0].m200 <= C.SIM_M200_RANGE[1]
    assert C.SIM_Z_RANGE[0] <= halos[0].z <= C.SIM_Z_RANGE[1]


def test_components_switch_independently():
    # separate random streams: the cluster does not change when LSS or noise is switched off
    full = simulate_truth(5)
    no_lss = simulate_truth(5, SimulationConfig(lss=False))
    assert np.array_equal(full["kappa_cluster"], no_lss["kappa_cluster"])
    assert not np.any(no_lss["kappa_lss"])
    eps_a, _ = simulate_sample(5)
    eps_b, _ = simulate_sample(5, SimulationConfig(lss=False))
    assert np.array_equal(eps_a[..., 2], eps_b[..., 2])  # same galaxy counts


# === Shape noise ===
def test_delta_eps_is_sigma_over_sqrt_n_and_empty_pixel_rule():
    rng = np.random.default_rng(3)
    g = np.full((128, 128), 0.02, dtype=np.float32)
    n_gal = 2.0  # 0.5 galaxies per 0.5′ pixel: 61 % of the pixels are empty
    eps = add_shape_noise(g, -g, rng, n_gal=n_gal, sigma_e=0.3, pixel_arcmin=0.5)
    assert eps.shape == (128, 128, 3) and eps.dtype == np.float32
    empty = eps[..., 2] == C.EMPTY_PIXEL_SIGMA
    assert np.all(eps[empty][:, :2] == 0.0)
    counts = (0.3 / eps[~empty][:, 2].astype(np.float64)) ** 2
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)  # Δε = σ_e/√N, N integer
    assert np.rint(counts).min() >= 1
    p_empty = np.exp(-n_gal * 0.25)
    assert abs(empty.mean() - p_empty) < 4 * np.sqrt(p_empty * (1 - p_empty) / empty.size)


def test_mean_galaxy_count_per_pixel():
    eps, _ = simulate_sample(2)
    filled = eps[..., 2] < C.EMPTY_PIXEL_SIGMA
    n = (C.SIGMA_E / eps[..., 2][filled].astype(np.float64)) ** 2
    mean_n = C.N_GAL_ARCMIN2 * C.PIXEL_ARCMIN**2  # 7.5
    total = np.rint(n).sum() / eps[..., 2].size
    assert total == pytest.approx(mean_n, rel=4 * np.sqrt(mean_n / eps[..., 2].size) / mean_n)


def test_pixel_noise_statistics_on_a_shear_free_field():
    rng = np.random.default_rng(11)
    zero = np.zeros((128, 128), dtype=np.float32)
    eps = add_shape_noise(zero, zero, rng, n_gal=30.0, sigma_e=0.26, pixel_arcmin=0.5)
    filled = eps[..., 2] < C.EMPTY_PIXEL_SIGMA
    for c in (0, 1):
        z = eps[..., c][filled] / eps[..., 2][filled]
        # unit variance (the |e_s| < 1 truncation lowers it by 0.5 %); 16k pixels → ±1.1 % (2σ)
        assert np.std(z) == pytest.approx(1.0, abs=0.025)
        assert abs(np.mean(eps[..., c][filled])) < 4 * 0.26 / np.sqrt(filled.sum() * 7.5)
    # and the raw pixel scatter is σ_e/√(n_gal A_pix), up to the spread of 1/N
    nominal = 0.26 / np.sqrt(30.0 * 0.25)
    assert np.std(eps[..., 0][filled]) == pytest.approx(nominal, rel=0.12)


@pytest.mark.parametrize(
    ("g", "expected"), [(0.3 - 0.2j, 0.3 - 0.2j), (1.5 + 0.5j, 1 / (1.5 - 0.5j))]
)
def test_lensed_ellipticity_mean_is_reduced_shear(g, expected):
    # Seitz & Schneider 1997: ⟨e⟩ = g for |g| ≤ 1 and 1/g* for |g| > 1, for isotropic e_s
    rng = np.random.default_rng(0)
    n = 400_000
    e_s = 0.26 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    e_s = e_s[np.abs(e_s) < 1]
    mean = lens_ellipticities(e_s, g).mean()
    assert abs(mean - expected) < 5 * 0.26 / np.sqrt(e_s.size)


def test_noise_free_config_gives_reduced_shear():
    cfg = SimulationConfig(n_gal=math.inf)
    eps, kappa = simulate_sample(21, cfg)
    truth = simulate_truth(21, cfg)
    np.testing.assert_array_equal(eps[..., 0], truth["gamma1"])
    np.testing.assert_array_equal(eps[..., 1], truth["gamma2"])
    assert np.all(eps[..., 2] == 0.0)  # the true noise: none
    # g ≈ γ where κ ≪ 1
    weak = np.abs(kappa) < 0.02
    np.testing.assert_allclose(eps[..., 0][weak], truth["shear1"][weak], rtol=0.03, atol=1e-6)


def test_add_shape_noise_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same shape"):
        add_shape_noise(np.zeros((4, 4)), np.zeros((4, 5)), rng)
    with pytest.raises(TypeError, match="Generator"):
        add_shape_noise(np.zeros((4, 4)), np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="n_gal"):
        add_shape_noise(np.zeros((4, 4)), np.zeros((4, 4)), rng, n_gal=0)
    with pytest.raises(ValueError, match="sigma_e"):
        add_shape_noise(np.zeros((4, 4)), np.zeros((4, 4)), rng, sigma_e=1.5)


# === Physics pieces ===
def test_lognormal_shift_value():
    assert lognormal_shift(1.0) == pytest.approx(0.008 + 0.029 - 0.0079 + 0.00065)


def test_halo_map_is_nfw_and_core_pixels_are_pixel_averages():
    truth = simulate_truth(4, LONE_HALO)
    h = truth["halos"][0]
    kappa = truth["kappa_cluster"].astype(np.float64)
    rs_px = h.r_s_arcmin / LONE_HALO.pixel_arcmin
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float64)
    exact = nfw_kappa_profile(np.hypot(xx - h.x, yy - h.y) / rs_px, h.kappa_s)
    core = (np.abs(xx - np.rint(h.x)) <= 2) & (np.abs(yy - np.rint(h.y)) <= 2)
    kept = exact > 1.0001 * LONE_HALO.halo_kappa_min  # the halo is cut at κ = 1e-4
    assert kept.mean() > 0.9
    np.testing.assert_allclose(kappa[~core & kept], exact[~core & kept], rtol=2e-5)
    assert np.all(kappa[exact < 0.9999 * LONE_HALO.halo_kappa_min] == 0.0)
    # core pixels: mean of κ over the pixel, checked with 200 × 200 sub-samples
    off = (np.arange(200) + 0.5) / 200 - 0.5
    iy, ix = int(np.rint(h.y)), int(np.rint(h.x))
    for dy, dx in [(0, 0), (0, 1), (-1, -1), (2, 2)]:
        sx, sy = ix + dx + off[None, :], iy + dy + off[:, None]
        fine = nfw_kappa_profile(np.hypot(sx - h.x, sy - h.y) / rs_px, h.kappa_s).mean()
        assert kappa[iy + dy, ix + dx] == pytest.approx(fine, rel=2e-3)


def test_elliptical_halo_orientation():
    cfg = LONE_HALO.replace(elliptical=True, axis_ratio_range=(0.5, 0.5), center_offset_arcmin=0.0)
    for seed in (1, 2):
        truth = simulate_truth(seed, cfg)
        h = truth["halos"][0]
        yy, xx = np.mgrid[0:128, 0:128].astype(np.float64)
        dx, dy = xx - h.x, yy - h.y
        w = truth["kappa_cluster"] * (np.hypot(dx, dy) < 30)
        qxx, qyy, qxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
        angle = 0.5 * np.arctan2(2 * qxy, qxx - qyy)
        assert np.angle(np.exp(2j * (angle - h.angle))) == pytest.approx(0.0, abs=0.05)


def test_lss_field_statistics():
    # the generator itself, on an isolated 128² canvas
    cfg = SimulationConfig(field_halo_density=0, n_subhalos=0, n_gal=math.inf, margin_px=0)
    maps = np.array([simulate_truth(s, cfg)["kappa_lss"] for s in range(12)], dtype=np.float64)
    assert maps.min() >= -lognormal_shift(1.0)  # lognormal: κ > −λ
    # the pixel variance is that of the power spectrum (lognormal keeps the 2-point function)
    n, theta = 128, C.PIXEL_ARCMIN / 60 * np.pi / 180
    k1, k2 = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n))
    window = (np.sinc(k1) * np.sinc(k2)) ** 2
    cl = convergence_power_spectrum(2 * np.pi * np.hypot(k1, k2) / theta)
    expected = np.sum(cl * window) / (n * theta) ** 2
    assert maps.var(axis=(1, 2)).mean() == pytest.approx(expected, rel=0.1)
    assert 0.015 < np.sqrt(expected) < 0.03  # a few 1e-2 on 0.5′ pixels at z_s = 1
    skew = np.mean(((maps - maps.mean()) / maps.std()) ** 3)
    assert skew > 0.5


def test_power_spectrum_fit_matches_camb_reference():
    # Limber + CAMB halofit (Takahashi 2012), Ω_m = 0.3, σ8 = 0.8, z_s = 1: ℓ(ℓ+1)C_ℓ/2π
    ell = np.array([338.0, 1144.0, 3869.0, 13089.0])
    camb = np.array([2.67e-5, 7.05e-5, 1.41e-4, 1.52e-4])
    delta2 = ell * (ell + 1) * convergence_power_spectrum(ell) / (2 * np.pi)
    np.testing.assert_allclose(delta2, camb, rtol=0.05)


def test_lensing_signal_survives_the_noise():
    rs = []
    for seed in range(4):
        eps, kappa = simulate_sample(seed)
        kappa_e, _ = ks93(eps[..., 0], eps[..., 1], pad=64)
        a = gaussian_smooth(kappa_e, 3.0).ravel()
        b = gaussian_smooth(kappa, 3.0).ravel()
        rs.append(np.corrcoef(a, b)[0, 1])
    assert min(rs) > 0.4 and np.mean(rs) > 0.6


# === Configuration ===
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"npix": 1}, "npix"),
        ({"npix": 64.0}, "npix"),
        ({"pixel_arcmin": -0.5}, "pixel_arcmin"),
        ({"n_gal": 0.0}, "n_gal"),
        ({"sigma_e": 1.2}, "sigma_e"),
        ({"z_source": 0.0}, "z_source"),
        ({"m200_range": (2e15, 1e14)}, "m200_range"),
        ({"z_range": (0.1, 1.5)}, "z_range"),
        ({"axis_ratio_range": (0.5, 1.5)}, "axis_ratio_range"),
        ({"n_subhalos": -1.0}, "n_subhalos"),
        ({"lss_amplitude": np.nan}, "lss_amplitude"),
        ({"lss": "yes"}, "lss"),
        ({"pad": -1}, "pad"),
        ({"core_supersample": 0}, "core_supersample"),
        ({"n_gal": np.nan}, "n_gal"),
        ({"n_gal": -math.inf}, "n_gal"),
        ({"margin_px": -1}, "margin_px"),
        ({"margin_px": 8.0}, "margin_px"),
        ({"halo_kappa_min": -1e-4}, "halo_kappa_min"),
        ({"masks": 1}, "masks"),
        ({"mask_max_fraction": 1.5}, "mask_max_fraction"),
    ],
)
def test_config_validation_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**changes)


def test_config_is_frozen_and_replace_validates():
    cfg = SimulationConfig()
    with pytest.raises(AttributeError):
        cfg.npix = 64
    assert cfg.replace(n_gal=10.0).n_gal == 10.0
    with pytest.raises(ValueError, match="n_gal"):
        cfg.replace(n_gal=-1.0)


def test_bad_seed_raises():
    with pytest.raises(ValueError, match="seed"):
        simulate_sample(-1)
    with pytest.raises(ValueError, match="n must be"):
        simulate_batch(-2)


# === Depth: Δε semantics, presets, depth specs ===
def test_delta_eps_for_full_empty_and_noise_free_pixels():
    g1 = np.array([[0.01, -0.02], [0.03, 0.5]], dtype=np.float32)
    g2 = np.array([[0.0, 0.04], [-0.01, 0.2]], dtype=np.float32)
    # no shape noise: ε = g exactly, Δε = 0 exactly, and the generator is not touched
    rng = np.random.default_rng(5)
    eps = add_shape_noise(g1, g2, rng, n_gal=math.inf)
    assert eps.dtype == np.float32 and eps.shape == (2, 2, 3)
    np.testing.assert_array_equal(eps[..., 0], g1)
    np.testing.assert_array_equal(eps[..., 1], g2)
    np.testing.assert_array_equal(eps[..., 2], 0.0)
    assert rng.random() == np.random.default_rng(5).random()
    # a dense field: every pixel full, Δε = σ_e/√N with N the pixel's galaxy count
    dense = add_shape_noise(
        np.zeros((8, 8)), np.zeros((8, 8)), rng, n_gal=4000.0, sigma_e=0.2, pixel_arcmin=0.5
    )
    counts = (0.2 / dense[..., 2].astype(np.float64)) ** 2
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-2)
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(1000))
    # a very sparse field: almost every pixel empty, e = 0 and Δε = EMPTY_PIXEL_SIGMA there
    sparse = add_shape_noise(np.full((64, 64), 0.1), np.zeros((64, 64)), rng, n_gal=1e-3)
    empty = sparse[..., 2] == C.EMPTY_PIXEL_SIGMA
    assert empty.mean() > 0.99 and np.all(sparse[empty][:, :2] == 0.0)


def test_survey_presets():
    assert set(C.SURVEYS) == {"des", "lsst", "deep", "noise-free"}
    assert [C.SURVEYS[k].n_gal for k in ("des", "lsst", "deep")] == [10.0, 30.0, 100.0]
    assert math.isinf(C.SURVEYS["noise-free"].n_gal)
    assert C.SURVEYS[C.DEFAULT_SURVEY].n_gal == SimulationConfig().n_gal == C.N_GAL_ARCMIN2
    for name, survey in C.SURVEYS.items():
        assert survey.name == name and survey.sigma_e == C.SIGMA_E
        assert survey.label and len(survey.source) > 40  # each says where its numbers come from
        cfg = depth_config(name)
        assert cfg.n_gal == survey.n_gal and cfg.sigma_e == survey.sigma_e


@pytest.mark.parametrize(
    ("spec", "n_gal"),
    [
        ("des", 10.0),
        (" DES ", 10.0),
        ("noise-free", math.inf),
        ("100", 100.0),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("inf", math.inf),
        ("Infinity", math.inf),
    ],
)
def test_depth_config_parses_presets_numbers_and_inf(spec, n_gal):
    base = SimulationConfig(lss=False, sigma_e=0.3, margin_px=0)
    cfg = depth_config(spec, base)
    assert cfg.n_gal == n_gal
    assert not cfg.lss and cfg.margin_px == 0  # everything else is kept
    assert cfg.sigma_e == (C.SIGMA_E if spec.strip().lower() in C.SURVEYS else 0.3)


@pytest.mark.parametrize("spec", ["", "desi", "0", "-3", "nan", "1e3x", "-inf", None, 30])
def test_depth_config_rejects_bad_text(spec):
    with pytest.raises(ValueError, match="des, lsst, deep, noise-free") as info:
        depth_config(spec)
    assert repr(spec) in str(info.value)


def test_depth_sets_the_noise_of_the_sample():
    # same halos, LSS and galaxy positions; only the depth changes
    deep = simulate_sample(8, depth_config("deep"))
    wide = simulate_sample(8, depth_config("des"))
    free = simulate_sample(8, depth_config("inf"))
    np.testing.assert_array_equal(deep[1], wide[1])
    np.testing.assert_array_equal(free[1], deep[1])
    for eps, n_gal in ((deep[0], 100.0), (wide[0], 10.0)):
        filled = eps[..., 2] < C.EMPTY_PIXEL_SIGMA
        counts = np.where(filled, (C.SIGMA_E / eps[..., 2].astype(np.float64)) ** 2, 0.0)
        assert counts.mean() == pytest.approx(n_gal * 0.25, rel=0.03)
    np.testing.assert_array_equal(free[0][..., 2], 0.0)
    # the noise of e1 about g shrinks as 1/√n_gal
    resid = [np.std(e[..., 0] - free[0][..., 0]) for e in (wide[0], deep[0])]
    assert resid[0] / resid[1] == pytest.approx(np.sqrt(10.0), rel=0.15)


# === Mass beyond the field ===
def test_isolated_field_reproduces_the_old_samples():
    # values from the simulator before the canvas (lensviz 2026-11, commit 40eb59a)
    iso = SimulationConfig(margin_px=0, halo_kappa_min=0.0)
    old = {
        0: (
            193.42652823473327,
            0.3559735976724596,
            1660.6326586715877,
            [0.04174577, 0.04370241, 0.048201393, 0.055981174],
            [0.054820877, 0.031705968, 0.008810421, 0.11669192],
        ),
        7: (
            236.59432270831894,
            13.408495505740575,
            1658.0801669955254,
            [0.073506564, 0.088472016, 0.10630746, 0.13012174],
            [-0.14376228, 0.027417274, -0.19501138, 0.072327614],
        ),
    }
    for seed, (k_sum, e1_sum, de_sum, k_row, e1_row) in old.items():
        eps, kappa = simulate_sample(seed, iso)
        assert kappa.astype(np.float64).sum() == pytest.approx(k_sum, rel=1e-6)
        assert eps[..., 0].astype(np.float64).sum() == pytest.approx(e1_sum, rel=1e-4)
        assert eps[..., 2].astype(np.float64).sum() == pytest.approx(de_sum, rel=1e-7)
        np.testing.assert_allclose(kappa[60, 60:64], k_row, rtol=1e-6)
        np.testing.assert_allclose(eps[60, 60:64, 0], e1_row, rtol=1e-5)


def test_cropped_canvas_shear_is_the_crop_of_the_big_field():
    # a 64² field with a 32 px margin versus the 128² canvas simulated as an isolated field
    dense = 4 * SimulationConfig().field_halo_density  # 12 halos on the 64′ canvas
    small = SimulationConfig(npix=64, margin_px=32, n_gal=math.inf, field_halo_density=dense)
    big = small.replace(npix=128, margin_px=0)  # the same canvas, the same sky area
    for seed in (2, 13):
        a, b = simulate_truth(seed, small), simulate_truth(seed, big)
        assert [h.kind for h in a["halos"]] == [h.kind for h in b["halos"]]
        assert sum(h.kind == "field" for h in a["halos"]) > 3  # halos beyond the field
        for ha, hb in zip(a["halos"], b["halos"]):
            assert ha.x + 32 == pytest.approx(hb.x, abs=1e-9)
            assert ha.m200 == hb.m200
        crop = (slice(32, 96), slice(32, 96))
        for key in ("kappa", "kappa_lss", "shear1", "shear2", "gamma1", "gamma2"):
            np.testing.assert_allclose(a[key], b[key][crop], rtol=1e-5, atol=1e-7, err_msg=key)
        eps, kappa = simulate_sample(seed, small)
        np.testing.assert_array_equal(kappa, a["kappa"])
        np.testing.assert_array_equal(eps[..., 0], a["gamma1"])


def test_mass_outside_the_field_changes_the_shear_inside():
    # the same κ inside the field, but the shear of the canvas also feels the margin
    cfg = SimulationConfig(n_gal=math.inf, lss=False)
    with_margin = simulate_truth(31, cfg)
    outside = [h for h in with_margin["halos"] if not (0 <= h.x < 128 and 0 <= h.y < 128)]
    assert len(outside) > 5
    only_inside = simulate_truth(31, cfg.replace(margin_px=0, field_halo_density=0.0))
    # the field κ is mostly the main cluster; the shear differs by the outside mass
    diff = with_margin["shear1"] - only_inside["shear1"]
    assert np.abs(diff).max() > 1e-3


def test_field_halos_fill_the_canvas_at_the_field_density():
    # 27 halos on the 96² canvas of 0.5′ pixels (48′ × 48′ = 0.64 deg²)
    density = 27 / 0.64
    cfg = SimulationConfig(
        npix=32,
        margin_px=32,
        pad=16,
        lss=False,
        n_gal=math.inf,
        n_subhalos=0.0,
        field_halo_density=density,
    )
    xs, counts = [], []
    for seed in range(60):
        field = [h for h in simulate_truth(seed, cfg)["halos"] if h.kind == "field"]
        counts.append(len(field))
        xs += [h.x for h in field] + [h.y for h in field]
    # Poisson mean 27 on the canvas; 60 draws → ±0.7 (1σ)
    assert np.mean(counts) == pytest.approx(27.0, abs=3 * np.sqrt(27 / 60))
    assert -32.5 <= min(xs) < -28 and 60 < max(xs) <= 63.5


# === Masks ===
def test_mask_fraction_lies_in_range_and_covers_it():
    fractions = []
    for seed in range(40):
        mask = draw_mask(np.random.default_rng(seed), 128, 0.3)
        assert mask.shape == (128, 128) and mask.dtype == bool
        fractions.append(mask.mean())
    fractions = np.array(fractions)
    assert np.all((fractions >= 0.0) & (fractions <= 0.3))
    assert fractions.min() < 0.05 and fractions.max() > 0.25  # uniform target over [0, 0.3]
    assert not np.any(draw_mask(np.random.default_rng(0), 64, 0.0))
    small = np.array([draw_mask(np.random.default_rng(s), 64, 0.05).mean() for s in range(20)])
    assert np.all(small <= 0.05)
    with pytest.raises(ValueError, match="max_fraction"):
        draw_mask(np.random.default_rng(0), 64, 1.2)
    with pytest.raises(TypeError, match="Generator"):
        draw_mask(0, 64)


def test_masked_pixels_are_empty_and_the_rest_unchanged():
    for n_gal in (30.0, math.inf):
        cfg = SimulationConfig(n_gal=n_gal, masks=True)
        eps, kappa = simulate_sample(17, cfg)
        plain, plain_kappa = simulate_sample(17, cfg.replace(masks=False))
        mask = simulate_truth(17, cfg)["mask"]
        assert 0.0 < mask.mean() <= cfg.mask_max_fraction
        np.testing.assert_array_equal(kappa, plain_kappa)
        assert np.all(eps[mask][:, :2] == 0.0)
        assert np.all(eps[mask][:, 2] == C.EMPTY_PIXEL_SIGMA)
        np.testing.assert_array_equal(eps[~mask], plain[~mask])
    assert not simulate_truth(17)["mask"].any()


# === The training depth mix ===
def test_mix_is_deterministic_per_seed():
    mix = DepthMix()
    cfg = SimulationConfig(npix=32, margin_px=16, pad=16)
    eps, kappa, n_gal = simulate_mixed_batch(4, 1_000_000, mix, cfg)
    again = simulate_mixed_batch(4, 1_000_000, mix, cfg)
    np.testing.assert_array_equal(eps, again[0])
    np.testing.assert_array_equal(n_gal, again[2])
    for i in range(4):
        e_i, k_i, n_i = simulate_mixed_sample(1_000_000 + i, mix, cfg)
        assert np.array_equal(eps[i], e_i) and np.array_equal(kappa[i], k_i) and n_i == n_gal[i]
        sample_cfg = mixed_config(1_000_000 + i, mix, cfg)
        assert sample_cfg.n_gal == n_gal[i] and sample_cfg.npix == 32
        np.testing.assert_array_equal(simulate_sample(1_000_000 + i, sample_cfg)[0], eps[i])
    # κ does not depend on the depth drawn: the halo and LSS streams are untouched
    np.testing.assert_array_equal(kappa, simulate_batch(4, 1_000_000, cfg)[1])


def test_mix_covers_its_range():
    mix = DepthMix(n_gal_range=(3.0, 1000.0), noise_free_fraction=0.15, masked_fraction=0.5)
    cfgs = [mixed_config(s, mix) for s in range(1_000_000, 1_002_000)]
    n_gal = np.array([c.n_gal for c in cfgs])
    free = np.isinf(n_gal)
    assert free.mean() == pytest.approx(0.15, abs=4 * np.sqrt(0.15 * 0.85 / 2000))
    masked = np.array([c.masks for c in cfgs])
    assert masked.mean() == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / 2000))
    logs = np.log10(n_gal[~free])
    assert logs.min() >= np.log10(3.0) and logs.max() <= 3.0
    assert logs.min() < np.log10(3.2) and logs.max() > np.log10(900.0)
    # log-uniform: each decade-like quarter of the log range holds a quarter of the draws
    quarters = np.histogram(logs, bins=4, range=(np.log10(3.0), 3.0))[0] / logs.size
    np.testing.assert_allclose(quarters, 0.25, atol=0.04)
    assert all(c.sigma_e == mix.sigma_e for c in cfgs[:10])


def test_mix_validation():
    for changes, field in (
        ({"n_gal_range": (0.0, 10.0)}, "n_gal_range"),
        ({"n_gal_range": (10.0, 3.0)}, "n_gal_range"),
        ({"n_gal_range": (3.0, math.inf)}, "n_gal_range"),
        ({"noise_free_fraction": 1.5}, "noise_free_fraction"),
        ({"masked_fraction": -0.1}, "masked_fraction"),
        ({"sigma_e": 0.0}, "sigma_e"),
    ):
        with pytest.raises(ValueError, match=field):
            DepthMix(**changes)
    only_free = DepthMix(noise_free_fraction=1.0, masked_fraction=0.0)
    assert all(math.isinf(mixed_config(s, only_free).n_gal) for s in range(5))
    assert not any(mixed_config(s, only_free).masks for s in range(5))


def test_field_halo_density_is_per_sky_area_at_any_pixel_scale():
    # the same 64′ field as 128 px of 0.5′ or 64 px of 1′ holds the same number of halos
    fine = SimulationConfig(lss=False, n_gal=math.inf, n_subhalos=0.0)
    coarse = fine.replace(npix=64, margin_px=64, pixel_arcmin=1.0)
    n_fine = [sum(h.kind == "field" for h in simulate_truth(s, fine)["halos"]) for s in range(40)]
    n_coarse = [
        sum(h.kind == "field" for h in simulate_truth(s, coarse)["halos"]) for s in range(40)
    ]
    assert n_fine == n_coarse  # the same Poisson mean (27) from the same stream
    assert np.mean(n_fine) == pytest.approx(27.0, abs=3 * np.sqrt(27 / 40))


def test_dense_pixels_draw_the_mean_directly_with_the_right_spread():
    # 10,000 galaxies per arcmin² (2,500 a pixel): mean g exactly, σ_t (1 − |g|²)/√N
    rng = np.random.default_rng(5)
    g1 = np.full((64, 64), 0.3, np.float32)
    g2 = np.zeros((64, 64), np.float32)
    eps = add_shape_noise(g1, g2, rng, n_gal=10_000.0)
    n = eps[..., 2] ** -2 * 0.26**2  # galaxies a pixel, from Δε = σ_e/√N
    scaled = (eps[..., 0] - 0.3) * np.sqrt(n) / (truncated_sigma(0.26) * (1 - 0.09))
    assert abs(scaled.mean()) < 4 / 64  # 4 standard errors of the mean of 4,096
    assert scaled.std() == pytest.approx(1.0, abs=0.05)
    # and the exact, galaxy-by-galaxy path agrees at 64 a pixel (256 per arcmin²)
    exact = add_shape_noise(g1, g2, np.random.default_rng(6), n_gal=256.0)
    n_exact = exact[..., 2] ** -2 * 0.26**2
    assert n_exact.max() > 64 and n_exact.min() < 64  # both paths in one map
    z = (exact[..., 0] - 0.3) * np.sqrt(n_exact) / (truncated_sigma(0.26) * (1 - 0.09))
    assert z.std() == pytest.approx(1.0, abs=0.05)


def test_shape_noise_cost_does_not_grow_with_depth():
    # galaxies drawn one by one are capped at EXACT_GALAXIES_MAX a pixel: a 128² map at
    # 10⁹ galaxies per arcmin² takes no more memory than at 30 (tracemalloc, numpy's heap)
    import tracemalloc

    g = np.zeros((128, 128), np.float32)

    def peak(n_gal):
        tracemalloc.start()
        add_shape_noise(g, g, np.random.default_rng(0), n_gal=n_gal)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(1e9) < 1.5 * peak(30.0)
    assert peak(10_000.0) < 1.5 * peak(30.0)


def test_work_beyond_the_memory_budget_is_refused_before_it_starts():
    from lensviz.data.errors import LimitError

    with pytest.raises(LimitError, match="simulate_batch"):
        simulate_batch(5000, 0, SimulationConfig(npix=1024))
    with pytest.raises(LimitError, match="observe_kappa"):
        observe_kappa(np.zeros((64, 64), np.float32), np.random.default_rng(0), pad=20_000)
