"""lensviz.errorbars: the error bars of the linear methods, against known answers."""

import json
import math

import numpy as np
import pytest

from lensviz import constants
from lensviz.errorbars import (
    COVERAGE_68,
    COVERAGE_95,
    DEPTH_NODES,
    SCALE_NODES,
    ErrorModel,
    conformal_quantiles,
    coverage,
    fit_linear,
    gaussian_transfer,
    linear_errorbars,
    linear_shape,
    load_error_models,
    missing_shares,
    noise_variance,
    save_error_models,
    sheet_variance,
)
from lensviz.inversion import ks93
from lensviz.wiener import PowerSpectrum


def _noise_maps(delta_e, n, rng):
    filled = delta_e < constants.EMPTY_PIXEL_SIGMA
    e = rng.normal(size=(n, *delta_e.shape, 2)) * np.where(filled, delta_e, 0.0)[..., None]
    return e[..., 0], e[..., 1]


def test_noise_variance_is_the_monte_carlo_variance_with_holes_and_padding():
    rng = np.random.default_rng(0)
    d = rng.uniform(0.05, 0.2, (48, 40))
    d[10:20, 5:12] = constants.EMPTY_PIXEL_SIGMA  # a hole: no noise there
    pad = 16
    e1, e2 = _noise_maps(d, 1500, rng)
    for sigma in (0.0, 2.0):
        transfer = gaussian_transfer(48 + 2 * pad, 40 + 2 * pad, sigma)
        want = noise_variance(d, transfer, pad)
        # the Monte Carlo: KS93 of the padded maps, smoothed in Fourier space alike
        k = ks93(e1, e2, pad=pad)[0] if sigma == 0 else None
        if sigma:
            from scipy import fft as sfft

            from lensviz.inversion import _half_kernels

            py, px = 48 + 2 * pad, 40 + 2 * pad
            c, s = _half_kernels(py, px, "float64")
            w = transfer[:, : px // 2 + 1]
            p1 = np.pad(e1, ((0, 0), (pad, pad), (pad, pad)))
            p2 = np.pad(e2, ((0, 0), (pad, pad), (pad, pad)))
            full = sfft.irfft2(w * (c * sfft.rfft2(p1) + s * sfft.rfft2(p2)), s=(py, px))
            k = full[:, pad:-pad, pad:-pad]
        got = k.var(axis=0)
        # 1500 draws: the sample variance is within 3.7 % (1σ) of the truth per pixel,
        # 2.9 % on average in absolute value
        assert np.mean(np.abs(got / want - 1)) < 0.04
        assert np.abs(got.mean() / want.mean() - 1) < 0.01


def test_white_noise_through_smoothed_ks93_on_a_periodic_grid():
    # Var = σ² ⟨|W|²⟩ over the modes KS93 keeps, the same in every pixel
    d = np.full((64, 64), 0.1)
    w = gaussian_transfer(64, 64, 1.5)
    var = noise_variance(d, w)
    from lensviz.inversion import fourier_kernels

    keep = fourier_kernels(64, 64)[2]
    np.testing.assert_allclose(var, 0.01 * np.mean(np.where(keep, w**2, 0.0)), rtol=1e-9)


def test_missing_shares_are_zero_in_full_data_and_one_deep_in_a_hole():
    d = np.full((64, 64), 0.1)
    d[20:44, 20:44] = constants.EMPTY_PIXEL_SIGMA
    m2, m8, m32 = missing_shares(d)
    assert m2[2:10, 2:10].max() < 1e-6 and m2[30:34, 30:34].min() > 0.999
    assert m2[32, 32] > m8[32, 32] > m32[32, 32]  # wider neighbourhoods reach the data
    # beyond the edges there are no galaxies: the edge lies half a pixel outside pixel 0,
    # so a Gaussian of 8 px sees the share Φ(−0.5/8) of its weight there
    edge = missing_shares(np.full((64, 64), 0.1), pad=64)[1]
    expected = 0.5 * (1.0 - math.erf(0.5 / 8.0 / math.sqrt(2.0)))
    assert edge[0, 32] == pytest.approx(expected, abs=2e-3) and edge[32, 32] < 0.01
    # without padding, full data miss nothing anywhere (the error bars skip these FFTs)
    assert np.abs(missing_shares(np.full((3, 64, 48), 0.1))).max() < 1e-6


def test_missing_shares_of_a_batch_are_those_of_each_map():
    rng = np.random.default_rng(3)
    d = np.where(rng.random((3, 40, 48)) < 0.2, constants.EMPTY_PIXEL_SIGMA, 0.1)
    batch = missing_shares(d, pad=8)
    assert batch.shape == (3, 3, 40, 48)
    for i in range(3):
        np.testing.assert_allclose(batch[:, i], missing_shares(d[i], pad=8), atol=1e-6)


def test_conformal_quantiles_of_gaussian_scores():
    r = np.random.default_rng(1).normal(size=200_000)
    q68, q95 = conformal_quantiles(r, np.ones_like(r))
    assert q68 == pytest.approx(1.0, abs=0.01) and q95 == pytest.approx(2.0, abs=0.02)
    q68, _ = conformal_quantiles(3 * r, np.full_like(r, 1.5))  # the score is |r|/shape
    assert q68 == pytest.approx(2.0, abs=0.02)
    with pytest.raises(ValueError, match="no finite"):
        conformal_quantiles([1.0], [0.0])


def test_fit_linear_recovers_the_weights_of_a_known_variance():
    rng = np.random.default_rng(2)
    n = 40_000
    noise = rng.uniform(0.5, 2.0, n)
    missing = np.stack(
        [rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n), np.ones(n)]
    )
    sheet = rng.uniform(0, 1, n)
    true = np.array([1.3, 0.7, 0.4, 2.0, 0.5, 1.0, 0.2])  # c, a, h, b_2, b_8, b_32, e
    var = true[0] * noise + true[1] + true[2] * sheet + true[3:] @ missing  # bias = 1
    resid = rng.normal(size=n) * np.sqrt(var)
    got = np.array(fit_linear(noise, 1.0, sheet, missing, resid))
    terms = np.stack([noise, np.ones(n), sheet, *missing])
    np.testing.assert_allclose(got @ terms, var, rtol=0.1)


def _spectrum():
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, 33)
    k = 0.5 * (edges[1:] + edges[:-1])
    return PowerSpectrum(edges, 1e-4 / (1 + (k / 0.05) ** 2))


def test_error_bars_of_pure_noise_cover_what_they_claim():
    # κ = 0 and Gaussian shape noise: raw KS93's error is exactly the propagated noise,
    # so with c = 1, no other term and Gaussian factors the bands hold 68.3 % and 95.4 %
    rng = np.random.default_rng(3)
    d = np.full((64, 64), 0.2)
    e1, e2 = _noise_maps(d, 200, rng)
    eps = np.stack([e1, e2, np.broadcast_to(d, e1.shape)], -1).astype(np.float32)
    model = ErrorModel(
        "ks93",
        DEPTH_NODES,
        q68=(((1.0,) * len(DEPTH_NODES),) * len(SCALE_NODES),),
        q95=(((2.0,) * len(DEPTH_NODES),) * len(SCALE_NODES),),
        params=(((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),) * len(DEPTH_NODES),),
    )
    std, hw95 = linear_errorbars(eps, model, _spectrum())
    pred = ks93(e1, e2)[0]
    assert coverage(0.0, pred, std) == pytest.approx(COVERAGE_68, abs=0.01)
    assert coverage(0.0, pred, hw95) == pytest.approx(COVERAGE_95, abs=0.01)
    np.testing.assert_allclose(hw95, 2 * std)


def test_signal_terms_of_the_shape():
    eps = np.zeros((64, 64, 3), np.float32)
    eps[..., 2] = 0.1
    sig = _spectrum()
    noise, v_bias, v_sheet, v_kappa = linear_shape(eps, "ks93", sig, sigma_px=0.0, parts=True)
    assert v_bias == 0.0 and v_kappa == pytest.approx(np.mean(sig.on_grid(64, 64)))
    _, v_bias4, _, _ = linear_shape(eps, "ks93", sig, sigma_px=4.0, parts=True)
    assert 0 < v_bias4 < v_kappa  # smoothing removes part of the signal
    _, v_bias_w, _, _ = linear_shape(eps, "wiener", sig, parts=True)
    assert 0 < v_bias_w < v_kappa
    # the mean over a larger field varies less: V_sheet falls with the field's area
    assert 0 < sheet_variance(128, 128, 64, sig, 0.5) < v_kappa
    assert sheet_variance(384, 384, 64, sig, 0.5) < sheet_variance(128, 128, 64, sig, 0.5) / 4
    with pytest.raises(ValueError, match="method"):
        linear_shape(eps, "unet", sig)


def test_error_model_interpolates_in_log_depth_smoothing_and_pixel_scale():
    # q68[σ][scale][depth] = 1 + σ index + 10 × scale index + 100 × depth index
    q68 = tuple(
        tuple(
            tuple(1.0 + i + 10 * k + 100 * j for j in range(len(DEPTH_NODES)))
            for k in range(len(SCALE_NODES))
        )
        for i in range(2)
    )
    model = ErrorModel("ks93", DEPTH_NODES, q68=q68, q95=q68, sigma_nodes=(0.0, 4.0))
    assert model.factors(10.0, 0.0, 0.5)[0] == 111.0  # the nodes 10, σ 0, 0.5′
    halfway = model.factors(math.sqrt(10 * 30), 0.0, 0.5)[0]
    assert halfway == pytest.approx(161.0)  # halfway in log n_gal
    assert model.factors(10.0, 2.0, 0.5)[0] == pytest.approx(111.5)  # halfway in σ
    assert model.factors(10.0, 0.0, math.sqrt(0.5))[0] == pytest.approx(116.0)  # in log scale
    assert model.factors(math.inf, 0.0, 0.5)[0] == 11.0 + 100 * (len(DEPTH_NODES) - 1)
    assert model.factors(1.0, 0.0, 0.1)[0] == 1.0  # held at the end nodes
    with pytest.raises(ValueError, match="no linear shape"):
        model.shape_params(10.0)


def test_error_model_files_round_trip_and_refuse_bad_ones(tmp_path):
    q = (((1.0,) * len(DEPTH_NODES),) * len(SCALE_NODES),)
    models = {"wiener": ErrorModel("wiener", DEPTH_NODES, q, q, params=((tuple([1.0] * 7),) * 7,))}
    path = tmp_path / "e.json"
    save_error_models(models, path)
    back = load_error_models(path)
    assert back["wiener"] == models["wiener"]
    with pytest.raises(FileExistsError):
        save_error_models(models, path)
    for text, match in [
        ("{", "not JSON"),
        ('{"format": "x"}', "not a lensviz error-model file"),
        ('{"format": "lensviz-errorbars", "models": {"k": {"method": "k"}}}', r"\[k\]"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            load_error_models(path)
    table = json.loads(json.dumps(models["wiener"].to_dict()))
    table["q68"] = [[[-1.0] * len(DEPTH_NODES)] * len(SCALE_NODES)]
    path.write_text(json.dumps({"format": "lensviz-errorbars", "models": {"w": table}}))
    with pytest.raises(ValueError, match="q68"):
        load_error_models(path)


def test_coverage_in_a_region():
    assert coverage(np.zeros(4), np.array([0, 1, 2, 3.0]), 1.5) == 0.5
    assert coverage(np.zeros(4), np.array([0, 1, 2, 3.0]), 1.5, mask=[0, 0, 1, 1]) == 0.0


@pytest.mark.parametrize("method", ["ks93", "wiener"])
def test_error_bars_of_a_batch_are_each_maps_own(method):
    # maps of different depths, holes and smoothings in one call: each gets the error
    # bars it gets alone (its own depth's shape parameters and factors)
    rng = np.random.default_rng(5)
    n_params = len(DEPTH_NODES)
    params = tuple(
        tuple((1.0 + 0.1 * j, 0.2, 0.3, 0.1 * j, 0.05, 0.02, 0.01) for j in range(n_params))
        for _ in range(2)
    )
    q68 = tuple(
        tuple(tuple(1.0 + 0.05 * j + 0.1 * i for j in range(n_params)) for _ in SCALE_NODES)
        for i in range(2)
    )
    q95 = tuple(tuple(tuple(2.1 * v for v in row) for row in plane) for plane in q68)
    model = ErrorModel(method, DEPTH_NODES, q68, q95, sigma_nodes=(0.0, 4.0), params=params)
    eps = rng.normal(0.0, 0.2, (3, 48, 48, 3)).astype(np.float32)
    eps[..., 2] = np.array([0.05, 0.1, 0.3])[:, None, None]
    eps[1, 10:20, 5:30, 2] = constants.EMPTY_PIXEL_SIGMA
    sigmas = np.array([0.0, 2.0, 2.0]) if method == "ks93" else 0.0
    std, hw95 = linear_errorbars(eps, model, _spectrum(), sigmas, pad=8, pixel_arcmin=0.4)
    for i in range(3):
        s = sigmas[i] if method == "ks93" else 0.0
        one = linear_errorbars(eps[i], model, _spectrum(), s, pad=8, pixel_arcmin=0.4)
        np.testing.assert_allclose(std[i], one[0], rtol=1e-5)
        np.testing.assert_allclose(hw95[i], one[1], rtol=1e-5)
    assert not np.allclose(std[1], std[2])  # the hole shows in the map that has it
