"""Model files (``.keras``): the archive checked before Keras opens it, the model after.

A ``.keras`` file is a zip archive. lensviz's (:func:`lensviz.nn.inference.save_model`)
hold three members, stored uncompressed: ``config.json`` (the architecture),
``metadata.json`` and ``model.weights.h5`` (the weights, HDF5). A model file is as
hostile as any data file: Keras reads the members with :mod:`zipfile` (which has no
deflate64, so that method raised ``NotImplementedError``) and loads the whole weights
member into memory (a 3 GiB "zip bomb" member was killed at +2 GiB), and a model that
loads can still be no lensviz UNet (a plain ``Dense`` model failed with ``IndexError``
when predicting).

:func:`check_keras_archive` reads the zip directory (bounded as for ``.npz``:
:data:`~lensviz.data.limits.MAX_ZIP_DIRECTORY_BYTES`) and refuses, naming the file and
the member, before anything is decompressed:

* members other than the three above (Keras would extract an ``assets/`` folder to
  disk), duplicated or missing ones;
* a compression method other than stored (0) or deflated (8), encrypted members;
* a member declaring more than its budget (:data:`~lensviz.data.limits.MAX_MODEL_BYTES`
  for the weights, :data:`~lensviz.data.limits.MAX_MODEL_CONFIG_BYTES` for each JSON
  file) or compressed beyond :data:`~lensviz.data.limits.MAX_COMPRESSION_RATIO`.

:mod:`zipfile` never hands back more than a member declares (it stops there, and the CRC
fails), so these checks bound what any reader of the archive allocates. The weights are
then read (within that budget) and checked as an HDF5 file
(:func:`lensviz.data.hdf5.check_hdf5_file`: no links, external storage or plugin
filters), and the sizes their datasets declare must fit
:data:`~lensviz.data.limits.MAX_MODEL_BYTES` as well. :func:`check_model_signature`
checks a loaded model's input ``(None, ny, nx, C)`` and output ``(None, ny, nx)``.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import h5py

from lensviz.data.errors import DataError, DataTypeError, LimitError, UnsafeFileError, quote
from lensviz.data.hdf5 import open_hdf5
from lensviz.data.limits import (
    MAX_COMPRESSION_RATIO,
    MAX_MODEL_BYTES,
    MAX_MODEL_CONFIG_BYTES,
    MAX_ZIP_DIRECTORY_BYTES,
    RATIO_CHECK_BYTES,
)
from lensviz.data.npy import _zip_directory_size

__all__ = [
    "KERAS_SUFFIX",
    "WEIGHTS_MEMBER",
    "KERAS_MEMBERS",
    "check_keras_archive",
    "open_keras_weights",
    "check_model_signature",
]

KERAS_SUFFIX = ".keras"
#: The weights member of a ``.keras`` archive.
WEIGHTS_MEMBER = "model.weights.h5"
#: The members a lensviz model holds, and the most each may declare [bytes].
KERAS_MEMBERS = {
    "config.json": MAX_MODEL_CONFIG_BYTES,
    "metadata.json": MAX_MODEL_CONFIG_BYTES,
    WEIGHTS_MEMBER: MAX_MODEL_BYTES,
}
_REQUIRED = ("config.json", WEIGHTS_MEMBER)
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_METHOD_NAMES = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 99: "AES"}
_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption flags
_ZIP_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    NotImplementedError,
    RuntimeError,
    KeyError,
    IndexError,
    struct.error,
)


def _check_member(info: zipfile.ZipInfo, source: str) -> None:
    where = f"{source} [{quote(info.filename, 60)}]"
    if info.flag_bits & _ENCRYPTED:
        raise UnsafeFileError(f"{where}: the member is encrypted; a model file is a plain archive")
    if info.compress_type not in _METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "unknown")
        raise DataError(
            f"{where}: the member uses zip compression method {info.compress_type} "
            f"({method}); expected stored (0) or deflated (8), as Keras writes"
        )
    budget = KERAS_MEMBERS[info.filename]
    if info.file_size > budget:
        raise LimitError(
            f"{where}: the member declares {info.file_size / 2**20:.1f} MiB; the limit is "
            f"{budget / 2**20:.0f} MiB (lensviz.data.limits."
            f"{'MAX_MODEL_BYTES' if info.filename == WEIGHTS_MEMBER else 'MAX_MODEL_CONFIG_BYTES'})"
        )
    if info.file_size > RATIO_CHECK_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise LimitError(
            f"{where}: the member declares {info.file_size} bytes stored in "
            f"{info.compress_size}, a compression ratio over {MAX_COMPRESSION_RATIO} "
            "(lensviz.data.limits.MAX_COMPRESSION_RATIO); refused as a zip bomb"
        )


@contextlib.contextmanager
def _open_archive(path, source: str) -> Iterator[zipfile.ZipFile]:
    """The checked zip archive of a ``.keras`` file (members not yet read)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such model file")
    if not path.is_file():
        raise DataError(f"{source}: is not a regular file; expected a .keras model file")
    if path.suffix.lower() != KERAS_SUFFIX:
        raise DataError(f"{source}: a model file must end in .keras, got '{quote(path.suffix)}'")
    with open(path, "rb") as fp:
        size = fp.seek(0, io.SEEK_END)
        fp.seek(0)
        try:
            directory = _zip_directory_size(fp, size, source)
        except DataError:
            raise DataError(
                f"{source}: cannot read as a .keras model: it is corrupt or not a zip archive"
            ) from None
        if directory > MAX_ZIP_DIRECTORY_BYTES:
            raise LimitError(
                f"{source}: the zip directory declares {directory} bytes; expected at most "
                f"{MAX_ZIP_DIRECTORY_BYTES} (lensviz.data.limits.MAX_ZIP_DIRECTORY_BYTES)"
            )
        fp.seek(0)
        try:
            archive = zipfile.ZipFile(fp)
        except _ZIP_ERRORS as exc:
            raise DataError(
                f"{source}: cannot read as a .keras model: the archive is truncated or "
                f"corrupt ({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
        with archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            unexpected = sorted({n for n in names if n not in KERAS_MEMBERS})
            if unexpected or len(names) != len(set(names)):
                what = f"unexpected {quote(unexpected)}" if unexpected else "a member twice"
                raise DataError(
                    f"{source}: the archive holds {what}; a lensviz model holds "
                    f"{', '.join(KERAS_MEMBERS)} only"
                )
            missing = [n for n in _REQUIRED if n not in names]
            if missing:
                raise DataError(
                    f"{source}: the archive has no {' and no '.join(missing)}; expected a "
                    "model saved by lensviz (Keras .keras format)"
                )
            for info in infos:
                _check_member(info, source)
            yield archive


def _declared_bytes(f: h5py.File) -> int:
    total = 0

    def add(_, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += math.prod(obj.shape or ()) * obj.dtype.itemsize
        return None

    f.visititems(add)
    return total


@contextlib.contextmanager
def open_keras_weights(path, source: str | None = None) -> Iterator[h5py.File]:
    """The weights of a ``.keras`` file as an open, checked HDF5 file (read-only).

    Parameters
    ----------
    path : str or path-like
    source : str, optional
        Name for messages (default: the file name; never a server's folders).

    Yields
    ------
    h5py.File
        ``model.weights.h5``, read into memory (within
        :data:`~lensviz.data.limits.MAX_MODEL_BYTES`) and checked.

    Raises
    ------
    DataError, LimitError, UnsafeFileError, FileNotFoundError
        See the module docstring.
    """
    source = Path(path).name if source is None else source
    with _open_archive(path, source) as archive:
        try:
            raw = archive.read(WEIGHTS_MEMBER)
        except _ZIP_ERRORS as exc:
            raise DataError(
                f"{source} [{WEIGHTS_MEMBER}]: cannot read the member: the archive is "
                f"truncated or corrupt ({type(exc).__name__}: {quote(exc, 80)})"
            ) from exc
    where = f"{source} [{WEIGHTS_MEMBER}]"
    with open_hdf5(io.BytesIO(raw), where) as (f, _):
        declared = _declared_bytes(f)
        if declared > MAX_MODEL_BYTES:
            raise LimitError(
                f"{where}: the weights declare {declared / 2**20:.1f} MiB; the limit is "
                f"{MAX_MODEL_BYTES / 2**20:.0f} MiB (lensviz.data.limits.MAX_MODEL_BYTES)"
            )
        yield f


def check_keras_archive(path, source: str | None = None) -> None:
    """Refuse a ``.keras`` file that Keras must not open (see the module docstring).

    Raises
    ------
    DataError, LimitError, UnsafeFileError, FileNotFoundError
        Naming the file, the member and the rule.

    Examples
    --------
    >>> check_keras_archive(Path(__file__).parents[2] / "weights" / "lite.keras")
    """
    with open_keras_weights(path, source):
        pass


def check_model_signature(input_shape, output_shape, source: str) -> None:
    """Refuse a loaded model that does not map ``(N, ny, nx, C)`` maps to ``(N, ny, nx)`` κ.

    Parameters
    ----------
    input_shape, output_shape : tuple
        ``model.input_shape`` and ``model.output_shape`` (Keras: None for the batch).
    source : str
        The model file, for the message.

    Raises
    ------
    DataTypeError
        Unless the model has one input ``(None, ny, nx, C)`` (ε, or ε with derived
        channels: the channels are the predictor's to match) and one output
        ``(None, ny, nx)`` of the same positive size.

    Examples
    --------
    >>> check_model_signature((None, 128, 128, 3), (None, 128, 128), "lite.keras")
    >>> check_model_signature((None, 10), (None, 1), "dense.keras")
    Traceback (most recent call last):
    ...
    lensviz.data.errors.DataTypeError: dense.keras: the model takes (None, 10) and gives ...
    """

    def shape(value):
        if not isinstance(value, tuple) or not value or value[0] is not None:
            return None
        rest = value[1:]
        ok = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in rest)
        return rest if ok else None

    shape_in, shape_out = shape(input_shape), shape(output_shape)
    if not (
        shape_in is not None
        and shape_out is not None
        and len(shape_in) == 3
        and shape_out == shape_in[:2]
    ):
        raise DataTypeError(
            f"{source}: the model takes {quote(input_shape, 60)} and gives "
            f"{quote(output_shape, 60)}; expected maps (None, ny, nx, C) in and "
            "κ (None, ny, nx) out, as lensviz's UNets"
        )
