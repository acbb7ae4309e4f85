"""Checks of ε, κ and sample names: shapes, dtypes, finiteness and physical bounds.

The shape and dtype checks work on what a file *declares* (a ``.npy`` header, an HDF5
dataspace), so the readers run them before reading any data; the value checks run on
the float32 output, :data:`~lensviz.data.limits.READ_BLOCK_SAMPLES` samples at a time.

Field sizes
    A map is ``(ny, nx)`` with :data:`~lensviz.data.limits.MIN_FIELD_PX` ≤ ny, nx ≤
    :data:`~lensviz.data.limits.MAX_FIELD_PX`, square or not: the challenge's 128 × 128
    tiles and whole survey fields alike. Every map of one dataset has the same size
    (:func:`check_same_field`); a dataset's size is its *field*, ``(ny, nx)``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence

import numpy as np

from lensviz.constants import NPIX
from lensviz.data.errors import DataError, DataTypeError, LimitError, quote
from lensviz.data.limits import (
    DELTA_EPS_MAX,
    EPS_COMPONENT_MAX,
    KAPPA_ABS_MAX,
    MAX_DECLARED_BYTES,
    MAX_FIELD_PX,
    MAX_NAME_CHARS,
    MAX_READ_BYTES,
    MIN_FIELD_PX,
    READ_BLOCK_BYTES,
    READ_BLOCK_SAMPLES,
)

__all__ = [
    "EPS_LAST",
    "EPS_FIRST",
    "MAP",
    "validate_epsilon",
    "validate_kappa",
    "validate_names",
    "epsilon_layout",
    "kappa_layout",
    "kappa_count",
    "eps_row",
    "check_same_field",
    "check_float_dtype",
    "check_declared_size",
    "check_read_size",
    "check_epsilon_values",
    "check_kappa_values",
    "check_counts",
    "check_same_length",
    "slice_bounds",
    "check_batch_size",
    "batch_within_budget",
    "block_rows",
]

EPS_LAST = (NPIX, NPIX, 3)  # one 128 × 128 ε tile, channels last (lensviz)
EPS_FIRST = (3, NPIX, NPIX)  # one 128 × 128 ε tile, channels first (the challenge files)
MAP = (NPIX, NPIX)  # one 128 × 128 κ tile

_SIZES = f"{MIN_FIELD_PX} ≤ ny, nx ≤ {MAX_FIELD_PX}"
_EPS_EXPECTED = (
    "(ny, nx, 3) or (3, ny, nx) for one sample, or (N, ny, nx, 3) or (N, 3, ny, nx) for N "
    f"samples, with {_SIZES} (the challenge's tiles are 128 × 128)"
)
_KAPPA_EXPECTED = f"(ny, nx) for one map or (N, ny, nx) for N maps, with {_SIZES}"
_FLOAT_SIZES = (2, 4, 8)  # float16, float32, float64
_EPS_AXES = ("sample", "y", "x", "channel")
_KAPPA_AXES = ("map", "y", "x")
_CHANNELS = ("e1", "e2", "Δε")


# === Declared shapes and dtypes ===


def check_float_dtype(dtype, source: str, what: str, shape=None) -> np.dtype:
    """Refuse any dtype but float16/32/64 (either byte order).

    Raises
    ------
    DataTypeError
        Naming ``source``, ``what`` and the dtype found.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize not in _FLOAT_SIZES:
        found = "" if shape is None else f" (shape {tuple(shape)})"
        raise DataTypeError(
            f"{source}: {what} has dtype {quote(dtype)}{found}; "
            "expected float16, float32 or float64"
        )
    return dtype


def check_declared_size(shape: Sequence[int], itemsize: int, source: str, what: str) -> int:
    """Bytes an array of ``shape`` declares; refuse absurd shapes before any allocation.

    Raises
    ------
    DataError
        A negative dimension.
    LimitError
        More than :data:`~lensviz.data.limits.MAX_DECLARED_BYTES`.
    """
    if any(int(d) < 0 for d in shape):
        raise DataError(
            f"{source}: {what} declares the shape {quote(tuple(shape))}, "
            "which has a negative dimension"
        )
    nbytes = math.prod(int(d) for d in shape) * int(itemsize)
    if nbytes > MAX_DECLARED_BYTES:
        raise LimitError(
            f"{source}: {what} declares the shape {quote(tuple(shape))} "
            f"({nbytes / 2**30:.3g} GiB); the limit is "
            f"{MAX_DECLARED_BYTES / 2**30:.0f} GiB per array "
            "(lensviz.data.limits.MAX_DECLARED_BYTES)"
        )
    return nbytes


def _is_field(dims: Sequence[int]) -> bool:
    return len(dims) == 2 and all(MIN_FIELD_PX <= d <= MAX_FIELD_PX for d in dims)


def _size_hint(dims: Sequence[int]) -> str:
    """Why a body of the right rank is not a field: too small or too large."""
    if len(dims) == 2 and all(d > 0 for d in dims):
        if min(dims) < MIN_FIELD_PX:
            return f" (a map needs at least {MIN_FIELD_PX} pixels a side)"
        if max(dims) > MAX_FIELD_PX:
            return (
                f" (a map has at most {MAX_FIELD_PX} pixels a side, "
                "lensviz.data.limits.MAX_FIELD_PX)"
            )
    return ""


def epsilon_layout(
    shape: Sequence[int], source: str, what: str = "ε"
) -> tuple[int, bool, tuple[int, int]]:
    """Samples, layout and field size of an ε array from its (declared) shape.

    Parameters
    ----------
    shape : sequence of int
        ``(ny, nx, 3)``, ``(3, ny, nx)``, ``(N, ny, nx, 3)`` or ``(N, 3, ny, nx)`` with
        ``MIN_FIELD_PX ≤ ny, nx ≤ MAX_FIELD_PX`` (64 and 2048).
    source : str
        Used in error messages.
    what : str, optional
        What the array is, for messages (e.g. ``"dataset 'epsilon'"``).

    Returns
    -------
    n : int
        Number of samples (1 for a 3-D shape).
    channels_first : bool
    field : tuple of int
        ``(ny, nx)``.

    Raises
    ------
    DataError
        Any other shape, or no sample.

    Notes
    -----
    The layout is decided by where the axis of length 3 sits: last → channels-last,
    right after the batch axis (or first, for a single sample) → channels-first. A
    3-D array is always one sample and a 4-D array always a batch. Since a map side is
    at least 64, no shape matches both layouts.

    Examples
    --------
    >>> epsilon_layout((3, 256, 200), "f.npy")
    (1, True, (256, 200))
    """
    shape = tuple(int(d) for d in shape)
    body = shape if len(shape) == 3 else shape[1:] if len(shape) == 4 else ()
    if len(body) == 3 and body[-1] == 3 and _is_field(body[:2]):
        channels_first, field = False, body[:2]
    elif len(body) == 3 and body[0] == 3 and _is_field(body[1:]):
        channels_first, field = True, body[1:]
    else:
        dims = body[:2] if body[-1:] == (3,) else body[1:] if body[:1] == (3,) else ()
        raise DataError(
            f"{source}: {what} has shape {quote(shape)}{_size_hint(dims)}; expected {_EPS_EXPECTED}"
        )
    n = 1 if len(shape) == 3 else shape[0]
    if n == 0:
        raise DataError(f"{source}: {what} has shape {shape}, which holds no samples")
    return n, channels_first, field


def kappa_layout(shape: Sequence[int], source: str, what: str = "κ") -> tuple[int, tuple[int, int]]:
    """Number of κ maps and their size ``(ny, nx)`` from a (declared) ``shape``.

    ``what`` names the array in messages, as in :func:`epsilon_layout`.

    Raises
    ------
    DataError
        A shape other than ``(ny, nx)`` or ``(N, ny, nx)`` with
        ``MIN_FIELD_PX ≤ ny, nx ≤ MAX_FIELD_PX``, or no map.
    """
    shape = tuple(int(d) for d in shape)
    body = shape if len(shape) == 2 else shape[1:] if len(shape) == 3 else ()
    if not _is_field(body):
        raise DataError(
            f"{source}: {what} has shape {quote(shape)}{_size_hint(body)}; "
            f"expected {_KAPPA_EXPECTED}"
        )
    n = 1 if len(shape) == 2 else shape[0]
    if n == 0:
        raise DataError(f"{source}: {what} has shape {shape}, which holds no maps")
    return n, body


def kappa_count(shape: Sequence[int], source: str) -> int:
    """Number of κ maps an array of (declared) ``shape`` holds (see :func:`kappa_layout`)."""
    return kappa_layout(shape, source)[0]


def eps_row(field: Sequence[int], channels_first: bool = False) -> tuple[int, int, int]:
    """The shape of one ε sample of size ``field``: ``(ny, nx, 3)`` or ``(3, ny, nx)``."""
    ny, nx = (int(d) for d in field)
    return (3, ny, nx) if channels_first else (ny, nx, 3)


def check_same_field(field, other, source: str, what: str = "κ") -> None:
    """Refuse maps of another size than the dataset's: a dataset holds one field size.

    Parameters
    ----------
    field : tuple of int
        ``(ny, nx)`` of the dataset (its ε).
    other : tuple of int
        ``(ny, nx)`` of the maps being added or paired.
    source : str
    what : str, optional
        What ``other`` is, for the message.

    Raises
    ------
    DataError
    """
    field, other = tuple(int(d) for d in field), tuple(int(d) for d in other)
    if field != other:
        raise DataError(
            f"{source}: {what} maps are {other[0]} × {other[1]} pixels but the "
            f"dataset's ε maps are {field[0]} × {field[1]}; a dataset holds maps "
            "of one size"
        )


def _sample_bytes(field, kappa: bool) -> int:
    ny, nx = (int(d) for d in field)
    return 4 * ny * nx * (3 + (1 if kappa else 0))


def check_read_size(n: int, source: str, kappa: bool = True, field: Sequence[int] = MAP) -> None:
    """Refuse a read whose float32 output exceeds :data:`~lensviz.data.limits.MAX_READ_BYTES`.

    Parameters
    ----------
    n : int
        Samples to read.
    source : str
    kappa : bool, optional
        Whether κ maps are read too (``16 ny nx`` bytes per sample instead of ``12 ny nx``).
    field : tuple of int, optional
        ``(ny, nx)`` of the maps (default 128 × 128).

    Raises
    ------
    LimitError
    """
    per_sample = _sample_bytes(field, kappa)
    if n * per_sample > MAX_READ_BYTES:
        raise LimitError(
            f"{source}: the selection holds {n} samples ({n * per_sample / 2**20:.3g} MiB as "
            f"float32); one read returns at most {MAX_READ_BYTES / 2**20:.3g} MiB, "
            f"{MAX_READ_BYTES // per_sample} samples (lensviz.data.limits.MAX_READ_BYTES). "
            "Read it in batches (lensviz.data.iter_dataset, or the command line), or pass "
            "start/stop"
        )


def batch_within_budget(batch_size: int, field: Sequence[int], kappa: bool = True) -> int:
    """``batch_size`` lowered, if need be, so that one batch fits one read's budget.

    The streaming readers call this, so a batch size chosen for 128 × 128 tiles still
    works on a dataset of large fields.
    """
    return max(1, min(int(batch_size), MAX_READ_BYTES // _sample_bytes(field, kappa)))


def block_rows(row_elements: int) -> int:
    """Samples decoded or checked at a time: :data:`~lensviz.data.limits.READ_BLOCK_SAMPLES`,
    fewer when that many would exceed :data:`~lensviz.data.limits.READ_BLOCK_BYTES` of float64.
    """
    return max(1, min(READ_BLOCK_SAMPLES, READ_BLOCK_BYTES // (8 * max(int(row_elements), 1))))


# === Values ===


def _location(index, axes) -> str:
    return ", ".join(f"{a}={int(i)}" for a, i in zip(axes, index, strict=True))


def _scan(out: np.ndarray, bad_of, source: str, axes, offset: int):
    """Count the entries ``bad_of(block)`` marks, block by block; return (count, first)."""
    count, first = 0, None
    step = block_rows(out[0].size if len(out) else 1)
    for i in range(0, len(out), step):
        bad = bad_of(out[i : i + step])
        k = int(np.count_nonzero(bad))
        if k and first is None:
            where = np.argwhere(bad)[0]
            where[0] += i + offset
            first = tuple(int(j) for j in where)
        count += k
    return count, first


def _check_finite(out, source: str, what: str, axes, offset: int) -> None:
    count, first = _scan(out, lambda b: ~np.isfinite(b), source, axes, offset)
    if count:
        raise DataError(
            f"{source}: {what} contains {count} NaN or infinite value(s) "
            f"(first at {_location(first, axes)}); expected finite values"
        )


def _all_within(values: np.ndarray, low: float, high: float) -> bool:
    """True when every value is finite and in ``[low, high]``: two reductions, no copies.

    The fast path of the value checks: NaN makes ``min``/``max`` NaN and ±inf falls
    outside the bounds, so anything doubtful goes on to the block scans, which find
    and describe the first bad value.
    """
    if values.size == 0:
        return True
    return bool(values.min() >= low and values.max() <= high)


def _value_at(out, first, offset: int) -> float:
    return float(out[(first[0] - offset, *first[1:])])


def check_epsilon_values(out: np.ndarray, source: str, offset: int = 0) -> None:
    """Check finite ε within the physical bounds of :mod:`lensviz.data.limits`.

    Parameters
    ----------
    out : ndarray, shape (n, ny, nx, 3), float32
    source : str
    offset : int, optional
        Index of ``out[0]`` in the array the message should count in.

    Raises
    ------
    DataError
        NaN/Inf, ``|e1|`` or ``|e2|`` above ``EPS_COMPONENT_MAX`` or Δε outside
        ``[0, DELTA_EPS_MAX]``; the message gives the count, the first offending value
        and where it is.
    """
    # Fast path (a fifth of the scans' time): every value within ±EPS_COMPONENT_MAX,
    # which bounds e1, e2 and Δε from above, and Δε not negative.
    limit = min(EPS_COMPONENT_MAX, DELTA_EPS_MAX)
    if _all_within(out, -limit, limit) and _all_within(out[..., 2], 0.0, limit):
        return
    _check_finite(out, source, "ε", _EPS_AXES, offset)
    count, first = _scan(
        out, lambda b: np.abs(b[..., :2]) > EPS_COMPONENT_MAX, source, _EPS_AXES, offset
    )
    if count:
        raise DataError(
            f"{source}: {_CHANNELS[first[3]]} = {_value_at(out, first, offset):.6g} at "
            f"{_location(first, _EPS_AXES)} ({count} value(s) out of bounds); expected "
            f"|e1|, |e2| ≤ {EPS_COMPONENT_MAX:g} (lensviz.data.limits.EPS_COMPONENT_MAX)"
        )
    count, first = _scan(
        out, lambda b: (b[..., 2:] < 0) | (b[..., 2:] > DELTA_EPS_MAX), source, _EPS_AXES, offset
    )
    if count:
        first = (*first[:3], 2)
        raise DataError(
            f"{source}: Δε = {_value_at(out, first, offset):.6g} at "
            f"{_location(first, _EPS_AXES)} ({count} value(s) out of bounds); expected a "
            f"standard deviation 0 ≤ Δε ≤ {DELTA_EPS_MAX:g} (lensviz.data.limits.DELTA_EPS_MAX)"
        )


def check_kappa_values(out: np.ndarray, source: str, offset: int = 0) -> None:
    """Check finite κ with ``|κ| ≤ KAPPA_ABS_MAX``.

    Raises
    ------
    DataError
        As :func:`check_epsilon_values`.
    """
    if _all_within(out, -KAPPA_ABS_MAX, KAPPA_ABS_MAX):  # fast path, as for ε
        return
    _check_finite(out, source, "κ", _KAPPA_AXES, offset)
    count, first = _scan(out, lambda b: np.abs(b) > KAPPA_ABS_MAX, source, _KAPPA_AXES, offset)
    if count:
        raise DataError(
            f"{source}: κ = {_value_at(out, first, offset):.6g} at "
            f"{_location(first, _KAPPA_AXES)} ({count} value(s) out of bounds); expected "
            f"|κ| ≤ {KAPPA_ABS_MAX:g} (lensviz.data.limits.KAPPA_ABS_MAX)"
        )


def _as_float_array(arr, source: str, what: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except (ValueError, TypeError) as exc:
            raise DataTypeError(f"{source}: {what} is not a numeric array ({quote(exc)})") from exc
    check_float_dtype(arr.dtype, source, what, arr.shape)
    return arr


def _as_float32(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # overflow becomes inf, reported by the value check
        return np.ascontiguousarray(a, dtype=np.float32)


def validate_epsilon(arr, source: str = "array") -> np.ndarray:
    """Check an ε (ellipticity) array and return it as a channels-last float32 batch.

    Parameters
    ----------
    arr : array_like
        One sample, ``(ny, nx, 3)`` (channels last) or ``(3, ny, nx)`` (channels first,
        the challenge files), or a batch ``(N, ny, nx, 3)`` or ``(N, 3, ny, nx)``, with
        ``64 ≤ ny, nx ≤ 2048`` (:data:`~lensviz.data.limits.MIN_FIELD_PX`,
        :data:`~lensviz.data.limits.MAX_FIELD_PX`). Channels are ``(e1, e2, Δε)``.
        float16, float32 or float64.
    source : str, optional
        What the array came from (usually a file name); used in error messages.

    Returns
    -------
    ndarray, shape (N, ny, nx, 3), float32
        C-contiguous; shares memory with ``arr`` when that already has this form.

    Raises
    ------
    DataTypeError
        If the dtype is not float16/32/64 (integer, complex, object, bool, ...); a
        :class:`TypeError`.
    DataError
        If the shape is none of the above, the batch is empty, a value is NaN or
        infinite (also after conversion to float32), ``|e1|`` or ``|e2|`` exceeds
        :data:`~lensviz.data.limits.EPS_COMPONENT_MAX`, or Δε lies outside
        ``[0, DELTA_EPS_MAX]``; a :class:`ValueError`.

    Notes
    -----
    See :func:`epsilon_layout` for how the layout is told from the shape.

    Examples
    --------
    >>> validate_epsilon(np.zeros((3, 128, 128), np.float16), "a.npy").shape
    (1, 128, 128, 3)
    >>> validate_epsilon(np.zeros((384, 256, 3)), "field.npy").shape
    (1, 384, 256, 3)
    """
    a = _as_float_array(arr, source, "ε")
    _, channels_first, _ = epsilon_layout(a.shape, source)
    if a.ndim == 3:
        a = a[None]
    if channels_first:
        a = np.moveaxis(a, 1, -1)
    out = _as_float32(a)
    check_epsilon_values(out, source)
    return out


def validate_kappa(arr, source: str = "array") -> np.ndarray:
    """Check a κ (convergence) array and return it as a float32 batch.

    Parameters
    ----------
    arr : array_like
        One map ``(ny, nx)`` or a batch ``(N, ny, nx)``, ``64 ≤ ny, nx ≤ 2048``; float16,
        float32 or float64.
    source : str, optional
        What the array came from; used in error messages.

    Returns
    -------
    ndarray, shape (N, ny, nx), float32

    Raises
    ------
    DataTypeError
        If the dtype is not float16/32/64.
    DataError
        If the shape is wrong, the batch is empty, a value is NaN or infinite, or
        ``|κ|`` exceeds :data:`~lensviz.data.limits.KAPPA_ABS_MAX`.
    """
    a = _as_float_array(arr, source, "κ")
    kappa_count(a.shape, source)
    out = _as_float32(a[None] if a.ndim == 2 else a)
    check_kappa_values(out, source)
    return out


def check_counts(n_eps: int, n_kappa: int | None, source: str) -> None:
    """Refuse ε and κ that hold different numbers of samples (``n_kappa`` None: no κ)."""
    if n_kappa is not None and n_kappa != n_eps:
        raise DataError(
            f"{source}: ε holds {n_eps} samples but κ holds {n_kappa} maps; "
            "expected one κ map per ε sample"
        )


def check_same_length(eps: np.ndarray, kappa: np.ndarray | None, source: str) -> None:
    """Refuse ε and κ arrays of different lengths or of different map sizes."""
    check_counts(len(eps), None if kappa is None else len(kappa), source)
    if kappa is not None:
        check_same_field(eps.shape[1:3], kappa.shape[1:3], source)


def _check_one_name(name: str, source: str) -> str:
    if len(name) > MAX_NAME_CHARS:
        raise DataError(
            f"{source}: a sample name has {len(name)} characters "
            f"({quote(name, 40)}); expected at most {MAX_NAME_CHARS} "
            "(lensviz.data.limits.MAX_NAME_CHARS)"
        )
    if not name.isprintable():
        raise DataError(
            f"{source}: the sample name '{quote(name, 60)}' holds control "
            "characters; expected printable text"
        )
    return name


def validate_names(names: Iterable | None, n: int, source: str) -> list[str]:
    """Sample names as a list of ``n`` printable str (``"000000"``, … when ``None``).

    Parameters
    ----------
    names : iterable of str or bytes, or None
        Bytes must be UTF-8.
    n : int
        Expected number of names.
    source : str

    Returns
    -------
    list of str

    Raises
    ------
    DataTypeError
        A name that is not text, or ``names`` given as one str.
    DataError
        A wrong count, bytes that are not UTF-8, a name longer than
        :data:`~lensviz.data.limits.MAX_NAME_CHARS` or holding control characters.
    """
    if names is None:
        return [f"{i:06d}" for i in range(n)]
    if isinstance(names, (str, bytes)):
        raise DataTypeError(
            f"{source}: names must be a sequence of str, got a single {type(names).__name__}"
        )
    if hasattr(names, "__len__") and len(names) != n:
        raise DataError(f"{source}: got {len(names)} names for {n} samples; expected one each")
    out = []
    for name in names:
        if isinstance(name, (bytes, np.bytes_)):
            try:
                name = bytes(name).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{source}: the sample name '{quote(bytes(name), 60)}' is "
                    "not UTF-8; expected UTF-8 text"
                ) from exc
        if not isinstance(name, (str, np.str_)):
            raise DataTypeError(
                f"{source}: names must be str, got {type(name).__name__} {quote(repr(name), 60)}"
            )
        out.append(_check_one_name(str(name), source))
        if len(out) > n:
            break
    if len(out) != n:
        got = f"{len(out)}" if len(out) <= n else f"more than {n}"
        raise DataError(f"{source}: got {got} names for {n} samples; expected one each")
    return out


def slice_bounds(n: int, start, stop, source: str) -> tuple[int, int]:
    """``(start, stop)`` clipped to ``n`` samples; an empty selection is an error."""
    start = operator.index(start)
    stop = n if stop is None else operator.index(stop)
    if start < 0 or stop < 0:
        raise DataError(f"start and stop must be non-negative, got start={start}, stop={stop}")
    stop = min(stop, n)
    if start >= stop:
        raise DataError(
            f"{source}: the selection [{start}:{stop}] holds no samples; it holds {n} sample(s)"
        )
    return start, stop


def check_batch_size(batch_size) -> int:
    """A positive integer batch size."""
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
