"""Single 2-D maps: a κ map and a mask image, from ``.fits`` or ``.npy``, on disk or uploaded.

These are the inputs of *observing* a κ map (:func:`lensviz.simulate.observe_kappa`):
the CLI's ``observe`` reads them from paths, the app from uploaded bytes; both go
through the same hostile-file checks as every other reader (:mod:`lensviz.data.fits`,
:mod:`lensviz.data.npy`) and the same value checks (:func:`lensviz.data.validate_kappa`).

κ map
    A FITS image (the primary HDU, or the first IMAGE extension, or the ``KAPPA``
    extension of a lensviz field file), kept with its header so that a κ written back
    carries the input's WCS; or an ``.npy`` array ``(ny, nx)`` (or ``(1, ny, nx)``),
    float16/32/64.
Mask
    A FITS image or ``.npy`` array of the κ map's size: nonzero or NaN is masked, as in
    the masks that surveys publish (1 = bad) and in NaN-filled maps.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lensviz.data.errors import DataError, DataTypeError, quote
from lensviz.data.fits import FITS_SUFFIXES, read_image, read_kappa_fits
from lensviz.data.npy import load_npy
from lensviz.data.validate import validate_kappa

__all__ = ["MAP_SUFFIXES", "read_kappa_map", "read_mask"]

#: File types of a single map.
MAP_SUFFIXES = (*FITS_SUFFIXES, ".npy")


def _source(file, source: str | None) -> tuple[object, str, str]:
    """``(file object or path, name for messages, lower-case suffix)``; bytes → BytesIO."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        if source is None:
            raise TypeError("bytes need a source name (the file name) to pick the reader")
        file = io.BytesIO(bytes(file))
    name = str(file) if source is None else source
    return file, quote(name, 200), Path(name).suffix.lower()


def read_kappa_map(file, source: str | None = None):
    """One κ map: ``(ny, nx)`` float32 and its FITS header (None for ``.npy``).

    Parameters
    ----------
    file : str, path-like, bytes or binary file object
    source : str, optional
        The file name (required with bytes): its suffix picks the reader.

    Raises
    ------
    DataError, DataTypeError, LimitError, UnsafeFileError, FileNotFoundError
        As the readers; several maps in one ``.npy``; another suffix.

    Examples
    --------
    >>> buf = io.BytesIO(); np.save(buf, np.zeros((64, 80), np.float32))
    >>> kappa, header = read_kappa_map(buf.getvalue(), "k.npy")
    >>> kappa.shape, header is None
    ((64, 80), True)
    """
    file, name, suffix = _source(file, source)
    if suffix in FITS_SUFFIXES:
        return read_kappa_fits(file, name)
    if suffix == ".npy":
        kappa = validate_kappa(load_npy(file, name), name)
        if len(kappa) != 1:
            raise DataError(f"{name}: holds {len(kappa)} κ maps; expected one map (ny, nx)")
        return kappa[0], None
    raise DataError(f"{name}: unsupported κ file '{quote(suffix)}'; expected .fits or .npy")


def read_mask(file, shape: tuple[int, int], source: str | None = None) -> np.ndarray:
    """A mask image of a given shape: bool ``(ny, nx)``, True where nonzero or NaN.

    Parameters
    ----------
    file : str, path-like, bytes or binary file object
    shape : (int, int)
        The size of the map it masks.
    source : str, optional
        The file name (required with bytes).

    Raises
    ------
    DataError, DataTypeError, LimitError, UnsafeFileError, FileNotFoundError
        As the readers; another size; a non-numeric ``.npy``.
    """
    file, name, suffix = _source(file, source)
    if suffix in FITS_SUFFIXES:
        values = read_image(file, name)[0]
    elif suffix == ".npy":
        values = load_npy(file, name)
        if values.dtype.kind not in "biuf":
            raise DataTypeError(
                f"{name}: the mask has dtype {values.dtype}; expected bool or numbers"
            )
    else:
        raise DataError(f"{name}: unsupported mask file '{quote(suffix)}'; expected .fits or .npy")
    if values.shape != tuple(shape):
        raise DataError(
            f"{name}: the mask is {values.shape} but the κ map is {tuple(shape)}; "
            "expected the same size"
        )
    values = values.astype(np.float64)
    return np.isnan(values) | (values != 0)
