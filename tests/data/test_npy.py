"""lensviz.data.npy: .npy and .npz read from their checked headers."""

import io
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest

from lensviz import data

# === load_npy ===


def test_load_npy_rejects_object_and_pickled(tmp_path):
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy.*pickled or object"):
        data.load_npy(obj)
    pkl = tmp_path / "pkl.npy"
    pkl.write_bytes(pickle.dumps({"epsilon": np.zeros(3)}))
    with pytest.raises(ValueError, match=r"pkl\.npy.*pickled"):
        data.load_npy(pkl)


def test_load_npy_rejects_truncated_empty_and_npz(tmp_path, arrays):
    good = tmp_path / "good.npy"
    np.save(good, arrays[0][0].astype(np.float16))
    raw = good.read_bytes()
    for cut in (0, 50, len(raw) - 10):
        bad = tmp_path / f"cut{cut}.npy"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.npy.*truncated or corrupt"):
            data.load_npy(bad)
    npz = tmp_path / "a.npz"
    np.savez(npz, epsilon=arrays[0])
    with pytest.raises(ValueError, match=r"a\.npz.*\.npz archive"):
        data.load_npy(npz)
    with pytest.raises(FileNotFoundError):
        data.load_npy(tmp_path / "missing.npy")


# === Hostile .npy headers (every one becomes a DataError naming the file) ===


def _npy_raw(header: bytes, payload: bytes = b"") -> bytes:
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _header(shape: str, descr: str = "'<f4'") -> bytes:
    return f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}\n".encode()


def test_random_bytes_are_not_a_npy_file(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(np.random.default_rng(3).bytes(3000))
    with pytest.raises(
        data.DataError,
        match=r"x\.npy: cannot read as \.npy: it is not a \.npy "
        r"file",
    ) as info:
        data.load_npy(path)
    assert "pickle" not in str(info.value)
    with pytest.raises(data.DataError, match=r"x\.npy: .*not a \.npy file"):
        data.load_upload("x.npy", path.read_bytes())


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickles_of_every_protocol_are_named_as_such(protocol):
    with pytest.raises(data.DataError, match=r"p\.npy: .*pickled or object data"):
        data.load_upload("p.npy", pickle.dumps({"epsilon": 1}, protocol=protocol))


@pytest.mark.parametrize(
    "header, match",
    [
        (
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 128",
            "garbled header",
        ),  # TokenError
        (b"[1, 2]\n", "garbled header"),
        (b"(" * 3000 + b")" * 3000, "garbled header"),
        (_header("(-1, 128, 128, 3)"), "negative dimension"),
        (_header("(1, 128, 128, 3)", "'O'"), "pickled or object"),
        (_header("(1, 128, 128, 3)", "[('a', '<f4')]"), "expected float16"),
    ],
)
def test_garbled_headers_are_refused(header, match):
    payload = np.zeros((1, 128, 128, 3), "<f4").tobytes()
    with pytest.raises(data.DataError, match=r"h\.npy: .*" + match):
        data.load_upload("h.npy", _npy_raw(header, payload))


def test_huge_declared_shapes_are_refused_before_allocating(tmp_path):
    # 10⁶ samples (196 GB) declared in a 4 kB file: no MemoryError, a clear error.
    path = tmp_path / "h.npy"
    path.write_bytes(_npy_raw(_header("(1000000, 128, 128, 3)"), bytes(4096)))
    with pytest.raises(data.DataError, match=r"h\.npy: .*truncated.*4096 of the 196608000000"):
        data.load_dataset(path)
    with pytest.raises(data.LimitError, match=r"h\.npy: .*MAX_DECLARED_BYTES"):
        data.load_upload("h.npy", _npy_raw(_header("(10000000000000, 128, 128, 3)")))


def test_one_read_is_bounded_and_batches_are_not(tmp_path, arrays, monkeypatch):
    monkeypatch.setattr("lensviz.data.validate.MAX_READ_BYTES", 3 * 128 * 128 * 3 * 4)
    np.save(tmp_path / "e.npy", arrays[0])
    with pytest.raises(
        data.LimitError,
        match=r"e\.npy: the selection holds 4 samples \(0\.75 MiB "
        r"as float32\); one read returns at most 0\.562 MiB, 3 samples",
    ):
        data.load_dataset(tmp_path / "e.npy")
    batches = list(data.iter_dataset(tmp_path / "e.npy", 3))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), arrays[0])


def test_fortran_ordered_arrays_read_the_same(tmp_path, arrays):
    np.save(tmp_path / "f.npy", np.asfortranarray(arrays[0]))
    e, _, _ = data.load_dataset(tmp_path / "f.npy", 1, 3)
    np.testing.assert_array_equal(e, arrays[0][1:3])


# === .npz archives ===


def _npz_bytes(compressed=False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _patch_zip(raw: bytes, method=None, flags=0) -> bytes:
    z = bytearray(raw)
    for sig, flag_at, method_at in ((b"PK\x01\x02", 8, 10), (b"PK\x03\x04", 6, 8)):
        i = z.find(sig)
        while i >= 0:
            if method is not None:
                z[i + method_at : i + method_at + 2] = struct.pack("<H", method)
            z[i + flag_at] |= flags
            i = z.find(sig, i + 4)
    return bytes(z)


def test_zip_method_9_and_encryption_are_refused(arrays):
    raw = _npz_bytes(True, epsilon=arrays[0])
    with pytest.raises(
        data.DataError,
        match=r"z\.npz \[epsilon\]: .*compression method 9; "
        "expected stored",
    ):
        data.load_upload("z.npz", _patch_zip(raw, 9))
    with pytest.raises(data.UnsafeFileError, match=r"z\.npz \[epsilon\]: the entry is encrypted"):
        data.load_upload("z.npz", _patch_zip(raw, flags=0x1))
    with pytest.raises(data.DataError, match=r"method 12"):  # bzip2: zipfile would read it
        data.load_upload("z.npz", _patch_zip(raw, 12))


def test_zip_directory_limits(arrays):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("epsilon.npy", _npz_bytes())  # content irrelevant: refused before
        for i in range(data.limits.MAX_ZIP_MEMBERS):
            zf.writestr(f"x{i}.npy", b"")
    with pytest.raises(data.LimitError, match=r"m\.npz: the archive holds 17 entries"):
        data.load_upload("m.npz", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3000):  # about 140 kB of central directory
            zf.writestr(f"member_{i:05d}.npy", b"")
    with pytest.raises(data.LimitError, match=r"d\.npz: the zip directory declares \d+ bytes"):
        data.load_upload("d.npz", buf.getvalue())


def test_duplicate_members_are_refused(arrays):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("epsilon.npy", b"1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate
            zf.writestr("epsilon.npy", b"2")
    with pytest.raises(data.DataError, match=r"two entries named 'epsilon'"):
        data.load_upload("dup.npz", buf.getvalue())


def test_gzip_bomb_is_refused_from_the_directory():
    # 400 samples of zeros: 315 MB declared in about 300 kB.
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("epsilon.npy", "w", force_zip64=True) as fh,
    ):
        fh.write(_npy_raw(_header("(400, 128, 128, 3)", "'<f8'")))
        for _ in range(400):
            fh.write(bytes(128 * 128 * 3 * 8))
    raw = buf.getvalue()
    assert len(raw) < 2**20
    with pytest.raises(data.LimitError, match=r"b\.npz \[epsilon\]: .*compression ratio over 100"):
        data.load_upload("b.npz", raw)


def test_names_bomb_is_refused_from_the_header(arrays):
    names = np.full(3_000_000, "a", "<U1")  # 12 MB of names for 4 samples
    raw = _npz_bytes(True, epsilon=arrays[0], names=names)
    with pytest.raises(data.DataError, match=r"n\.npz: got 3000000 names for 4 samples"):
        data.load_upload("n.npz", raw)


def test_npz_is_streamed_batch_by_batch(tmp_path, arrays):
    eps = arrays[0].copy()
    eps[3, 0, 0, 0] = np.nan  # only the last batch is bad
    np.savez(tmp_path / "s.npz", epsilon=eps, kappa=arrays[1])
    batches = data.iter_dataset(tmp_path / "s.npz", 2)
    first = next(batches)
    np.testing.assert_array_equal(first[0], arrays[0][:2])
    with pytest.raises(data.DataError, match=r"s\.npz \[epsilon\]: ε contains 1 NaN"):
        next(batches)
    assert data.dataset_length(tmp_path / "s.npz") == 4  # from the headers: no value read
