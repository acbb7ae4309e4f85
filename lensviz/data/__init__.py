"""Reading, writing and validating lensviz datasets; every input file is hostile.

In memory a dataset is three things:

* ``eps`` : ``(N, ny, nx, 3)`` float32, channels-last ``(e1, e2, Δε)``;
* ``kappa`` : ``(N, ny, nx)`` float32, or ``None`` for ε-only data (prediction);
* ``names`` : list of ``N`` str.

Maps have any size from 64 to 2048 pixels a side, square or not
(:data:`~lensviz.data.limits.MIN_FIELD_PX`, :data:`~lensviz.data.limits.MAX_FIELD_PX`):
the challenge's 128 × 128 tiles, and whole survey fields. All maps of one dataset have
the same size.

On disk lensviz reads four layouts (:func:`load_dataset` dispatches on the path):

Challenge folder (AstroDatatón 2024, :mod:`lensviz.data.challenge`)
    ``EPSILON/NAME.npy`` of shape ``(3, 128, 128)`` float16 (channels first) and
    ``KAPPA/NAME.npy`` of shape ``(128, 128)`` float16, paired by ``NAME``, ordered by
    name. Files that do not end in ``.npy`` are ignored. Folders of other map sizes
    (``(3, ny, nx)``, ``(ny, nx)``) are read and written too.
HDF5 (``.h5`` / ``.hdf5``, :mod:`lensviz.data.hdf5`)
    Datasets ``epsilon`` ``(N, ny, nx, 3)`` float32, ``kappa`` ``(N, ny, nx)`` float32
    (optional: ε-only files) and ``names`` ``(N,)`` variable-length UTF-8 (optional),
    chunked by sample so that any slice is read without touching the rest of the file.
``.npz`` (:mod:`lensviz.data.npy`)
    Arrays ``epsilon``, optional ``kappa`` and optional ``names`` (a str array).
``.npy``
    A single ε array (no κ).
``.fits`` (:mod:`lensviz.data.fits`)
    One field: extensions ``E1``, ``E2``, ``SIGMA`` (or ``COUNTS``), optional ``MASK`` and
    ``KAPPA``. Separate g1/g2/count/σ/mask images of a survey are read by
    :func:`read_shear_fits`; κ maps are written by :func:`write_kappa_fits` with the
    input's WCS.

:func:`load_dataset` and the upload readers return a :class:`Dataset` (it unpacks as
``eps, kappa, names``) with its :class:`PixelGrid` (:mod:`lensviz.data.sky`): the pixel
side in arcmin (from a FITS WCS or ``PIXARCM`` card, an HDF5 attribute or an ``.npz``
array ``pixel_arcmin``; else :data:`DEFAULT_PIXEL_ARCMIN`, marked not stated), and the
WCS of a FITS field.

Uploads (name + bytes) are read by :func:`load_upload`, :func:`load_upload_pair` and
:func:`load_uploads` (:mod:`lensviz.data.upload`). Single maps, the κ map and mask image
that :func:`lensviz.simulate.observe_kappa` observes, are read by :func:`read_kappa_map`
and :func:`read_mask` (:mod:`lensviz.data.images`), from paths or uploads.

Hostile input
    Every reader checks what a file declares (``.npy`` headers, the zip directory, the
    HDF5 link structure, storage, filters, shapes and chunks) before it reads a byte of
    data, and refuses anything that would make it read outside the file, resolve links
    or allocate beyond the budgets of :mod:`lensviz.data.limits`; nothing is ever
    unpickled. Only the selected rows are then decoded, a block at a time, and checked
    by :func:`validate_epsilon` / :func:`validate_kappa`: shapes, dtypes, finiteness and
    the physical bounds of :mod:`lensviz.data.limits`.
Model files
    A ``.keras`` archive is checked by :func:`check_keras_archive` before Keras opens it,
    and a loaded model's signature by :func:`check_model_signature`
    (:mod:`lensviz.data.archive`).
Working memory
    :func:`lensviz.data.limits.check_simulation` and
    :func:`~lensviz.data.limits.check_observation` refuse settings whose estimated peak
    exceeds :data:`~lensviz.data.limits.MAX_WORK_BYTES`, before any work starts.
Errors (:mod:`lensviz.data.errors`)
    Bad content raises :class:`DataError` (a :class:`ValueError`); a wrong dtype
    :class:`DataTypeError` (also a :class:`TypeError`); an unsafe file
    :class:`UnsafeFileError`; a declared size beyond a budget :class:`LimitError`; what
    is left out and read on without (an invalid WCS) warns with :class:`DataWarning`. A
    missing path raises :class:`FileNotFoundError`; refusing to overwrite raises
    :class:`FileExistsError`. Every message is one line that names the file, what was
    found and what was expected. A user-facing caller catches
    ``(ValueError, TypeError, OSError)``.
Atomic writes
    :class:`HDF5Writer`, :class:`ChallengeDirWriter` and :class:`PredictionWriter` write
    to a hidden temporary beside the target, fsync it and rename it into place only on
    success; on any failure (including Ctrl-C) the temporary is deleted, so no partial
    output remains (:mod:`lensviz._atomic`).
"""

from __future__ import annotations

from lensviz.data import limits
from lensviz.data.archive import check_keras_archive, check_model_signature
from lensviz.data.challenge import (
    ChallengeDirWriter,
    challenge_names,
    iter_challenge_dir,
    read_challenge_dir,
    write_challenge_dir,
)
from lensviz.data.convention import apply_convention
from lensviz.data.dataset import (
    Dataset,
    dataset_grid,
    dataset_length,
    iter_dataset,
    load_dataset,
)
from lensviz.data.errors import (
    DataError,
    DataTypeError,
    DataWarning,
    LimitError,
    UnsafeFileError,
)
from lensviz.data.fits import (
    FITS_SUFFIXES,
    ShearField,
    kappa_fits_bytes,
    read_field_fits,
    read_kappa_fits,
    read_shear_fits,
    write_field_fits,
    write_kappa_fits,
)
from lensviz.data.hdf5 import (
    HDF5_SUFFIXES,
    HDF5Writer,
    PredictionWriter,
    check_hdf5_file,
    hdf5_field,
    hdf5_length,
    read_hdf5,
    read_prediction_errorbars,
    read_prediction_mask,
    read_predictions,
    write_hdf5,
    write_predictions,
)
from lensviz.data.images import MAP_SUFFIXES, read_kappa_map, read_mask
from lensviz.data.limits import MAX_UPLOAD_BYTES
from lensviz.data.npy import load_npy
from lensviz.data.sky import DEFAULT_PIXEL_ARCMIN, PixelGrid
from lensviz.data.upload import (
    check_session_uploads,
    epsilon_and_kappa_files,
    load_field_upload,
    load_kappa_upload,
    load_mask_upload,
    load_upload,
    load_upload_pair,
    load_uploads,
    upload_key,
)
from lensviz.data.validate import validate_epsilon, validate_kappa

__all__ = [
    "DataError",
    "DataTypeError",
    "UnsafeFileError",
    "LimitError",
    "DataWarning",
    "limits",
    "MAX_UPLOAD_BYTES",
    "HDF5_SUFFIXES",
    "FITS_SUFFIXES",
    "ShearField",
    "read_shear_fits",
    "read_field_fits",
    "read_kappa_fits",
    "write_kappa_fits",
    "kappa_fits_bytes",
    "write_field_fits",
    "validate_epsilon",
    "validate_kappa",
    "load_npy",
    "challenge_names",
    "read_challenge_dir",
    "iter_challenge_dir",
    "write_challenge_dir",
    "ChallengeDirWriter",
    "HDF5Writer",
    "write_hdf5",
    "read_hdf5",
    "hdf5_length",
    "hdf5_field",
    "check_hdf5_file",
    "Dataset",
    "PixelGrid",
    "DEFAULT_PIXEL_ARCMIN",
    "load_dataset",
    "dataset_length",
    "dataset_grid",
    "iter_dataset",
    "MAP_SUFFIXES",
    "read_kappa_map",
    "read_mask",
    "load_upload",
    "load_upload_pair",
    "load_field_upload",
    "load_kappa_upload",
    "load_mask_upload",
    "load_uploads",
    "epsilon_and_kappa_files",
    "check_session_uploads",
    "upload_key",
    "apply_convention",
    "check_keras_archive",
    "check_model_signature",
    "PredictionWriter",
    "write_predictions",
    "read_predictions",
    "read_prediction_mask",
    "read_prediction_errorbars",
]
