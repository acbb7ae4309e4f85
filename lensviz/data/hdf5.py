"""HDF5 dataset and prediction files: checked before any data is read; written atomically.

Reading rules
-------------
An HDF5 file can make the library read other files (external raw storage, external
links, virtual datasets), resolve paths inside it (soft links, link loops), load code
(filter plugins) or allocate far more than the file holds (unwritten datasets filled
with the fill value, huge chunks, huge declared shapes). :func:`check_hdf5_file` walks
the whole link structure of a file with the low-level API, *without following any
link*, and refuses the file, naming it, unless every object is:

* reached by a hard link (soft, external and user-defined links are refused, so link
  loops and dangling links never get resolved);
* a group, a named datatype or a dataset with contiguous or chunked storage inside the
  file: no external raw storage, not virtual (a virtual dataset is refused from its
  creation property list, before HDF5 resolves any of its sources), not compact;
* filtered only by gzip (deflate), shuffle, fletcher32 or lzf: any other filter would
  make HDF5 look for a plugin library;
* no larger than :data:`~lensviz.data.limits.MAX_DECLARED_BYTES` as declared, with chunks
  of at most :data:`~lensviz.data.limits.MAX_HDF5_CHUNK_BYTES`;
* fully written: a dataset whose storage is not allocated (or only partly) is refused,
  because HDF5 would hand back fill values for data that the file never held.

The file may hold at most :data:`~lensviz.data.limits.MAX_HDF5_LINKS` links, nested at
most :data:`~lensviz.data.limits.MAX_HDF5_DEPTH` deep.

Strings
-------
A variable-length string is stored once, in a global heap, and each element of a dataset
holds a 16-byte descriptor pointing at it: its length, the heap's address and the
object's index. Many descriptors may point at one object, so a file of 5 MB can ask for
gigabytes of names. Before the ``names`` of a selection are read, their descriptors
are read raw from the file (unfiltered, or through gzip, shuffle and fletcher32) and
every declared length must be at most ``4 ×`` :data:`~lensviz.data.limits.MAX_NAME_CHARS`
bytes (the UTF-8 of the longest name allowed), so the names of ``n`` samples cost at
most ``n`` kB. Names compressed with lzf, whose descriptors lensviz does not decode, are
read one at a time and checked as they come: at most one string is held, and no
string is larger than the file. File attributes are read one at a time too: numbers,
and single strings of at most :data:`~lensviz.data.limits.MAX_ATTR_CHARS` characters.

Uploads, server datasets and command-line paths all go through these rules.

Threads
-------
h5py over a non-thread-safe HDF5 build does not keep threads apart: a file opened,
closed or written in one thread while another thread reads a file makes the reader's raw
chunk reads and link walks fail now and then, and can crash the process (a double free,
seen in ``tests/data/test_hdf5.py`` without the lock). So every use of HDF5 here holds
:data:`HDF5_LOCK`: a reader while it opens, checks, reads and closes a file
(:func:`open_hdf5`), a writer for each of its operations, and a generator that yields
batches of an open file (:func:`iter_hdf5`) for each batch, never across a ``yield``, so
that its consumer in another thread can always take the lock.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

import h5py
import numpy as np
from h5py import h5d, h5g, h5l, h5o, h5s, h5z

from lensviz._atomic import atomic_path
from lensviz.constants import NPIX
from lensviz.data.errors import DataError, DataTypeError, LimitError, UnsafeFileError, quote
from lensviz.data.limits import (
    MAX_ATTR_CHARS,
    MAX_COMPRESSION_RATIO,
    MAX_HDF5_CHUNK_BYTES,
    MAX_HDF5_DEPTH,
    MAX_HDF5_LINKS,
    MAX_NAME_CHARS,
    RATIO_CHECK_BYTES,
)
from lensviz.data.sky import PixelGrid, check_pixel_arcmin
from lensviz.data.validate import (
    batch_within_budget,
    block_rows,
    check_batch_size,
    check_declared_size,
    check_epsilon_values,
    check_kappa_values,
    check_read_size,
    check_same_field,
    check_same_length,
    eps_row,
    epsilon_layout,
    kappa_layout,
    slice_bounds,
    validate_epsilon,
    validate_kappa,
    validate_names,
)

__all__ = [
    "HDF5_SUFFIXES",
    "HDF5_LOCK",
    "check_hdf5_file",
    "open_hdf5",
    "streaming_hdf5",
    "read_hdf5",
    "hdf5_length",
    "hdf5_field",
    "hdf5_grid",
    "PIXEL_ATTR",
    "iter_hdf5",
    "HDF5Writer",
    "write_hdf5",
    "PREDICTION_DTYPES",
    "PredictionWriter",
    "write_predictions",
    "read_predictions",
    "read_prediction_mask",
    "read_prediction_errorbars",
]

HDF5_SUFFIXES = (".h5", ".hdf5")
#: The file attribute holding the pixel side [arcmin].
PIXEL_ATTR = "pixel_arcmin"

_FILTERS = {  # the filters a file may use: built into HDF5 or h5py, no plugin is loaded
    h5z.FILTER_DEFLATE: "gzip",
    h5z.FILTER_SHUFFLE: "shuffle",
    h5z.FILTER_FLETCHER32: "fletcher32",
    32000: "lzf",  # h5py's own LZF filter
}
_LAYOUTS = {
    h5d.COMPACT: "compact",
    h5d.CONTIGUOUS: "contiguous",
    h5d.CHUNKED: "chunked",
    h5d.VIRTUAL: "virtual",
}
_LINKS = {h5l.TYPE_SOFT: "a soft link", h5l.TYPE_EXTERNAL: "an external link"}
# What h5py/HDF5 raise on a corrupt file, while opening, walking or reading it.
_H5_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
    UnicodeError,
    OverflowError,
    AttributeError,
)
_PASS_THROUGH = (FileNotFoundError, IsADirectoryError, PermissionError)


# === Checking a file before reading it ===


def _path_text(parts: Sequence[bytes]) -> str:
    return "/" + "/".join(quote(p, 60) for p in parts)


def _check_dataset(dsid: h5d.DatasetID, where: str) -> None:
    dcpl = dsid.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5d.VIRTUAL:
        raise UnsafeFileError(
            f"{where} is a virtual dataset (it maps data from other datasets "
            "or files); expected data stored in the file itself"
        )
    if layout == h5d.CONTIGUOUS and dcpl.get_external_count() > 0:
        raise UnsafeFileError(
            f"{where} keeps its data in an external file; expected data stored in the file itself"
        )
    if layout not in (h5d.CONTIGUOUS, h5d.CHUNKED):
        raise DataError(
            f"{where} has {_LAYOUTS.get(layout, f'unknown ({layout})')} storage; "
            "expected contiguous or chunked storage"
        )
    itemsize = dsid.get_type().get_size()
    space = dsid.get_space()
    shape = space.shape if space.get_simple_extent_type() == h5s.SIMPLE else ()
    nbytes = check_declared_size(shape, itemsize, where, "the dataset")
    if layout == h5d.CHUNKED:
        chunk = dcpl.get_chunk()
        chunk_bytes = math.prod(chunk) * itemsize
        if chunk_bytes > MAX_HDF5_CHUNK_BYTES:
            raise LimitError(
                f"{where} has chunks of {tuple(chunk)} ({chunk_bytes / 2**20:.1f} "
                f"MiB); expected at most {MAX_HDF5_CHUNK_BYTES / 2**20:.0f} MiB "
                "(lensviz.data.limits.MAX_HDF5_CHUNK_BYTES)"
            )
        for i in range(dcpl.get_nfilters()):
            code = dcpl.get_filter(i)[0]
            if code not in _FILTERS:
                raise UnsafeFileError(
                    f"{where} uses the HDF5 filter {code}; expected only "
                    "gzip, lzf, shuffle or fletcher32 (others load plugins)"
                )
    if nbytes and dsid.get_space_status() != h5d.SPACE_STATUS_ALLOCATED:
        raise DataError(
            f"{where} declares {nbytes} bytes but its data were never (fully) "
            "written; expected a dataset whose data are all stored in the file"
        )
    stored = dsid.get_storage_size()
    if layout == h5d.CONTIGUOUS and stored < nbytes:
        raise DataError(
            f"{where} stores {stored} of its {nbytes} bytes; the file is truncated or corrupt"
        )
    if nbytes > RATIO_CHECK_BYTES and nbytes > MAX_COMPRESSION_RATIO * max(stored, 1):
        raise LimitError(
            f"{where} declares {nbytes} bytes stored in {stored}, a compression "
            f"ratio over {MAX_COMPRESSION_RATIO} (lensviz.data.limits."
            "MAX_COMPRESSION_RATIO); refused as a compression bomb"
        )


def _list_links(gid, where: str, budget: int) -> list:
    found = []

    def visit(name, info):
        found.append((name, info.type))  # h5py reuses `info` between calls: copy the type
        return True if len(found) > budget else None

    gid.links.iterate(visit, info=True)
    if len(found) > budget:
        raise LimitError(
            f"{where}: the file holds more than {MAX_HDF5_LINKS} links; expected "
            f"at most {MAX_HDF5_LINKS} (lensviz.data.limits.MAX_HDF5_LINKS)"
        )
    return found


def check_hdf5_file(f: h5py.File, source: str) -> dict[bytes, int]:
    """Walk every link of an open file without following any; refuse what is unsafe.

    Parameters
    ----------
    f : h5py.File
    source : str
        Name of the file for messages.

    Returns
    -------
    dict
        Name (bytes) → object type (``h5o.TYPE_*``) of every link of the root group.

    Raises
    ------
    UnsafeFileError
        Soft, external or user-defined links, external storage, virtual datasets,
        filters that need a plugin.
    LimitError
        Too many links or groups nested too deep, a declared size or chunk beyond
        :mod:`lensviz.data.limits`.
    DataError
        Compact storage, unwritten datasets, odd link names, a corrupt file.

    Notes
    -----
    See the module docstring for the rules.
    """
    root: dict[bytes, int] = {}
    seen: set[tuple[int, int]] = set()
    stack = [(f.id, ())]
    budget = MAX_HDF5_LINKS
    try:
        while stack:
            gid, parts = stack.pop()
            links = _list_links(gid, source, budget)
            budget -= len(links)
            for name, link_type in links:
                where = f"{source}: {_path_text((*parts, name))}"
                if not name or name in (b".", b"..") or b"/" in name:
                    raise DataError(
                        f"{where}: a link has the name '{quote(name)}', which HDF5 "
                        "would resolve as a path; expected a plain name"
                    )
                if link_type != h5l.TYPE_HARD:
                    kind = _LINKS.get(link_type, f"a user-defined link (type {link_type})")
                    raise UnsafeFileError(
                        f"{where} is {kind}; lensviz follows no links, "
                        "expected datasets stored in the file itself"
                    )
                obj = h5o.get_info(gid, name)
                if not parts:
                    root[name] = obj.type
                key = (obj.fileno, obj.addr)
                if key in seen:  # a second hard link to an object already checked
                    continue
                seen.add(key)
                if obj.type == h5o.TYPE_GROUP:
                    if len(parts) + 1 >= MAX_HDF5_DEPTH:
                        raise LimitError(
                            f"{where}: groups are nested more than "
                            f"{MAX_HDF5_DEPTH} deep "
                            "(lensviz.data.limits.MAX_HDF5_DEPTH)"
                        )
                    stack.append((h5g.open(gid, name), (*parts, name)))
                elif obj.type == h5o.TYPE_DATASET:
                    _check_dataset(h5d.open(gid, name), where)
                elif obj.type != h5o.TYPE_NAMED_DATATYPE:
                    raise DataError(f"{where} is an HDF5 object of unknown type {obj.type}")
    except DataError:
        raise
    except _H5_ERRORS as exc:
        raise DataError(
            f"{source}: cannot read as HDF5: the file is truncated or corrupt "
            f"({type(exc).__name__}: {quote(exc, 100)})"
        ) from exc
    return root


#: Held by every use of HDF5 in this process (module docstring, "Threads").
HDF5_LOCK = threading.RLock()


@contextlib.contextmanager
def open_hdf5(file, source: str | None = None) -> Iterator[tuple[h5py.File, dict[bytes, int]]]:
    """Open an HDF5 file read-only and check it with :func:`check_hdf5_file`.

    The block holds :data:`HDF5_LOCK`: read what is needed and leave it (a generator
    that yields while the file is open uses :func:`streaming_hdf5`).

    Parameters
    ----------
    file : str, path-like or binary file object
    source : str, optional
        Name for messages; defaults to ``str(file)``.

    Yields
    ------
    f : h5py.File
    root : dict
        As returned by :func:`check_hdf5_file`.

    Raises
    ------
    FileNotFoundError
        A missing path.
    DataError
        Not HDF5, truncated, corrupt, or refused by the checks.
    """
    with HDF5_LOCK, _checked_file(file, source) as opened:
        yield opened


@contextlib.contextmanager
def streaming_hdf5(file, source: str | None = None) -> Iterator[tuple[h5py.File, dict[bytes, int]]]:
    """:func:`open_hdf5` for a generator that yields while the file is open: the file is
    opened, checked and closed under :data:`HDF5_LOCK`, and the block holds the lock
    around each of its reads (``with HDF5_LOCK:``), never across a ``yield``."""
    stack = contextlib.ExitStack()
    with HDF5_LOCK:
        opened = stack.enter_context(_checked_file(file, source))
    try:
        yield opened
    finally:
        with HDF5_LOCK:
            stack.close()


@contextlib.contextmanager
def _checked_file(file, source: str | None) -> Iterator[tuple[h5py.File, dict[bytes, int]]]:
    source = str(file) if source is None else source
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if not path.exists():
            raise FileNotFoundError(f"{source}: no such file")
        if not path.is_file():
            raise DataError(f"{source}: is not a regular file; expected an HDF5 file")
    try:
        f = h5py.File(file, "r")
    except _PASS_THROUGH:
        if not isinstance(file, (str, os.PathLike)):
            raise DataError(f"{source}: cannot read as HDF5") from None
        raise
    except _H5_ERRORS as exc:
        raise DataError(
            f"{source}: cannot read as HDF5: it is truncated, corrupt or not an "
            f"HDF5 file ({quote(exc, 100)})"
        ) from exc
    with f:
        root = check_hdf5_file(f, source)
        yield f, root


# === Strings: declared sizes before any is read ===

_NAME_BYTES = 4 * MAX_NAME_CHARS  # the UTF-8 of the longest name lensviz accepts
_DECODED_FILTERS = (h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32)


@contextlib.contextmanager
def _raw_stream(file) -> Iterator:
    """A binary stream of the file's own bytes (a path is opened, a stream reused)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fp:
            yield fp
        return
    pos = file.tell()
    try:
        yield file
    finally:
        file.seek(pos)


def _unshuffle(raw: bytes, size: int) -> bytes:
    """Undo HDF5's shuffle filter: byte ``j`` of every element was stored together."""
    n = len(raw) // size
    body = np.frombuffer(raw, np.uint8, n * size).reshape(size, n).T.tobytes()
    return body + raw[n * size :]


def _decode_chunk(raw: bytes, mask: int, filters, expected: int, size: int, where: str) -> bytes:
    """A chunk's bytes through the inverse of its filter pipeline, at most ``expected``."""
    for i in reversed(range(len(filters))):
        if mask & (1 << i):  # the filter was skipped for this chunk
            continue
        code = filters[i]
        if code == h5z.FILTER_DEFLATE:
            inflate = zlib.decompressobj()
            try:
                raw = inflate.decompress(raw, expected + 1)
            except zlib.error as exc:
                raise DataError(f"{where}: a chunk is corrupt ({quote(exc, 80)})") from exc
        elif code == h5z.FILTER_SHUFFLE:
            raw = _unshuffle(raw, size)
        elif code == h5z.FILTER_FLETCHER32:
            raw = raw[:-4]
    if len(raw) != expected:
        raise DataError(
            f"{where}: a chunk holds {len(raw)} bytes once decoded; expected {expected} "
            "(the file is truncated or corrupt)"
        )
    return raw


def _descriptor_size(ds) -> int:
    """Bytes of one variable-length descriptor in the file: length, heap address, index."""
    return 4 + ds.file.id.get_create_plist().get_sizes()[0] + 4


def _declared_lengths(ds, rows: np.ndarray, raw_file, where: str) -> np.ndarray | None:
    """The byte lengths that the descriptors of rows ``rows`` (increasing) of a 1-D
    variable-length dataset declare, read raw; None where they cannot be decoded (lzf)."""
    dsid = ds.id
    size = _descriptor_size(ds)
    descriptor = np.dtype([("n", "<u4"), ("rest", f"V{size - 4}")])
    dcpl = dsid.get_create_plist()
    if dcpl.get_layout() == h5d.CONTIGUOUS:
        offset = dsid.get_offset()
        if offset is None or dsid.get_storage_size() < ds.shape[0] * size:
            raise DataError(f"{where}: its storage is missing or truncated")
        runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)  # consecutive rows
        parts = []
        with _raw_stream(raw_file) as fp:
            for run in runs:
                fp.seek(offset + int(run[0]) * size)
                raw = fp.read(len(run) * size)
                if len(raw) != len(run) * size:
                    raise DataError(f"{where}: the file ends inside its data (truncated)")
                parts.append(np.frombuffer(raw, descriptor)["n"])
        return np.concatenate(parts)
    filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    if any(code not in _DECODED_FILTERS for code in filters):
        return None
    chunk = dcpl.get_chunk()[0]
    out = np.empty(len(rows), np.uint32)
    for index in np.unique(rows // chunk):
        start = int(index) * chunk
        try:
            mask, raw = dsid.read_direct_chunk((start,))
        except _H5_ERRORS as exc:
            raise DataError(
                f"{where}: cannot read a chunk: the file is truncated or corrupt "
                f"({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
        lengths = np.frombuffer(
            _decode_chunk(raw, mask, filters, chunk * size, size, where), descriptor
        )["n"]
        here = rows // chunk == index
        out[here] = lengths[rows[here] - start]
    return out


def _read_strings(ds, rows: np.ndarray, raw_file, source: str, key: str = "names"):
    """Rows ``rows`` (increasing) of a 1-D string dataset, each checked before it is read.

    Parameters
    ----------
    ds : h5py.Dataset
        Strings of fixed length (at most ``4 × MAX_NAME_CHARS`` bytes, checked from
        the type) or of variable length.
    rows : ndarray of int
        Increasing row indices.
    raw_file : str, path-like or binary file object
        The file ``ds`` lives in, for the raw descriptors.
    source : str
    key : str, optional
        The dataset's name, for messages.

    Returns
    -------
    ndarray
        What h5py returns for ``ds[rows]`` (bytes or str objects).

    Raises
    ------
    LimitError
        A string that declares more than ``4 × MAX_NAME_CHARS`` bytes (the aliased
        heap objects of the module docstring included), before it is read.
    DataError
        Truncated or corrupt storage.
    """
    where = f"{source}: dataset '{key}'"
    selection = _rows_selection(rows)
    string = h5py.check_string_dtype(ds.dtype)
    if string is None or string.length is not None:  # fixed size: bounded by its type
        return _read_rows(ds, key, selection, source)
    lengths = _declared_lengths(ds, rows, raw_file, where)
    if lengths is None:  # lzf: one string at a time, each checked once read
        out = np.empty(len(rows), object)
        for i, row in enumerate(rows):
            value = _read_rows(ds, key, int(row), source)
            length = len(value) if isinstance(value, (bytes, str)) else 0
            if length > _NAME_BYTES:
                raise LimitError(
                    f"{where}: the string of row {int(row)} holds {length} bytes; a name "
                    f"holds at most {MAX_NAME_CHARS} characters "
                    "(lensviz.data.limits.MAX_NAME_CHARS)"
                )
            out[i] = value
        return out
    long = np.flatnonzero(lengths > _NAME_BYTES)
    if long.size:
        raise LimitError(
            f"{where}: the string of row {int(rows[long[0]])} declares "
            f"{int(lengths[long[0]])} bytes; a name holds at most {MAX_NAME_CHARS} "
            f"characters ({_NAME_BYTES} bytes of UTF-8, lensviz.data.limits.MAX_NAME_CHARS), "
            "so it is refused before any string is read"
        )
    return _read_rows(ds, key, selection, source)


def _read_attrs(obj, source: str) -> dict:
    """The attributes of an HDF5 object (a file's root), each checked before it is read.

    Numbers (scalars or arrays of at most 1024 values) and single strings of at most
    :data:`~lensviz.data.limits.MAX_ATTR_CHARS` characters; a variable-length string is
    read alone and checked at once, so many attributes aliasing one heap object cost
    one string at most.

    Raises
    ------
    LimitError
        More than :data:`~lensviz.data.limits.MAX_HDF5_LINKS` attributes, an array of
        strings, a string or array beyond its bound.
    DataError
        A corrupt attribute.
    """
    try:
        n_attrs = h5o.get_info(obj.id).num_attrs
        if n_attrs > MAX_HDF5_LINKS:
            raise LimitError(
                f"{source}: holds {n_attrs} attributes; expected at most {MAX_HDF5_LINKS} "
                "(lensviz.data.limits.MAX_HDF5_LINKS)"
            )
        out = {}
        for name in obj.attrs:
            out[name] = _read_attr(obj, name, source)
        return out
    except DataError:
        raise
    except _H5_ERRORS as exc:
        raise DataError(
            f"{source}: cannot read the attributes: the file is corrupt "
            f"({type(exc).__name__}: {quote(exc, 100)})"
        ) from exc


def _read_attr(obj, name: str, source: str):
    where = f"{source}: attribute '{quote(name, 60)}'"
    aid = obj.attrs.get_id(name)
    shape, dtype = aid.shape, aid.dtype
    count = math.prod(shape) if shape else 1
    string = h5py.check_string_dtype(dtype)
    if string is not None:
        if count != 1:
            raise LimitError(f"{where} is an array of {count} strings; expected one string")
        if string.length is not None and string.length > 4 * MAX_ATTR_CHARS:
            raise LimitError(
                f"{where} holds {string.length} bytes; expected at most {MAX_ATTR_CHARS}"
            )
    elif dtype.kind not in "biuf" or count > 1024:
        raise LimitError(
            f"{where} has dtype {quote(dtype, 40)} and {count} values; expected a number, "
            "at most 1024 numbers or one string"
        )
    value = obj.attrs[name]
    text = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(text, (bytes, str)) and len(text) > 4 * MAX_ATTR_CHARS:
        raise LimitError(f"{where} holds {len(text)} bytes; expected at most {MAX_ATTR_CHARS}")
    return value.item() if hasattr(value, "item") and np.ndim(value) == 0 else value


# === Reading datasets ===


def _float_dataset(f: h5py.File, root: dict, key: str, source: str, ndim: int, expected: str):
    """Dataset ``key`` of rank ``ndim`` and a float dtype (shape checked by the caller)."""
    if root[key.encode()] != h5o.TYPE_DATASET:
        raise DataError(f"{source}: '{key}' is a group; expected a dataset of shape {expected}")
    ds = f[key]
    if ds.ndim != ndim:
        raise DataError(f"{source}: dataset '{key}' has shape {ds.shape}; expected {expected}")
    try:
        dtype = ds.dtype
    except _H5_ERRORS as exc:
        raise DataTypeError(
            f"{source}: dataset '{key}' has a datatype numpy cannot hold; expected float32"
        ) from exc
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise DataTypeError(
            f"{source}: dataset '{key}' has dtype {quote(dtype)}; expected "
            "float32 (float16 and float64 are accepted)"
        )
    return ds


def _map_dataset(f: h5py.File, root: dict, key: str, source: str):
    """A κ-like dataset ``(N, ny, nx)``: the dataset and its field ``(ny, nx)``."""
    ds = _float_dataset(f, root, key, source, 3, "(N, ny, nx)")
    return ds, kappa_layout(ds.shape, source, f"dataset '{key}'")[1]


def _hdf5_layout(f: h5py.File, root: dict, source: str):
    """The ``epsilon``, ``kappa`` and ``names`` datasets, checked, and the field ``(ny, nx)``."""
    if b"epsilon" not in root:
        found = sorted(quote(k, 40) for k in root)
        raise DataError(
            f"{source}: has no dataset 'epsilon' (found {quote(found)}); "
            "expected 'epsilon' (N, ny, nx, 3) float32"
        )
    eps = _float_dataset(f, root, "epsilon", source, 4, "(N, ny, nx, 3)")
    n, _, field = epsilon_layout(eps.shape, source, "dataset 'epsilon'")
    kappa = None
    if b"kappa" in root:
        kappa = _float_dataset(f, root, "kappa", source, 3, f"({n}, {field[0]}, {field[1]})")
        n_kappa, kappa_field = kappa_layout(kappa.shape, source, "dataset 'kappa'")
        if n_kappa != n:
            raise DataError(
                f"{source}: dataset 'kappa' has shape {kappa.shape} but "
                f"'epsilon' holds {n} samples; expected ({n}, {field[0]}, "
                f"{field[1]})"
            )
        check_same_field(field, kappa_field, source)
    names = None
    if b"names" in root:
        names = f["names"] if root[b"names"] == h5o.TYPE_DATASET else None
        string = None if names is None else h5py.check_string_dtype(names.dtype)
        if names is None or names.shape != (n,) or string is None:
            shape = "a group" if names is None else names.shape
            raise DataError(
                f"{source}: dataset 'names' has shape {shape}; expected ({n},) "
                "variable-length strings"
            )
        if string.length is not None and string.length > 4 * MAX_NAME_CHARS:
            raise DataError(
                f"{source}: dataset 'names' holds strings of {string.length} bytes; "
                f"expected at most {MAX_NAME_CHARS} characters each "
                "(lensviz.data.limits.MAX_NAME_CHARS)"
            )
    return eps, kappa, names, field


def _read_rows(ds, key: str, rows, source: str) -> np.ndarray:
    """``ds[rows]`` (a slice or increasing indices), errors turned into DataError."""
    try:
        return ds[rows]
    except _H5_ERRORS as exc:
        raise DataError(
            f"{source}: cannot read dataset '{key}': the file is truncated or "
            f"corrupt ({type(exc).__name__}: {quote(exc, 100)})"
        ) from exc


def _rows_selection(rows: np.ndarray):
    """A slice for consecutive increasing rows, else the rows themselves (increasing)."""
    if rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _read_floats(ds, key: str, rows: np.ndarray, body, source: str, transform=None):
    """Rows ``rows`` (increasing) of a float dataset, block by block, into float32."""
    out = np.empty((len(rows), *body), np.float32)
    step = block_rows(math.prod(body))
    for i in range(0, len(rows), step):
        sel = rows[i : i + step]
        block = _read_rows(ds, key, _rows_selection(sel), source)
        with np.errstate(over="ignore", invalid="ignore"):
            out[i : i + len(sel)] = block if transform is None else transform(block)
    return out


def _hdf5_selection(n: int, start, stop, indices, source: str):
    if indices is None:
        start, stop = slice_bounds(n, start, stop, source)
        return np.arange(start, stop), None
    if start != 0 or stop is not None:
        raise DataError("give either start/stop or indices, not both")
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise DataError(
            f"indices must be a non-empty 1-D integer array, got shape {idx.shape} "
            f"and dtype {idx.dtype}"
        )
    if idx.min() < 0 or idx.max() >= n:
        raise DataError(
            f"{source}: indices must lie in [0, {n}), got min {idx.min()} and max {idx.max()}"
        )
    unique, inverse = np.unique(idx, return_inverse=True)
    return unique, inverse


def _read_hdf5_open(f, root, source, raw_file, start=0, stop=None, indices=None):
    eps_ds, kappa_ds, names_ds, field = _hdf5_layout(f, root, source)
    rows, inverse = _hdf5_selection(eps_ds.shape[0], start, stop, indices, source)
    check_read_size(
        len(rows) if inverse is None else len(inverse),
        source,
        kappa=kappa_ds is not None,
        field=field,
    )
    if names_ds is None:
        names = [f"{i:06d}" for i in rows]
    else:  # first: the names' declared sizes are checked before any map is read
        names = validate_names(
            _read_strings(names_ds, rows, raw_file, source), len(rows), f"{source} [names]"
        )
    channels_first = eps_ds.shape[-1] != 3
    eps = _read_floats(
        eps_ds,
        "epsilon",
        rows,
        eps_row(field),
        source,
        (lambda b: np.moveaxis(b, 1, -1)) if channels_first else None,
    )
    check_epsilon_values(eps, f"{source} [epsilon]")
    kappa = None
    if kappa_ds is not None:
        kappa = _read_floats(kappa_ds, "kappa", rows, field, source)
        check_kappa_values(kappa, f"{source} [kappa]")
    if inverse is not None:
        eps = eps[inverse]
        kappa = None if kappa is None else kappa[inverse]
        names = [names[i] for i in inverse]
    return eps, kappa, names


def read_hdf5(
    path, start: int = 0, stop: int | None = None, indices=None, *, source: str | None = None
):
    """Read samples from an HDF5 dataset file, reading only what is asked for.

    Parameters
    ----------
    path : str, path-like or binary file object
    start, stop : int, optional
        Read samples ``[start:stop]`` (``stop`` past the end is clipped; an empty
        selection is an error).
    indices : array_like of int, optional
        Read these samples instead, in this order (repeats allowed).
    source : str, optional
        Name for error messages; defaults to ``str(path)``.

    Returns
    -------
    eps : ndarray, shape (n, ny, nx, 3), float32
    kappa : ndarray, shape (n, ny, nx), float32, or None
        None when the file has no ``kappa`` dataset (an ε-only file).
    names : list of str
        From the ``names`` dataset, or the sample indices as ``"000123"`` without one.

    Raises
    ------
    DataError
        If the file is not HDF5, is truncated or corrupt, is refused by
        :func:`check_hdf5_file`, has no ``epsilon`` dataset, has datasets of the wrong
        shape, the selection holds more than
        :data:`~lensviz.data.limits.MAX_READ_BYTES` as float32, or the values read are
        non-finite or out of bounds.
    DataTypeError
        If a dataset is not floating point.
    FileNotFoundError
        If the file does not exist.
    """
    source = str(path) if source is None else source
    with open_hdf5(path, source) as (f, root):
        return _read_hdf5_open(f, root, source, path, start, stop, indices)


def _hdf5_grid(f: h5py.File, source: str) -> PixelGrid:
    """The pixel scale of an open file: its attribute ``pixel_arcmin``, else the default."""
    if PIXEL_ATTR not in f.attrs:
        return PixelGrid()
    where = f"{source}: attribute '{PIXEL_ATTR}'"
    return PixelGrid(
        check_pixel_arcmin(_read_attr(f, PIXEL_ATTR, source), where),
        True,
        f"the HDF5 attribute {PIXEL_ATTR}",
    )


def hdf5_grid(path, source: str | None = None) -> PixelGrid:
    """The :class:`~lensviz.data.sky.PixelGrid` of an HDF5 dataset file (its attribute
    ``pixel_arcmin``), from its attributes alone.

    Raises
    ------
    DataError, FileNotFoundError
        As :func:`read_hdf5`; a ``pixel_arcmin`` that is not a number in bounds.
    """
    source = str(path) if source is None else source
    with open_hdf5(path, source) as (f, _):
        try:
            return _hdf5_grid(f, source)
        except DataError:
            raise
        except _H5_ERRORS as exc:
            raise DataError(
                f"{source}: cannot read the attribute '{PIXEL_ATTR}': the file is corrupt "
                f"({type(exc).__name__}: {quote(exc, 100)})"
            ) from exc


def hdf5_length(path, source: str | None = None) -> int:
    """Number of samples in an HDF5 dataset file (the length of ``epsilon``).

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As :func:`read_hdf5`, for the file's layout.
    """
    source = str(path) if source is None else source
    with open_hdf5(path, source) as (f, root):
        return int(_hdf5_layout(f, root, source)[0].shape[0])


def hdf5_field(path, source: str | None = None) -> tuple[int, int]:
    """Map size ``(ny, nx)`` of an HDF5 dataset file, from its layout alone.

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As :func:`read_hdf5`, for the file's layout.
    """
    source = str(path) if source is None else source
    with open_hdf5(path, source) as (f, root):
        return _hdf5_layout(f, root, source)[3]


def iter_hdf5(path, batch_size: int, start: int = 0, stop: int | None = None):
    """Yield ``(eps, kappa | None, names)`` batches of an HDF5 dataset file.

    The file is opened and checked once; each batch reads only its own chunks. Batches
    of large fields hold fewer than ``batch_size`` samples if need be
    (:func:`lensviz.data.validate.batch_within_budget`).
    """
    batch_size = check_batch_size(batch_size)
    source = str(path)
    with streaming_hdf5(path, source) as (f, root):
        with HDF5_LOCK:
            eps_ds, kappa_ds, _, field = _hdf5_layout(f, root, source)
            n = eps_ds.shape[0]
        batch_size = batch_within_budget(batch_size, field, kappa_ds is not None)
        start, stop = slice_bounds(n, start, stop, source)
        for i in range(start, stop, batch_size):
            with HDF5_LOCK:
                batch = _read_hdf5_open(f, root, source, path, i, min(i + batch_size, stop))
            yield batch


# === Writing ===


def _check_target(path: Path, overwrite: bool) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")


class _GrowingFile:
    """What the two writers share: an HDF5 file written in a hidden temporary beside
    ``path``, datasets that grow along their first axis batch by batch, and the rename
    into place when the ``with`` block ends normally (:func:`lensviz._atomic.atomic_path`).
    An exception (Ctrl-C included) deletes the temporary; closing with nothing appended
    is an error. Subclasses name their format and create and fill their datasets."""

    FORMAT: tuple[str, int]  # the file's "format" and "format_version" attributes
    NOUN = "samples"  # what a row is, in messages

    def __init__(self, path, overwrite: bool, compression, compression_level: int, attrs):
        if compression not in ("gzip", "lzf", None):
            raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        self.compression = compression
        self.compression_level = int(compression_level)
        self.attrs = dict(attrs or {})
        if PIXEL_ATTR in self.attrs:
            self.attrs[PIXEL_ATTR] = check_pixel_arcmin(self.attrs[PIXEL_ATTR], str(self.path))
        self._atomic = None
        self._file: h5py.File | None = None
        self._field: tuple[int, int] | None = None
        self._n = 0

    @property
    def n_written(self) -> int:
        """Rows (samples or maps) appended so far."""
        return self._n

    def _format_attrs(self) -> dict:
        name, version = self.FORMAT
        return {"format": name, "format_version": version}

    def __enter__(self) -> Self:
        _check_target(self.path, self.overwrite)
        self._atomic = atomic_path(self.path)  # also removes stale temporaries of self.path
        tmp = self._atomic.__enter__()
        try:
            with HDF5_LOCK:
                self._file = h5py.File(tmp, "x")
                for key, value in {**self._format_attrs(), **self.attrs}.items():
                    self._file.attrs[key] = value
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def update_attrs(self, attrs: dict) -> None:
        """Set file attributes while the file is open (e.g. counts known at the end)."""
        self._check_open()
        with HDF5_LOCK:
            for key, value in attrs.items():
                self._file.attrs[key] = value

    def _check_open(self) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: writer is not open; use it in a with block")

    def _new_dataset(
        self, key: str, row: tuple[int, ...], dtype, rows_per_chunk: int, filters=None
    ) -> None:
        """An empty dataset of rows of shape ``row``, growing along axis 0, with the
        writer's filters (or ``filters``, h5py keywords)."""
        if filters is None and self.compression is not None:
            level = self.compression_level if self.compression == "gzip" else None
            filters = {"compression": self.compression, "compression_opts": level, "shuffle": True}
        with HDF5_LOCK:
            self._file.create_dataset(
                key,
                shape=(0, *row),
                maxshape=(None, *row),
                dtype=dtype,
                chunks=(rows_per_chunk, *row),
                **(filters or {}),
            )

    def _new_names(self) -> None:
        with HDF5_LOCK:
            self._file.create_dataset(
                "names",
                shape=(0,),
                maxshape=(None,),
                dtype=h5py.string_dtype("utf-8"),
                chunks=(1024,),
            )

    def _append_rows(self, rows: dict, names: list[str]) -> None:
        """Grow each dataset of ``rows`` (key → array, None: not in this file) and
        ``names`` by one batch."""
        n0, n1 = self._n, self._n + len(names)
        with HDF5_LOCK:
            for key, values in [*rows.items(), ("names", names)]:
                if values is not None:
                    self._file[key].resize(n1, axis=0)
                    self._file[key][n0:n1] = values
        self._n = n1

    def __exit__(self, exc_type, exc, tb) -> bool:
        atomic, self._atomic = self._atomic, None
        error = exc
        try:
            if self._file is not None:
                with HDF5_LOCK:
                    self._file.close()
        except BaseException as close_exc:  # a file that does not close is not written
            error = error or close_exc
        finally:
            self._file = None
        if error is None and self._n == 0:
            error = DataError(f"{self.path}: no {self.NOUN} were written; nothing to save")
        if atomic is not None:
            if error is None:
                atomic.__exit__(None, None, None)  # fsync, rename into place
            else:
                atomic.__exit__(type(error), error, error.__traceback__)  # delete it
        if error is not None and error is not exc:
            raise error
        return False


class HDF5Writer(_GrowingFile):
    """Write an HDF5 dataset file incrementally and atomically.

    Datasets (created at the first :meth:`append`, resizable along the sample axis):
    ``epsilon`` ``(N, ny, nx, 3)`` float32, ``kappa`` ``(N, ny, nx)`` float32 (only
    if the batches carry κ), ``names`` ``(N,)`` variable-length UTF-8. The map size
    ``(ny, nx)`` is that of the first batch; every later batch must have it too. File attributes
    ``format = "lensviz"``, ``format_version = 1`` and ``channels = "e1,e2,delta_e"``
    plus any ``attrs`` given.

    Parameters
    ----------
    path : str or path-like
        The file to create.
    overwrite : bool, optional
        Replace an existing file (atomically). Default False: FileExistsError.
    compression : {"gzip", "lzf", None}, optional
        Chunk filter, always with HDF5's byte shuffle. Default ``"gzip"``.
    compression_level : int, optional
        gzip level, default 4.
    samples_per_chunk : int, optional
        Samples per HDF5 chunk, default 1; at most what keeps a chunk within
        :data:`~lensviz.data.limits.MAX_HDF5_CHUNK_BYTES` for 128 × 128 maps (341), so
        that lensviz can read back every file it writes; lowered for larger fields.
    attrs : dict, optional
        Extra file attributes (provenance: source folder, seed, ...); ``pixel_arcmin``
        (checked by :func:`lensviz.data.sky.check_pixel_arcmin`) is the pixel side
        [arcmin] that :func:`lensviz.data.load_dataset` reads back.

    Notes
    -----
    The defaults were chosen by measurement (200 simulated samples, one shared CPU
    core, sizes relative to raw float32):

    ==================  ==============  ==============  ==============
    filter (+shuffle)   float16-valued  float32 (sim)   write, ms/sample
    ==================  ==============  ==============  ==============
    none                1.00            1.00            0.3
    lzf                 0.57            0.92            3
    gzip 1              0.47            0.81            6
    gzip 4 (default)    0.45            0.79            6-8
    gzip 6              0.45            0.79            12-35
    ==================  ==============  ==============  ==============

    Challenge data (float16 values, so the low mantissa bytes are zero) shrinks to
    0.45 with shuffle + gzip; the gzip level changes the write time, not the read time
    (about 1 ms per sample in bulk, 2 ms for a lone sample; 0.1-0.2 ms uncompressed,
    so pass ``compression=None`` when disk space is cheap and reading is the
    bottleneck). One sample per chunk makes a random single-sample read touch one
    chunk; larger chunks gave no gain in size.

    The file is written inside a hidden temporary folder beside ``path`` and moved to
    ``path`` (after an fsync) when the ``with`` block ends normally; an exception (or
    Ctrl-C) deletes it, so a failed write never leaves a partial ``path``
    (:func:`lensviz._atomic.atomic_path`). Closing with no sample appended is an error
    (nothing is written).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "train.h5"
    >>> batches = [(np.zeros((1, 128, 128, 3), np.float32), np.zeros((1, 128, 128), np.float32),
    ...             [f"s{i}"]) for i in range(2)]
    >>> with HDF5Writer(path, attrs={"seed_start": 1_000_000}) as w:
    ...     for eps, kappa, names in batches:
    ...         w.append(eps, kappa, names)
    >>> w.n_written
    2
    """

    FORMAT = ("lensviz", 1)

    def __init__(
        self,
        path,
        *,
        overwrite: bool = False,
        compression: str | None = "gzip",
        compression_level: int = 4,
        samples_per_chunk: int = 1,
        attrs: dict | None = None,
    ):
        super().__init__(path, overwrite, compression, compression_level, attrs)
        self.samples_per_chunk = check_batch_size(samples_per_chunk)
        most = MAX_HDF5_CHUNK_BYTES // (math.prod(eps_row((NPIX, NPIX))) * 4)
        if self.samples_per_chunk > most:
            raise ValueError(
                f"samples_per_chunk={samples_per_chunk} makes chunks larger than "
                f"lensviz reads back; expected at most {most}"
            )
        self._has_kappa: bool | None = None

    def _format_attrs(self) -> dict:
        return {**super()._format_attrs(), "channels": "e1,e2,delta_e"}

    def _create(self, has_kappa: bool, field: tuple[int, int]) -> None:
        row = eps_row(field)
        # Large fields: fewer samples per chunk, so that lensviz reads every chunk back.
        k = max(1, min(self.samples_per_chunk, MAX_HDF5_CHUNK_BYTES // (4 * math.prod(row))))
        self._new_dataset("epsilon", row, np.float32, k)
        if has_kappa:
            self._new_dataset("kappa", field, np.float32, k)
        self._new_names()
        self._field, self._has_kappa = field, has_kappa

    def append(self, eps, kappa=None, names: Sequence[str] | None = None) -> None:
        """Append a batch.

        Parameters
        ----------
        eps : array_like, shape (n, ny, nx, 3) (or any layout :func:`validate_epsilon` takes)
        kappa : array_like, shape (n, ny, nx), optional
            Give it for every batch or for none.
        names : sequence of str, optional
            Defaults to the running sample index, ``"000000"``, ``"000001"``, ...
        """
        self._check_open()
        source = f"batch {self._n}: for {self.path}"
        eps = validate_epsilon(eps, source)
        if kappa is not None:
            kappa = validate_kappa(kappa, source)
            check_same_length(eps, kappa, source)
        if names is None:
            names = [f"{self._n + i:06d}" for i in range(len(eps))]
        names = validate_names(names, len(eps), source)
        if self._has_kappa is None:
            self._create(kappa is not None, eps.shape[1:3])
        check_same_field(self._field, eps.shape[1:3], source, "ε")
        if self._has_kappa != (kappa is not None):
            state = "with" if self._has_kappa else "without"
            raise DataError(
                f"{source}: earlier batches were written {state} κ; "
                "give κ for every batch or for none"
            )
        self._append_rows({"epsilon": eps, "kappa": kappa}, names)


def write_hdf5(path, eps, kappa=None, names: Sequence[str] | None = None, **kwargs) -> None:
    """Write arrays to an HDF5 dataset file, atomically.

    Parameters
    ----------
    path : str or path-like
    eps : array_like, shape (N, ny, nx, 3)
    kappa : array_like, shape (N, ny, nx), optional
        Omit for an ε-only file.
    names : sequence of str, optional
    **kwargs
        Passed to :class:`HDF5Writer` (``overwrite``, ``compression``, ``attrs``, ...).
    """
    with HDF5Writer(path, **kwargs) as writer:
        writer.append(eps, kappa, names)


# === Predictions ===

#: Storage types of prediction files: float32, or float16 like the challenge's own files.
PREDICTION_DTYPES = ("float32", "float16")


class PredictionWriter(_GrowingFile):
    """Write a prediction file incrementally, atomically, in constant memory.

    Datasets (created at the first :meth:`append`, resizable along the map axis):
    ``kappa_pred`` ``(N, ny, nx)``, ``kappa_std`` ``(N, ny, nx)`` (only if the batches
    carry a per-pixel uncertainty: with calibrated error bars, ``κ ± kappa_std`` holds
    the truth in 68.3 % of the pixels), ``kappa_hw95`` ``(N, ny, nx)`` (the half-width
    of the 95.4 % band, only if given), ``mask`` ``(N, ny, nx)`` uint8, 1 where the input had
    no galaxy, so no one reads κ there (only if the batches carry it; gzip-compressed, a
    few hundred bytes a map) and ``names`` ``(N,)`` variable-length UTF-8. File
    attributes ``format = "lensviz-predictions"``, ``format_version = 2``, ``dtype`` and
    any ``attrs`` given. :func:`read_predictions` and :func:`read_prediction_mask` read
    it back.

    Each :meth:`append` writes its batch into the file at once, so the memory in use is
    one batch, whatever the number of maps; the file is written in a hidden temporary
    folder beside ``path`` and renamed into place when the ``with`` block ends normally
    (:func:`lensviz._atomic.atomic_path`). An exception (Ctrl-C included) deletes it, so
    a failed run leaves neither ``path`` nor a temporary.

    Parameters
    ----------
    path : str or path-like
    overwrite : bool, optional
        Replace an existing file (atomically). Default False: FileExistsError.
    dtype : {"float32", "float16"}, optional
        Storage type of ``kappa_pred`` and ``kappa_std``. ``float16`` halves the file, as
        in the challenge's own files; its relative rounding error (4.9e-4) is far below
        any reconstruction error. Values are rounded by numpy (to nearest, ties to even),
        so the file holds exactly ``kappa.astype(np.float16)``.
    compression : {None, "gzip", "lzf"}, optional
        Chunk filter (with HDF5's byte shuffle). Default None: see the notes.
    compression_level : int, optional
        gzip level, default 4.
    attrs : dict, optional
        File attributes (method, weights, smoothing, data; ``pixel_arcmin`` as in
        :class:`HDF5Writer`).

    Notes
    -----
    The layout follows how prediction files are read: map by map (the app, the
    challenge's scorer, :func:`read_predictions` with ``start``/``stop``). One map per
    chunk (64 KiB for 128 × 128 float32) makes reading one map touch one chunk.
    Compression is off by default because predicted maps are noise-dominated floats that
    hardly compress while the filter costs more than the reconstruction itself; measured
    on 2,048 KS93 maps (128 × 128, float32) on one shared core:

    ====================  ==============  ===============
    filter (+shuffle)     size / raw      write, maps/s
    ====================  ==============  ===============
    none (default)        1.00            27,000
    lzf                   0.94            1,800
    gzip 4                0.86            660
    ====================  ==============  ===============

    KS93 computes about 3,000 maps/s on the same core, so gzip would make the writer the
    bottleneck for a 14% smaller file; ``dtype="float16"`` gives 0.50 at full speed.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "pred.h5"
    >>> with PredictionWriter(path, attrs={"method": "ks93"}) as w:
    ...     for i in range(3):
    ...         w.append(np.zeros((2, 128, 128), np.float32), [f"m{i}a", f"m{i}b"])
    >>> w.n_written
    6
    >>> read_predictions(path)[1][-1]
    'm2b'
    """

    FORMAT = ("lensviz-predictions", 2)
    NOUN = "maps"

    def __init__(
        self,
        path,
        *,
        overwrite: bool = False,
        dtype: str = "float32",
        compression: str | None = None,
        compression_level: int = 4,
        attrs: dict | None = None,
    ):
        if dtype not in PREDICTION_DTYPES:
            raise ValueError(f"dtype must be one of {list(PREDICTION_DTYPES)}, got {dtype!r}")
        super().__init__(path, overwrite, compression, compression_level, attrs)
        self.dtype = np.dtype(dtype)
        self._optional: frozenset[str] = frozenset()  # kappa_std, kappa_hw95, mask if given

    def _format_attrs(self) -> dict:
        return {**super()._format_attrs(), "dtype": self.dtype.name}

    def _create(self, field: tuple[int, int], optional: frozenset[str]) -> None:
        for key in ("kappa_pred", *sorted(optional & {"kappa_std", "kappa_hw95"})):
            self._new_dataset(key, field, self.dtype, 1)
        if "mask" in optional:  # mostly zeros: 16 µs and ~200 B a 128² map with gzip 1
            self._new_dataset(
                "mask", field, np.uint8, 1, {"compression": "gzip", "compression_opts": 1}
            )
        self._new_names()
        self._field, self._optional = field, optional

    def append(
        self, kappa_pred, names: Sequence[str], kappa_std=None, mask=None, kappa_hw95=None
    ) -> None:
        """Append a batch of predicted maps.

        Parameters
        ----------
        kappa_pred : array_like, shape (n, ny, nx)
            The same ``(ny, nx)`` for every batch.
        names : sequence of str
            One per map.
        kappa_std : array_like, shape (n, ny, nx), optional
            The per-pixel uncertainty: give it for every batch or for none.
        mask : array_like of bool, shape (n, ny, nx), optional
            The input's pixels without galaxies (:func:`lensviz.fields.field_mask`): give
            it for every batch or for none.
        kappa_hw95 : array_like, shape (n, ny, nx), optional
            The half-width of the 95.4 % band: give it for every batch or for none.

        Raises
        ------
        DataError, DataTypeError
            Maps that :func:`validate_kappa` refuses, a wrong number of names, a field,
            a ``kappa_std`` or a ``mask`` that differs from the earlier batches.
        """
        self._check_open()
        at = "" if self._n == 0 else f", the batch from map {self._n}"
        source = f"{self.path} [kappa_pred{at}]"
        kappa = validate_kappa(kappa_pred, source)
        std = (
            None if kappa_std is None else validate_kappa(kappa_std, f"{self.path} [kappa_std{at}]")
        )
        hw95 = (
            None
            if kappa_hw95 is None
            else validate_kappa(kappa_hw95, f"{self.path} [kappa_hw95{at}]")
        )
        mask = None if mask is None else np.asarray(mask, dtype=bool)
        for key, values in (("kappa_std", std), ("kappa_hw95", hw95), ("mask", mask)):
            if values is not None and values.shape != kappa.shape:
                raise DataError(
                    f"{source}: {key} has shape {values.shape}; expected the shape "
                    f"of kappa_pred, {kappa.shape}"
                )
        names = validate_names(list(names), len(kappa), source)
        given = {"kappa_std": std, "kappa_hw95": hw95, "mask": mask}
        if self._field is None:
            self._create(kappa.shape[1:], frozenset(k for k, v in given.items() if v is not None))
        check_same_field(self._field, kappa.shape[1:], source)
        for key, values in given.items():
            if (key in self._optional) != (values is not None):
                state = "with" if key in self._optional else "without"
                raise DataError(
                    f"{source}: earlier batches were written {state} {key}; "
                    "give it for every batch or for none"
                )
        rows = {
            "kappa_pred": kappa.astype(self.dtype, copy=False),
            "kappa_std": None if std is None else std.astype(self.dtype, copy=False),
            "kappa_hw95": None if hw95 is None else hw95.astype(self.dtype, copy=False),
            "mask": None if mask is None else mask.astype(np.uint8),
        }
        self._append_rows(rows, names)


def write_predictions(
    path,
    kappa_pred,
    names: Sequence[str],
    *,
    overwrite: bool = False,
    attrs: dict | None = None,
    kappa_std=None,
    **kwargs,
) -> None:
    """Write predicted maps to HDF5 at once: ``kappa_pred`` ``(N, ny, nx)`` and ``names``.

    One :meth:`PredictionWriter.append` of the whole array; ``kappa_std`` (same shape),
    when given, is stored too. ``**kwargs`` (``dtype``, ``compression``) go to
    :class:`PredictionWriter`. Written atomically: a failure never leaves a partial file.
    """
    with PredictionWriter(path, overwrite=overwrite, attrs=attrs, **kwargs) as writer:
        writer.append(kappa_pred, names, kappa_std)


def read_prediction_mask(path, start: int = 0, stop: int | None = None) -> np.ndarray | None:
    """The ``mask`` of a prediction file: bool ``(n, ny, nx)``, True where the input had
    no galaxy (κ there is an interpolation); None when the file has no mask.

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As :func:`read_predictions`; a mask of another shape or type than uint8 0/1.
    """
    source = str(path)
    with open_hdf5(path, source) as (f, root):
        if root.get(b"mask") is None:
            return None
        if root.get(b"kappa_pred") != h5o.TYPE_DATASET or root[b"mask"] != h5o.TYPE_DATASET:
            raise DataError(f"{source}: expected the datasets 'kappa_pred' and 'mask'")
        ds = f["mask"]
        if ds.shape != f["kappa_pred"].shape or ds.dtype != np.uint8:
            raise DataError(
                f"{source}: dataset 'mask' is {ds.shape} {quote(ds.dtype)}; expected uint8 "
                f"of the shape of kappa_pred, {f['kappa_pred'].shape}"
            )
        rows = np.arange(*slice_bounds(ds.shape[0], start, stop, source))
        check_read_size(len(rows), source, kappa=True, field=ds.shape[1:])
        mask = _read_rows(ds, "mask", _rows_selection(rows), source) if len(rows) else ds[:0]
    if mask.size and mask.max() > 1:
        raise DataError(f"{source}: dataset 'mask' holds values other than 0 and 1")
    return mask.astype(bool)


def read_prediction_errorbars(
    path, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(kappa_std, kappa_hw95)`` of a prediction file, float32 ``(n, ny, nx)`` each, or
    None for a band the file does not hold.

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As :func:`read_predictions`; a band of another shape than ``kappa_pred``, or
        negative or non-finite half-widths.
    """
    source = str(path)
    out = []
    with open_hdf5(path, source) as (f, root):
        if root.get(b"kappa_pred") != h5o.TYPE_DATASET:
            raise DataError(f"{source}: no 'kappa_pred' dataset; not a prediction file")
        shape = f["kappa_pred"].shape
        for key in ("kappa_std", "kappa_hw95"):
            if root.get(key.encode()) is None:
                out.append(None)
                continue
            ds, field = _map_dataset(f, root, key, source)
            if ds.shape != shape:
                raise DataError(
                    f"{source}: dataset '{key}' is {ds.shape}; expected the shape of "
                    f"kappa_pred, {shape}"
                )
            rows = np.arange(*slice_bounds(ds.shape[0], start, stop, source))
            check_read_size(len(rows), source, kappa=True, field=field)
            values = _read_floats(ds, key, rows, field, source)
            if not np.all(np.isfinite(values) & (values >= 0)):
                raise DataError(f"{source}: dataset '{key}' holds negative or non-finite widths")
            out.append(values)
    return out[0], out[1]


def read_predictions(
    path, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, list[str], dict]:
    """Read a prediction file (:class:`PredictionWriter`): ``(kappa_pred, names, attrs)``.

    ``kappa_pred`` comes back as float32 whatever the stored type (float16 or float32).

    Parameters
    ----------
    path : str, path-like or binary file object
    start, stop : int, optional
        Read maps ``[start:stop]`` only (within :data:`~lensviz.data.limits.MAX_READ_BYTES`).

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As :func:`read_hdf5`.
    """
    source = str(path)
    with open_hdf5(path, source) as (f, root):
        if root.get(b"kappa_pred") != h5o.TYPE_DATASET:
            raise DataError(
                f"{source}: no 'kappa_pred' dataset; expected a file written by "
                "`python -m lensviz predict`"
            )
        ds, field = _map_dataset(f, root, "kappa_pred", source)
        rows = np.arange(*slice_bounds(ds.shape[0], start, stop, source))
        check_read_size(len(rows), source, kappa=True, field=field)
        kappa = _read_floats(ds, "kappa_pred", rows, field, source)
        check_kappa_values(kappa, f"{source} [kappa_pred]")
        if root.get(b"names") == h5o.TYPE_DATASET:
            names_ds = f["names"]
            if names_ds.shape != (ds.shape[0],) or h5py.check_string_dtype(names_ds.dtype) is None:
                raise DataError(
                    f"{source}: dataset 'names' has shape {names_ds.shape}; "
                    f"expected ({ds.shape[0]},) strings"
                )
            names = validate_names(
                _read_strings(names_ds, rows, path, source), len(rows), f"{source} [names]"
            )
        else:
            names = [f"{i:06d}" for i in rows]
        attrs = _read_attrs(f, source)
    return kappa, names, attrs
