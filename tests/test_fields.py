"""lensviz.fields: tiling a whole field, blending weights, masks, KS93 and Wiener on fields."""

import numpy as np
import pytest

from lensviz import constants, fields
from lensviz.depth import TrainingDomain
from lensviz.inversion import gaussian_smooth, ks93, ks93inv
from lensviz.wiener import estimate_power_spectrum

# === Tiles and weights ===


def test_tile_origins_known_answers():
    assert fields.tile_origins(128).tolist() == [0]
    assert fields.tile_origins(384).tolist() == [0, 43, 85, 128, 171, 213, 256]
    assert fields.tile_origins(384, overlap=64).tolist() == [0, 64, 128, 192, 256]
    assert fields.tile_origins(360, overlap=64).tolist() == [0, 58, 116, 174, 232]
    assert fields.tile_origins(192, overlap=96).tolist() == [0, 32, 64]
    assert fields.tile_origins(129).tolist() == [0, 1]


@pytest.mark.parametrize("n", [128, 129, 150, 191, 192, 255, 256, 300, 360, 384, 700, 1031])
@pytest.mark.parametrize("overlap", [64, 65, 80, 96, 127])
def test_weights_sum_to_one_everywhere(n, overlap):
    # Steps never exceed tile - overlap, so every pixel lies between two tile centres.
    steps = np.diff(fields.tile_origins(n, overlap=overlap))
    assert steps.size == 0 or steps.max() <= 128 - overlap
    total = fields.blend_weights((n, 133), overlap=overlap)
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)


def test_weights_vanish_before_each_tiles_own_border():
    # The default overlap (80): steps ≤ 48, so a tile's outer 15 px have weight 0.
    for n in (300, 360, 384, 1000):
        w = fields.axis_weights(n)
        assert np.all(w[1:, :15] == 0) and np.all(w[:-1, -15:] == 0)
    w = fields.axis_weights(384, overlap=64)  # origins 0, 64, ..., 256; centres 64 apart
    assert w[2, 0] < 2e-4 and w[2, -1] < 2e-4  # an inner tile: ~0 at both borders
    assert w[0, 0] == 1.0 and w[-1, -1] == 1.0  # the field's edges: one tile, weight 1
    np.testing.assert_allclose(w[2, 63:65], 1.0, atol=2e-4)  # its centre
    # Tile 1 (origin 64, centre 127.5) at pixel 159, on the way to the next centre (191.5).
    np.testing.assert_allclose(w[1, 95], np.cos(0.5 * np.pi * (159 - 127.5) / 64) ** 2)
    np.testing.assert_allclose(w[1, 95] + w[2, 31], 1.0)


@pytest.mark.parametrize("overlap", [63, 128, 64.5, True])
def test_bad_overlaps_are_refused(overlap):
    with pytest.raises(ValueError, match=r"tile/2 ≤ overlap < tile"):
        fields.tile_origins(300, overlap=overlap)


def test_an_axis_shorter_than_a_tile_must_be_padded():
    with pytest.raises(ValueError, match="shorter than a tile"):
        fields.tile_origins(100)


# === predict_tiled ===


def test_a_local_method_is_reproduced_exactly():
    rng = np.random.default_rng(0)
    eps = rng.normal(0, 0.2, (301, 457, 3)).astype(np.float32)
    out = fields.predict_tiled(lambda t: t[..., 0] * 2 + t[..., 1], eps, batch_size=7)
    np.testing.assert_allclose(out, eps[..., 0] * 2 + eps[..., 1], atol=1e-6)


def test_small_fields_are_padded_with_empty_pixels():
    eps = np.random.default_rng(1).normal(0, 0.2, (2, 64, 100, 3)).astype(np.float32)
    seen = []

    def method(tiles):
        seen.append(tiles.copy())
        return tiles[..., 1]

    out = fields.predict_tiled(method, eps)
    assert out.shape == (2, 64, 100)
    np.testing.assert_array_equal(out, eps[..., 1])
    pad = seen[0][0, 64:]  # the padded rows of the one tile: empty pixels
    assert np.all(pad[..., :2] == 0) and np.all(pad[..., 2] == constants.EMPTY_PIXEL_SIGMA)


def test_tile_border_errors_are_blended_away():
    """A method that is wrong by 1 on the outer 8 px of every tile: the blend drops it
    entirely away from the field's own edges (the default overlap gives a tile's outer
    15 px weight 0), and keeps at most sin²(π/2 · 8/64) ≈ 0.038 of it with half-tile
    overlaps; along the field's edges no other tile can help and the error stays whole."""

    def bordered(tiles):
        out = np.zeros(tiles.shape[:3], np.float32)
        out[:, :8] = out[:, -8:] = 1.0
        out[:, :, :8] = out[:, :, -8:] = 1.0
        return out

    zeros = np.zeros((384, 360, 3), np.float32)
    out = fields.predict_tiled(bordered, zeros)
    assert out[8:-8, 8:-8].max() == 0.0
    np.testing.assert_allclose(out[:8, :], 1.0, atol=1e-6)  # the field's own edge
    half = fields.predict_tiled(bordered, zeros, overlap=64)
    assert 0 < half[8:-8, 8:-8].max() <= np.sin(0.5 * np.pi * 8 / 64) ** 2
    # Stitching without blending would keep the full error (1) along every seam.
    assert half[120:136, 8:-8].mean() < 0.02


def test_merge_tiles_checks_the_count():
    with pytest.raises(ValueError, match=r"expected 49 tiles of 128 × 128"):
        fields.merge_tiles(np.zeros((24, 128, 128)), (384, 384))


# === Masks ===


def test_field_mask_and_masked():
    eps = np.zeros((70, 90, 3), np.float32)
    eps[3:5, 10:13, 2] = constants.EMPTY_PIXEL_SIGMA
    eps[0, 0, 2] = 0.99
    mask = fields.field_mask(eps)
    assert mask.sum() == 6 and mask[4, 12] and not mask[0, 0]
    kappa = np.ones((70, 90))
    out = fields.masked(kappa, mask)
    assert np.isnan(out).sum() == 6 and np.all(out[~mask] == 1.0) and kappa[4, 12] == 1.0
    with pytest.raises(ValueError, match="does not fit"):
        fields.masked(kappa, mask[:, :10])


# === KS93 and Wiener on whole fields ===


def _noise_free_field(ny=200, nx=300):
    """Three compact masses well inside the field, and their exact shear (padded)."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    kappa = sum(
        a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
        for a, y, x, s in [(0.3, 100, 150, 6), (0.2, 60, 80, 4), (0.1, 150, 220, 8)]
    )
    g1, g2 = ks93inv(kappa, pad=128)
    eps = np.stack([g1, g2, np.zeros_like(g1)], -1).astype(np.float32)
    return eps, kappa


def _relative_error(kappa_hat, kappa):
    return np.sqrt(np.mean((kappa_hat - (kappa - kappa.mean())) ** 2)) / kappa.std()


def test_ks93_field_known_answers():
    eps, kappa = _noise_free_field()
    raw = fields.ks93_field(eps, sigma_px=0.0, pad=0)
    np.testing.assert_allclose(raw, ks93(eps[..., 0], eps[..., 1])[0], atol=1e-6)
    # Noise-free: the depth rule smooths by 0.25 px only; padding removes the wrap-around
    # (measured: 0.065 of the κ rms unpadded, 0.054 with the default 64 px).
    padded = fields.ks93_field(eps)
    assert padded.shape == (200, 300)
    assert _relative_error(padded, kappa) < 0.056 < 0.06 < _relative_error(raw, kappa)
    batch = fields.ks93_field(np.stack([eps, eps]), sigma_px=2.0)
    np.testing.assert_allclose(batch[1], fields.ks93_field(eps, sigma_px=2.0), atol=1e-7)


def test_wiener_field_without_noise_is_ks93_where_there_is_signal():
    rng = np.random.default_rng(3)
    eps, _ = _noise_free_field()
    signal = estimate_power_spectrum(gaussian_smooth(rng.normal(size=(4, 128, 128)), 3.0))
    out = fields.wiener_field(eps, signal, pad=0)
    ks = fields.ks93_field(eps, sigma_px=0.0, pad=0)
    assert np.corrcoef(out.ravel(), ks.ravel())[0, 1] > 0.999
    with pytest.raises(ValueError, match=r"expected ε of shape"):
        fields.wiener_field(eps[..., :2], signal)


def test_the_training_domain_is_checked_tile_by_tile():
    domain = TrainingDomain(n_gal_range=(10.0, 100.0), max_masked_fraction=0.3, max_abs_e=1.0)
    eps = np.zeros((128, 384, 3), np.float32)
    eps[..., 2] = 0.1  # 27 galaxies per arcmin²: inside
    assert fields.tile_domain_warnings(eps, domain) == []
    eps[:, 300:, 2] = constants.EMPTY_PIXEL_SIGMA  # the right edge holds no galaxy
    (sentence,) = fields.tile_domain_warnings(eps, domain)
    # Tiles start at x = 0, 43, 85, 128, 171, 213, 256: the last two are 32 % and 66 %
    # empty (the whole field, 22 % empty, would have passed).
    assert sentence.startswith("in 2 of the 7 tiles it sees (32% of the pixels")
    assert "of the pixels are empty or masked; the model saw at most 30%" in sentence
    assert fields.tile_domain_warnings(eps[:, :128], domain) == []  # one tile: as a sample
