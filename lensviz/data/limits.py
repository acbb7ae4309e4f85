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

Working memory
--------------
Simulating and observing allocate far more than their inputs, and every setting they
take is checked, before any work starts, against :data:`MAX_WORK_BYTES` (1.5 GiB) by
:func:`check_simulation` and :func:`check_observation`, which raise one
:class:`~lensviz.data.errors.LimitError` saying what to change. The estimates
(:func:`simulation_bytes`, :func:`observation_bytes`) are linear in the pixels, with
coefficients above the peak resident memory measured in a child process
(``resource.getrusage``) on the simulator of issue 21:

=============================================  ===========  ===========
computation                                    measured     estimate
=============================================  ===========  ===========
observe 512² (30 per arcmin², 0.5′)            87 MiB       128 MiB
observe 1024² (30; or 10,000 at 1′: 147 MiB)   206 MiB      224 MiB
observe 2048² (30 or 256 per arcmin²)          482 MiB      608 MiB
simulate 1 × 128² (384² canvas)                19 MiB       126 MiB
simulate 1 × 512² (768² canvas)                119 MiB      218 MiB
simulate 1 × 1024² (1280² canvas)              313 MiB      440 MiB
simulate 4 × 1024² (1280² canvas)              340 MiB      488 MiB
=============================================  ===========  ===========

The galaxy density and the pixel scale do not enter: the simulator lenses at most
:data:`EXACT_GALAXIES_PER_PIXEL` galaxies a pixel one by one, in blocks, and draws the
mean shape noise of denser pixels directly, so 10,000 galaxies per arcmin² cost no more
than 30 (``tests/data/test_limits.py`` measures both and checks the estimates).

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

from lensviz.data.errors import LimitError

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
    "MAX_WORK_BYTES",
    "SAMPLE_BYTES_PER_PIXEL",
    "SIMULATION_BYTES_PER_CANVAS_PIXEL",
    "OBSERVATION_BYTES_PER_PADDED_PIXEL",
    "WORK_OVERHEAD_BYTES",
    "EXACT_GALAXIES_PER_PIXEL",
    "simulation_bytes",
    "observation_bytes",
    "check_work_bytes",
    "check_simulation",
    "check_observation",
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

# --- Working memory of one computation (see the module docstring) ---
MAX_WORK_BYTES = 1536 * _MiB  # peak of one simulation batch or one observed map
SAMPLE_BYTES_PER_PIXEL = 16  # ε (12) + κ (4) float32 of one simulated sample, a field pixel
SIMULATION_BYTES_PER_CANVAS_PIXEL = 210  # one sample's work, a canvas pixel (measured ≤ 200)
OBSERVATION_BYTES_PER_PADDED_PIXEL = 32  # observe_kappa, a padded pixel (measured ≤ 30)
WORK_OVERHEAD_BYTES = 96 * _MiB  # what does not scale: galaxy blocks, FFT plans, tables
EXACT_GALAXIES_PER_PIXEL = 64  # lensviz.simulate.EXACT_GALAXIES_MAX: galaxies lensed one by one


# === Working memory of a computation: estimated before any work starts ===


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def simulation_bytes(batch: int, npix: int, canvas_px: int, batches: int = 1) -> int:
    """Peak memory [bytes] of simulating ``batch`` samples at a time (estimate, ≥ measured).

    ``batches`` batches of outputs (ε and κ, float32: 16 bytes a field pixel) alive at
    once, plus one sample's work on its canvas: :data:`SIMULATION_BYTES_PER_CANVAS_PIXEL`
    a canvas pixel and :data:`WORK_OVERHEAD_BYTES` (see :func:`check_simulation`).

    Examples
    --------
    >>> round(simulation_bytes(256, 128, 384, batches=4) / 2**20)  # the CLI's default
    382
    """
    outputs = batches * batch * SAMPLE_BYTES_PER_PIXEL * npix * npix
    return int(outputs + SIMULATION_BYTES_PER_CANVAS_PIXEL * canvas_px**2 + WORK_OVERHEAD_BYTES)


def observation_bytes(shape: tuple[int, int], pad: int | None = None) -> int:
    """Peak memory [bytes] of observing a κ map of ``shape`` (estimate, ≥ measured).

    :func:`lensviz.simulate.observe_kappa` pads the map by ``pad`` per side (default half
    the larger side) for its FFTs: :data:`OBSERVATION_BYTES_PER_PADDED_PIXEL` a padded
    pixel, plus :data:`WORK_OVERHEAD_BYTES`. The galaxies are lensed in blocks whatever
    the depth (at most ``EXACT_GALAXIES_PER_PIXEL`` a pixel one by one), so neither the
    galaxy density nor the pixel scale changes the cost.

    Examples
    --------
    >>> round(observation_bytes((2048, 2048)) / 2**20)  # the largest map allowed
    608
    """
    ny, nx = (int(d) for d in shape)
    pad = max(ny, nx) // 2 if pad is None else int(pad)
    padded = (ny + 2 * pad) * (nx + 2 * pad)
    return int(OBSERVATION_BYTES_PER_PADDED_PIXEL * padded + WORK_OVERHEAD_BYTES)


def check_work_bytes(nbytes: int, what: str, advice: str) -> None:
    """Refuse a computation whose estimated peak memory exceeds :data:`MAX_WORK_BYTES`.

    Parameters
    ----------
    nbytes : int
        The estimate (:func:`simulation_bytes`, :func:`observation_bytes`).
    what : str
        The computation and its settings, for the message (it starts the message).
    advice : str
        What to change.

    Raises
    ------
    LimitError
        One line: what, the estimate, the budget and the advice.
    """
    if nbytes > MAX_WORK_BYTES:
        raise LimitError(
            f"{what} needs about {_gib(nbytes)} of memory; the budget is "
            f"{_gib(MAX_WORK_BYTES)} (lensviz.data.limits.MAX_WORK_BYTES): {advice}"
        )


def check_simulation(
    batch: int, npix: int, canvas_px: int, batches: int = 1, source: str = "simulating"
) -> int:
    """Check simulating ``batch`` samples of ``npix²`` on a ``canvas_px²`` canvas at a time.

    Call it before simulating (the command line's ``simulate`` and ``sim:`` specs with
    their ``--batch`` and read-ahead, the app's built-in data).

    Parameters
    ----------
    batch : int
        Samples simulated and held together.
    npix, canvas_px : int
        Field side and canvas side (``npix + 2 margin_px``) [pixels].
    batches : int, optional
        Batches alive at once (the command line's read-ahead: ``READ_AHEAD + 2``).
    source : str, optional
        What runs, for the message (``"sim:64"``, ``"simulate --batch 256"``).

    Returns
    -------
    int
        The estimate [bytes].

    Raises
    ------
    LimitError
        Over :data:`MAX_WORK_BYTES`, saying how large a batch fits (if any does).
    """
    nbytes = simulation_bytes(batch, npix, canvas_px, batches)
    one = simulation_bytes(1, npix, canvas_px, batches)
    per_sample = batches * SAMPLE_BYTES_PER_PIXEL * npix * npix
    fits = (MAX_WORK_BYTES - one) // per_sample + 1 if one <= MAX_WORK_BYTES else 0
    advice = (
        f"use batches of at most {fits} sample{'s' if fits > 1 else ''} (--batch {fits})"
        if fits > 0
        else "simulate a smaller field or canvas (--size, margin)"
    )
    check_work_bytes(
        nbytes,
        f"{source}: simulating {batch} samples of {npix} × {npix} px at a time "
        f"({batches} batch(es) alive, {canvas_px} × {canvas_px} canvas)",
        advice,
    )
    return nbytes


def check_observation(shape: tuple[int, int], pad: int | None = None, source: str = "κ map") -> int:
    """Check observing a κ map of ``shape`` (:func:`lensviz.simulate.observe_kappa`).

    Every map lensviz reads (at most :data:`MAX_FIELD_PX` a side) fits with the default
    padding; a larger ``pad`` may not.

    Returns
    -------
    int
        The estimate [bytes].

    Raises
    ------
    LimitError
        Over :data:`MAX_WORK_BYTES`.
    """
    nbytes = observation_bytes(shape, pad)
    ny, nx = (int(d) for d in shape)
    check_work_bytes(
        nbytes,
        f"{source}: observing a {ny} × {nx} map padded by "
        f"{max(ny, nx) // 2 if pad is None else int(pad)} px",
        "use a smaller map or less padding",
    )
    return nbytes
