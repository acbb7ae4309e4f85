"""Wiener filter: reduces to KS93 without noise, beats smoothed KS93 on Gaussian fields."""

import math

import numpy as np
import pytest

from lensviz.data import DataError
from lensviz.evaluation import DEFAULT_SIGMAS, default_power_spectrum, wiener_predictor
from lensviz.inversion import gaussian_smooth, ks93, ks93inv, wavenumber
from lensviz.simulate import SimulationConfig, simulate_batch
from lensviz.wiener import PowerSpectrum, estimate_power_spectrum, noise_power, wiener


def red_spectrum(n_bins=32):
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, n_bins + 1)
    k = 0.5 * (edges[1:] + edges[:-1])
    return PowerSpectrum(edges, 1e-3 * np.exp(-k / 0.1) / (1 + (k / 0.05) ** 2))


def gaussian_fields(ps, n, rng, npix=64):
    white = rng.normal(size=(n, npix, npix))
    amp = np.sqrt(ps.on_grid(npix, npix))
    return np.fft.ifft2(np.fft.fft2(white) * amp).real


def test_zero_noise_reduces_to_ks93(rng):
    ps = red_spectrum()
    e1, e2 = rng.normal(size=(2, 3, 64, 64))
    np.testing.assert_allclose(wiener(e1, e2, 0.0, ps), ks93(e1, e2)[0], atol=1e-12)


def test_power_spectrum_estimate_recovers_input(rng):
    ps = red_spectrum()
    fields = gaussian_fields(ps, 200, rng)
    est = estimate_power_spectrum(fields, n_bins=32)
    k = est.k_centres
    ok = (k > 0.03) & (k < 0.45)
    np.testing.assert_allclose(est.power[ok], ps.power[ok], rtol=0.15)
    # normalisation: the spectrum sums to the map variance
    assert ps.on_grid(64, 64).sum() / 64**2 == pytest.approx(fields.var(), rel=0.1)


def test_wiener_beats_every_smoothed_ks93_on_gaussian_fields(rng):
    ps = red_spectrum()
    kappa = gaussian_fields(ps, 40, rng)
    kappa -= kappa.mean(axis=(-2, -1), keepdims=True)
    g1, g2 = ks93inv(kappa)
    sigma_n = 0.05
    e1 = g1 + sigma_n * rng.normal(size=g1.shape)
    e2 = g2 + sigma_n * rng.normal(size=g2.shape)
    mse_w = np.mean((wiener(e1, e2, sigma_n**2, ps) - kappa) ** 2)
    kE = ks93(e1, e2)[0]
    best_ks = min(np.mean((gaussian_smooth(kE, s) - kappa) ** 2) for s in DEFAULT_SIGMAS)
    assert mse_w < best_ks
    # and the optimal linear filter is not beaten by a wrong noise level
    assert mse_w < np.mean((wiener(e1, e2, 4 * sigma_n**2, ps) - kappa) ** 2)
    assert mse_w < np.mean((wiener(e1, e2, sigma_n**2 / 4, ps) - kappa) ** 2)


def test_noise_power_from_delta_e_skips_empty_pixels():
    d = np.full((2, 8, 8), 0.1)
    d[0, 0, 0] = 1.0  # empty pixel marker
    np.testing.assert_allclose(noise_power(d), [0.01, 0.01])
    assert noise_power(np.ones((4, 4))) == 0.0  # all empty


def test_batched_noise_and_float32():
    ps = red_spectrum()
    e = np.zeros((2, 64, 64), np.float32)
    out = wiener(e, e, np.array([0.01, 0.02]), ps)
    assert out.shape == (2, 64, 64) and out.dtype == np.float32
    with pytest.raises(ValueError, match="noise_var"):
        wiener(e, e, -1.0, ps)


def test_save_load_round_trip(tmp_path):
    ps = red_spectrum()
    ps.meta["command"] = "test"
    ps.save(tmp_path / "ps.npz")
    back = PowerSpectrum.load(tmp_path / "ps.npz")
    np.testing.assert_array_equal(back.power, ps.power)
    assert back.meta["command"] == "test"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        PowerSpectrum.load(tmp_path / "bad.npz")


def _spectrum_file(path, **arrays):
    ps = red_spectrum(8)
    values = {"k_edges": ps.k_edges, "power": ps.power, "meta": np.array("{}")}
    values.update(arrays)
    np.savez(path, **{k: v for k, v in values.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"bytes": b"not a zip"}, "not a zip archive"),
        ({"bytes": b"PK\x03\x04" + b"\0" * 40}, "not a zip archive"),
        ({"power": None}, "no array power"),
        ({"meta": np.array([{"a": 1}], dtype=object)}, "pickled or object data"),
        ({"meta": np.array("{not json")}, "meta.*not JSON"),
        ({"meta": np.array("[1, 2]")}, "meta.*expected an object"),
        ({"meta": np.array("[" * 100_000 + "]" * 100_000)}, "meta.*not JSON"),
        ({"power": np.array(["a"] * 8)}, "power.*expected real numbers"),
        ({"power": np.ones(3)}, r"not a power spectrum.*B\+1 edges"),
        ({"power": -np.ones(8)}, "not a power spectrum.*power must be finite and >= 0"),
        ({"k_edges": np.full(9, np.nan)}, "not a power spectrum.*k_edges"),
    ],
)
def test_load_refuses_hostile_files_naming_the_file(tmp_path, content, match):
    path = tmp_path / "hostile.npz"
    if "bytes" in content:
        path.write_bytes(content["bytes"])
    else:
        _spectrum_file(path, **content)
    with pytest.raises(DataError, match=match) as info:
        PowerSpectrum.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_truncated_file_and_missing_path(tmp_path):
    path = _spectrum_file(tmp_path / "ps.npz")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="ps.npz"):
        PowerSpectrum.load(path)
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        PowerSpectrum.load(tmp_path / "nothing.npz")


def test_shipped_spectrum_and_predictor(rng):
    path = default_power_spectrum()
    assert path is not None, "weights/kappa_power.npz must ship with the repository"
    ps = PowerSpectrum.load(path)
    assert "powerspec" in ps.meta["command"]
    assert np.all(np.diff(ps.power[1:20]) < 0)  # a red spectrum
    eps, kappa = simulate_batch(8, 123)
    pred = wiener_predictor()(eps)
    raw = ks93(eps[..., 0], eps[..., 1])[0]
    assert np.mean((pred - kappa) ** 2) < np.mean((raw - kappa) ** 2)
    assert wavenumber(4, 4)[0, 2] == 0.5


# === No shape noise and masked pixels ===
def band_limited_spectrum(k_cut=0.25, n_bins=32):
    """S > 0 below ``k_cut`` cycles per pixel and exactly 0 above it."""
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, n_bins + 1)
    k = 0.5 * (edges[1:] + edges[:-1])
    return PowerSpectrum(edges, np.where(k < k_cut, 1e-3 / (1 + (k / 0.05) ** 2), 0.0))


def test_noise_free_wiener_is_ks93_on_the_signal_modes(rng):
    # N = 0 and S = 0 on the high-k modes: the filter is 1 where S > 0 and 0 elsewhere, no NaN
    ps = band_limited_spectrum()
    e1, e2 = rng.normal(size=(2, 3, 64, 64))
    delta_e = np.zeros((3, 64, 64))
    n = noise_power(delta_e)
    np.testing.assert_array_equal(n, 0.0)
    with np.errstate(all="raise"):  # no 0/0 anywhere
        out = wiener(e1, e2, n, ps)
    k_e = ks93(e1, e2)[0]
    signal = ps.on_grid(64, 64) > 0
    expected = np.fft.ifft2(np.fft.fft2(k_e) * signal).real
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, atol=1e-12)
    assert np.abs(out - k_e).max() > 0.1  # the S = 0 modes were really removed
    # a spectrum with no power at all gives 0, not NaN
    zero = PowerSpectrum(ps.k_edges, np.zeros_like(ps.power))
    np.testing.assert_array_equal(wiener(e1, e2, 0.0, zero), 0.0)


def test_masked_pixels_are_left_out_of_the_noise():
    d = np.zeros((3, 16, 16))
    d[:, :4] = 1.0  # a masked band: empty pixels (Δε = EMPTY_PIXEL_SIGMA)
    d[1, 4:] = 0.2  # masked + noisy
    d[2, 4:8] = 0.1
    d[2, 8:] = 0.3
    d[2, 0, 0] = 5.0  # anything at or above EMPTY_PIXEL_SIGMA is empty
    # noise-free + masked → 0; otherwise the mean Δε² over the measured pixels only
    np.testing.assert_allclose(noise_power(d), [0.0, 0.04, (4 * 0.01 + 8 * 0.09) / 12])
    assert noise_power(np.full((16, 16), 1.0)) == 0.0  # every pixel masked
    with pytest.raises(ValueError, match="empty_sigma"):
        noise_power(d, empty_sigma=0.0)


def test_wiener_on_a_masked_noise_free_simulation():
    eps, kappa = simulate_batch(2, 7, SimulationConfig(n_gal=math.inf, masks=True))
    masked = eps[..., 2] == 1.0
    assert masked.any() and np.all(eps[..., 2][~masked] == 0.0)
    np.testing.assert_array_equal(noise_power(eps[..., 2]), 0.0)
    out = wiener_predictor()(eps)
    assert out.shape == kappa.shape and np.all(np.isfinite(out))


def _analytic(theta_arcmin, edges):
    """P(k) of the simulator's LSS C_ℓ on pixels of side θ, at the bin centres."""
    from lensviz.cosmology import ARCMIN_PER_RADIAN
    from lensviz.simulate import convergence_power_spectrum

    theta = theta_arcmin / ARCMIN_PER_RADIAN
    k = 0.5 * (edges[1:] + edges[:-1])
    return convergence_power_spectrum(2 * np.pi * k / theta) / theta**2


def test_spectrum_at_another_pixel_scale_is_the_same_sky():
    # P_θ(k) = C(2πk/θ)/θ²: measured at 0.5′ and converted to 0.25′ or 1′, the spectrum
    # is the analytic one there, up to the bins (k rescaled by 2 falls in other bins)
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, 97)
    ps = PowerSpectrum(edges, _analytic(0.5, edges), pixel_arcmin=0.5)
    from lensviz.inversion import wavenumber

    k = wavenumber(64, 64)
    for theta in (0.25, 1.0, 0.5):
        from lensviz.cosmology import ARCMIN_PER_RADIAN
        from lensviz.simulate import convergence_power_spectrum

        t = theta / ARCMIN_PER_RADIAN
        want = convergence_power_spectrum(2 * np.pi * k / t) / t**2
        got = ps.on_grid(64, 64, theta)
        ok = (k > 0.05) & (k * 0.5 / theta < 0.65)  # inside the measured k range
        # the bins are looked up, not interpolated: half a bin of k is up to 15 % of P
        np.testing.assert_allclose(got[ok], want[ok], rtol=0.15)


def test_measured_scales_are_interpolated_between():
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, 97)
    rows = np.stack([_analytic(s, edges) for s in (0.25, 1.0)])
    two = PowerSpectrum(edges, rows, pixel_arcmin=[0.25, 1.0])
    one = PowerSpectrum(edges, _analytic(0.5, edges), pixel_arcmin=0.5)
    from lensviz.inversion import wavenumber

    k = wavenumber(64, 64)
    ok = (k > 0.05) & (k < 0.3)
    np.testing.assert_allclose(two.on_grid(64, 64, 0.5)[ok], one.on_grid(64, 64)[ok], rtol=0.1)
    # exactly at a measured scale, that row
    np.testing.assert_array_equal(
        two.on_grid(64, 64, 1.0),
        PowerSpectrum(edges, rows[1], pixel_arcmin=1.0).on_grid(64, 64, 1.0),
    )
    with pytest.raises(ValueError, match="increase"):
        PowerSpectrum(edges, rows, pixel_arcmin=[1.0, 0.25])
    with pytest.raises(ValueError, match="one pixel scale per row"):
        PowerSpectrum(edges, rows, pixel_arcmin=[0.5])


def test_multi_scale_spectrum_file_round_trip(tmp_path):
    edges = np.linspace(0, np.sqrt(0.5) + 1e-9, 9)
    ps = PowerSpectrum(edges, np.ones((2, 8)), {"a": 1}, pixel_arcmin=[0.3, 0.6])
    ps.save(tmp_path / "s.npz")
    back = PowerSpectrum.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.powers, ps.powers)
    np.testing.assert_array_equal(back.pixel_arcmin, [0.3, 0.6])
