"""Any dataset on disk: challenge folder, HDF5, ``.npz``, ``.npy`` or a FITS field, by its path.

:func:`load_dataset` reads a selection into a :class:`Dataset` (the maps, their names
and their :class:`~lensviz.data.sky.PixelGrid`: pixel scale and WCS), :func:`iter_dataset`
streams batches, :func:`dataset_length` counts samples and :func:`dataset_grid` gives the
pixel scale, both from the headers alone. Every layout is read the same careful way:
headers and structure are checked first (see :mod:`lensviz.data.npy` and
:mod:`lensviz.data.hdf5`), then only the selected rows are decoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from lensviz.data.challenge import challenge_names, iter_challenge_dir, read_challenge_dir
from lensviz.data.errors import DataError, quote
from lensviz.data.fits import FITS_SUFFIXES, read_field_fits
from lensviz.data.hdf5 import HDF5_SUFFIXES, hdf5_grid, hdf5_length, iter_hdf5, read_hdf5
from lensviz.data.npy import (
    NpyArray,
    npy_names,
    npz_grid,
    npz_layout,
    open_npy,
    open_npz,
    read_epsilon,
    read_kappa,
    read_names,
)
from lensviz.data.sky import PixelGrid
from lensviz.data.validate import (
    batch_within_budget,
    check_batch_size,
    check_read_size,
    epsilon_layout,
    slice_bounds,
)

__all__ = ["Dataset", "load_dataset", "dataset_length", "dataset_grid", "iter_dataset"]

#: Where the default pixel scale of a challenge folder comes from (the layout has no
#: place for it).
CHALLENGE_ORIGIN = "not stated: challenge folders hold no metadata (the challenge used 0.5′)"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Samples of a dataset and what is known of their sky.

    Unpacks as ``eps, kappa, names = dataset``, the tuple that :func:`load_dataset`
    returned before it carried a pixel scale.

    Attributes
    ----------
    eps : ndarray, shape (N, ny, nx, 3), float32
        ``(e1, e2, Δε)``; every map of a dataset has the same size.
    kappa : ndarray, shape (N, ny, nx), float32, or None
        None for ε-only data.
    names : list of str
    grid : lensviz.data.sky.PixelGrid
        Pixel scale (stated or defaulted) and, for a FITS field, its WCS.
    """

    eps: np.ndarray
    kappa: np.ndarray | None
    names: list[str]
    grid: PixelGrid = dataclasses.field(default_factory=PixelGrid)

    def __iter__(self) -> Iterator:
        return iter((self.eps, self.kappa, self.names))

    @property
    def pixel_arcmin(self) -> float:
        """Pixel side [arcmin] (:data:`lensviz.data.sky.DEFAULT_PIXEL_ARCMIN` if unknown)."""
        return self.grid.pixel_arcmin

    @property
    def pixel_known(self) -> bool:
        """Whether the data (or the user) stated the pixel scale."""
        return self.grid.known

    @property
    def header(self) -> fits.Header | None:
        """The WCS cards of a FITS field (for FITS outputs), or None."""
        return self.grid.header

    @property
    def wcs(self) -> WCS | None:
        """The ``astropy.wcs.WCS`` of a FITS field (pixel → RA/Dec), or None."""
        return self.grid.wcs


def _kind(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in (".npz", ".npy"):
        return suffix[1:]
    if suffix in FITS_SUFFIXES:
        return "fits"
    raise DataError(
        f"{path}: unsupported file type '{quote(path.suffix)}'; expected a "
        "challenge folder (EPSILON/ + KAPPA/), .h5/.hdf5, .npz, .npy or .fits"
    )


def _read_fits(path: Path, source: str, start: int = 0, stop: int | None = None):
    """A field file of :func:`lensviz.data.fits.write_field_fits`: one sample."""
    field = read_field_fits(path, source)
    slice_bounds(1, start, stop, source)
    kappa = None if field.kappa is None else field.kappa[None]
    return field.eps[None], kappa, [path.stem]


# === .npy (ε only) and .npz ===


def _read_npy_selection(arr: NpyArray, source: str, stem: str, start: int, stop: int | None):
    """Samples ``[start:stop]`` of an opened ε-only ``.npy``: ``(eps, None, names)``."""
    n = epsilon_layout(arr.shape, source)[0]
    start, stop = slice_bounds(n, start, stop, source)
    eps = read_epsilon(arr, source, start, stop)
    return eps, None, npy_names(stem, n, start, stop)


def _read_npz_selection(layout, source: str, start: int, stop: int | None):
    """Samples ``[start:stop]`` of an ``.npz`` from :func:`lensviz.data.npy.npz_layout`."""
    eps_a, kappa_a, names_a, n = layout
    start, stop = slice_bounds(n, start, stop, source)
    field = epsilon_layout(eps_a.shape, source)[2]
    check_read_size(stop - start, source, kappa=kappa_a is not None, field=field)
    eps = read_epsilon(eps_a, f"{source} [epsilon]", start, stop)
    kappa = None if kappa_a is None else read_kappa(kappa_a, f"{source} [kappa]", start, stop)
    if names_a is None:
        names = [f"{i:06d}" for i in range(start, stop)]
    else:
        names = read_names(names_a, n, f"{source} [names]", start, stop)
    return eps, kappa, names


# === Any layout ===


def load_dataset(path, start: int = 0, stop: int | None = None, *, pixel_arcmin=None) -> Dataset:
    """Load samples from any supported layout (see :mod:`lensviz.data`).

    Parameters
    ----------
    path : str or path-like
        A challenge folder, ``.h5``/``.hdf5``, ``.npz``, ``.npy`` (ε only) or a ``.fits``
        field file (:func:`lensviz.data.fits.read_field_fits`, one sample).
    start, stop : int, optional
        Load samples ``[start:stop]`` (within :data:`~lensviz.data.limits.MAX_READ_BYTES`);
        only those are read.
    pixel_arcmin : float, optional
        The pixel side [arcmin] for data that do not state one (``--pixel-arcmin``, the
        app's setting); see :meth:`lensviz.data.sky.PixelGrid.given`.

    Returns
    -------
    Dataset
        ``eps`` (N, ny, nx, 3), ``kappa`` (N, ny, nx) or None, ``names`` and ``grid``;
        unpacks as ``eps, kappa, names``.

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        As the reader of each layout (:mod:`lensviz.data.errors`); a ``pixel_arcmin``
        out of bounds or contradicting the data's own.
    """
    path = Path(path)
    kind = _kind(path)
    source = str(path)
    if kind == "folder":
        grid = PixelGrid(origin=CHALLENGE_ORIGIN).given(pixel_arcmin, source)
        return Dataset(*read_challenge_dir(path, start, stop), grid)
    if kind == "hdf5":
        grid = hdf5_grid(path, source).given(pixel_arcmin, source)
        return Dataset(*read_hdf5(path, start, stop), grid)
    if kind == "npz":
        with open_npz(path) as npz:
            grid = npz_grid(npz).given(pixel_arcmin, source)
            return Dataset(*_read_npz_selection(npz_layout(npz), source, start, stop), grid)
    if kind == "fits":
        field = read_field_fits(path, source)
        slice_bounds(1, start, stop, source)
        kappa = None if field.kappa is None else field.kappa[None]
        grid = field.grid.given(pixel_arcmin, source)
        return Dataset(field.eps[None], kappa, [path.stem], grid)
    with open_npy(path) as arr:
        grid = PixelGrid().given(pixel_arcmin, source)
        return Dataset(*_read_npy_selection(arr, source, path.stem, start, stop), grid)


def dataset_grid(path, *, pixel_arcmin=None) -> PixelGrid:
    """The :class:`~lensviz.data.sky.PixelGrid` :func:`load_dataset` would give ``path``,
    from its headers and attributes alone (for streaming readers, e.g. ``convert``).

    Raises
    ------
    DataError, FileNotFoundError
        As :func:`load_dataset`.
    """
    path = Path(path)
    kind = _kind(path)
    source = str(path)
    if kind == "folder":
        grid = PixelGrid(origin=CHALLENGE_ORIGIN)
    elif kind == "hdf5":
        grid = hdf5_grid(path, source)
    elif kind == "npz":
        with open_npz(path) as npz:
            grid = npz_grid(npz)
    elif kind == "fits":
        grid = read_field_fits(path, source).grid
    else:
        grid = PixelGrid()
    return grid.given(pixel_arcmin, source)


def dataset_length(path) -> int:
    """Number of samples :func:`load_dataset` would return for ``path``, from headers only."""
    path = Path(path)
    kind = _kind(path)
    if kind == "folder":
        return len(challenge_names(path))
    if kind == "hdf5":
        return hdf5_length(path)
    if kind == "npz":
        with open_npz(path) as npz:
            return npz_layout(npz)[3]
    if kind == "fits":
        return 1
    with open_npy(path) as arr:
        return epsilon_layout(arr.shape, str(path))[0]


def iter_dataset(
    path, batch_size: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]:
    """Yield ``(eps, kappa | None, names)`` batches of any supported layout.

    Every layout is streamed: the file is opened and checked once, and each batch
    decodes only its own rows (``.npz`` members are decompressed as they are read).
    A batch holds at most ``batch_size`` samples, fewer for fields so large that
    ``batch_size`` of them would exceed one read's budget
    (:func:`lensviz.data.validate.batch_within_budget`).
    """
    batch_size = check_batch_size(batch_size)
    path = Path(path)
    kind = _kind(path)
    if kind in ("hdf5", "npz"):
        dataset_grid(path)  # a stated pixel scale out of bounds is refused on every path
    if kind == "folder":
        yield from iter_challenge_dir(path, batch_size, start, stop)
        return
    if kind == "hdf5":
        yield from iter_hdf5(path, batch_size, start, stop)
        return
    source = str(path)
    if kind == "fits":
        yield _read_fits(path, source, start, stop)
        return
    with contextlib.ExitStack() as stack:
        if kind == "npz":
            layout = npz_layout(stack.enter_context(open_npz(path)))
            n = layout[3]
            field = epsilon_layout(layout[0].shape, source)[2]
            batch_size = batch_within_budget(batch_size, field, layout[1] is not None)

            def read(i, j):
                return _read_npz_selection(layout, source, i, j)
        else:
            arr = stack.enter_context(open_npy(path))
            n, _, field = epsilon_layout(arr.shape, source)
            batch_size = batch_within_budget(batch_size, field, False)

            def read(i, j):
                return _read_npy_selection(arr, source, path.stem, i, j)

        start, stop = slice_bounds(n, start, stop, source)
        for i in range(start, stop, batch_size):
            yield read(i, min(i + batch_size, stop))
