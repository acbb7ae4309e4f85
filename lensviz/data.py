"""Reading, writing and validating lensviz datasets.

In memory a dataset is three things:

* ``eps`` : ``(N, 128, 128, 3)`` float32, channels-last ``(e1, e2, Δε)``;
* ``kappa`` : ``(N, 128, 128)`` float32, or ``None`` for ε-only data (prediction);
* ``names`` : list of ``N`` str.

On disk lensviz reads four layouts (:func:`load_dataset` dispatches on the path):

Challenge folder (AstroDatatón 2024, REFERENCE.md §2)
    ``EPSILON/NAME.npy`` of shape ``(3, 128, 128)`` float16 (channels first) and
    ``KAPPA/NAME.npy`` of shape ``(128, 128)`` float16, paired by ``NAME``, ordered by
    name. Files that do not end in ``.npy`` are ignored.
HDF5 (``.h5`` / ``.hdf5``)
    Datasets ``epsilon`` ``(N, 128, 128, 3)`` float32, ``kappa`` ``(N, 128, 128)`` float32
    (optional: ε-only files) and ``names`` ``(N,)`` variable-length UTF-8 (optional),
    chunked by sample so that any slice is read without touching the rest of the file.
``.npz``
    Arrays ``epsilon``, optional ``kappa`` and optional ``names`` (a str array).
``.npy``
    A single ε array (no κ).

Every reader checks shapes, dtypes and finiteness with :func:`validate_epsilon` and
:func:`validate_kappa`, and loads ``.npy``/``.npz`` with ``allow_pickle=False``.

Errors
    Malformed content (shape, NaN/Inf, pickled or truncated files, missing datasets or
    folders, unpaired files) raises :class:`ValueError`; a wrong dtype raises
    :class:`TypeError`; a missing path raises :class:`FileNotFoundError`; refusing to
    overwrite raises :class:`FileExistsError`. Every message names the file, what was
    found and what was expected. A user-facing caller catches
    ``(ValueError, TypeError, OSError)``.
Atomic writes
    :class:`HDF5Writer` and :class:`ChallengeDirWriter` write to a hidden temporary file
    or folder beside the target and rename it into place only on success; on any
    failure (including Ctrl-C) the temporary is deleted, so no partial output remains.
"""

from __future__ import annotations

import io
import operator
import os
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from lensviz._atomic import atomic_path
from lensviz.constants import NPIX

__all__ = [
    "MAX_UPLOAD_BYTES",
    "HDF5_SUFFIXES",
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
    "load_dataset",
    "dataset_length",
    "iter_dataset",
    "load_upload",
    "load_upload_pair",
    "apply_convention",
    "write_predictions",
    "read_predictions",
]

MAX_UPLOAD_BYTES = 200 * 1024**2  # default upload limit (bytes); Streamlit's own default
HDF5_SUFFIXES = (".h5", ".hdf5")

_EPS_LAST = (NPIX, NPIX, 3)
_EPS_FIRST = (3, NPIX, NPIX)
_MAP = (NPIX, NPIX)
_EPS_EXPECTED = (
    f"(128, 128, 3) or (3, 128, 128) for one sample, or (N, 128, 128, 3) or "
    f"(N, 3, 128, 128) for N samples (NPIX={NPIX})"
)
_KAPPA_EXPECTED = "(128, 128) for one map or (N, 128, 128) for N maps"
_FLOAT_SIZES = (2, 4, 8)  # float16, float32, float64
_N_LISTED = 5  # unmatched names listed in an error message before "... and k more"


# === Validation ===


def _as_float_array(arr, source: str, what: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{source}: {what} is not a numeric array ({exc})") from exc
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in _FLOAT_SIZES:
        raise TypeError(
            f"{source}: {what} has dtype {arr.dtype} (shape {arr.shape}); "
            "expected float16, float32 or float64"
        )
    return arr


def _check_finite(out: np.ndarray, source: str, what: str, axes: str) -> None:
    if np.isfinite(out).all():
        return
    bad = ~np.isfinite(out)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = ", ".join(f"{a}={i}" for a, i in zip(axes, first, strict=True))
    raise ValueError(
        f"{source}: {what} contains {int(bad.sum())} NaN or infinite value(s) "
        f"(first at {where}); expected finite values"
    )


def validate_epsilon(arr, source: str = "array") -> np.ndarray:
    """Check an ε (ellipticity) array and return it as a channels-last float32 batch.

    Parameters
    ----------
    arr : array_like
        One sample, ``(128, 128, 3)`` (channels last) or ``(3, 128, 128)`` (channels
        first, the challenge files), or a batch ``(N, 128, 128, 3)`` or
        ``(N, 3, 128, 128)``. Channels are ``(e1, e2, Δε)``. float16, float32 or float64.
    source : str, optional
        What the array came from (usually a file name); used in error messages.

    Returns
    -------
    ndarray, shape (N, 128, 128, 3), float32
        C-contiguous; shares memory with ``arr`` when that already has this form.

    Raises
    ------
    TypeError
        If the dtype is not float16/32/64 (integer, complex, object, bool, ...).
    ValueError
        If the shape is none of the above, the batch is empty, or a value is NaN or
        infinite (also after conversion to float32).

    Notes
    -----
    The layout is decided by where the axis of length 3 sits: last → channels-last,
    right after the batch axis (or first, for a single sample) → channels-first. A
    3-D array is always one sample and a 4-D array always a batch. Since the map side
    (128) is not 3, no shape matches both layouts, so there is no ambiguity to resolve;
    an array with any other shape is rejected rather than guessed at.

    Examples
    --------
    >>> validate_epsilon(np.zeros((3, 128, 128), np.float16), "a.npy").shape
    (1, 128, 128, 3)
    """
    a = _as_float_array(arr, source, "ε")
    shape = a.shape
    if a.ndim == 3:
        a = a[None]
    if a.ndim == 4 and a.shape[1:] == _EPS_LAST:
        pass
    elif a.ndim == 4 and a.shape[1:] == _EPS_FIRST:
        a = np.moveaxis(a, 1, -1)
    else:
        raise ValueError(f"{source}: ε has shape {shape}; expected {_EPS_EXPECTED}")
    if a.shape[0] == 0:
        raise ValueError(f"{source}: ε has shape {shape}, which holds no samples")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        out = np.ascontiguousarray(a, dtype=np.float32)
    _check_finite(out, source, "ε", ("sample", "y", "x", "channel"))
    return out


def validate_kappa(arr, source: str = "array") -> np.ndarray:
    """Check a κ (convergence) array and return it as a float32 batch.

    Parameters
    ----------
    arr : array_like
        One map ``(128, 128)`` or a batch ``(N, 128, 128)``; float16, float32 or float64.
    source : str, optional
        What the array came from; used in error messages.

    Returns
    -------
    ndarray, shape (N, 128, 128), float32

    Raises
    ------
    TypeError
        If the dtype is not float16/32/64.
    ValueError
        If the shape is wrong, the batch is empty, or a value is NaN or infinite.
    """
    a = _as_float_array(arr, source, "κ")
    shape = a.shape
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != _MAP:
        raise ValueError(f"{source}: κ has shape {shape}; expected {_KAPPA_EXPECTED}")
    if a.shape[0] == 0:
        raise ValueError(f"{source}: κ has shape {shape}, which holds no maps")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=np.float32)
    _check_finite(out, source, "κ", ("map", "y", "x"))
    return out


def _check_same_length(eps: np.ndarray, kappa: np.ndarray | None, source: str) -> None:
    if kappa is not None and len(kappa) != len(eps):
        raise ValueError(
            f"{source}: ε holds {len(eps)} samples but κ holds {len(kappa)} maps; "
            "expected one κ map per ε sample"
        )


def _validate_names(names, n: int, source: str) -> list[str]:
    if names is None:
        return [f"{i:06d}" for i in range(n)]
    if isinstance(names, (str, bytes)):
        raise TypeError(f"{source}: names must be a sequence of str, got a single {type(names)}")
    out = []
    for name in names:
        if isinstance(name, bytes):
            name = name.decode("utf-8")
        if not isinstance(name, (str, np.str_)):
            raise TypeError(f"{source}: names must be str, got {type(name).__name__} {name!r}")
        out.append(str(name))
    if len(out) != n:
        raise ValueError(f"{source}: got {len(out)} names for {n} samples; expected one each")
    return out


def _slice_bounds(n: int, start, stop, source: str) -> tuple[int, int]:
    start = operator.index(start)
    stop = n if stop is None else operator.index(stop)
    if start < 0 or stop < 0:
        raise ValueError(f"start and stop must be non-negative, got start={start}, stop={stop}")
    stop = min(stop, n)
    if start >= stop:
        raise ValueError(
            f"{source}: the selection [{start}:{stop}] holds no samples; it holds {n} sample(s)"
        )
    return start, stop


# === .npy / .npz ===


_PASS_THROUGH = (FileNotFoundError, IsADirectoryError, PermissionError)
_LOAD_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeError,
                KeyError)


def _load_failure(source: str, exc: Exception, kind: str) -> ValueError:
    text = str(exc)
    if "pickle" in text or "Object arrays" in text:
        why = ("it holds pickled or object data, which lensviz never loads "
               "(allow_pickle=False); save a float array with numpy.save")
    else:
        why = f"it is truncated or corrupt ({type(exc).__name__}: {text})"
    return ValueError(f"{source}: cannot read as {kind}: {why}")


def load_npy(file, source: str | None = None) -> np.ndarray:
    """Load one array from a ``.npy`` file safely (``allow_pickle=False``).

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
    ValueError
        If the file holds pickled or object data, is an ``.npz`` archive, or is
        truncated or otherwise not a ``.npy`` file.
    FileNotFoundError
        If the file does not exist.
    """
    source = str(file) if source is None else source
    try:
        arr = np.load(file, allow_pickle=False)
    except _PASS_THROUGH:
        raise
    except _LOAD_ERRORS as exc:
        raise _load_failure(source, exc, ".npy") from exc
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{source}: is an .npz archive; expected a single .npy array")
    return arr


def _read_npz(file, source: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    try:
        archive = np.load(file, allow_pickle=False)
    except _PASS_THROUGH:
        raise
    except _LOAD_ERRORS as exc:
        raise _load_failure(source, exc, ".npz") from exc
    if isinstance(archive, np.ndarray):
        raise ValueError(f"{source}: is a .npy array; expected an .npz archive")
    with archive:
        keys = list(archive.files)
        if "epsilon" not in keys:
            raise ValueError(
                f"{source}: has no array 'epsilon' (found {keys}); expected arrays "
                "'epsilon' (N, 128, 128, 3), optional 'kappa' (N, 128, 128), optional 'names'"
            )
        try:
            eps = archive["epsilon"]
            kappa = archive["kappa"] if "kappa" in keys else None
            names = archive["names"] if "names" in keys else None
        except _LOAD_ERRORS as exc:
            raise _load_failure(source, exc, ".npz") from exc
    if names is not None and (names.ndim != 1 or names.dtype.kind not in "US"):
        raise ValueError(
            f"{source}: 'names' has shape {names.shape} and dtype {names.dtype}; "
            "expected a 1-D str array"
        )
    return eps, kappa, names


def _dataset_from_arrays(eps, kappa, names, source, start, stop):
    eps = validate_epsilon(eps, f"{source} [epsilon]")
    if kappa is not None:
        kappa = validate_kappa(kappa, f"{source} [kappa]")
        _check_same_length(eps, kappa, source)
    names = _validate_names(None if names is None else list(names), len(eps), source)
    start, stop = _slice_bounds(len(eps), start, stop, source)
    kappa = None if kappa is None else kappa[start:stop]
    return eps[start:stop], kappa, names[start:stop]


def _npy_names(stem: str, n: int) -> list[str]:
    return [stem] if n == 1 else [f"{stem}_{i:06d}" for i in range(n)]


# === Challenge folders ===


def _npy_stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir() if p.suffix == ".npy" and p.is_file()}


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(f"{n}.npy" for n in names[:_N_LISTED])
    more = len(names) - _N_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


def challenge_names(path) -> list[str]:
    """Names of the paired samples of a challenge folder, sorted.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``EPSILON/`` and ``KAPPA/``.

    Returns
    -------
    list of str
        ``NAME`` for every ``EPSILON/NAME.npy`` that has a ``KAPPA/NAME.npy``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a folder, lacks ``EPSILON/`` or ``KAPPA/``, either holds no
        ``.npy`` file, or some file has no partner (the unmatched names are listed).
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    layout = "expected EPSILON/NAME.npy (3, 128, 128) and KAPPA/NAME.npy (128, 128)"
    if not root.is_dir():
        raise ValueError(f"{root}: is not a folder; {layout}")
    missing = [sub for sub in ("EPSILON", "KAPPA") if not (root / sub).is_dir()]
    if missing:
        raise ValueError(f"{root}: missing subfolder {' and '.join(missing)}; {layout}")
    eps_names = _npy_stems(root / "EPSILON")
    kappa_names = _npy_stems(root / "KAPPA")
    for sub, found in (("EPSILON", eps_names), ("KAPPA", kappa_names)):
        if not found:
            raise ValueError(f"{root / sub}: holds no .npy files; {layout}")
    problems = []
    only_kappa = sorted(kappa_names - eps_names)
    only_eps = sorted(eps_names - kappa_names)
    if only_kappa:
        problems.append(f"{len(only_kappa)} KAPPA file(s) without EPSILON: {_listing(only_kappa)}")
    if only_eps:
        problems.append(f"{len(only_eps)} EPSILON file(s) without KAPPA: {_listing(only_eps)}")
    if problems:
        raise ValueError(f"{root}: unpaired files: " + "; ".join(problems))
    return sorted(eps_names)


def _read_challenge_samples(root: Path, names: Sequence[str]):
    n = len(names)
    eps = np.empty((n, *_EPS_LAST), np.float32)
    kappa = np.empty((n, *_MAP), np.float32)
    for i, name in enumerate(names):
        for folder, out, check in (("EPSILON", eps, validate_epsilon),
                                   ("KAPPA", kappa, validate_kappa)):
            file = root / folder / f"{name}.npy"
            raw = load_npy(file)
            arr = check(raw, str(file))
            if len(arr) != 1:
                raise ValueError(
                    f"{file}: has shape {raw.shape}, which holds {len(arr)} samples; expected "
                    "one sample per file, (3, 128, 128) in EPSILON and (128, 128) in KAPPA"
                )
            out[i] = arr[0]
    return eps, kappa, list(names)


def read_challenge_dir(path, start: int = 0, stop: int | None = None):
    """Read a challenge folder (``EPSILON/NAME.npy`` + ``KAPPA/NAME.npy``).

    Parameters
    ----------
    path : str or path-like
        The folder.
    start, stop : int, optional
        Read only samples ``[start:stop]`` of the name-sorted list (``stop`` past the
        end is clipped; an empty selection is an error).

    Returns
    -------
    eps : ndarray, shape (N, 128, 128, 3), float32
        Channels-last ``(e1, e2, Δε)`` (the files are channels-first).
    kappa : ndarray, shape (N, 128, 128), float32
    names : list of str
        ``NAME`` of each sample, sorted.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        See :func:`challenge_names`, :func:`load_npy` and :func:`validate_epsilon`.
    """
    root = Path(path)
    names = challenge_names(root)
    start, stop = _slice_bounds(len(names), start, stop, str(root))
    return _read_challenge_samples(root, names[start:stop])


def iter_challenge_dir(path, batch_size: int, start: int = 0, stop: int | None = None
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Read a challenge folder in batches, without loading all of it.

    Parameters
    ----------
    path : str or path-like
    batch_size : int
        Samples per batch (the last batch may be smaller).
    start, stop : int, optional
        As in :func:`read_challenge_dir`.

    Yields
    ------
    eps, kappa, names
        As :func:`read_challenge_dir`, for consecutive batches.
    """
    batch_size = _check_batch_size(batch_size)
    root = Path(path)
    names = challenge_names(root)
    start, stop = _slice_bounds(len(names), start, stop, str(root))
    for i in range(start, stop, batch_size):
        yield _read_challenge_samples(root, names[i:min(i + batch_size, stop)])


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_name(name: str, source: str) -> None:
    if (not name or name in (".", "..") or name.startswith(".")
            or any(c in name for c in "/\\\0")):
        raise ValueError(
            f"{source}: sample name {name!r} cannot be a file name; expected a non-empty "
            "name without '/', '\\\\' or NUL that does not start with '.'"
        )


def _temp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"


def _check_target(path: Path, overwrite: bool) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")


class ChallengeDirWriter:
    """Write a challenge folder incrementally and atomically.

    Samples go to ``EPSILON/NAME.npy`` (``(3, 128, 128)`` float16, channels first) and
    ``KAPPA/NAME.npy`` (``(128, 128)`` float16) inside a hidden temporary folder next
    to ``path``; leaving the ``with`` block normally renames it to ``path``, leaving
    it by an exception (or Ctrl-C) deletes it.

    Parameters
    ----------
    path : str or path-like
        The folder to create.
    overwrite : bool, optional
        Replace an existing ``path`` (the old folder is removed only after the new one
        is complete). Default False: an existing ``path`` raises FileExistsError.

    Examples
    --------
    >>> with ChallengeDirWriter("out") as w:
    ...     w.append(eps, kappa, names)
    """

    def __init__(self, path, *, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        self._tmp: Path | None = None
        self._names: set[str] = set()

    @property
    def n_written(self) -> int:
        """Samples appended so far."""
        return len(self._names)

    def __enter__(self) -> ChallengeDirWriter:
        _check_target(self.path, self.overwrite)
        self._tmp = _temp_sibling(self.path)
        try:
            (self._tmp / "EPSILON").mkdir(parents=True)
            (self._tmp / "KAPPA").mkdir()
        except BaseException:
            self._discard()
            raise
        return self

    def append(self, eps, kappa, names: Sequence[str]) -> None:
        """Write a batch: ε ``(n, 128, 128, 3)`` or channels-first, κ ``(n, 128, 128)``."""
        if self._tmp is None:
            raise ValueError(f"{self.path}: writer is not open; use it in a with block")
        source = f"batch for {self.path}"
        eps = validate_epsilon(eps, source)
        kappa = validate_kappa(kappa, source)
        _check_same_length(eps, kappa, source)
        names = _validate_names(names, len(eps), source)
        with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
            eps16 = np.moveaxis(eps, -1, 1).astype(np.float16)
            kappa16 = kappa.astype(np.float16)
        _check_finite(eps16, source + " (as float16)", "ε", ("sample", "channel", "y", "x"))
        _check_finite(kappa16, source + " (as float16)", "κ", ("map", "y", "x"))
        for i, name in enumerate(names):
            _check_name(name, source)
            if name in self._names:
                raise ValueError(f"{source}: duplicate sample name {name!r}")
            self._names.add(name)
            np.save(self._tmp / "EPSILON" / f"{name}.npy", np.ascontiguousarray(eps16[i]))
            np.save(self._tmp / "KAPPA" / f"{name}.npy", kappa16[i])

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._commit()
        else:
            self._discard()
        return False

    def _discard(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _commit(self) -> None:
        try:
            if not self._names:
                raise ValueError(f"{self.path}: no samples were written; nothing to save")
            old = None
            if self.path.exists():
                if not self.overwrite:
                    raise FileExistsError(f"{self.path}: already exists")
                old = _temp_sibling(self.path)
                os.rename(self.path, old)
            try:
                os.rename(self._tmp, self.path)
            except OSError:
                if old is not None:
                    os.rename(old, self.path)
                raise
            self._tmp = None
            if old is not None and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            elif old is not None:
                old.unlink()
        finally:
            self._discard()


def write_challenge_dir(path, eps, kappa, names: Sequence[str], *, overwrite: bool = False
                        ) -> None:
    """Write arrays as a challenge folder, atomically (see :class:`ChallengeDirWriter`).

    Parameters
    ----------
    path : str or path-like
    eps : array_like, shape (N, 128, 128, 3)
        Stored channels-first as float16.
    kappa : array_like, shape (N, 128, 128)
        Stored as float16.
    names : sequence of str
        File stems, unique.
    overwrite : bool, optional
    """
    with ChallengeDirWriter(path, overwrite=overwrite) as writer:
        writer.append(eps, kappa, names)


# === HDF5 ===


class HDF5Writer:
    """Write an HDF5 dataset file incrementally and atomically.

    Datasets (created at the first :meth:`append`, resizable along the sample axis):
    ``epsilon`` ``(N, 128, 128, 3)`` float32, ``kappa`` ``(N, 128, 128)`` float32 (only
    if the batches carry κ), ``names`` ``(N,)`` variable-length UTF-8. File attributes
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
        Samples per HDF5 chunk, default 1.
    attrs : dict, optional
        Extra file attributes (provenance: source folder, seed, ...).

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

    The file is written as a hidden temporary beside ``path`` and renamed to ``path``
    when the ``with`` block ends normally; an exception (or Ctrl-C) deletes it, so a
    failed write never leaves a partial ``path``. Closing with no sample appended is an
    error (nothing is written).

    Examples
    --------
    >>> with HDF5Writer("train.h5", attrs={"seed_start": 1_000_000}) as w:
    ...     for eps, kappa, names in batches:
    ...         w.append(eps, kappa, names)
    """

    def __init__(self, path, *, overwrite: bool = False, compression: str | None = "gzip",
                 compression_level: int = 4, samples_per_chunk: int = 1,
                 attrs: dict | None = None):
        if compression not in ("gzip", "lzf", None):
            raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        self.compression = compression
        self.compression_level = int(compression_level)
        self.samples_per_chunk = _check_batch_size(samples_per_chunk)
        self.attrs = dict(attrs or {})
        self._tmp: Path | None = None
        self._file: h5py.File | None = None
        self._has_kappa: bool | None = None
        self._n = 0

    @property
    def n_written(self) -> int:
        """Samples appended so far."""
        return self._n

    def __enter__(self) -> HDF5Writer:
        _check_target(self.path, self.overwrite)
        self._tmp = _temp_sibling(self.path)
        try:
            self._file = h5py.File(self._tmp, "x")
            self._file.attrs["format"] = "lensviz"
            self._file.attrs["format_version"] = 1
            self._file.attrs["channels"] = "e1,e2,delta_e"
            for key, value in self.attrs.items():
                self._file.attrs[key] = value
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _filters(self) -> dict:
        if self.compression is None:
            return {"shuffle": False}
        opts = self.compression_level if self.compression == "gzip" else None
        return {"compression": self.compression, "compression_opts": opts, "shuffle": True}

    def _create(self, has_kappa: bool) -> None:
        f, k = self._file, self.samples_per_chunk
        f.create_dataset("epsilon", shape=(0, *_EPS_LAST), maxshape=(None, *_EPS_LAST),
                         dtype=np.float32, chunks=(k, *_EPS_LAST), **self._filters())
        if has_kappa:
            f.create_dataset("kappa", shape=(0, *_MAP), maxshape=(None, *_MAP),
                             dtype=np.float32, chunks=(k, *_MAP), **self._filters())
        f.create_dataset("names", shape=(0,), maxshape=(None,),
                         dtype=h5py.string_dtype("utf-8"), chunks=(1024,))
        self._has_kappa = has_kappa

    def append(self, eps, kappa=None, names: Sequence[str] | None = None) -> None:
        """Append a batch.

        Parameters
        ----------
        eps : array_like, shape (n, 128, 128, 3) (or any layout :func:`validate_epsilon` takes)
        kappa : array_like, shape (n, 128, 128), optional
            Give it for every batch or for none.
        names : sequence of str, optional
            Defaults to the running sample index, ``"000000"``, ``"000001"``, ...
        """
        if self._file is None:
            raise ValueError(f"{self.path}: writer is not open; use it in a with block")
        source = f"batch {self._n}: for {self.path}"
        eps = validate_epsilon(eps, source)
        if kappa is not None:
            kappa = validate_kappa(kappa, source)
            _check_same_length(eps, kappa, source)
        if names is None:
            names = [f"{self._n + i:06d}" for i in range(len(eps))]
        names = _validate_names(names, len(eps), source)
        if self._has_kappa is None:
            self._create(kappa is not None)
        if self._has_kappa != (kappa is not None):
            state = "with" if self._has_kappa else "without"
            raise ValueError(f"{source}: earlier batches were written {state} κ; "
                             "give κ for every batch or for none")
        n0, n1 = self._n, self._n + len(eps)
        self._file["epsilon"].resize(n1, axis=0)
        self._file["epsilon"][n0:n1] = eps
        if kappa is not None:
            self._file["kappa"].resize(n1, axis=0)
            self._file["kappa"][n0:n1] = kappa
        self._file["names"].resize(n1, axis=0)
        self._file["names"][n0:n1] = names
        self._n = n1

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if self._n == 0:
                    raise ValueError(f"{self.path}: no samples were written; nothing to save")
                self._file.close()
                self._file = None
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
                self._tmp = None
        return False


def write_hdf5(path, eps, kappa=None, names: Sequence[str] | None = None, **kwargs) -> None:
    """Write arrays to an HDF5 dataset file, atomically.

    Parameters
    ----------
    path : str or path-like
    eps : array_like, shape (N, 128, 128, 3)
    kappa : array_like, shape (N, 128, 128), optional
        Omit for an ε-only file.
    names : sequence of str, optional
    **kwargs
        Passed to :class:`HDF5Writer` (``overwrite``, ``compression``, ``attrs``, ...).
    """
    with HDF5Writer(path, **kwargs) as writer:
        writer.append(eps, kappa, names)


def _is_path(file) -> bool:
    return isinstance(file, (str, os.PathLike))


def _open_hdf5(file, source: str) -> h5py.File:
    if _is_path(file) and not Path(file).exists():
        raise FileNotFoundError(f"{source}: no such file")
    try:
        return h5py.File(file, "r")
    except _PASS_THROUGH:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source}: cannot read as HDF5: it is truncated, corrupt or not an "
                         f"HDF5 file ({exc})") from exc


def _float_dataset(f: h5py.File, key: str, source: str, shapes, expected: str):
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{source}: '{key}' is a group; expected a dataset of shape {expected}")
    if ds.ndim != len(shapes[0]) + 1 or ds.shape[1:] not in shapes:
        raise ValueError(f"{source}: dataset '{key}' has shape {ds.shape}; expected {expected}")
    if ds.dtype.kind != "f" or ds.dtype.itemsize not in _FLOAT_SIZES:
        raise TypeError(f"{source}: dataset '{key}' has dtype {ds.dtype}; expected float32 "
                        "(float16 and float64 are accepted)")
    return ds


def _hdf5_layout(f: h5py.File, source: str):
    if "epsilon" not in f:
        raise ValueError(f"{source}: has no dataset 'epsilon' (found {sorted(f.keys())}); "
                         "expected 'epsilon' (N, 128, 128, 3) float32")
    eps = _float_dataset(f, "epsilon", source, (_EPS_LAST, _EPS_FIRST), "(N, 128, 128, 3)")
    n = eps.shape[0]
    kappa = None
    if "kappa" in f:
        kappa = _float_dataset(f, "kappa", source, (_MAP,), f"({n}, 128, 128)")
        if kappa.shape[0] != n:
            raise ValueError(f"{source}: dataset 'kappa' has shape {kappa.shape} but "
                             f"'epsilon' holds {n} samples; expected ({n}, 128, 128)")
    names = None
    if "names" in f:
        names = f["names"]
        if (not isinstance(names, h5py.Dataset) or names.shape != (n,)
                or h5py.check_string_dtype(names.dtype) is None):
            shape = getattr(names, "shape", "a group")
            raise ValueError(f"{source}: dataset 'names' has shape {shape}; expected ({n},) "
                             "variable-length strings")
    return eps, kappa, names


def _read_selection(ds, sel, source: str):
    try:
        if isinstance(sel, slice):
            return ds[sel]
        unique, inverse = np.unique(sel, return_inverse=True)
        return ds[unique][inverse]
    except (OSError, RuntimeError, ValueError, zlib.error) as exc:
        raise ValueError(f"{source}: cannot read dataset '{ds.name.lstrip('/')}': the file is "
                         f"truncated or corrupt ({exc})") from exc


def _hdf5_selection(n: int, start, stop, indices, source: str):
    if indices is None:
        start, stop = _slice_bounds(n, start, stop, source)
        return slice(start, stop), np.arange(start, stop)
    if start != 0 or stop is not None:
        raise ValueError("give either start/stop or indices, not both")
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise ValueError(f"indices must be a non-empty 1-D integer array, got shape {idx.shape} "
                         f"and dtype {idx.dtype}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"{source}: indices must lie in [0, {n}), got min {idx.min()} and "
                         f"max {idx.max()}")
    return idx, idx


def read_hdf5(path, start: int = 0, stop: int | None = None, indices=None, *,
              source: str | None = None):
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
    eps : ndarray, shape (n, 128, 128, 3), float32
    kappa : ndarray, shape (n, 128, 128), float32, or None
        None when the file has no ``kappa`` dataset (an ε-only file).
    names : list of str
        From the ``names`` dataset, or the sample indices as ``"000123"`` without one.

    Raises
    ------
    ValueError
        If the file is not HDF5, is truncated or corrupt, has no ``epsilon`` dataset,
        has datasets of the wrong shape, or the values read hold NaN/Inf.
    TypeError
        If a dataset is not floating point.
    FileNotFoundError
        If the file does not exist.
    """
    source = str(path) if source is None else source
    with _open_hdf5(path, source) as f:
        eps_ds, kappa_ds, names_ds = _hdf5_layout(f, source)
        sel, idx = _hdf5_selection(eps_ds.shape[0], start, stop, indices, source)
        eps = validate_epsilon(_read_selection(eps_ds, sel, source), f"{source} [epsilon]")
        kappa = None
        if kappa_ds is not None:
            kappa = validate_kappa(_read_selection(kappa_ds, sel, source), f"{source} [kappa]")
        if names_ds is None:
            names = [f"{i:06d}" for i in idx]
        else:
            names = [str(s) for s in _read_selection(names_ds.asstr(), sel, source)]
    return eps, kappa, names


def hdf5_length(path) -> int:
    """Number of samples in an HDF5 dataset file (the length of ``epsilon``).

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        As :func:`read_hdf5`, for the file's layout.
    """
    with _open_hdf5(path, str(path)) as f:
        return int(_hdf5_layout(f, str(path))[0].shape[0])


# === Any dataset ===


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
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; expected a challenge "
                     "folder (EPSILON/ + KAPPA/), .h5/.hdf5, .npz or .npy")


def load_dataset(path, start: int = 0, stop: int | None = None):
    """Load samples from any supported layout (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        A challenge folder, ``.h5``/``.hdf5``, ``.npz`` or ``.npy`` (ε only).
    start, stop : int, optional
        Load samples ``[start:stop]``; folders and HDF5 files read only those.

    Returns
    -------
    eps : ndarray, shape (N, 128, 128, 3), float32
    kappa : ndarray, shape (N, 128, 128), float32, or None
        None for ε-only data.
    names : list of str

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        As the reader of each layout.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "folder":
        return read_challenge_dir(path, start, stop)
    if kind == "hdf5":
        return read_hdf5(path, start, stop)
    if kind == "npz":
        return _dataset_from_arrays(*_read_npz(path, str(path)), str(path), start, stop)
    eps = validate_epsilon(load_npy(path), str(path))
    names = _npy_names(path.stem, len(eps))
    start, stop = _slice_bounds(len(eps), start, stop, str(path))
    return eps[start:stop], None, names[start:stop]


def dataset_length(path) -> int:
    """Number of samples :func:`load_dataset` would return for ``path``."""
    path = Path(path)
    kind = _kind(path)
    if kind == "folder":
        return len(challenge_names(path))
    if kind == "hdf5":
        return hdf5_length(path)
    return len(load_dataset(path)[0])


def iter_dataset(path, batch_size: int, start: int = 0, stop: int | None = None):
    """Yield ``(eps, kappa | None, names)`` batches of any supported layout.

    Folders and HDF5 files are read batch by batch; ``.npz`` and ``.npy`` files are
    loaded once and sliced.
    """
    batch_size = _check_batch_size(batch_size)
    path = Path(path)
    kind = _kind(path)
    if kind == "folder":
        yield from iter_challenge_dir(path, batch_size, start, stop)
        return
    if kind == "hdf5":
        start, stop = _slice_bounds(hdf5_length(path), start, stop, str(path))
        for i in range(start, stop, batch_size):
            yield read_hdf5(path, i, min(i + batch_size, stop))
        return
    eps, kappa, names = load_dataset(path, start, stop)
    for i in range(0, len(eps), batch_size):
        j = i + batch_size
        yield eps[i:j], None if kappa is None else kappa[i:j], names[i:j]


# === Uploads (bytes, e.g. from a web form) ===


def _check_upload(filename: str, data, max_bytes: int) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{filename}: upload data must be bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise ValueError(f"{filename}: the uploaded file is empty")
    if size > max_bytes:
        raise ValueError(
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
        ``.h5``/``.hdf5``.
    data : bytes
        File contents.
    max_bytes : int, optional
        Size limit, default :data:`MAX_UPLOAD_BYTES` (200 MiB).

    Returns
    -------
    eps, kappa or None, names
        As :func:`load_dataset`.

    Raises
    ------
    ValueError
        Over the size limit, empty, unsupported suffix, or bad content.
    TypeError
        Bad dtype, or ``data`` not bytes.
    """
    _check_upload(filename, data, max_bytes)
    suffix = Path(filename).suffix.lower()
    stem = Path(filename).stem
    buffer = io.BytesIO(data)
    if suffix == ".npy":
        eps = validate_epsilon(load_npy(buffer, filename), filename)
        return eps, None, _npy_names(stem, len(eps))
    if suffix == ".npz":
        return _dataset_from_arrays(*_read_npz(buffer, filename), filename, 0, None)
    if suffix in HDF5_SUFFIXES:
        return read_hdf5(buffer, source=filename)
    raise ValueError(f"{filename}: unsupported upload type {suffix!r}; expected .npy (ε only), "
                     ".npz or .h5/.hdf5")


def load_upload_pair(eps_name: str, eps_bytes: bytes, kappa_name: str, kappa_bytes: bytes,
                     *, max_bytes: int = MAX_UPLOAD_BYTES):
    """Load a challenge-style pair of uploaded ``.npy`` files (EPSILON + KAPPA).

    Parameters
    ----------
    eps_name, eps_bytes : str, bytes
        The ε file: ``(3, 128, 128)`` as in ``EPSILON/`` (any layout
        :func:`validate_epsilon` takes, including batches).
    kappa_name, kappa_bytes : str, bytes
        The κ file: ``(128, 128)`` as in ``KAPPA/``, or ``(N, 128, 128)``.
    max_bytes : int, optional
        Size limit per file.

    Returns
    -------
    eps : ndarray, shape (N, 128, 128, 3), float32
    kappa : ndarray, shape (N, 128, 128), float32
    names : list of str
        From the ε file name. The two names need not match (users rename files).
    """
    for name, data in ((eps_name, eps_bytes), (kappa_name, kappa_bytes)):
        _check_upload(name, data, max_bytes)
        if Path(name).suffix.lower() != ".npy":
            raise ValueError(f"{name}: expected a .npy file as in the challenge's EPSILON/ "
                             "and KAPPA/ folders")
    eps = validate_epsilon(load_npy(io.BytesIO(eps_bytes), eps_name), eps_name)
    kappa = validate_kappa(load_npy(io.BytesIO(kappa_bytes), kappa_name), kappa_name)
    _check_same_length(eps, kappa, f"{eps_name} + {kappa_name}")
    return eps, kappa, _npy_names(Path(eps_name).stem, len(eps))


# === Conventions of foreign data ===


def apply_convention(eps, *, negate_e1: bool = False, negate_e2: bool = False,
                     transpose: bool = False) -> np.ndarray:
    """Re-express ε given in another convention in lensviz's.

    This is not a symmetry of the sky (see :mod:`lensviz.augment` for those): it fixes
    data whose components have the opposite sign or whose maps are stored with x and y
    swapped relative to κ. :func:`lensviz.evaluation.convention_scores` finds which
    variant a dataset needs.

    Parameters
    ----------
    eps : array_like, shape (N, 128, 128, 3)
        Any layout :func:`validate_epsilon` takes.
    negate_e1, negate_e2 : bool, optional
        Flip the sign of that component.
    transpose : bool, optional
        Swap the pixel axes y and x of all three channels (components unchanged).

    Returns
    -------
    ndarray, shape (N, 128, 128, 3), float32
        A new array; sign flips and the transpose commute.
    """
    out = validate_epsilon(eps, "eps").copy()
    if negate_e1:
        out[..., 0] *= -1
    if negate_e2:
        out[..., 1] *= -1
    if transpose:
        out = np.ascontiguousarray(out.transpose(0, 2, 1, 3))
    return out


# === Predictions ===


def write_predictions(path, kappa_pred, names: Sequence[str], *, overwrite: bool = False,
                      attrs: dict | None = None, kappa_std=None) -> None:
    """Write predicted maps to HDF5: ``kappa_pred`` ``(N, 128, 128)`` float32 and ``names``.

    ``kappa_std`` (same shape), when given, is stored too: the per-pixel uncertainty.

    The file is written beside ``path`` under a temporary name and renamed when
    complete, so a failure never leaves a partial file. ``attrs`` (method, weights,
    smoothing…) become file attributes.
    """
    path = Path(path)
    kappa_pred = validate_kappa(kappa_pred, f"{path} [kappa_pred]")
    names = _validate_names(list(names), len(kappa_pred), str(path))
    _check_target(path, overwrite)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("kappa_pred", data=kappa_pred, chunks=(1, *kappa_pred.shape[1:]),
                         compression="gzip", compression_opts=4, shuffle=True)
        if kappa_std is not None:
            std = validate_kappa(kappa_std, f"{path} [kappa_std]")
            if std.shape != kappa_pred.shape:
                raise ValueError(f"{path}: kappa_std {std.shape} differs from kappa_pred "
                                 f"{kappa_pred.shape}")
            f.create_dataset("kappa_std", data=std, chunks=(1, *std.shape[1:]),
                             compression="gzip", compression_opts=4, shuffle=True)
        f.create_dataset("names", data=names, dtype=h5py.string_dtype("utf-8"))
        f.attrs["format"] = "lensviz-predictions"
        for key, value in (attrs or {}).items():
            f.attrs[key] = value


def read_predictions(path) -> tuple[np.ndarray, list[str], dict]:
    """Read a file written by :func:`write_predictions`: ``(kappa_pred, names, attrs)``."""
    source = str(path)
    with _open_hdf5(path, source) as f:
        if "kappa_pred" not in f:
            raise ValueError(f"{source}: no 'kappa_pred' dataset; expected a file written by "
                             "`python -m lensviz predict`")
        kappa = validate_kappa(f["kappa_pred"][...], f"{source} [kappa_pred]")
        names = [str(n) for n in f["names"].asstr()[...]] if "names" in f else [
            f"{i:06d}" for i in range(len(kappa))]
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    return kappa, names, attrs
