"""lensviz.data.validate: shapes, dtypes, finiteness and physical bounds of ε, κ and names."""

import numpy as np
import pytest

from lensviz import data
from lensviz.data.errors import quote
from lensviz.data.validate import check_declared_size, validate_names

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


@pytest.mark.parametrize(
    "shape",
    [
        (128, 128),
        (128, 128, 4),
        (4, 128, 128),
        (2, 128, 128, 2),
        (2, 63, 64, 3),
        (0, 128, 128, 3),
        (1, 1, 128, 128, 3),
        (128, 3, 128),
        (3, 64, 2049),
        (2, 3, 32, 32),
    ],
)
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
    for shape in [(128,), (128, 63), (2, 128, 128, 1), (0, 128, 128), (2049, 64)]:
        with pytest.raises(ValueError, match=r"k\.npy.*κ has shape"):
            data.validate_kappa(np.zeros(shape, np.float32), "k.npy")
    with pytest.raises(TypeError, match=r"k\.npy.*int64"):
        data.validate_kappa(np.zeros((128, 128), np.int64), "k.npy")
    bad = kappa.copy()
    bad[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"map=1, y=3, x=4"):
        data.validate_kappa(bad, "k.npy")


# === Physical bounds (lensviz.data.limits) ===


@pytest.mark.parametrize(
    "channel, value, match",
    [
        (0, 5.5, r"e1 = 5\.5 at sample=1, y=2, x=3, channel=0 .*\|e1\|, \|e2\| ≤ 5"),
        (1, -1e36, r"e2 = -1e\+36 at sample=1, y=2, x=3"),
        (2, -0.01, r"Δε = -0\.01 at sample=1, y=2, x=3.*0 ≤ Δε ≤ 10"),
        (2, 10.5, r"Δε = 10\.5 at"),
    ],
)
def test_validate_epsilon_refuses_values_beyond_physical_bounds(arrays, channel, value, match):
    eps = arrays[0].copy()
    eps[1, 2, 3, channel] = value
    with pytest.raises(data.DataError, match=r"^bad\.h5: " + match):
        data.validate_epsilon(eps, "bad.h5")


def test_values_at_the_bounds_are_accepted(arrays):
    eps, kappa = arrays[0].copy(), arrays[1].copy()
    eps[0, 0, 0] = (
        data.limits.EPS_COMPONENT_MAX,
        -data.limits.EPS_COMPONENT_MAX,
        data.limits.DELTA_EPS_MAX,
    )
    eps[0, 0, 1, 2] = 0.0
    kappa[0, 0, 0], kappa[0, 0, 1] = data.limits.KAPPA_ABS_MAX, -data.limits.KAPPA_ABS_MAX
    np.testing.assert_array_equal(data.validate_epsilon(eps, "x"), eps)
    np.testing.assert_array_equal(data.validate_kappa(kappa, "x"), kappa)


def test_validate_kappa_refuses_values_beyond_bounds(arrays):
    kappa = arrays[1].copy()
    kappa[3, 100, 7] = -150.0
    kappa[0, 0, 0] = 101.0
    with pytest.raises(data.DataError, match=r"k\.npy: κ = 101 at map=0, y=0, x=0 \(2 value"):
        data.validate_kappa(kappa, "k.npy")


def test_the_empty_pixel_marker_is_within_the_delta_eps_bound():
    from lensviz.constants import EMPTY_PIXEL_SIGMA

    assert 0 < EMPTY_PIXEL_SIGMA <= data.limits.DELTA_EPS_MAX
    # float16 (the challenge files) holds every value within the bounds.
    assert (
        max(data.limits.EPS_COMPONENT_MAX, data.limits.DELTA_EPS_MAX, data.limits.KAPPA_ABS_MAX)
        < np.finfo(np.float16).max
    )


def test_value_errors_are_counted_over_the_whole_array(arrays):
    eps = arrays[0].copy()
    eps[0, 0, 0, 0] = np.nan
    eps[3, 127, 127, 2] = np.inf  # in another block of READ_BLOCK_SAMPLES? same block, N=4
    big = np.concatenate([eps] + [arrays[0]] * 20)  # 84 samples: two blocks
    big[80, 1, 1, 1] = np.nan
    with pytest.raises(data.DataError, match=r"3 NaN or infinite value\(s\) \(first at sample=0"):
        data.validate_epsilon(big, "x")


# === Names ===


@pytest.mark.parametrize(
    "names, match",
    [
        (["a\x1b[2Jb"], r"holds control characters"),
        (["x" * 256], r"has 256 characters .*at most 255"),
        ([b"\xff\xfe"], r"is not UTF-8"),
        (["a", "b"], r"got 2 names for 1 samples"),
        (["a\u202eb"], r"holds control characters"),
    ],
)
def test_validate_names_refuses(names, match):
    with pytest.raises(data.DataError, match=r"^f\.h5: .*" + match):
        validate_names(names, 1, "f.h5")


def test_validate_names_accepts_unicode_and_bytes():
    assert validate_names(["ñame-0", b"caf\xc3\xa9"], 2, "f") == ["ñame-0", "café"]
    assert validate_names(None, 2, "f") == ["000000", "000001"]
    with pytest.raises(data.DataTypeError):
        validate_names([1], 1, "f")
    with pytest.raises(TypeError):  # a DataTypeError is a TypeError too
        validate_names("ab", 2, "f")


# === Error types and messages ===


def test_error_types_fit_the_documented_contract():
    assert issubclass(data.DataError, ValueError)
    assert issubclass(data.DataTypeError, data.DataError)
    assert issubclass(data.DataTypeError, TypeError)
    assert issubclass(data.UnsafeFileError, data.DataError)
    assert issubclass(data.LimitError, data.DataError)


def test_messages_are_one_printable_line():
    err = data.DataError("x.npy: bad\nname \x1b[2J here")
    assert str(err) == "x.npy: bad\\nname \\x1b[2J here"
    assert quote(b"bad\xffname\n") == "bad\\xffname\\n"
    assert quote("y" * 500, 10) == "y" * 9 + "…"


def test_declared_sizes_are_checked_before_allocation():
    with pytest.raises(data.LimitError, match=r"x: the header declares .*1024 GiB"):
        check_declared_size((10**13, 128, 128, 3), 4, "x", "the header")
    with pytest.raises(data.DataError, match="negative dimension"):
        check_declared_size((-1, 128), 4, "x", "the header")
    assert check_declared_size((2, 128, 128, 3), 4, "x", "y") == 2 * 196608
