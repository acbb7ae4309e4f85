"""Uploaded files (name + bytes, e.g. from a web form), read with the same checks as files.

An upload is read from its bytes in memory, never written to disk, and goes through
the same header, structure and value checks as a file on disk; it is also bounded by
:data:`~lensviz.data.limits.MAX_UPLOAD_BYTES`, and a session by
:func:`check_session_uploads`.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lensviz.data.dataset import (
    CHALLENGE_ORIGIN,
    Dataset,
    _read_npy_selection,
    _read_npz_selection,
)
from lensviz.data.errors import DataError, DataTypeError, LimitError, quote
from lensviz.data.fits import FITS_SUFFIXES, read_field_fits
from lensviz.data.hdf5 import HDF5_SUFFIXES, hdf5_grid, read_hdf5
from lensviz.data.images import read_kappa_map, read_mask
from lensviz.data.limits import MAX_SESSION_UPLOAD_BYTES, MAX_SESSION_UPLOADS, MAX_UPLOAD_BYTES
from lensviz.data.npy import npz_grid, npz_layout, open_npy, open_npz, read_epsilon, read_kappa
from lensviz.data.sky import PixelGrid
from lensviz.data.validate import check_counts, check_same_field, epsilon_layout

__all__ = [
    "load_upload",
    "load_upload_pair",
    "load_uploads",
    "epsilon_and_kappa_files",
    "load_field_upload",
    "load_kappa_upload",
    "load_mask_upload",
    "check_session_uploads",
    "upload_key",
]

_N_LISTED = 4  # file names listed in a message before "and k more"
_PAIR_HELP = (
    "upload one .npy (ε only), .npz, .h5 or .fits file, or a challenge-style pair: "
    "EPSILON/NAME.npy (3, ny, nx) and KAPPA/NAME.npy (ny, nx), 128 × 128 in the "
    "challenge"
)


def _check_upload(filename: str, data, max_bytes: int) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataTypeError(f"{filename}: upload data must be bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise DataError(f"{filename}: the uploaded file is empty")
    if size > max_bytes:
        raise LimitError(
            f"{filename}: the upload is {size / 1024**2:.1f} MiB; the limit is "
            f"{max_bytes / 1024**2:.1f} MiB. Use a smaller file, or the command line "
            "(python -m lensviz) for large datasets"
        )


def load_upload(filename: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """Load an uploaded file from its name and bytes.

    Parameters
    ----------
    filename : str
        Original name; its suffix picks the reader: ``.npy`` (ε only), ``.npz``,
        ``.h5``/``.hdf5``, ``.fits`` (a field file, :func:`lensviz.data.fits.read_field_fits`).
    data : bytes
        File contents.
    max_bytes : int, optional
        Size limit, default :data:`~lensviz.data.limits.MAX_UPLOAD_BYTES` (200 MiB).

    Returns
    -------
    lensviz.data.Dataset
        As :func:`lensviz.data.load_dataset` (unpacks as ``eps, kappa, names``), with the
        pixel scale of an ``.h5`` attribute, an ``.npz`` array or a FITS WCS.

    Raises
    ------
    DataError
        Over the size limit, empty, unsupported suffix, unsafe or bad content (see
        :mod:`lensviz.data.errors`).
    DataTypeError
        Bad dtype, or ``data`` not bytes.
    """
    filename = quote(filename, 200)
    _check_upload(filename, data, max_bytes)
    suffix = Path(filename).suffix.lower()
    buffer = io.BytesIO(data)
    if suffix == ".npy":
        with open_npy(buffer, filename) as arr:
            return Dataset(*_read_npy_selection(arr, filename, Path(filename).stem, 0, None))
    if suffix == ".npz":
        with open_npz(buffer, filename) as npz:
            grid = npz_grid(npz)
            return Dataset(*_read_npz_selection(npz_layout(npz), filename, 0, None), grid)
    if suffix in HDF5_SUFFIXES:
        grid = hdf5_grid(buffer, filename)
        return Dataset(*read_hdf5(buffer, source=filename), grid)
    if suffix in FITS_SUFFIXES:
        field = read_field_fits(buffer, filename)
        kappa = None if field.kappa is None else field.kappa[None]
        return Dataset(field.eps[None], kappa, [Path(filename).stem], field.grid)
    raise DataError(
        f"{filename}: unsupported upload type '{quote(suffix)}'; expected .npy "
        "(ε only), .npz, .h5/.hdf5 or .fits"
    )


def load_upload_pair(
    eps_name: str,
    eps_bytes: bytes,
    kappa_name: str,
    kappa_bytes: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
):
    """Load a challenge-style pair of uploaded ``.npy`` files (EPSILON + KAPPA).

    Parameters
    ----------
    eps_name, eps_bytes : str, bytes
        The ε file: ``(3, ny, nx)`` as in ``EPSILON/`` (any layout
        :func:`lensviz.data.validate_epsilon` takes, including batches).
    kappa_name, kappa_bytes : str, bytes
        The κ file: ``(ny, nx)`` as in ``KAPPA/``, or ``(N, ny, nx)``; the same size.
    max_bytes : int, optional
        Size limit per file.

    Returns
    -------
    lensviz.data.Dataset
        ``eps`` (N, ny, nx, 3) and ``kappa`` (N, ny, nx), float32; ``names`` from the ε
        file name (the two names need not match: users rename files); the default pixel
        scale (a pair states none).

    Raises
    ------
    DataError, DataTypeError
        As :func:`load_upload`, for either file, or different numbers of samples.
    """
    eps_name, kappa_name = quote(eps_name, 200), quote(kappa_name, 200)
    for name, data in ((eps_name, eps_bytes), (kappa_name, kappa_bytes)):
        _check_upload(name, data, max_bytes)
        if Path(name).suffix.lower() != ".npy":
            raise DataError(
                f"{name}: expected a .npy file as in the challenge's EPSILON/ and KAPPA/ folders"
            )
    with (
        open_npy(io.BytesIO(eps_bytes), eps_name) as eps_arr,
        open_npy(io.BytesIO(kappa_bytes), kappa_name) as kappa_arr,
    ):
        eps = read_epsilon(eps_arr, eps_name)
        kappa = read_kappa(kappa_arr, kappa_name)
    check_counts(len(eps), len(kappa), f"{eps_name} + {kappa_name}")
    check_same_field(eps.shape[1:3], kappa.shape[1:3], f"{eps_name} + {kappa_name}")
    n = epsilon_layout(eps_arr.shape, eps_name)[0]
    stem = Path(eps_name).stem
    names = [stem] if n == 1 else [f"{stem}_{i:06d}" for i in range(n)]
    return Dataset(eps, kappa, names, PixelGrid(origin=CHALLENGE_ORIGIN))


def _declared_elements(name: str, data: bytes) -> int:
    _check_upload(name, data, MAX_UPLOAD_BYTES)
    with open_npy(io.BytesIO(data), name) as arr:
        return math.prod(arr.shape)


def epsilon_and_kappa_files(files: Sequence[tuple[str, bytes]]):
    """Order a pair of uploaded ``.npy`` files as ``(ε file, κ file)``.

    For the same number of maps the ε file (3 channels) is the larger array; the shapes
    are read from the ``.npy`` headers alone, never the data.

    Raises
    ------
    DataError, LimitError
        A file that is not a bounded ``.npy``.
    """
    files = list(files)
    if len(files) != 2:
        listed = ", ".join(quote(name, 60) for name, _ in files[:_N_LISTED]) or "no file"
        raise DataError(f"{listed}: got {len(files)} files; a pair is two .npy files")
    sizes = [_declared_elements(quote(name, 200), data) for name, data in files]
    return tuple(files) if sizes[0] >= sizes[1] else tuple(files[::-1])


def load_uploads(files: Sequence[tuple[str, bytes]], *, max_bytes: int = MAX_UPLOAD_BYTES):
    """Load what a user uploaded at once: one file, or an EPSILON + KAPPA ``.npy`` pair.

    Parameters
    ----------
    files : sequence of (name, bytes)
        One ``.npy``/``.npz``/``.h5`` file (:func:`load_upload`), or two ``.npy``
        files in either order: for the same number of maps the ε file (3 channels) is
        the larger one, told from the headers alone (:func:`load_upload_pair`).
    max_bytes : int, optional
        Size limit per file.

    Returns
    -------
    eps, kappa or None, names
        As :func:`load_upload`.

    Raises
    ------
    DataError, DataTypeError
        As :func:`load_upload`, or files that are neither one file nor a pair.
    """
    files = list(files)
    if len(files) == 1:
        return load_upload(*files[0], max_bytes=max_bytes)
    if len(files) == 2 and all(str(name).lower().endswith(".npy") for name, _ in files):
        (en, eb), (kn, kb) = epsilon_and_kappa_files(files)
        return load_upload_pair(en, eb, kn, kb, max_bytes=max_bytes)
    listed = ", ".join(quote(name, 60) for name, _ in files[:_N_LISTED])
    more = f" and {len(files) - _N_LISTED} more" if len(files) > _N_LISTED else ""
    raise DataError(f"{listed or 'no file'}{more}: got {len(files)} files; {_PAIR_HELP}")


def load_field_upload(filename: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """An uploaded FITS field file, whole: a :class:`lensviz.data.ShearField` (ε, the
    header with its WCS, σ_e, κ when the file holds it); bounded like every upload.

    See :func:`lensviz.data.fits.read_field_fits`.
    """
    filename = quote(filename, 200)
    _check_upload(filename, data, max_bytes)
    if Path(filename).suffix.lower() not in FITS_SUFFIXES:
        raise DataError(f"{filename}: expected a FITS field file (.fits)")
    return read_field_fits(io.BytesIO(data), filename)


def load_kappa_upload(filename: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """An uploaded κ map (``.fits`` or ``.npy``): ``(ny, nx)`` float32 and its FITS header.

    See :func:`lensviz.data.images.read_kappa_map`; bounded like every upload.
    """
    filename = quote(filename, 200)
    _check_upload(filename, data, max_bytes)
    return read_kappa_map(data, filename)


def load_mask_upload(
    filename: str, data: bytes, shape: tuple[int, int], *, max_bytes: int = MAX_UPLOAD_BYTES
) -> np.ndarray:
    """An uploaded mask image of ``shape``: bool, True where nonzero or NaN.

    See :func:`lensviz.data.images.read_mask`; bounded like every upload.
    """
    filename = quote(filename, 200)
    _check_upload(filename, data, max_bytes)
    return read_mask(data, shape, filename)


def upload_key(files: Sequence[tuple[str, bytes]]) -> str:
    """A key for the content of uploaded files: every name (suffix included) and its bytes.

    For caches of what the files hold: the same bytes under another name (a sample name
    comes from the file name) or another suffix (another reader), or one file equal to
    a pair's bytes joined, get another key. Each name and each file's bytes enter the
    hash with their lengths, so no two different lists of files share a key.

    Parameters
    ----------
    files : sequence of (name, bytes)
        In the order given (a pair in the other order is another key: one cache miss).

    Returns
    -------
    str
        24 hexadecimal digits of SHA-256.

    Examples
    --------
    >>> upload_key([("a.npy", b"xy")]) == upload_key([("b.npy", b"xy")])
    False
    >>> upload_key([("a.npy", b"xy")]) == upload_key([("a.npy", b"x"), ("y", b"")])
    False
    """
    digest = hashlib.sha256()
    for name, data in files:
        for part in (str(name).encode("utf-8", "surrogatepass"), bytes(data)):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()[:24]


def check_session_uploads(sizes: Sequence[int]) -> None:
    """Refuse an app session's uploads beyond the per-session limits.

    Parameters
    ----------
    sizes : sequence of int
        Bytes of every file the session has uploaded so far, the new ones included.

    Raises
    ------
    LimitError
        More than :data:`~lensviz.data.limits.MAX_SESSION_UPLOADS` files or
        :data:`~lensviz.data.limits.MAX_SESSION_UPLOAD_BYTES` bytes.
    """
    total = sum(int(s) for s in sizes)
    if len(sizes) > MAX_SESSION_UPLOADS:
        raise LimitError(
            f"this session has uploaded {len(sizes)} files; the limit is "
            f"{MAX_SESSION_UPLOADS} per session. Reload the page to start a new "
            "session"
        )
    if total > MAX_SESSION_UPLOAD_BYTES:
        raise LimitError(
            f"this session has uploaded {total / 2**20:.0f} MiB; the limit is "
            f"{MAX_SESSION_UPLOAD_BYTES / 2**20:.0f} MiB per session. Reload the "
            "page to start a new session"
        )
