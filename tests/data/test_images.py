"""Single maps (κ and mask) from FITS and .npy, on disk and uploaded: round trips and errors."""

import io

import numpy as np
import pytest
from astropy.io import fits

from lensviz import data
from lensviz.data import DataError, DataTypeError, LimitError


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _fits(array, **cards) -> bytes:
    buf = io.BytesIO()
    hdu = fits.PrimaryHDU(array)
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(buf)
    return buf.getvalue()


@pytest.fixture
def kappa():
    return np.random.default_rng(0).normal(0, 0.05, (72, 96)).astype(np.float32)


def test_a_kappa_map_round_trips_from_npy_and_fits_paths_and_bytes(tmp_path, kappa):
    (tmp_path / "k.npy").write_bytes(_npy(kappa))
    (tmp_path / "k.fits").write_bytes(
        _fits(kappa, CRPIX1=48.0, CTYPE1="RA---TAN", CTYPE2="DEC--TAN")
    )
    for name in ("k.npy", "k.fits"):
        from_path, header = data.read_kappa_map(tmp_path / name)
        from_bytes, _ = data.load_kappa_upload(name, (tmp_path / name).read_bytes())
        np.testing.assert_array_equal(from_path, kappa)
        np.testing.assert_array_equal(from_bytes, kappa)
        assert (header is None) == (name == "k.npy")
    assert data.read_kappa_map(tmp_path / "k.fits")[1]["CTYPE1"] == "RA---TAN"  # WCS kept
    one = data.read_kappa_map(_npy(kappa[None]), "k1.npy")[0]  # (1, ny, nx) is one map
    np.testing.assert_array_equal(one, kappa)


def test_a_mask_is_true_where_nonzero_or_nan(kappa):
    values = np.zeros(kappa.shape)
    values[3, 4], values[5, 6] = 1.0, np.nan
    for name, payload in (("m.npy", _npy(values)), ("m.fits", _fits(values))):
        mask = data.load_mask_upload(name, payload, kappa.shape)
        assert mask.dtype == bool and mask.sum() == 2 and mask[3, 4] and mask[5, 6]
    bools = data.read_mask(_npy(values != 0), kappa.shape, "b.npy")
    assert bools.sum() == 2  # NaN != 0 is True as well


@pytest.mark.parametrize(
    ("name", "payload", "error", "words"),
    [
        ("k.txt", b"0 0", DataError, "unsupported κ file"),
        ("k.npy", _npy(np.zeros((2, 64, 64), np.float32)), DataError, "holds 2 κ maps"),
        ("k.npy", _npy(np.full((64, 64), np.nan, np.float32)), DataError, "NaN"),
        ("k.npy", _npy(np.zeros((8, 8), np.float32)), DataError, "8"),
        ("k.fits", b"SIMPLE  =    T" + b" " * 100, DataError, "k.fits"),
        ("k.npy", b"", DataError, "empty"),
    ],
)
def test_bad_kappa_files_get_one_clear_error(name, payload, error, words):
    with pytest.raises(error, match=words):
        data.load_kappa_upload(name, payload)


def test_bad_masks_get_one_clear_error(kappa):
    with pytest.raises(DataError, match=r"the mask is \(10, 10\) but the κ map is \(72, 96\)"):
        data.load_mask_upload("m.npy", _npy(np.zeros((10, 10))), kappa.shape)
    with pytest.raises(DataTypeError, match="dtype <U1"):
        data.load_mask_upload("m.npy", _npy(np.full(kappa.shape, "a")), kappa.shape)
    with pytest.raises(DataError, match="unsupported mask file"):
        data.load_mask_upload("m.png", b"\x89PNG", kappa.shape)
    with pytest.raises(LimitError, match="limit"):
        data.load_mask_upload("m.npy", _npy(np.zeros(kappa.shape)), kappa.shape, max_bytes=100)
    with pytest.raises(TypeError, match="source name"):
        data.read_mask(b"abc", kappa.shape)


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((0, 64)), r"κ has shape \(0, 64\)"),
        (np.zeros((0, 64, 64)), r"shape \(0, 64, 64\), which holds no maps"),
        (np.zeros((64, 64), "M8[s]"), "dtype datetime64"),
        (np.zeros((64, 64), "m8[ms]"), "dtype timedelta64"),
    ],
)
def test_zero_size_and_date_arrays_name_the_file_and_the_rule(array, words):
    # issue 21, item 8: these raised a bare TypeError/ValueError from numpy's memoryview
    for read in (
        lambda: data.load_kappa_upload("odd.npy", _npy(array)),
        lambda: data.read_kappa_map(_npy(array), "odd.npy"),
    ):
        with pytest.raises(DataError, match=rf"^odd\.npy: .*{words}"):
            read()
    with pytest.raises(DataError, match=r"^odd\.npy: "):
        data.load_mask_upload("odd.npy", _npy(array), (64, 64))
