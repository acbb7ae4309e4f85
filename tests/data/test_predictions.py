"""Prediction files: PredictionWriter (streamed, atomic) and read_predictions."""

import h5py
import numpy as np
import pytest

from lensviz import data
from lensviz._atomic import is_temp_name
from lensviz.data import DataError, PredictionWriter, read_predictions, write_predictions


@pytest.fixture
def maps(rng):
    """7 smooth κ-like maps and their names."""
    kappa = (0.05 * rng.standard_normal((7, 128, 128))).astype(np.float32)
    return kappa, [f"map{i}" for i in range(7)]


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if is_temp_name(p.name)]


def test_batches_streamed_equal_one_write_of_the_whole_array(tmp_path, maps):
    kappa, names = maps
    std = np.abs(kappa) + 0.01
    with PredictionWriter(tmp_path / "s.h5", attrs={"method": "ks93"}) as writer:
        for i in range(0, 7, 3):  # batches of 3, 3, 1
            writer.append(kappa[i : i + 3], names[i : i + 3], std[i : i + 3])
    assert writer.n_written == 7
    write_predictions(tmp_path / "w.h5", kappa, names, attrs={"method": "ks93"}, kappa_std=std)
    with h5py.File(tmp_path / "s.h5") as s, h5py.File(tmp_path / "w.h5") as w:
        for key in ("kappa_pred", "kappa_std"):
            np.testing.assert_array_equal(s[key][:], w[key][:])
            np.testing.assert_array_equal(s[key][:], kappa if key == "kappa_pred" else std)
            assert s[key].chunks == (1, 128, 128)  # one map per chunk: read by map
            assert s[key].compression is None and s[key].maxshape == (None, 128, 128)
        assert [n.decode() for n in s["names"][:]] == names
        assert s.attrs["method"] == "ks93" and s.attrs["format"] == "lensviz-predictions"
    k, n, attrs = read_predictions(tmp_path / "s.h5", 2, 5)
    np.testing.assert_array_equal(k, kappa[2:5])
    assert n == names[2:5] and attrs["dtype"] == "float32"


def test_float16_holds_exactly_the_rounded_float32_maps(tmp_path, maps):
    kappa, names = maps
    with PredictionWriter(tmp_path / "h.h5", dtype="float16") as w:
        w.append(kappa[:4], names[:4])
        w.append(kappa[4:], names[4:])
    with h5py.File(tmp_path / "h.h5") as f:
        assert f["kappa_pred"].dtype == np.float16
        np.testing.assert_array_equal(f["kappa_pred"][:], kappa.astype(np.float16))
    k, _, attrs = read_predictions(tmp_path / "h.h5")
    assert k.dtype == np.float32 and attrs["dtype"] == "float16"
    np.testing.assert_array_equal(k, kappa.astype(np.float16).astype(np.float32))
    assert np.abs(k - kappa).max() <= 2**-11 * np.abs(kappa).max()  # half-precision rounding


def test_gzip_is_available_and_read_back(tmp_path, maps):
    kappa, names = maps
    write_predictions(tmp_path / "g.h5", kappa, names, compression="gzip")
    with h5py.File(tmp_path / "g.h5") as f:
        assert f["kappa_pred"].compression == "gzip" and f["kappa_pred"].shuffle
    np.testing.assert_array_equal(read_predictions(tmp_path / "g.h5")[0], kappa)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_neither_output_nor_temporaries(tmp_path, maps, error):
    kappa, names = maps
    with pytest.raises(type(error)):
        with PredictionWriter(tmp_path / "p.h5") as w:
            w.append(kappa[:3], names[:3])
            raise error
    assert not (tmp_path / "p.h5").exists()
    assert _leftovers(tmp_path) == []


def test_bad_batches_are_refused_and_nothing_is_written(tmp_path, maps):
    kappa, names = maps
    cases = [
        (lambda w: w.append(kappa[:2] * 0 + np.nan, names[:2]), "NaN"),
        (lambda w: w.append(kappa[:2], names[:1]), "names"),
        (
            lambda w: (w.append(kappa[:2], names[:2]), w.append(kappa[2:4, :64, :64], names[2:4])),
            "128",
        ),
        (
            lambda w: (w.append(kappa[:2], names[:2], kappa[:2]), w.append(kappa[2:4], names[2:4])),
            "kappa_std",
        ),
        (lambda w: w.append(kappa[:2], names[:2], kappa[:1]), "kappa_std"),
    ]
    for append, message in cases:
        with pytest.raises(DataError, match=message):
            with PredictionWriter(tmp_path / "bad.h5") as w:
                append(w)
        assert not (tmp_path / "bad.h5").exists() and _leftovers(tmp_path) == []
    with pytest.raises(DataError, match="no maps were written"):
        with PredictionWriter(tmp_path / "empty.h5"):
            pass
    assert not (tmp_path / "empty.h5").exists()
    with pytest.raises(ValueError, match="dtype"):
        PredictionWriter(tmp_path / "x.h5", dtype="float64")
    with pytest.raises(ValueError, match="not open"):
        PredictionWriter(tmp_path / "x.h5").append(kappa[:1], names[:1])


def test_overwrite_is_needed_to_replace_a_file(tmp_path, maps):
    kappa, names = maps
    path = tmp_path / "p.h5"
    write_predictions(path, kappa[:2], names[:2])
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        write_predictions(path, kappa, names)
    assert path.read_bytes() == before
    write_predictions(path, kappa, names, overwrite=True)
    assert len(read_predictions(path)[1]) == 7


def test_the_package_exports_the_writer():
    assert data.PredictionWriter is PredictionWriter
    assert "PredictionWriter" in data.__all__


def test_the_mask_of_the_input_travels_with_the_predictions(tmp_path, maps):
    maps, names = maps
    mask = np.zeros(maps.shape, bool)
    mask[2, 10:30, 40:50] = True
    mask[5, :, :3] = True
    with PredictionWriter(tmp_path / "p.h5") as w:
        for i in range(0, len(maps), 4):
            w.append(
                maps[i : i + 4],
                names[i : i + 4],
                mask=mask[i : i + 4],
            )
    np.testing.assert_array_equal(data.read_prediction_mask(tmp_path / "p.h5"), mask)
    np.testing.assert_array_equal(data.read_prediction_mask(tmp_path / "p.h5", 5, 6), mask[5:6])
    with h5py.File(tmp_path / "p.h5") as f:
        assert f["mask"].dtype == np.uint8 and f["mask"].compression == "gzip"
    write_predictions(tmp_path / "none.h5", maps, names)
    assert data.read_prediction_mask(tmp_path / "none.h5") is None  # a file without mask
    # Given for some batches only, or of another shape: refused, nothing written.
    with pytest.raises(DataError, match="earlier batches were written with mask"):
        with PredictionWriter(tmp_path / "bad.h5") as w:
            w.append(maps[:2], ["a", "b"], mask=mask[:2])
            w.append(maps[2:4], ["c", "d"])
    with pytest.raises(DataError, match=r"mask has shape \(2, 5, 5\)"):
        with PredictionWriter(tmp_path / "bad.h5") as w:
            w.append(maps[:2], ["a", "b"], mask=np.zeros((2, 5, 5), bool))
    assert not (tmp_path / "bad.h5").exists()
    # A hostile mask: values other than 0 and 1.
    with h5py.File(tmp_path / "p.h5", "r+") as f:
        f["mask"][0, 0, 0] = 7
    with pytest.raises(DataError, match="values other than 0 and 1"):
        data.read_prediction_mask(tmp_path / "p.h5")
