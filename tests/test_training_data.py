"""lensviz.training_data and the field mix of lensviz.simulate: tiles of whole fields."""

import math

import numpy as np
import pytest

from lensviz.data import read_hdf5
from lensviz.features import unet_features
from lensviz.nulltests import rotate_45
from lensviz.simulate import FieldMix, field_draw, mixed_config, simulate_sample
from lensviz.training_data import (
    has_b_modes,
    is_training_set,
    iter_training_set,
    read_training_column,
    training_sample,
    training_set_length,
    write_training_set,
)


def test_field_draw_keeps_the_depth_mix_and_draws_scale_size_and_tile():
    draws = [field_draw(s) for s in range(1_000_000, 1_000_200)]
    for s, d in zip(range(1_000_000, 1_000_200), draws):
        m = mixed_config(s)
        assert (d.config.n_gal, d.config.masks) == (m.n_gal, m.masks)  # same three uniforms
        y0, x0 = d.origin
        assert 0 <= y0 <= d.config.npix - 128 and 0 <= x0 <= d.config.npix - 128
    sizes = np.array([d.config.npix for d in draws])
    scales = np.array([d.config.pixel_arcmin for d in draws])
    assert set(sizes) == {128, 256, 384}
    assert np.mean(sizes == 128) == pytest.approx(0.4, abs=0.1)
    assert np.mean(scales == 0.5) == pytest.approx(0.4, abs=0.1)
    other = scales[scales != 0.5]
    assert other.min() >= 0.2 and other.max() <= 2.0 and other.min() < 0.3 and other.max() > 1.4
    assert all(d.origin == (0, 0) for d in draws if d.config.npix == 128)


def test_field_mix_checks_its_values():
    with pytest.raises(ValueError, match="sizes"):
        FieldMix(sizes=(64,), size_weights=(1.0,))
    with pytest.raises(ValueError, match="size_weights"):
        FieldMix(sizes=(128, 256), size_weights=(1.0,))
    with pytest.raises(ValueError, match="pixel_arcmin_range"):
        FieldMix(pixel_arcmin_range=(0.0, 1.0))


def test_a_sample_is_the_crop_of_its_whole_field():
    seed = next(s for s in range(1_000_000, 1_000_100) if field_draw(s).config.npix == 256)
    draw = field_draw(seed)
    s = training_sample(seed, b_modes=True)
    eps, kappa = simulate_sample(seed, draw.config)
    (y0, x0) = draw.origin
    tile = (slice(y0, y0 + 128), slice(x0, x0 + 128))
    np.testing.assert_array_equal(s["epsilon"], eps[tile])
    np.testing.assert_array_equal(s["kappa"], kappa[tile])
    whole = unet_features(eps, draw.config.pixel_arcmin)[tile]
    np.testing.assert_array_equal(s["features"], whole)
    # the context differs from that of the tile on its own: the field knows more
    alone = unet_features(eps[tile], draw.config.pixel_arcmin)
    assert np.abs(alone[..., 3] - whole[..., 3]).max() > 1e-3
    np.testing.assert_array_equal(
        s["features_b"], unet_features(rotate_45(eps), draw.config.pixel_arcmin)[tile]
    )
    assert s["field_px"] == 256 and s["pixel_arcmin"] == draw.config.pixel_arcmin


def test_written_training_set_reads_back(tmp_path):
    path = tmp_path / "train.h5"
    seen = []
    write_training_set(path, 5, 1_000_000, b_modes=True, batch=2, on_progress=seen.append)
    assert seen == [2, 4, 5]
    assert is_training_set(path) and has_b_modes(path) and training_set_length(path) == 5
    eps, kappa, names = read_hdf5(path)  # a lensviz HDF5 dataset file as well
    assert eps.shape == (5, 128, 128, 3) and names[0] == "1000000"
    order = [3, 0, 4]
    x, k, v = next(iter_training_set(path, order, 8))
    for j, i in enumerate(order):
        s = training_sample(1_000_000 + i)
        np.testing.assert_array_equal(x[j], s["features"])
        np.testing.assert_array_equal(k[j], s["kappa"])
        assert v[j] == pytest.approx(s["noise_var"])
    xb, kb, _ = next(iter_training_set(path, order, 8, key="features_b"))
    assert np.all(kb == 0) and not np.array_equal(xb, x)
    n_gal = read_training_column(path, "n_gal")
    assert n_gal.shape == (5,) and (np.isinf(n_gal) | (n_gal > 0)).all()
    with pytest.raises(ValueError, match="outside"):
        next(iter_training_set(path, [5], 1))
    assert is_training_set(tmp_path / "train.h5") is not False
    assert math.isfinite(read_training_column(path, "pixel_arcmin").sum())


def test_a_plain_dataset_is_not_a_training_set(tmp_path):
    from lensviz.data import write_hdf5

    path = tmp_path / "plain.h5"
    eps, kappa = simulate_sample(0)
    write_hdf5(path, eps[None], kappa[None])
    assert not is_training_set(path)
    with pytest.raises(ValueError, match="features"):
        training_set_length(path)
