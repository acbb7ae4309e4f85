"""lensviz.depth: the depth read from Δε, the KS93 σ rule, the training domain."""

import math

import numpy as np
import pytest

from lensviz import constants, depth

A_PIX = constants.PIXEL_ARCMIN**2


def _delta_e(n_gal, shape=(256, 256), empty=(), seed=0):
    """Δε of Poisson galaxy counts at density ``n_gal`` (0: noise-free), with empty pixels."""
    if n_gal:
        counts = np.random.default_rng(seed).poisson(n_gal * A_PIX, shape)
        d = np.where(
            counts > 0,
            constants.SIGMA_E / np.sqrt(np.maximum(counts, 1)),
            constants.EMPTY_PIXEL_SIGMA,
        )
    else:
        d = np.zeros(shape)
    for y, x in empty:
        d[y, x] = constants.EMPTY_PIXEL_SIGMA
    return d


def test_effective_n_gal_recovers_the_poisson_density():
    for n in (3.0, 10.0, 30.0, 100.0, 1000.0):
        assert float(depth.effective_n_gal(_delta_e(n))) == pytest.approx(n, rel=0.02)
    # Constant Δε with exactly 4 galaxies in every pixel is not Poisson: it reads as the
    # density whose zero-truncated mean is 4 (λ/(1 − e^−λ) = 4, λ ≈ 3.92).
    four = np.full((8, 8), constants.SIGMA_E / 2)
    assert float(depth.effective_n_gal(four)) * A_PIX == pytest.approx(3.9207, rel=1e-3)


def test_masks_leave_the_depth_unbiased():
    d = _delta_e(30.0)
    masked = d.copy()
    masked[:, :100] = constants.EMPTY_PIXEL_SIGMA  # a 39% stripe of the field
    assert float(depth.effective_n_gal(masked)) == pytest.approx(30.0, rel=0.03)
    assert float(depth.masked_fraction(masked)) == pytest.approx(100 / 256, abs=1e-3)


def test_noise_free_maps_have_infinite_depth_and_empty_pixels_are_ignored():
    d = _delta_e(0, empty=[(0, 0), (5, 7)])
    assert float(depth.pixel_noise_var(d)) == 0.0
    assert math.isinf(float(depth.effective_n_gal(d)))
    assert float(depth.masked_fraction(d)) == pytest.approx(2 / 256**2)


def test_ks93_sigma_rule_hits_its_nodes_and_is_monotonic():
    for n, sigma in depth.KS93_SIGMA_RULE.items():
        got = depth.ks93_sigma(_delta_e(0 if math.isinf(n) else n))
        assert got == pytest.approx(sigma, rel=0.05)
    grid = [depth.ks93_sigma(_delta_e(n)) for n in np.geomspace(1, 5000, 30)]
    assert all(a >= b for a, b in zip(grid, grid[1:]))


def test_training_weight_is_one_at_lsst_depth_and_larger_for_cleaner_maps():
    lsst = constants.SIGMA_E**2 / (constants.N_GAL_ARCMIN2 * A_PIX)
    assert depth.training_weight(lsst) == pytest.approx(1.0)
    assert depth.training_weight(0.0) > 5 > 1 > depth.training_weight(4 * lsst)


def test_domain_warnings_name_noise_mask_and_values():
    domain = depth.TrainingDomain(
        n_gal_range=(10.0, 100.0), noise_free=False, max_masked_fraction=0.1, max_abs_e=0.8
    )
    eps = np.zeros((64, 64, 3))
    eps[..., 2] = _delta_e(30.0, (64, 64))
    assert depth.domain_warnings(eps, domain) == []
    eps[..., 2] = _delta_e(300.0, (64, 64))
    assert "gal/arcmin², outside the 10–100" in depth.domain_warnings(eps, domain)[0]
    eps[..., 2] = 0.0
    assert "no shape noise" in depth.domain_warnings(eps, domain)[0]
    eps[..., 2] = _delta_e(30.0, (64, 64))
    eps[:20, :, 2] = constants.EMPTY_PIXEL_SIGMA
    eps[0, 0, 0] = 5.0
    warnings = depth.domain_warnings(eps, domain)
    assert len(warnings) == 2 and "masked" in warnings[0] and "|ε| reaches 5" in warnings[1]


def test_measure_domain_spans_the_samples_and_round_trips():
    eps = np.zeros((3, 128, 128, 3))
    eps[0, ..., 2] = _delta_e(10.0, (128, 128))
    eps[1, ..., 2] = _delta_e(200.0, (128, 128), empty=[(0, i) for i in range(128)])
    eps[2, 3, 4, 1] = -0.7
    d = depth.measure_domain(eps)
    assert d.n_gal_range == pytest.approx((10.0, 200.0), rel=0.04)
    assert d.noise_free
    assert d.max_masked_fraction == pytest.approx(1 / 128 + np.exp(-2.5), rel=0.2)
    assert d.max_abs_e == pytest.approx(0.7)
    assert depth.TrainingDomain.from_dict(d.to_dict()) == d
    with pytest.raises(ValueError, match="expected samples"):
        depth.measure_domain(eps[0])


def test_depth_figure_draws_every_method_and_puts_no_noise_last():
    from lensviz.plots.depth import depth_figure

    def stats(v):
        return {m: {"mean": v, "sem_boot": 0.1 * v} for m in ("rmse", "r", "dicee")}

    depths = {
        "inf": {"n_gal": math.inf, "summary": {"unet": stats(1.0), "wiener": stats(2.0)}},
        "10": {"n_gal": 10.0, "summary": {"unet": stats(3.0), "wiener": stats(4.0)}},
        "100": {"n_gal": 100.0, "summary": {"unet": stats(2.0)}},
    }
    fig = depth_figure(depths)
    unet = [t for t in fig.data if t.name == "UNet"]
    assert len(unet) == 3 and list(unet[0].x) == [10.0, 100.0, 400.0]
    assert list(unet[0].y) == [3.0, 2.0, 1.0]
    assert list(unet[0].error_y.array) == pytest.approx([0.3, 0.2, 0.1])
    wiener = [t for t in fig.data if t.name == "Wiener"]
    assert list(wiener[0].x) == [10.0, 400.0]  # no Wiener result at 100: no point there
    assert fig.layout.xaxis.ticktext[-1] == "no<br>noise" and fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="at least one depth"):
        depth_figure({})


def _constant_depth(n_gal: float) -> np.ndarray:
    """Δε of every pixel such that effective_n_gal reads exactly ``n_gal`` (no noise of
    its own): N = λ/(1 − e^−λ), the zero-truncated Poisson mean of λ = n_gal A_pix."""
    lam = n_gal * A_PIX
    return np.full((64, 64), constants.SIGMA_E / math.sqrt(lam / -math.expm1(-lam)))


@pytest.mark.parametrize(
    ("n_gal", "sigma"),
    [
        (math.sqrt(30.0 * 100.0), 3.0),  # halfway in log between 30 (σ 4) and 100 (σ 2)
        (math.sqrt(3.0 * 10.0), 7.0),  # between 3 (σ 8) and 10 (σ 6)
        (30.0 * (100.0 / 30.0) ** 0.25, 3.5),  # a quarter of the way in log: 4 - 0.5
        (1.0, 8.0),  # below the first node: held at its value
    ],
)
def test_ks93_sigma_interpolates_in_log_n_gal_between_the_nodes(n_gal, sigma):
    # linear interpolation in n_gal gives 3.3, 7.3 and 3.7 at the first three points
    assert float(depth.effective_n_gal(_constant_depth(n_gal))) == pytest.approx(n_gal)
    assert depth.ks93_sigma(_constant_depth(n_gal)) == sigma
