"""``.npy`` and ``.npz`` files, read from their declared headers, never by unpickling.

An ``.npy`` file is read in three steps: its magic and header are parsed with
:func:`numpy.lib.format.read_magic` and ``read_array_header_*`` (numpy's own parser,
with its header-size limit); the declared shape and dtype are checked against what
lensviz expects and against :mod:`lensviz.data.limits`; only then are the requested
rows read, :data:`~lensviz.data.limits.READ_BLOCK_SAMPLES` at a time, into a float32
output. Object dtypes (pickles) are refused from the header, so nothing is ever
unpickled.

An ``.npz`` archive is a zip file of ``.npy`` members. Before :mod:`zipfile` parses it,
its end-of-directory record is read (the way :mod:`zipfile` finds it) and the central
directory is refused beyond :data:`~lensviz.data.limits.MAX_ZIP_DIRECTORY_BYTES`; the
archive may hold at most :data:`~lensviz.data.limits.MAX_ZIP_MEMBERS` entries, each
stored or deflated (the two methods :func:`numpy.savez` uses), unencrypted, and no
larger than :data:`~lensviz.data.limits.MAX_ZIP_MEMBER_BYTES`. Members are decompressed
as a stream, only as far as the rows requested, so a "zip bomb" costs no more memory
than the rows it is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from lensviz.data.errors import DataError, DataTypeError, LimitError, UnsafeFileError, quote
from lensviz.data.limits import (
    MAX_COMPRESSION_RATIO,
    MAX_NAME_CHARS,
    MAX_NPY_HEADER_BYTES,
    MAX_READ_BYTES,
    MAX_ZIP_DIRECTORY_BYTES,
    MAX_ZIP_MEMBER_BYTES,
    MAX_ZIP_MEMBERS,
    RATIO_CHECK_BYTES,
)
from lensviz.data.sky import PixelGrid, check_pixel_arcmin
from lensviz.data.validate import (
    block_rows,
    check_counts,
    check_declared_size,
    check_epsilon_values,
    check_float_dtype,
    check_kappa_values,
    check_read_size,
    check_same_field,
    eps_row,
    epsilon_layout,
    kappa_layout,
    slice_bounds,
    validate_names,
)

__all__ = [
    "NpyHeader",
    "NpyArray",
    "NpzArchive",
    "open_npy",
    "open_npz",
    "load_npy",
    "npy_header",
    "read_epsilon",
    "read_kappa",
    "read_names",
    "npz_layout",
    "npz_grid",
    "PIXEL_KEY",
    "npy_names",
]

_PICKLE = (
    "it holds pickled or object data, which lensviz never loads (allow_pickle=False); "
    "save a float array with numpy.save"
)
# Whatever numpy's header parser may raise on a hostile header.
_HEADER_ERRORS = (
    ValueError,
    TypeError,
    SyntaxError,
    tokenize.TokenError,
    MemoryError,
    RecursionError,
    OverflowError,
    UnicodeError,
    EOFError,
    struct.error,
    OSError,
)
# Whatever reading a zip member's bytes may raise on a corrupt archive.
_STREAM_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ZIP_UNSUPPORTED_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, compressed patch, strong encryption
_EOCD = struct.Struct("<4s4H2LH")  # zip end-of-central-directory record (22 bytes)
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end-of-directory locator (20 bytes)
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # zip64 end-of-central-directory record (56 bytes)
_NAMES_KINDS = "US"  # str or bytes arrays of names
#: The array of an ``.npz`` holding the pixel side [arcmin].
PIXEL_KEY = "pixel_arcmin"


# === .npy headers ===


@dataclasses.dataclass(frozen=True)
class NpyHeader:
    """What an ``.npy`` header declares.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    fortran_order : bool
    offset : int
        Byte offset of the data in the stream.
    nbytes : int
        Bytes of data the header declares.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int
    nbytes: int


def _classify_wrong_magic(head: bytes, kind: str) -> str:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "is an .npz archive; expected a single .npy array"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"cannot read as {kind}: {_PICKLE}"
    if head.startswith(b"\x89HDF"):
        return f"is an HDF5 file, not {kind}; name it .h5"
    return (
        f"cannot read as {kind}: it is not a .npy file (it does not start with the "
        "\\x93NUMPY magic); save the array with numpy.save"
    )


def npy_header(fp, source: str, size: int, kind: str = ".npy") -> NpyHeader:
    """Parse and check the header of an ``.npy`` stream positioned at its start.

    Parameters
    ----------
    fp : binary file object
    source : str
        Name for messages.
    size : int
        Bytes in the stream (file size, or a zip member's size).
    kind : str, optional
        What the stream is read as, for messages.

    Returns
    -------
    NpyHeader

    Raises
    ------
    DataError
        Not a ``.npy`` stream, a garbled or truncated header, an object dtype (a
        pickle), a declared size the stream does not hold.
    LimitError
        A declared size beyond :data:`~lensviz.data.limits.MAX_DECLARED_BYTES`.
    """
    start = fp.tell()
    head = fp.read(len(npformat.MAGIC_PREFIX) + 2)
    if len(head) < len(npformat.MAGIC_PREFIX) + 2:
        if npformat.MAGIC_PREFIX.startswith(head):
            raise DataError(
                f"{source}: cannot read as {kind}: it is truncated or corrupt "
                f"(only {len(head)} bytes)"
            )
        raise DataError(f"{source}: {_classify_wrong_magic(head, kind)}")
    if not head.startswith(npformat.MAGIC_PREFIX):
        raise DataError(f"{source}: {_classify_wrong_magic(head, kind)}")
    version = (head[-2], head[-1])
    readers = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
    if version not in readers:
        raise DataError(
            f"{source}: cannot read as {kind}: format version {version} is not "
            "1.0 or 2.0, the versions numpy writes for numeric arrays"
        )
    try:
        shape, fortran_order, dtype = readers[version](fp, max_header_size=MAX_NPY_HEADER_BYTES)
    except _HEADER_ERRORS as exc:
        raise DataError(
            f"{source}: cannot read as {kind}: it is truncated or corrupt "
            f"(garbled header: {quote(exc, 80)})"
        ) from exc
    if dtype.hasobject:
        raise DataError(f"{source}: cannot read as {kind}: {_PICKLE}")
    if dtype.kind in "VMm" or dtype.subdtype is not None or dtype.itemsize == 0:
        raise DataTypeError(
            f"{source}: holds an array of dtype {quote(dtype, 60)}; expected "
            "float16, float32 or float64 (bool or integers for a mask): records, dates "
            "and time spans are refused"
        )
    nbytes = check_declared_size(shape, dtype.itemsize, source, f"the {kind} header")
    offset = fp.tell()
    held = size - (offset - start)
    if held < nbytes:
        raise DataError(
            f"{source}: cannot read as {kind}: it is truncated or corrupt (it "
            f"holds {max(held, 0)} of the {nbytes} data bytes its header declares "
            f"for shape {tuple(shape)} {dtype})"
        )
    return NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran_order), offset, nbytes)


class NpyArray:
    """An ``.npy`` stream whose header has been checked; reads rows on demand.

    Parameters
    ----------
    fp : binary file object
        Positioned at the start of the ``.npy`` data (the magic).
    source : str
    size : int
        Bytes in the stream.
    kind : str, optional
        For messages.
    """

    def __init__(self, fp, source: str, size: int, kind: str = ".npy"):
        self.fp = fp
        self.source = source
        self.kind = kind
        try:
            self.header = npy_header(fp, source, size, kind)
        except _STREAM_ERRORS as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(
                f"{source}: cannot read as {kind}: it is truncated or corrupt "
                f"({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc

    @property
    def shape(self) -> tuple[int, ...]:
        """The declared shape."""
        return self.header.shape

    @property
    def dtype(self) -> np.dtype:
        """The declared dtype."""
        return self.header.dtype

    def _readinto(self, buf: np.ndarray) -> None:
        if buf.size == 0:  # nothing to read (a zero-size array: the checks refuse its shape)
            return
        view = memoryview(buf.reshape(-1).view(np.uint8))
        done = 0
        try:
            while done < len(view):
                got = self.fp.readinto(view[done:])
                if not got:
                    break
                done += got
        except _STREAM_ERRORS as exc:
            raise DataError(
                f"{self.source}: cannot read as {self.kind}: it is truncated or "
                f"corrupt ({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
        if done < len(view):
            raise DataError(
                f"{self.source}: cannot read as {self.kind}: it is truncated or "
                f"corrupt (data ends {len(view) - done} bytes early)"
            )

    def read_all(self) -> np.ndarray:
        """The whole array in its stored dtype (at most ``MAX_READ_BYTES``).

        Raises
        ------
        LimitError
            If the array declares more than :data:`~lensviz.data.limits.MAX_READ_BYTES`.
        """
        h = self.header
        if h.nbytes > MAX_READ_BYTES:
            raise LimitError(
                f"{self.source}: the array declares {h.nbytes / 2**20:.1f} MiB "
                f"(shape {h.shape}); one read takes at most "
                f"{MAX_READ_BYTES / 2**20:.0f} MiB "
                "(lensviz.data.limits.MAX_READ_BYTES)"
            )
        out = np.empty(h.shape[::-1] if h.fortran_order else h.shape, h.dtype)
        self._seek(h.offset)
        self._readinto(out)
        return out.T if h.fortran_order else out

    def _seek(self, pos: int) -> None:
        try:
            self.fp.seek(pos)
        except _STREAM_ERRORS as exc:
            raise DataError(
                f"{self.source}: cannot read as {self.kind}: it is truncated or "
                f"corrupt ({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc

    def blocks(
        self, row_shape: tuple[int, ...], start: int, stop: int
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Rows ``[start, stop)`` of the array seen as ``(n, *row_shape)``, in blocks.

        Yields ``(i, block)`` with ``block`` holding rows ``start + i …`` in the stored
        dtype; the block buffer is reused, so copy what you keep.
        """
        h = self.header
        if h.fortran_order:  # rows are not contiguous: read it whole (within the budget)
            whole = self.read_all().reshape((-1, *row_shape))
            step = block_rows(math.prod(row_shape))
            for i in range(start, stop, step):
                yield i - start, whole[i : min(i + step, stop)]
            return
        row_bytes = math.prod(row_shape) * h.dtype.itemsize
        self._seek(h.offset + start * row_bytes)
        step = block_rows(math.prod(row_shape))
        buf = np.empty((min(step, stop - start), *row_shape), h.dtype)
        for i in range(start, stop, step):
            block = buf[: min(step, stop - i)]
            self._readinto(block)
            yield i - start, block


def _stream_size(fp) -> int:
    pos = fp.tell()
    size = fp.seek(0, io.SEEK_END)
    fp.seek(pos)
    return size - pos


def _regular_file(path: Path, source: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file")
    if not path.is_file():
        raise DataError(f"{source}: is not a regular file; expected a data file")


@contextlib.contextmanager
def open_npy(file, source: str | None = None) -> Iterator[NpyArray]:
    """Open an ``.npy`` file (path or binary file object) and check its header.

    Yields
    ------
    NpyArray

    Raises
    ------
    FileNotFoundError
        A missing path.
    DataError
        See :func:`npy_header`.
    """
    source = str(file) if source is None else source
    with contextlib.ExitStack() as stack:
        if isinstance(file, (str, os.PathLike)):
            _regular_file(Path(file), source)
            fp = stack.enter_context(open(file, "rb"))
        else:
            fp = file
        yield NpyArray(fp, source, _stream_size(fp))


def load_npy(file, source: str | None = None) -> np.ndarray:
    """Load one array from a ``.npy`` file safely (never unpickling anything).

    Parameters
    ----------
    file : str, path-like or binary file object
    source : str, optional
        Name used in error messages; defaults to ``str(file)``.

    Returns
    -------
    ndarray
        The stored array, unvalidated.

    Raises
    ------
    DataError
        If the file holds pickled or object data, is an ``.npz`` archive, is not a
        ``.npy`` file, or is truncated or corrupt.
    LimitError
        If the array declares more than :data:`~lensviz.data.limits.MAX_READ_BYTES`.
    FileNotFoundError
        If the file does not exist.
    """
    with open_npy(file, source) as arr:
        return arr.read_all()


# === Reading ε, κ and names from checked arrays ===


def _fill(out: np.ndarray, blocks, transform=None) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN are reported afterwards
        for i, block in blocks:
            out[i : i + len(block)] = block if transform is None else transform(block)


def read_epsilon(arr: NpyArray, source: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Samples ``[start:stop]`` of an ε array, checked, as ``(n, ny, nx, 3)`` float32.

    Raises
    ------
    DataTypeError, DataError, LimitError
        Wrong dtype or shape (from the header), a selection over
        :data:`~lensviz.data.limits.MAX_READ_BYTES`, or values out of bounds.
    """
    check_float_dtype(arr.dtype, source, "ε", arr.shape)
    n, channels_first, field = epsilon_layout(arr.shape, source)
    start, stop = slice_bounds(n, start, stop, source)
    check_read_size(stop - start, source, kappa=False, field=field)
    out = np.empty((stop - start, *eps_row(field)), np.float32)
    row = eps_row(field, channels_first)
    _fill(
        out,
        arr.blocks(row, start, stop),
        (lambda b: np.moveaxis(b, 1, -1)) if channels_first else None,
    )
    check_epsilon_values(out, source)
    return out


def read_kappa(arr: NpyArray, source: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Maps ``[start:stop]`` of a κ array, checked, as ``(n, ny, nx)`` float32."""
    check_float_dtype(arr.dtype, source, "κ", arr.shape)
    n, field = kappa_layout(arr.shape, source)
    start, stop = slice_bounds(n, start, stop, source)
    check_read_size(stop - start, source, field=field)
    out = np.empty((stop - start, *field), np.float32)
    _fill(out, arr.blocks(field, start, stop))
    check_kappa_values(out, source)
    return out


def _check_names_header(arr: NpyArray, n: int, source: str) -> None:
    dtype, shape = arr.dtype, arr.shape
    if len(shape) != 1 or dtype.kind not in _NAMES_KINDS:
        raise DataError(
            f"{source}: 'names' has shape {shape} and dtype {quote(dtype)}; "
            "expected a 1-D str array"
        )
    chars = dtype.itemsize // (4 if dtype.kind == "U" else 1)
    if chars > MAX_NAME_CHARS * (1 if dtype.kind == "U" else 4):
        raise LimitError(
            f"{source}: 'names' has dtype {dtype} ({chars} characters per name); "
            f"expected at most {MAX_NAME_CHARS} (lensviz.data.limits.MAX_NAME_CHARS)"
        )
    if shape[0] != n:
        raise DataError(f"{source}: got {shape[0]} names for {n} samples; expected one each")


def read_names(arr: NpyArray, n: int, source: str, start: int, stop: int) -> list[str]:
    """Names ``[start:stop]`` of a 1-D str array of ``n`` names, checked."""
    _check_names_header(arr, n, source)
    out = np.empty(stop - start, arr.dtype)
    _fill(out, arr.blocks((), start, stop))
    return validate_names(list(out), stop - start, source)


def npy_names(stem: str, n: int, start: int = 0, stop: int | None = None) -> list[str]:
    """Default names of samples ``[start:stop]`` of the ``n`` of an ``.npy`` file ``stem``.

    ``stem`` for a single sample, else ``stem_000000``, ``stem_000001``, …
    """
    stop = n if stop is None else stop
    return [stem] if n == 1 else [f"{stem}_{i:06d}" for i in range(start, stop)]


# === .npz archives ===


def _zip_directory_size(fp, size: int, source: str) -> int:
    """Size of the central directory, found exactly where :mod:`zipfile` will look."""
    not_zip = DataError(
        f"{source}: cannot read as .npz: it is not a zip archive (no end of "
        "central directory record); expected a file written by numpy.savez"
    )
    if size < _EOCD.size:
        raise not_zip
    fp.seek(size - _EOCD.size)
    tail = fp.read(_EOCD.size)
    if tail[:4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        pos = size - _EOCD.size
    else:
        first = max(size - (1 << 16) - _EOCD.size, 0)
        fp.seek(first)
        tail = fp.read()
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or found + _EOCD.size > len(tail):
            raise not_zip
        pos = first + found
        fp.seek(pos)
        tail = fp.read(_EOCD.size)
    cd_size = _EOCD.unpack(tail)[5]
    if pos >= _ZIP64_LOCATOR.size:
        fp.seek(pos - _ZIP64_LOCATOR.size)
        locator = _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))
        at = pos - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
        if locator[0] == b"PK\x06\x07" and at >= 0:
            fp.seek(at)
            record = _ZIP64_EOCD.unpack(fp.read(_ZIP64_EOCD.size))
            if record[0] == b"PK\x06\x06":
                cd_size = record[8]
    return cd_size


class NpzArchive:
    """An ``.npz`` archive whose directory has been checked; opens members as :class:`NpyArray`.

    Use :func:`open_npz` to make one.
    """

    def __init__(self, zf: zipfile.ZipFile, source: str, stack: contextlib.ExitStack):
        self.source = source
        self._zf = zf
        self._stack = stack
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise LimitError(
                f"{source}: the archive holds {len(infos)} entries; expected at "
                f"most {MAX_ZIP_MEMBERS} (lensviz.data.limits.MAX_ZIP_MEMBERS)"
            )
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in self.members:
                raise DataError(
                    f"{source}: cannot read as .npz: it holds two entries named '{quote(key, 60)}'"
                )
            self.members[key] = info

    @property
    def files(self) -> list[str]:
        """Array names (member names without ``.npy``)."""
        return list(self.members)

    def open(self, key: str) -> NpyArray:
        """Check member ``key`` and open it as a stream."""
        info = self.members[key]
        where = f"{self.source} [{quote(key, 60)}]"
        if info.flag_bits & _ZIP_UNSUPPORTED_FLAGS:
            raise UnsafeFileError(
                f"{where}: the entry is encrypted or patched (zip flags "
                f"{info.flag_bits:#x}); expected a plain numpy.savez entry"
            )
        if info.compress_type not in _ZIP_METHODS:
            raise DataError(
                f"{where}: the entry uses zip compression method "
                f"{info.compress_type}; expected stored (0) or deflated (8), as "
                "numpy.savez and numpy.savez_compressed write"
            )
        if info.file_size > MAX_ZIP_MEMBER_BYTES:
            raise LimitError(
                f"{where}: the entry declares {info.file_size} bytes; the limit "
                "is lensviz.data.limits.MAX_ZIP_MEMBER_BYTES"
            )
        if info.file_size > RATIO_CHECK_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise LimitError(
                f"{where}: the entry declares {info.file_size} bytes stored in "
                f"{info.compress_size}, a compression ratio over "
                f"{MAX_COMPRESSION_RATIO} (lensviz.data.limits."
                "MAX_COMPRESSION_RATIO); refused as a zip bomb"
            )
        try:
            fp = self._stack.enter_context(self._zf.open(info))
        except (*_STREAM_ERRORS, KeyError) as exc:
            raise DataError(
                f"{where}: cannot read as .npz: it is truncated or corrupt "
                f"({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
        return NpyArray(fp, where, info.file_size, ".npy entry of an .npz")


@contextlib.contextmanager
def open_npz(file, source: str | None = None) -> Iterator[NpzArchive]:
    """Open an ``.npz`` archive (path or binary file object) after checking its directory.

    Raises
    ------
    FileNotFoundError
        A missing path.
    DataError, LimitError, UnsafeFileError
        Not a zip archive, a directory or entry count beyond the limits, a corrupt
        archive.
    """
    source = str(file) if source is None else source
    with contextlib.ExitStack() as stack:
        if isinstance(file, (str, os.PathLike)):
            _regular_file(Path(file), source)
            fp = stack.enter_context(open(file, "rb"))
        else:
            fp = file
        size = _stream_size(fp)
        head = fp.read(8)
        fp.seek(0)
        if head.startswith(npformat.MAGIC_PREFIX):
            raise DataError(f"{source}: is a .npy array; expected an .npz archive")
        cd_size = _zip_directory_size(fp, size, source)
        if cd_size > MAX_ZIP_DIRECTORY_BYTES:
            raise LimitError(
                f"{source}: the zip directory declares {cd_size} bytes; expected at "
                f"most {MAX_ZIP_DIRECTORY_BYTES} "
                "(lensviz.data.limits.MAX_ZIP_DIRECTORY_BYTES)"
            )
        fp.seek(0)
        try:
            zf = stack.enter_context(zipfile.ZipFile(fp))
        except (*_STREAM_ERRORS, KeyError, IndexError, struct.error) as exc:
            raise DataError(
                f"{source}: cannot read as .npz: it is truncated or corrupt "
                f"({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
        yield NpzArchive(zf, source, stack)


def npz_grid(npz: NpzArchive) -> PixelGrid:
    """The pixel scale of an ``.npz``: its scalar array ``pixel_arcmin``, else the default.

    Raises
    ------
    DataError
        A ``pixel_arcmin`` that is not one number, or out of bounds.
    """
    if PIXEL_KEY not in npz.members:
        return PixelGrid()
    arr = npz.open(PIXEL_KEY)
    where = f"{npz.source} [{PIXEL_KEY}]"
    if math.prod(arr.shape) != 1 or arr.dtype.kind not in "fiu":
        raise DataError(
            f"{where}: has shape {arr.shape} and dtype {quote(arr.dtype)}; expected one "
            "number, the pixel side in arcmin"
        )
    value = check_pixel_arcmin(arr.read_all(), where)
    return PixelGrid(value, True, f"the .npz array {PIXEL_KEY}")


def npz_layout(npz: NpzArchive) -> tuple[NpyArray, NpyArray | None, NpyArray | None, int]:
    """Open and check the ``epsilon``, ``kappa`` and ``names`` members from their headers.

    Returns
    -------
    eps, kappa, names : NpyArray (kappa and names None when absent)
    n : int
        Number of samples.
    """
    source = npz.source
    if "epsilon" not in npz.members:
        raise DataError(
            f"{source}: has no array 'epsilon' (found {quote(sorted(npz.files))}); expected "
            "arrays 'epsilon' (N, ny, nx, 3), optional 'kappa' (N, ny, nx), optional "
            "'names'"
        )
    names = npz.open("names") if "names" in npz.members else None
    if names is not None and (len(names.shape) != 1 or names.dtype.kind not in _NAMES_KINDS):
        _check_names_header(names, 0, source)
    eps = npz.open("epsilon")
    check_float_dtype(eps.dtype, f"{source} [epsilon]", "ε", eps.shape)
    n, _, field = epsilon_layout(eps.shape, f"{source} [epsilon]")
    kappa = None
    if "kappa" in npz.members:
        kappa = npz.open("kappa")
        check_float_dtype(kappa.dtype, f"{source} [kappa]", "κ", kappa.shape)
        n_kappa, kappa_field = kappa_layout(kappa.shape, f"{source} [kappa]")
        check_counts(n, n_kappa, source)
        check_same_field(field, kappa_field, source)
    if names is not None:
        _check_names_header(names, n, source)
    return eps, kappa, names, n
