"""Budgets and bounds of the data readers, in one place.

Every reader checks what a file *declares* (``.npy`` headers, zip directory entries,
HDF5 shapes, chunks and storage) against these numbers before it allocates or reads
anything, and refuses with :class:`lensviz.data.errors.LimitError` (or
:class:`~lensviz.data.errors.DataError` for values) otherwise. Sizes are in bytes.

Memory of one read
------------------
One call of a loader (:func:`~lensviz.data.load_upload`, :func:`~lensviz.data.load_dataset`,
:func:`~lensviz.data.read_hdf5`, one batch of :func:`~lensviz.data.iter_dataset`) returns at
most :data:`MAX_READ_BYTES` of float32 output: 192 KiB of ε and 64 KiB of κ per
128 × 128 sample, so at most 2048 such samples with κ and 2730 without (a 200 MiB float16
``.npy`` upload holds 2133); a larger field costs ``16 ny nx`` bytes per sample with κ.
:func:`~lensviz.data.load_npy` reads an array whole only within the same budget. The
file's own dtype is decoded :data:`READ_BLOCK_SAMPLES` samples at a time (fewer for large
fields: at most :data:`READ_BLOCK_BYTES` of float64 ε) into that output, and values are
checked block by block, so the peak memory of a read is the output plus about 25 MiB
(plus one HDF5 chunk of at most :data:`MAX_HDF5_CHUNK_BYTES`, plus the upload's bytes
for an upload). Larger datasets
are read in batches (:func:`~lensviz.data.iter_dataset`): the budget per upload is
:data:`MAX_UPLOAD_BYTES` in and :data:`MAX_READ_BYTES` out, the budget per batch
:data:`MAX_READ_BYTES`.

Compression
-----------
A small compressed file can declare gigabytes of zeros (a "zip bomb"). An ``.npz``
member or an HDF5 dataset that declares more than :data:`RATIO_CHECK_BYTES` must not
compress by more than :data:`MAX_COMPRESSION_RATIO`: ε and κ maps compress 1.2–3×
(float16 challenge data about 2×), a field of zeros about 1000×. The check uses the
sizes the zip directory and the HDF5 storage declare, so nothing is decompressed.

Model files
-----------
A ``.keras`` model is read by Keras into memory: its weights member may declare at most
:data:`MAX_MODEL_BYTES` (and so may the datasets inside it), its JSON members
:data:`MAX_MODEL_CONFIG_BYTES` each (:mod:`lensviz.data.archive`).

Field sizes
-----------
A map may have any size ``ny × nx`` with :data:`MIN_FIELD_PX` ≤ ny, nx ≤
:data:`MAX_FIELD_PX` (64 to 2048 pixels a side, square or not); every map of one dataset
has the same size. The upper bound keeps one ε sample (``12 ny nx`` bytes) within one
HDF5 chunk (:data:`MAX_HDF5_CHUNK_BYTES`), so that a sample is always read whole.

Uploads
-------
One uploaded file holds at most :data:`MAX_UPLOAD_BYTES`; a session uploads at most
:data:`MAX_SESSION_UPLOADS` files and :data:`MAX_SESSION_UPLOAD_BYTES` in all
(:func:`~lensviz.data.check_session_uploads`).

Physical bounds of values
-------------------------
Ellipticities of single galaxies have ``|e| ≤ 1`` and the binned means lensviz reads
are means of those, so ``|e1|, |e2| ≤ 1`` for any sound data; :data:`EPS_COMPONENT_MAX`
leaves room for other shear estimators (whose per-galaxy values can exceed 1) while
refusing garbage such as ``1e36``, which turns KS93 and Wiener maps into NaN. Δε is a
standard deviation, at most ``σ_e ≈ 0.3`` for one galaxy and
:data:`lensviz.constants.EMPTY_PIXEL_SIGMA` (1) for an empty pixel;
:data:`DELTA_EPS_MAX` leaves room for foreign empty-pixel markers. κ of clusters
reaches a few in the cores; :data:`KAPPA_ABS_MAX` bounds truth and predictions.
"""

from __future__ import annotations

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_SESSION_UPLOADS",
    "MAX_SESSION_UPLOAD_BYTES",
    "READ_BLOCK_SAMPLES",
    "READ_BLOCK_BYTES",
    "MAX_READ_BYTES",
    "MAX_DECLARED_BYTES",
    "MAX_COMPRESSION_RATIO",
    "RATIO_CHECK_BYTES",
    "MAX_NPY_HEADER_BYTES",
    "MAX_ZIP_MEMBERS",
    "MAX_ZIP_DIRECTORY_BYTES",
    "MAX_ZIP_MEMBER_BYTES",
    "MAX_HDF5_CHUNK_BYTES",
    "MAX_HDF5_LINKS",
    "MAX_HDF5_DEPTH",
    "MAX_FITS_HDUS",
    "MAX_MODEL_BYTES",
    "MAX_MODEL_CONFIG_BYTES",
    "MAX_FITS_HEADER_BYTES",
    "MAX_NAME_CHARS",
    "MAX_ATTR_CHARS",
    "MIN_FIELD_PX",
    "MAX_FIELD_PX",
    "MIN_PIXEL_ARCMIN",
    "MAX_PIXEL_ARCMIN",
    "EPS_COMPONENT_MAX",
    "DELTA_EPS_MAX",
    "KAPPA_ABS_MAX",
]

_MiB = 1024**2

# --- Uploads ---
MAX_UPLOAD_BYTES = 200 * _MiB  # one uploaded file (Streamlit's own default limit)
MAX_SESSION_UPLOADS = 32  # files one app session may upload
MAX_SESSION_UPLOAD_BYTES = 1024 * _MiB  # bytes one app session may upload in all

# --- One read ---
READ_BLOCK_SAMPLES = 64  # samples decoded and checked at a time (≤ 25 MiB of float64 ε)
READ_BLOCK_BYTES = 25 * _MiB  # ... and fewer for large fields: at most this many float64 bytes
MAX_READ_BYTES = 512 * _MiB  # float32 output of one read (ε + κ), or an array read whole
MAX_DECLARED_BYTES = 2**40  # one array as declared by a file (1 TiB): shapes beyond are absurd

# --- Compression: a "bomb" is refused from its declared and stored sizes ---
MAX_COMPRESSION_RATIO = 100  # declared / stored bytes; float maps compress 1.2-3x, zeros 1000x
RATIO_CHECK_BYTES = 64 * _MiB  # the ratio is checked for arrays declaring more than this

# --- .npy / .npz ---
MAX_NPY_HEADER_BYTES = 10_000  # a .npy header (numpy's own safety limit)
MAX_ZIP_MEMBERS = 16  # entries of an .npz archive (lensviz uses 3: epsilon, kappa, names)
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024  # the zip central directory (about 100 bytes per entry)
MAX_ZIP_MEMBER_BYTES = MAX_DECLARED_BYTES  # uncompressed size of one member

# --- HDF5 ---
MAX_HDF5_CHUNK_BYTES = 64 * _MiB  # one chunk, uncompressed (lensviz writes 192 KiB chunks)
MAX_HDF5_LINKS = 256  # links in the whole file (lensviz writes 3)
MAX_HDF5_DEPTH = 8  # nesting of groups

# --- FITS ---
MAX_FITS_HDUS = 16  # HDUs scanned in one file (lensviz writes at most 6)
MAX_FITS_HEADER_BYTES = 100 * 2880  # one header: 100 blocks, 3,600 cards

# --- .keras model files (lensviz.data.archive) ---
MAX_MODEL_BYTES = 512 * _MiB  # the weights member, and what its datasets declare (lite: 4 MB)
MAX_MODEL_CONFIG_BYTES = 1 * _MiB  # config.json and metadata.json, each (lite: 0.7 kB)

# --- Field sizes: a map is ny × nx pixels with MIN_FIELD_PX ≤ ny, nx ≤ MAX_FIELD_PX ---
MIN_FIELD_PX = 64  # smaller maps hold too few modes for KS93 (and half a UNet tile)
MAX_FIELD_PX = 2048  # a 2048² ε sample is 48 MiB of float32: one HDF5 chunk, well in one read

# --- Pixel scale [arcmin per pixel] (lensviz.data.sky) ---
MIN_PIXEL_ARCMIN = 0.01  # 0.6″: finer than any binning of galaxy shapes
MAX_PIXEL_ARCMIN = 60.0  # 1°: a 2048-pixel map then spans a third of the sky

# --- Sample names ---
MAX_NAME_CHARS = 255  # one sample name (a file name on most systems)
MAX_ATTR_CHARS = 4096  # one string attribute of an HDF5 file (a source path, a JSON note)

# --- Physical bounds of values (see the module docstring) ---
EPS_COMPONENT_MAX = 5.0  # |e1| and |e2| at most this
DELTA_EPS_MAX = 10.0  # 0 ≤ Δε ≤ this (EMPTY_PIXEL_SIGMA = 1 marks an empty pixel)
KAPPA_ABS_MAX = 100.0  # |κ| at most this
