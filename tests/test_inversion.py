import numpy as np
import pytest

from lensviz.inversion import fourier_kernels, gaussian_smooth, ks93, ks93inv, project_modes


def test_round_trip_kappa_gamma_kappa(kappa_maps):
    g1, g2 = ks93inv(kappa_maps)
    ke, kb = ks93(g1, g2)
    np.testing.assert_allclose(ke, project_modes(kappa_maps), atol=1e-6)
    # A smooth field has almost no Nyquist power: the round trip is κ minus its mean.
    np.testing.assert_allclose(
        ke, kappa_maps - kappa_maps.mean(axis=(-2, -1), keepdims=True), atol=2e-4
    )
    np.testing.assert_allclose(kb, 0, atol=1e-6)


def test_round_trip_with_b_mode(rng):
    ke0 = project_modes(rng.normal(size=(2, 64, 64)))
    kb0 = project_modes(rng.normal(size=(2, 64, 64)))
    ke, kb = ks93(*ks93inv(ke0, kb0))
    np.testing.assert_allclose(ke, ke0, atol=1e-10)
    np.testing.assert_allclose(kb, kb0, atol=1e-10)


def test_round_trip_odd_size_is_exact_up_to_mean(rng):
    k = rng.normal(size=(63, 65))
    ke, _ = ks93(*ks93inv(k))
    np.testing.assert_allclose(ke, k - k.mean(), atol=1e-10)


def _cropped_cluster_shear(n=128, big=512):
    """Shear of an extended halo computed on a big periodic field, seen through a small window."""
    yy, xx = np.mgrid[0:big, 0:big] - big // 2 + 0.5
    kappa = 0.3 / (1 + (np.hypot(yy, xx) / 5) ** 2)
    g1, g2 = ks93inv(kappa)
    c = slice(big // 2 - n // 2, big // 2 + n // 2)
    return g1[c, c], g2[c, c], kappa[c, c]


def test_pure_e_field_has_no_b_mode(kappa_maps):
    _, kb = ks93(*ks93inv(kappa_maps))
    assert np.abs(kb).max() < 1e-6
    # A finite window of an E field leaks only a little into B.
    g1, g2, _ = _cropped_cluster_shear()
    ke, kb = ks93(g1, g2, pad=64)
    assert kb.std() < 0.1 * ke.std()


def test_gamma_round_trip_for_e_mode_shear(kappa_maps):
    g1, g2 = ks93inv(kappa_maps)
    h1, h2 = ks93inv(ks93(g1, g2)[0])
    np.testing.assert_allclose(h1, g1, atol=1e-6)
    np.testing.assert_allclose(h2, g2, atol=1e-6)


def test_sign_convention_compact_mass_has_positive_tangential_shear():
    n = 128
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    k = np.exp(-(yy**2 + xx**2) / (2 * 2.0**2))  # compact mass, band-limited (no ringing)
    g1, g2 = ks93inv(k, pad=128)
    phi = np.arctan2(yy, xx)
    gt = -(g1 * np.cos(2 * phi) + g2 * np.sin(2 * phi))
    r = np.hypot(yy, xx)
    ring = (r > 5) & (r < 30)
    assert (gt[ring] > 0).mean() > 0.99
    # Along the x axis a tangential shear is -γ1 (stretching along y).
    assert g1[n // 2, n // 2 + 10] < 0 and g1[n // 2 + 10, n // 2] > 0


def test_lenspack_kernel_formula(rng):
    """Compare with a direct transcription of lenspack's ks93 on odd-sized maps."""
    g1, g2 = rng.normal(size=(2, 33, 31))
    k1, k2 = np.meshgrid(np.fft.fftfreq(31), np.fft.fftfreq(33))
    p1, p2 = k1 * k1 - k2 * k2, 2 * k1 * k2
    ksq = k1 * k1 + k2 * k2
    ksq[0, 0] = 1.0
    g1h, g2h = np.fft.fft2(g1), np.fft.fft2(g2)
    ke_ref = np.fft.ifft2((p1 * g1h + p2 * g2h) / ksq).real
    kb_ref = np.fft.ifft2(-(p2 * g1h - p1 * g2h) / ksq).real
    ke, kb = ks93(g1, g2)
    np.testing.assert_allclose(ke, ke_ref, atol=1e-12)
    np.testing.assert_allclose(kb, kb_ref, atol=1e-12)


def test_float32_stays_float32_and_batches(kappa_maps):
    g1, g2 = ks93inv(kappa_maps)
    assert g1.dtype == np.float32 and g1.shape == kappa_maps.shape
    ke, kb = ks93(g1, g2)
    assert ke.dtype == np.float32
    one, _ = ks93(g1[1], g2[1])
    np.testing.assert_allclose(one, ke[1], atol=1e-6)
    nested = ks93(g1.reshape(2, 2, 128, 128), g2.reshape(2, 2, 128, 128))[0]
    np.testing.assert_allclose(nested.reshape(4, 128, 128), ke, atol=1e-6)


def test_padding_reduces_border_error():
    g1, g2, kappa = _cropped_cluster_shear()
    truth = kappa - kappa.mean()

    def edge_rms(pad):
        ke = ks93(g1, g2, pad=pad)[0]
        return np.sqrt(((ke - ke.mean() - truth)[:8] ** 2).mean())

    assert edge_rms(64) < 0.8 * edge_rms(0)


def test_kernels_zero_mean_and_nyquist():
    c, s, keep = fourier_kernels(8, 8)
    assert not keep[0, 0] and not keep[4].any() and not keep[:, 4].any()
    assert c[0, 0] == 0 and s[4, 1] == 0
    np.testing.assert_allclose((c**2 + s**2)[keep], 1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        ks93(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="pad"):
        ks93(np.zeros((4, 4)), np.zeros((4, 4)), pad=-1)
    with pytest.raises(ValueError, match="sigma_px"):
        gaussian_smooth(np.zeros((4, 4)), -1)
    with pytest.raises(ValueError, match="maps of shape"):
        ks93(np.zeros(4), np.zeros(4))


def test_gaussian_smooth_does_not_mix_batch_members():
    maps = np.zeros((3, 32, 32), np.float32)
    maps[1, 16, 16] = 1.0
    sm = gaussian_smooth(maps, 2.0)
    assert sm.dtype == np.float32
    assert np.abs(sm[0]).max() == 0 and np.abs(sm[2]).max() == 0
    np.testing.assert_allclose(sm[1].sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (6, 5), (128, 256), (2, 3)])
def test_half_plane_kernels_are_the_full_kernels_halved(shape):
    # the rfft2 half-plane kernels (built from 1-D frequencies, uncached for large grids)
    # equal the first nx//2 + 1 columns of the full-plane ones, Nyquist column included
    from lensviz.inversion import _build_half_kernels

    ny, nx = shape
    c, s, _ = fourier_kernels(ny, nx)
    c_half, s_half = _build_half_kernels(ny, nx, "float64")
    np.testing.assert_array_equal(c_half, c[:, : nx // 2 + 1])
    np.testing.assert_array_equal(s_half, s[:, : nx // 2 + 1])
