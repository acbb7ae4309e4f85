"""lensviz.data.hdf5: HDF5 dataset files, read and written."""

import os

import h5py
import numpy as np
import pytest

from lensviz import data

N = 4

# === HDF5 ===


def test_hdf5_round_trip_and_layout(tmp_path, arrays, leftovers):
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


def test_hdf5_writer_appends_batches_atomically(tmp_path, arrays, leftovers):
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


def test_hdf5_writer_failures_leave_nothing(tmp_path, arrays, leftovers):
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
