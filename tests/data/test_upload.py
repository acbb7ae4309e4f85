"""lensviz.data.upload: what the app reads from an upload, and the per-session limits."""

import io

import numpy as np
import pytest
from astropy.io import fits

from lensviz import data


def test_load_uploads_orders_a_pair_from_the_headers(arrays, npy_bytes):
    eps, kappa = arrays
    e = npy_bytes(np.moveaxis(eps[1], -1, 0).astype(np.float16))
    k = npy_bytes(kappa[1].astype(np.float16))
    for files in (
        (("00087_00323.npy", e), ("00087_00323.npy", k)),
        (("00087_00323.npy", k), ("00087_00323.npy", e)),
    ):
        got_e, got_k, names = data.load_uploads(files)
        np.testing.assert_array_equal(got_e, eps[1:2])
        np.testing.assert_array_equal(got_k, kappa[1:2])
        assert names == ["00087_00323"]
    got_e, got_k, _ = data.load_uploads([("one.npz", _npz(eps, kappa))])
    np.testing.assert_array_equal(got_k, kappa)


def _npz(eps, kappa):
    buf = io.BytesIO()
    np.savez(buf, epsilon=eps, kappa=kappa)
    return buf.getvalue()


def test_load_uploads_errors_name_the_file(arrays, npy_bytes):
    with pytest.raises(data.DataError, match=r"^a\.npy, b\.npy, c\.npy: got 3 files"):
        data.load_uploads([("a.npy", b"1"), ("b.npy", b"2"), ("c.npy", b"3")])
    with pytest.raises(data.DataError, match=r"^a\.npy, b\.txt: got 2 files"):
        data.load_uploads([("a.npy", b"1"), ("b.txt", b"2")])
    with pytest.raises(data.DataError, match=r"^no file: got 0 files"):
        data.load_uploads([])
    with pytest.raises(data.DataError, match=r"k\.npy: cannot read as \.npy: it is not a \.npy"):
        data.load_uploads([("e.npy", npy_bytes(arrays[0][:1])), ("k.npy", b"\x00" * 100)])
    with pytest.raises(data.LimitError, match=r"e\.npy: the upload is .* MiB; the limit is"):
        data.load_uploads([("e.npy", npy_bytes(arrays[0]))], max_bytes=1000)


def test_session_upload_limits():
    limits = data.limits
    data.check_session_uploads([limits.MAX_UPLOAD_BYTES] * 5)  # 1000 MiB: within 1 GiB
    with pytest.raises(data.LimitError, match=r"uploaded 33 files; the limit is 32 per session"):
        data.check_session_uploads([1] * (limits.MAX_SESSION_UPLOADS + 1))
    with pytest.raises(data.LimitError, match=r"uploaded 1200 MiB; the limit is 1024 MiB"):
        data.check_session_uploads([limits.MAX_UPLOAD_BYTES] * 6)


def test_an_upload_is_read_in_memory(arrays, npy_bytes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    e, _, _ = data.load_upload("e.npy", npy_bytes(arrays[0]))
    np.testing.assert_array_equal(e, arrays[0])
    assert list(tmp_path.iterdir()) == []


def test_a_fits_field_upload_comes_whole_with_its_header(tmp_path):
    eps = np.zeros((64, 80, 3), np.float32)
    eps[..., 2] = 0.1
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0})
    data.write_field_fits(tmp_path / "f.fits", eps, None, header)
    raw = (tmp_path / "f.fits").read_bytes()
    field = data.load_field_upload("f.fits", raw)
    np.testing.assert_array_equal(field.eps, eps)
    assert field.header["CRVAL1"] == 10.0 and field.kappa is None
    with pytest.raises(data.DataError, match="expected a FITS field file"):
        data.load_field_upload("f.npy", raw)
    with pytest.raises(data.LimitError, match="limit"):
        data.load_field_upload("f.fits", raw, max_bytes=100)


def test_a_pair_is_ordered_by_the_declared_sizes(npy_bytes):
    eps = npy_bytes(np.zeros((3, 128, 128), np.float16))
    kappa = npy_bytes(np.zeros((128, 128), np.float16))
    for files in ((("e.npy", eps), ("k.npy", kappa)), (("k.npy", kappa), ("e.npy", eps))):
        assert [n for n, _ in data.epsilon_and_kappa_files(files)] == ["e.npy", "k.npy"]
    with pytest.raises(data.DataError, match="got 3 files"):
        data.epsilon_and_kappa_files([("a.npy", eps)] * 3)


def test_upload_key_depends_on_names_suffixes_and_bytes(npy_bytes):
    # issue 21, item 7: the app's cache keyed on the joined bytes alone
    eps = npy_bytes(np.zeros((3, 128, 128), np.float16))
    kappa = npy_bytes(np.zeros((128, 128), np.float16))
    key = data.upload_key
    assert key([("a.npy", eps)]) == key([("a.npy", eps)])  # a cache hit stays a hit
    assert key([("a.npy", eps)]) != key([("b.npy", eps)])  # another sample name
    assert key([("a.npy", eps)]) != key([("a.txt", eps)])  # another suffix (reader)
    pair = [("e.npy", eps), ("k.npy", kappa)]
    assert key(pair) != key([("e.npy", eps + kappa)])  # a pair is not its joined bytes
    assert key([("ab", b"c")]) != key([("a", b"bc")])  # lengths separate the parts
    assert len(key(pair)) == 24 and int(key(pair), 16) >= 0
