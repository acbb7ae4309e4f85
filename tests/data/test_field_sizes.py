"""Fields of any size (64 to 2048 pixels a side, square or not) in every reader and writer."""

import io

import h5py
import numpy as np
import pytest

from lensviz import data
from lensviz.data import limits
from lensviz.data.validate import batch_within_budget, block_rows, epsilon_layout, kappa_layout


def _field(rng, n, ny, nx):
    """Seeded ε (n, ny, nx, 3) and κ (n, ny, nx), exact in float16."""
    eps = rng.normal(0, 0.2, (n, ny, nx, 3)).astype(np.float16).astype(np.float32)
    eps[..., 2] = np.abs(eps[..., 2])
    kappa = rng.normal(0, 0.05, (n, ny, nx)).astype(np.float16).astype(np.float32)
    return eps, kappa


@pytest.fixture
def fields():
    return _field(np.random.default_rng(11), 3, 96, 200)


# === Shapes ===


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((64, 64, 3), (1, False, (64, 64))),
        ((3, 256, 200), (1, True, (256, 200))),
        ((5, 2048, 64, 3), (5, False, (2048, 64))),
        ((2, 3, 128, 384), (2, True, (128, 384))),
    ],
)
def test_epsilon_layout_of_any_field(shape, expected):
    assert epsilon_layout(shape, "f") == expected


@pytest.mark.parametrize(
    "shape, hint",
    [
        ((1, 63, 128, 3), "at least 64 pixels a side"),
        ((3, 128, 2049), "at most 2048 pixels a side"),
        ((128, 128), ""),
    ],
)
def test_epsilon_layout_says_why_a_size_is_refused(shape, hint):
    with pytest.raises(data.DataError, match=r"^f\.npy: ε has shape") as info:
        epsilon_layout(shape, "f.npy")
    assert hint in str(info.value) and "64 ≤ ny, nx ≤ 2048" in str(info.value)


def test_kappa_layout_of_any_field():
    assert kappa_layout((300, 70), "k") == (1, (300, 70))
    assert kappa_layout((4, 64, 2048), "k") == (4, (64, 2048))
    with pytest.raises(data.DataError, match=r"k: κ has shape \(4, 64, 2049\).*at most 2048"):
        kappa_layout((4, 64, 2049), "k")


def test_validate_keeps_the_values_of_a_non_square_field(fields):
    eps, kappa = fields
    out = data.validate_epsilon(np.moveaxis(eps, -1, 1), "x")  # channels first
    assert out.shape == (3, 96, 200, 3)
    np.testing.assert_array_equal(out, eps)
    np.testing.assert_array_equal(data.validate_kappa(kappa[0], "x")[0], kappa[0])


def test_read_budgets_follow_the_field_size():
    assert batch_within_budget(256, (128, 128)) == 256
    # 2048² with κ: 16 · 2048² bytes = 64 MiB per sample, 8 in 512 MiB.
    assert batch_within_budget(256, (2048, 2048)) == limits.MAX_READ_BYTES // (16 * 2048**2) == 8
    assert batch_within_budget(256, (2048, 2048), kappa=False) == 10
    assert block_rows(128 * 128 * 3) == limits.READ_BLOCK_SAMPLES
    assert block_rows(2048 * 2048 * 3) == 1
    with pytest.raises(data.LimitError, match=r"f: the selection holds 9 samples"):
        data.validate.check_read_size(9, "f", field=(2048, 2048))


# === Each format round-trips a non-square field exactly ===


def test_npy_and_npz_round_trip(tmp_path, fields):
    eps, kappa = fields
    np.save(tmp_path / "e.npy", np.moveaxis(eps, -1, 1).astype(np.float16))
    e, k, names = data.load_dataset(tmp_path / "e.npy")
    np.testing.assert_array_equal(e, eps)
    assert k is None and names == ["e_000000", "e_000001", "e_000002"]
    np.savez(tmp_path / "f.npz", epsilon=eps, kappa=kappa)
    e, k, _ = data.load_dataset(tmp_path / "f.npz", 1, 3)
    np.testing.assert_array_equal(e, eps[1:])
    np.testing.assert_array_equal(k, kappa[1:])


def test_hdf5_round_trip_and_one_size_per_file(tmp_path, fields):
    eps, kappa = fields
    path = tmp_path / "f.h5"
    data.write_hdf5(path, eps, kappa, ["a", "b", "c"])
    e, k, names = data.read_hdf5(path)
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert names == ["a", "b", "c"] and data.hdf5_field(path) == (96, 200)
    batches = list(data.iter_dataset(path, 2))
    assert [len(b[0]) for b in batches] == [2, 1]
    other = _field(np.random.default_rng(1), 1, 96, 96)
    with pytest.raises(
        data.DataError,
        match=r"ε maps are 96 × 96 pixels but the dataset's ε "
        r"maps are 96 × 200; a dataset holds maps of one",
    ):
        with data.HDF5Writer(tmp_path / "mixed.h5") as writer:
            writer.append(eps, kappa)
            writer.append(*other)
    assert not (tmp_path / "mixed.h5").exists()


def test_hdf5_refuses_kappa_of_another_size(tmp_path, fields):
    eps, kappa = fields
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f.create_dataset("epsilon", data=eps)
        f.create_dataset("kappa", data=kappa[:, :, :100])
    with pytest.raises(
        data.DataError,
        match=r"raw\.h5: κ maps are 96 × 100 pixels but the "
        r"dataset's ε maps are 96 × 200",
    ):
        data.read_hdf5(tmp_path / "raw.h5")


def test_hdf5_chunks_of_a_large_field_stay_readable(tmp_path):
    eps = np.zeros((2, 1500, 1500, 3), np.float32)
    eps[1, 1499, 0] = (0.5, -0.25, 0.125)
    with data.HDF5Writer(tmp_path / "big.h5", samples_per_chunk=8, compression=None) as w:
        w.append(eps)
    with h5py.File(tmp_path / "big.h5") as f:  # 27 MiB per sample: two in a 64 MiB chunk
        assert f["epsilon"].chunks == (2, 1500, 1500, 3)
    e, k, _ = data.read_hdf5(tmp_path / "big.h5")
    assert k is None and tuple(e[1, 1499, 0]) == (0.5, -0.25, 0.125)


def test_predictions_of_a_field_round_trip(tmp_path, fields):
    kappa = fields[1]
    data.write_predictions(tmp_path / "p.h5", kappa, ["a", "b", "c"], attrs={"method": "ks93"})
    out, names, attrs = data.read_predictions(tmp_path / "p.h5", 2)
    np.testing.assert_array_equal(out, kappa[2:])
    assert names == ["c"] and attrs["method"] == "ks93"


def test_challenge_folder_round_trip_and_one_size_per_folder(tmp_path, fields, make_challenge_dir):
    eps, kappa = fields
    data.write_challenge_dir(tmp_path / "w", eps, kappa, ["a", "b", "c"])
    e, k, names = data.read_challenge_dir(tmp_path / "w")
    np.testing.assert_array_equal(e, eps)
    np.testing.assert_array_equal(k, kappa)
    assert np.load(tmp_path / "w" / "EPSILON" / "a.npy").shape == (3, 96, 200)
    make_challenge_dir(tmp_path / "mixed", eps[:2], kappa[:2], ["a", "b"])
    np.save(tmp_path / "mixed" / "EPSILON" / "b.npy", np.zeros((3, 96, 96), np.float16))
    with pytest.raises(
        data.DataError,
        match=r"EPSILON/b\.npy: its ε maps are 96 × 96 pixels "
        r"but the dataset's ε maps are 96 × 200",
    ):
        data.read_challenge_dir(tmp_path / "mixed")
    np.save(tmp_path / "mixed" / "EPSILON" / "b.npy", np.zeros((3, 96, 200), np.float16))
    np.save(tmp_path / "mixed" / "KAPPA" / "b.npy", np.zeros((96, 64), np.float16))
    with pytest.raises(data.DataError, match=r"KAPPA/b\.npy: its κ maps are 96 × 64"):
        list(data.iter_dataset(tmp_path / "mixed", 1))
    with pytest.raises(data.DataError, match="a dataset holds maps of one size"):
        with data.ChallengeDirWriter(tmp_path / "w2") as w:
            w.append(eps[:1], kappa[:1], ["a"])
            w.append(eps[:1, :, :96], kappa[:1, :, :96], ["b"])
    assert not (tmp_path / "w2").exists()


def test_uploads_of_a_field(fields):
    eps, kappa = fields
    buf = io.BytesIO()
    np.save(buf, eps[0].astype(np.float16))
    e, k, names = data.load_upload("field.npy", buf.getvalue())
    np.testing.assert_array_equal(e[0], eps[0])
    assert k is None and names == ["field"]
    kbuf = io.BytesIO()
    np.save(kbuf, kappa[0, :, :128])
    with pytest.raises(
        data.DataError,
        match=r"field\.npy \+ k\.npy: κ maps are 96 × 128 "
        r"pixels but the dataset's ε maps are 96 × 200",
    ):
        data.load_uploads([("field.npy", buf.getvalue()), ("k.npy", kbuf.getvalue())])
