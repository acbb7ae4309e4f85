"""lensviz.data.npy: .npy and .npz read from their checked headers."""

import pickle

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
