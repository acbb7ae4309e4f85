"""lensviz.data.validate: shapes, dtypes, finiteness and physical bounds of ε, κ and names."""

import numpy as np
import pytest

from lensviz import data

N = 4

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
