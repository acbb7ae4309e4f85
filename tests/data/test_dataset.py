"""lensviz.data.dataset and .upload: any layout by path, uploads; apply_convention."""

import io

import numpy as np
import pytest

from lensviz import data

N = 4

# === load_dataset / uploads ===


def test_load_dataset_dispatch(tmp_path, arrays, make_challenge_dir):
    eps, kappa = arrays
    make_challenge_dir(tmp_path / "set", eps, kappa, ["a", "b", "c", "d"])
    data.write_hdf5(tmp_path / "x.hdf5", eps, kappa, ["a", "b", "c", "d"])
    np.savez(tmp_path / "full.npz", epsilon=eps, kappa=kappa, names=np.array(list("abcd")))
    np.savez(tmp_path / "eps.npz", epsilon=np.moveaxis(eps, -1, 1))
    np.save(tmp_path / "eps.npy", eps)
    for name, has_kappa in [
        ("set", True),
        ("x.hdf5", True),
        ("full.npz", True),
        ("eps.npz", False),
        ("eps.npy", False),
    ]:
        e, k, names = data.load_dataset(tmp_path / name, 1, 3)
        np.testing.assert_array_equal(e, eps[1:3])
        assert (k is not None) == has_kappa, name
        if has_kappa:
            np.testing.assert_array_equal(k, kappa[1:3])
        assert len(names) == 2
        assert data.dataset_length(tmp_path / name) == N
        batches = list(data.iter_dataset(tmp_path / name, 3))
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), eps)
    assert data.load_dataset(tmp_path / "full.npz").names == list("abcd")
    assert data.load_dataset(tmp_path / "eps.npy").names[0] == "eps_000000"


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


def test_load_upload(tmp_path, arrays, npy_bytes):
    eps, kappa = arrays
    e, k, names = data.load_upload("sample.npy", npy_bytes(np.moveaxis(eps[0], -1, 0)))
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


def test_load_upload_errors(tmp_path, arrays, npy_bytes):
    payload = npy_bytes(arrays[0])
    with pytest.raises(ValueError, match=r"big\.npy: the upload is .* MiB; the limit is"):
        data.load_upload("big.npy", payload, max_bytes=1000)
    with pytest.raises(ValueError, match="empty"):
        data.load_upload("e.npy", b"")
    with pytest.raises(ValueError, match=r"x\.txt: unsupported upload type"):
        data.load_upload("x.txt", b"abc")
    with pytest.raises(ValueError, match=r"o\.npy.*pickled"):
        data.load_upload("o.npy", npy_bytes(np.array([None])))
    with pytest.raises(ValueError, match=r"t\.h5: cannot read as HDF5"):
        data.load_upload("t.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(TypeError, match="bytes"):
        data.load_upload("e.npy", "text")


def test_load_upload_pair(arrays, npy_bytes):
    eps, kappa = arrays
    e, k, names = data.load_upload_pair(
        "00087_00323.npy",
        npy_bytes(np.moveaxis(eps[1], -1, 0).astype(np.float16)),
        "00087_00323.npy",
        npy_bytes(kappa[1].astype(np.float16)),
    )
    np.testing.assert_array_equal(e, eps[1:2])
    np.testing.assert_array_equal(k, kappa[1:2])
    assert names == ["00087_00323"]
    with pytest.raises(ValueError, match="1 samples but κ holds 2"):
        data.load_upload_pair("e.npy", npy_bytes(eps[0]), "k.npy", npy_bytes(kappa[:2]))
    with pytest.raises(ValueError, match=r"k\.h5: expected a \.npy"):
        data.load_upload_pair("e.npy", npy_bytes(eps[0]), "k.h5", b"abc")
    with pytest.raises(ValueError, match=r"k\.npy: κ has shape \(128, 128, 3\)"):
        data.load_upload_pair("e.npy", npy_bytes(eps[0]), "k.npy", npy_bytes(eps[0]))


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
    twice = data.apply_convention(
        data.apply_convention(eps, negate_e2=True, transpose=True), negate_e2=True, transpose=True
    )
    np.testing.assert_array_equal(twice, eps)
    np.testing.assert_array_equal(data.apply_convention(eps), eps)
