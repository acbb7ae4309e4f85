"""Tests of lensviz.data: validation, safe loading, challenge folders, HDF5, uploads."""

import io
import os
import pickle

import h5py
import numpy as np
import pytest

from lensviz import data

N = 4


@pytest.fixture
def arrays():
    """Seeded ε (N, 128, 128, 3) and κ (N, 128, 128), float32, values exact in float16."""
    rng = np.random.default_rng(7)
    eps = rng.normal(0, 0.2, (N, 128, 128, 3)).astype(np.float16).astype(np.float32)
    eps[..., 2] = np.abs(eps[..., 2])
    kappa = rng.normal(0, 0.05, (N, 128, 128)).astype(np.float16).astype(np.float32)
    return eps, kappa


def make_challenge_dir(root, eps, kappa, names):
    """Write the challenge layout by hand (independently of lensviz.data)."""
    (root / "EPSILON").mkdir(parents=True)
    (root / "KAPPA").mkdir()
    for e, k, name in zip(eps, kappa, names):
        np.save(root / "EPSILON" / f"{name}.npy", np.moveaxis(e, -1, 0).astype(np.float16))
        np.save(root / "KAPPA" / f"{name}.npy", k.astype(np.float16))
    return root


def leftovers(folder):
    """Hidden temporaries a writer might have left."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# === validate_epsilon / validate_kappa ===


def test_validate_epsilon_layouts(arrays):
    eps, _ = arrays
    first = np.moveaxis(eps, -1, 1)  # (N, 3, 128, 128)
    for arr, n in [(eps, N), (first, N), (eps[0], 1), (first[0], 1)]:
        out = data.validate_epsilon(arr, "x.npy")
        assert out.shape == (n, 128, 128, 3) and out.dtype == np.float32
        np.testing.assert_array_equal(out, eps[:n])
    # Channel order of a channels-first sample: channel 0 is e1 at [y, x].
    cf = np.zeros((3, 128, 128), np.float16)
    cf[0, 5, 7], cf[1, 5, 7], cf[2, 5, 7] = 0.25, -0.5, 0.125
    out = data.validate_epsilon(cf, "x.npy")
    assert tuple(out[0, 5, 7]) == (0.25, -0.5, 0.125)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, ">f4"])
def test_validate_epsilon_float_dtypes(arrays, dtype):
    out = data.validate_epsilon(arrays[0].astype(dtype), "x")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, arrays[0])


@pytest.mark.parametrize("shape", [(128, 128), (128, 128, 4), (4, 128, 128), (2, 128, 128, 2),
                                   (2, 64, 64, 3), (0, 128, 128, 3), (1, 1, 128, 128, 3),
                                   (128, 3, 128)])
def test_validate_epsilon_rejects_shapes(shape):
    with pytest.raises(ValueError, match=r"bad\.npy.*shape") as info:
        data.validate_epsilon(np.zeros(shape, np.float32), "bad.npy")
    if 0 not in shape:
        assert str(shape) in str(info.value) and "expected" in str(info.value)


@pytest.mark.parametrize("dtype", [np.int32, np.complex64, object, bool, np.uint8])
def test_validate_epsilon_rejects_dtypes(dtype):
    with pytest.raises(TypeError, match=r"bad\.npy.*dtype"):
        data.validate_epsilon(np.zeros((128, 128, 3), dtype), "bad.npy")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_validate_epsilon_rejects_non_finite(arrays, value):
    eps = arrays[0].copy()
    eps[2, 10, 20, 1] = value
    with pytest.raises(ValueError, match=r"bad\.h5.*1 NaN.*sample=2, y=10, x=20, channel=1"):
        data.validate_epsilon(eps, "bad.h5")


def test_validate_epsilon_rejects_float32_overflow():
    eps = np.zeros((128, 128, 3), np.float64)
    eps[0, 0, 0] = 1e40  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="NaN or infinite"):
        data.validate_epsilon(eps, "big.npy")


def test_validate_kappa(arrays):
    _, kappa = arrays
    assert data.validate_kappa(kappa[0].astype(np.float16), "k").shape == (1, 128, 128)
    np.testing.assert_array_equal(data.validate_kappa(kappa, "k"), kappa)
    for shape in [(128,), (128, 64), (2, 128, 128, 1), (0, 128, 128)]:
        with pytest.raises(ValueError, match=r"k\.npy.*κ has shape"):
            data.validate_kappa(np.zeros(shape, np.float32), "k.npy")
    with pytest.raises(TypeError, match=r"k\.npy.*int64"):
        data.validate_kappa(np.zeros((128, 128), np.int64), "k.npy")
    bad = kappa.copy()
    bad[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"map=1, y=3, x=4"):
        data.validate_kappa(bad, "k.npy")


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


# === Challenge folders ===


def test_read_challenge_dir_round_trip(tmp_path, arrays):
    eps, kappa = arrays
    names = ["00087_00323", "00001_00002", "00050_00001", "00002_00001"]
    root = make_challenge_dir(tmp_path / "set", eps, kappa, names)
    e, k, got = data.read_challenge_dir(root)
    order = np.argsort(names)
    assert got == sorted(names)
    assert e.shape == (N, 128, 128, 3) and e.dtype == np.float32 and k.dtype == np.float32
    np.testing.assert_array_equal(e, eps[order])  # values exact in float16
    np.testing.assert_array_equal(k, kappa[order])
    # e1 of "00087_00323" at pixel (y=3, x=100), straight from the channels-first file.
    raw = np.load(root / "EPSILON" / "00087_00323.npy")
    assert e[got.index("00087_00323"), 3, 100, 0] == np.float32(raw[0, 3, 100])
    assert e[got.index("00087_00323"), 3, 100, 1] == np.float32(raw[1, 3, 100])
    # Slices and batches.
    e2, k2, n2 = data.read_challenge_dir(root, 1, 3)
    assert n2 == sorted(names)[1:3]
    np.testing.assert_array_equal(e2, e[1:3])
    batches = list(data.iter_challenge_dir(root, 3))
    assert [len(b[0]) for b in batches] == [3, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), k)
    assert data.challenge_names(root) == sorted(names)
    assert data.dataset_length(root) == N


def test_challenge_dir_ignores_other_files(tmp_path, arrays):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    (root / "EPSILON" / ".DS_Store").write_text("x")
    (root / "KAPPA" / "README.txt").write_text("x")
    assert data.challenge_names(root) == ["a", "b", "c", "d"]


def test_challenge_dir_missing_and_empty_folders(tmp_path, arrays):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.read_challenge_dir(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=r"file\.txt.*not a folder"):
        data.read_challenge_dir(tmp_path / "file.txt")
    for sub, other in (("EPSILON", "KAPPA"), ("KAPPA", "EPSILON")):
        root = tmp_path / f"only_{sub}"
        (root / sub).mkdir(parents=True)
        with pytest.raises(ValueError, match=rf"only_{sub}.*missing subfolder {other}"):
            data.read_challenge_dir(root)
    root = tmp_path / "neither"
    root.mkdir()
    with pytest.raises(ValueError, match="missing subfolder EPSILON and KAPPA"):
        data.read_challenge_dir(root)
    root = tmp_path / "empty"
    (root / "EPSILON").mkdir(parents=True)
    (root / "KAPPA").mkdir()
    with pytest.raises(ValueError, match=r"EPSILON: holds no \.npy files"):
        data.read_challenge_dir(root)
    np.save(root / "EPSILON" / "a.npy", np.zeros((3, 128, 128), np.float16))
    with pytest.raises(ValueError, match=r"KAPPA: holds no \.npy files"):
        data.read_challenge_dir(root)


def test_challenge_dir_unpaired(tmp_path, arrays):
    eps, kappa = arrays
    root = make_challenge_dir(tmp_path / "set", eps, kappa, ["a", "b", "c", "d"])
    (root / "EPSILON" / "b.npy").unlink()
    with pytest.raises(ValueError, match=r"1 KAPPA file\(s\) without EPSILON: b\.npy") as info:
        data.read_challenge_dir(root)
    assert "set" in str(info.value)
    (root / "KAPPA" / "b.npy").unlink()
    (root / "KAPPA" / "c.npy").unlink()
    with pytest.raises(ValueError, match=r"1 EPSILON file\(s\) without KAPPA: c\.npy"):
        data.read_challenge_dir(root)
    # Many unmatched names: listed, then truncated.
    for i in range(9):
        np.save(root / "KAPPA" / f"extra{i}.npy", kappa[0].astype(np.float16))
    with pytest.raises(ValueError, match=r"9 KAPPA file\(s\).*extra4\.npy, \.\.\. and 4 more"):
        data.read_challenge_dir(root)


@pytest.mark.parametrize("folder, content, match", [
    ("EPSILON", np.zeros((128, 128), np.float16), r"EPSILON/b\.npy: ε has shape \(128, 128\)"),
    ("EPSILON", np.zeros((2, 3, 128, 128), np.float16), r"EPSILON/b\.npy: has shape \(2, 3"),
    ("KAPPA", np.zeros((3, 128, 128), np.float16), r"KAPPA/b\.npy: has shape .*3 samples"),
    ("KAPPA", np.full((128, 128), np.nan, np.float16), r"KAPPA/b\.npy: κ contains"),
    ("KAPPA", np.zeros((128, 128), np.int16), r"KAPPA/b\.npy: κ has dtype int16"),
    ("EPSILON", np.array(["a"], dtype=object), r"EPSILON/b\.npy.*pickled or object"),
])
def test_challenge_dir_bad_file(tmp_path, arrays, folder, content, match):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    np.save(root / folder / "b.npy", content, allow_pickle=True)
    with pytest.raises((ValueError, TypeError), match=match):
        data.read_challenge_dir(root)


def test_challenge_dir_truncated_file(tmp_path, arrays):
    root = make_challenge_dir(tmp_path / "set", *arrays, ["a", "b", "c", "d"])
    path = root / "EPSILON" / "c.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"EPSILON/c\.npy: cannot read.*truncated"):
        data.read_challenge_dir(root)
    # The samples before it can still be read on their own.
    assert data.read_challenge_dir(root, 0, 2)[2] == ["a", "b"]


def test_write_challenge_dir(tmp_path, arrays):
    eps, kappa = arrays
    out = tmp_path / "out"
    data.write_challenge_dir(out, eps, kappa, ["s0", "s1", "s2", "s3"])
    raw = np.load(out / "EPSILON" / "s2.npy")
    assert raw.shape == (3, 128, 128) and raw.dtype == np.float16
    assert np.load(out / "KAPPA" / "s2.npy").dtype == np.float16
    np.testing.assert_array_equal(raw[0], eps[2, ..., 0])
    e, k, names = data.read_challenge_dir(out)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert leftovers(tmp_path) == []
    with pytest.raises(FileExistsError, match="out"):
        data.write_challenge_dir(out, eps, kappa, ["x0", "x1", "x2", "x3"])
    data.write_challenge_dir(out, eps[:1], kappa[:1], ["new"], overwrite=True)
    assert data.challenge_names(out) == ["new"]
    assert leftovers(tmp_path) == []


def test_write_challenge_dir_failures_leave_nothing(tmp_path, arrays):
    eps, kappa = arrays
    out = tmp_path / "out"
    for names, match in ((["a", "b", "a", "c"], "duplicate"), (["a", "../b", "c", "d"], "name"),
                         (["a", "b"], "2 names for 4 samples")):
        with pytest.raises(ValueError, match=match):
            data.write_challenge_dir(out, eps, kappa, names)
        assert not out.exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match=r"out: e1 = .* out of bounds.*\|e1\|, \|e2\| ≤ 5"):
        data.write_challenge_dir(out, eps * 1e6, kappa, ["a", "b", "c", "d"])
    with pytest.raises(RuntimeError), data.ChallengeDirWriter(out) as w:
        w.append(eps[:2], kappa[:2], ["a", "b"])
        raise RuntimeError("boom")
    assert not out.exists() and leftovers(tmp_path) == []


# === HDF5 ===


def test_hdf5_round_trip_and_layout(tmp_path, arrays):
    eps, kappa = arrays
    names = ["ñame-0", "b", "c", "d"]
    path = tmp_path / "x.h5"
    data.write_hdf5(path, eps, kappa, names, attrs={"seed_start": 5})
    assert leftovers(tmp_path) == []
    with h5py.File(path, "r") as f:
        assert f["epsilon"].shape == (N, 128, 128, 3) and f["epsilon"].dtype == np.float32
        assert f["kappa"].shape == (N, 128, 128) and f["kappa"].dtype == np.float32
        assert f["epsilon"].chunks == (1, 128, 128, 3) and f["epsilon"].compression == "gzip"
        assert f["epsilon"].maxshape == (None, 128, 128, 3)
        assert h5py.check_string_dtype(f["names"].dtype).encoding == "utf-8"
        assert f.attrs["seed_start"] == 5 and f.attrs["format"] == "lensviz"
    e, k, got = data.read_hdf5(path)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert got == names
    assert data.hdf5_length(path) == N
    e, k, got = data.read_hdf5(path, start=1, stop=3)
    np.testing.assert_array_equal(e, eps[1:3])
    np.testing.assert_array_equal(k, kappa[1:3])
    assert got == names[1:3]
    e, k, got = data.read_hdf5(path, indices=[3, 0, 3])
    np.testing.assert_array_equal(e, eps[[3, 0, 3]])
    assert got == ["d", "ñame-0", "d"]
    assert len(data.read_hdf5(path, 2, 100)[0]) == 2  # stop clipped like a slice
    for kwargs in ({"start": 4}, {"start": 2, "stop": 2}, {"indices": [0, 4]},
                   {"indices": []}, {"start": -1}, {"start": 1, "indices": [0]}):
        with pytest.raises(ValueError):
            data.read_hdf5(path, **kwargs)


def test_hdf5_writer_appends_batches_atomically(tmp_path, arrays):
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    with data.HDF5Writer(path, compression="lzf") as w:
        w.append(eps[:3], kappa[:3])
        assert not path.exists()  # only the temporary exists while writing
        w.append(np.moveaxis(eps[3:], -1, 1).astype(np.float16), kappa[3:])
        assert w.n_written == N
    e, k, names = data.read_hdf5(path)
    np.testing.assert_array_equal(e, eps)
    assert names == ["000000", "000001", "000002", "000003"]
    assert leftovers(tmp_path) == []


def test_hdf5_writer_failures_leave_nothing(tmp_path, arrays):
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    bad = kappa.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"), data.HDF5Writer(path) as w:
        w.append(eps, kappa)
        w.append(eps, bad)
    assert not path.exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="without κ"), data.HDF5Writer(path) as w:
        w.append(eps)
        w.append(eps, kappa)
    with pytest.raises(KeyboardInterrupt), data.HDF5Writer(path) as w:
        w.append(eps, kappa)
        raise KeyboardInterrupt
    with pytest.raises(ValueError, match="no samples"), data.HDF5Writer(path):
        pass
    with pytest.raises(TypeError), data.HDF5Writer(path, attrs={"bad": object()}):
        pass
    assert not path.exists() and leftovers(tmp_path) == []
    data.write_hdf5(path, eps, kappa)
    with pytest.raises(FileExistsError):
        data.write_hdf5(path, eps, kappa)
    data.write_hdf5(path, eps[:1], kappa[:1], overwrite=True)
    assert data.hdf5_length(path) == 1 and leftovers(tmp_path) == []


def test_hdf5_epsilon_only(tmp_path, arrays):
    path = tmp_path / "eps.h5"
    data.write_hdf5(path, arrays[0])
    e, k, names = data.read_hdf5(path)
    assert k is None and len(names) == N
    np.testing.assert_array_equal(e, arrays[0])


def _write_raw_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value


def test_hdf5_bad_layouts(tmp_path, arrays):
    eps, kappa = arrays
    path = tmp_path / "raw.h5"
    _write_raw_h5(path, kappa=kappa)
    with pytest.raises(ValueError, match=r"raw\.h5: has no dataset 'epsilon' \(found \['kappa'\]"):
        data.read_hdf5(path)
    with pytest.raises(ValueError, match="'epsilon'"):
        data.hdf5_length(path)
    _write_raw_h5(path, epsilon=eps[..., :2])
    with pytest.raises(ValueError, match=r"raw\.h5: dataset 'epsilon' has shape \(4, 128, 128, 2"):
        data.read_hdf5(path)
    _write_raw_h5(path, epsilon=eps, kappa=kappa[:3])
    with pytest.raises(ValueError, match=r"'kappa' has shape \(3, 128, 128\).*holds 4"):
        data.read_hdf5(path)
    _write_raw_h5(path, epsilon=eps.astype(np.int32))
    with pytest.raises(TypeError, match=r"raw\.h5: dataset 'epsilon' has dtype int32"):
        data.read_hdf5(path)
    bad = eps.copy()
    bad[3, 0, 0, 0] = np.inf
    _write_raw_h5(path, epsilon=bad, kappa=kappa)
    with pytest.raises(ValueError, match=r"raw\.h5 \[epsilon\]: ε contains 1 NaN"):
        data.read_hdf5(path)
    assert len(data.read_hdf5(path, 0, 3)[0]) == 3  # the finite rows read fine
    _write_raw_h5(path, epsilon=eps, names=np.arange(N))
    with pytest.raises(ValueError, match="'names'"):
        data.read_hdf5(path)
    # Channels-first ε in a foreign file is accepted, and names default to indices.
    _write_raw_h5(path, epsilon=np.moveaxis(eps, -1, 1))
    e, k, names = data.read_hdf5(path, 1, 3)
    np.testing.assert_array_equal(e, eps[1:3])
    assert k is None and names == ["000001", "000002"]


def test_hdf5_truncated_and_corrupt(tmp_path, arrays):
    path = tmp_path / "x.h5"
    data.write_hdf5(path, *arrays)
    raw = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5: cannot read as HDF5.*truncated"):
        data.read_hdf5(cut)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5: cannot read as HDF5"):
        data.hdf5_length(text)
    with pytest.raises(FileNotFoundError):
        data.read_hdf5(tmp_path / "missing.h5")


def test_hdf5_reads_only_the_requested_chunks(tmp_path, arrays):
    """Corrupt the last sample's chunk: slices before it still read, the whole file not."""
    eps, kappa = arrays
    path = tmp_path / "x.h5"
    data.write_hdf5(path, eps, kappa)
    with h5py.File(path, "r") as f:
        info = f["epsilon"].id.get_chunk_info_by_coord((N - 1, 0, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 16)
        fh.write(os.urandom(256))
    e, k, _ = data.read_hdf5(path, 0, N - 1)
    np.testing.assert_array_equal(e, eps[:-1])
    with pytest.raises(ValueError, match=r"x\.h5: cannot read dataset 'epsilon'.*corrupt"):
        data.read_hdf5(path)


# === load_dataset / uploads ===


def test_load_dataset_dispatch(tmp_path, arrays):
    eps, kappa = arrays
    make_challenge_dir(tmp_path / "set", eps, kappa, ["a", "b", "c", "d"])
    data.write_hdf5(tmp_path / "x.hdf5", eps, kappa, ["a", "b", "c", "d"])
    np.savez(tmp_path / "full.npz", epsilon=eps, kappa=kappa, names=np.array(list("abcd")))
    np.savez(tmp_path / "eps.npz", epsilon=np.moveaxis(eps, -1, 1))
    np.save(tmp_path / "eps.npy", eps)
    for name, has_kappa in [("set", True), ("x.hdf5", True), ("full.npz", True),
                            ("eps.npz", False), ("eps.npy", False)]:
        e, k, names = data.load_dataset(tmp_path / name, 1, 3)
        np.testing.assert_array_equal(e, eps[1:3])
        assert (k is not None) == has_kappa, name
        if has_kappa:
            np.testing.assert_array_equal(k, kappa[1:3])
        assert len(names) == 2
        assert data.dataset_length(tmp_path / name) == N
        batches = list(data.iter_dataset(tmp_path / name, 3))
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), eps)
    assert data.load_dataset(tmp_path / "full.npz")[2] == list("abcd")
    assert data.load_dataset(tmp_path / "eps.npy")[2][0] == "eps_000000"


def test_load_dataset_errors(tmp_path, arrays):
    eps, kappa = arrays
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"x\.csv: unsupported file type"):
        data.load_dataset(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        data.load_dataset(tmp_path / "nothing.h5")
    np.savez(tmp_path / "nok.npz", kappa=kappa)
    with pytest.raises(ValueError, match=r"nok\.npz: has no array 'epsilon'"):
        data.load_dataset(tmp_path / "nok.npz")
    np.savez(tmp_path / "mismatch.npz", epsilon=eps, kappa=kappa[:2])
    with pytest.raises(ValueError, match=r"mismatch\.npz.*4 samples.*2 maps"):
        data.load_dataset(tmp_path / "mismatch.npz")
    np.savez(tmp_path / "obj.npz", epsilon=eps, names=np.array(["a", 1], dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz.*pickled or object"):
        data.load_dataset(tmp_path / "obj.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: cannot read"):
        data.load_dataset(tmp_path / "bad.npz")


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_load_upload(tmp_path, arrays):
    eps, kappa = arrays
    e, k, names = data.load_upload("sample.npy", _npy_bytes(np.moveaxis(eps[0], -1, 0)))
    np.testing.assert_array_equal(e, eps[:1])
    assert k is None and names == ["sample"]
    buf = io.BytesIO()
    np.savez(buf, epsilon=eps, kappa=kappa)
    e, k, _ = data.load_upload("set.NPZ", buf.getvalue())
    np.testing.assert_array_equal(k, kappa)
    data.write_hdf5(tmp_path / "x.h5", eps, kappa, list("abcd"))
    e, k, names = data.load_upload("x.h5", (tmp_path / "x.h5").read_bytes())
    np.testing.assert_array_equal(e, eps)
    assert names == list("abcd")


def test_load_upload_errors(tmp_path, arrays):
    payload = _npy_bytes(arrays[0])
    with pytest.raises(ValueError, match=r"big\.npy: the upload is .* MiB; the limit is"):
        data.load_upload("big.npy", payload, max_bytes=1000)
    with pytest.raises(ValueError, match="empty"):
        data.load_upload("e.npy", b"")
    with pytest.raises(ValueError, match=r"x\.txt: unsupported upload type"):
        data.load_upload("x.txt", b"abc")
    with pytest.raises(ValueError, match=r"o\.npy.*pickled"):
        data.load_upload("o.npy", _npy_bytes(np.array([None])))
    with pytest.raises(ValueError, match=r"t\.h5: cannot read as HDF5"):
        data.load_upload("t.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(TypeError, match="bytes"):
        data.load_upload("e.npy", "text")


def test_load_upload_pair(arrays):
    eps, kappa = arrays
    e, k, names = data.load_upload_pair(
        "00087_00323.npy", _npy_bytes(np.moveaxis(eps[1], -1, 0).astype(np.float16)),
        "00087_00323.npy", _npy_bytes(kappa[1].astype(np.float16)))
    np.testing.assert_array_equal(e, eps[1:2])
    np.testing.assert_array_equal(k, kappa[1:2])
    assert names == ["00087_00323"]
    with pytest.raises(ValueError, match="1 samples but κ holds 2"):
        data.load_upload_pair("e.npy", _npy_bytes(eps[0]), "k.npy", _npy_bytes(kappa[:2]))
    with pytest.raises(ValueError, match=r"k\.h5: expected a \.npy"):
        data.load_upload_pair("e.npy", _npy_bytes(eps[0]), "k.h5", b"abc")
    with pytest.raises(ValueError, match=r"k\.npy: κ has shape \(128, 128, 3\)"):
        data.load_upload_pair("e.npy", _npy_bytes(eps[0]), "k.npy", _npy_bytes(eps[0]))


# === apply_convention ===


def test_apply_convention(arrays):
    eps, _ = arrays
    out = data.apply_convention(eps, negate_e1=True, transpose=True)
    assert out[1, 5, 9, 0] == -eps[1, 9, 5, 0]
    assert out[1, 5, 9, 1] == eps[1, 9, 5, 1]
    assert out[1, 5, 9, 2] == eps[1, 9, 5, 2]
    out = data.apply_convention(eps, negate_e2=True)
    np.testing.assert_array_equal(out[..., 1], -eps[..., 1])
    np.testing.assert_array_equal(out[..., 0], eps[..., 0])
    twice = data.apply_convention(data.apply_convention(eps, negate_e2=True, transpose=True),
                                  negate_e2=True, transpose=True)
    np.testing.assert_array_equal(twice, eps)
    np.testing.assert_array_equal(data.apply_convention(eps), eps)
