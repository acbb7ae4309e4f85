"""Challenge folders (AstroDatatón 2024): ``EPSILON/NAME.npy`` + ``KAPPA/NAME.npy``.

``EPSILON/NAME.npy`` holds ``(3, 128, 128)`` float16 (channels first) and
``KAPPA/NAME.npy`` ``(128, 128)`` float16, paired by ``NAME`` and ordered by name.
Files that do not end in ``.npy`` are ignored; a ``NAME`` is a sample name and must be
printable UTF-8 text of at most :data:`~lensviz.data.limits.MAX_NAME_CHARS` characters,
as in every layout (a file name with a newline, a tab or bytes that are not UTF-8 is
refused, naming the file). lensviz also reads and writes folders of
other map sizes, ``(3, ny, nx)`` and ``(ny, nx)``, as long as every file of a folder
has the same size. A folder is self-contained: symbolic
links inside it (the subfolders or ``.npy`` files) are refused, so a dataset can never
make lensviz read a file outside it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lensviz._atomic import fsync_path, remove_stale_temps, temp_dir
from lensviz.data.errors import DataError, UnsafeFileError, quote
from lensviz.data.npy import open_npy, read_epsilon, read_kappa
from lensviz.data.validate import (
    batch_within_budget,
    check_batch_size,
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
    "challenge_names",
    "read_challenge_dir",
    "iter_challenge_dir",
    "ChallengeDirWriter",
    "write_challenge_dir",
]

_LAYOUT = (
    "expected EPSILON/NAME.npy (3, ny, nx) and KAPPA/NAME.npy (ny, nx), (3, 128, 128) "
    "and (128, 128) in the challenge"
)
_N_LISTED = 5  # unmatched names listed in an error message before "... and k more"


def _npy_stems(folder: Path) -> set[str]:
    stems = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith(".npy"):
                continue
            if entry.is_symlink():
                raise UnsafeFileError(
                    f"{folder / entry.name}: is a symbolic link; a challenge "
                    "folder must hold its own files"
                )
            if entry.is_file(follow_symlinks=False):
                stems.add(_check_stem(entry.name[:-4], folder / entry.name))
    return stems


def _check_stem(stem: str, file: Path) -> str:
    """A file's stem as a sample name: UTF-8, printable, within ``MAX_NAME_CHARS``.

    ``os.scandir`` hands back bytes that are not UTF-8 as lone surrogates; a name with
    them, or with a newline, tab or escape, is refused as in every other layout.
    """
    if any("\udc80" <= c <= "\udcff" for c in stem):
        raise DataError(
            f"{file}: the file name is not UTF-8; expected sample names of printable "
            "UTF-8 text, as in every layout lensviz reads"
        )
    return validate_names([stem], 1, str(file))[0]


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(f"{quote(n, 60)}.npy" for n in names[:_N_LISTED])
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
    DataError
        If it is not a folder, lacks ``EPSILON/`` or ``KAPPA/``, either holds no
        ``.npy`` file, or some file has no partner (the unmatched names are listed).
    UnsafeFileError
        If ``EPSILON``, ``KAPPA`` or a ``.npy`` file in them is a symbolic link.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder; {_LAYOUT}")
    for sub in ("EPSILON", "KAPPA"):
        if (root / sub).is_symlink():
            raise UnsafeFileError(
                f"{root / sub}: is a symbolic link; a challenge folder must hold its own files"
            )
    missing = [sub for sub in ("EPSILON", "KAPPA") if not (root / sub).is_dir()]
    if missing:
        raise DataError(f"{root}: missing subfolder {' and '.join(missing)}; {_LAYOUT}")
    eps_names = _npy_stems(root / "EPSILON")
    kappa_names = _npy_stems(root / "KAPPA")
    for sub, found in (("EPSILON", eps_names), ("KAPPA", kappa_names)):
        if not found:
            raise DataError(f"{root / sub}: holds no .npy files; {_LAYOUT}")
    problems = []
    only_kappa = sorted(kappa_names - eps_names)
    only_eps = sorted(eps_names - kappa_names)
    if only_kappa:
        problems.append(f"{len(only_kappa)} KAPPA file(s) without EPSILON: {_listing(only_kappa)}")
    if only_eps:
        problems.append(f"{len(only_eps)} EPSILON file(s) without KAPPA: {_listing(only_eps)}")
    if problems:
        raise DataError(f"{root}: unpaired files: " + "; ".join(problems))
    return sorted(eps_names)


def _one_sample(file: Path, n: int, shape) -> None:
    if n != 1:
        raise DataError(
            f"{file}: has shape {tuple(shape)}, which holds {n} samples; expected one sample "
            "per file, (3, ny, nx) in EPSILON and (ny, nx) in KAPPA"
        )


def _eps_field(file: Path) -> tuple[int, int]:
    """The map size of one ``EPSILON/NAME.npy``, from its header."""
    with open_npy(file) as arr:
        if arr.dtype.kind != "f":
            return read_epsilon(arr, str(file)).shape[1:3]  # raises the dtype error
        n, _, field = epsilon_layout(arr.shape, str(file))
        _one_sample(file, n, arr.shape)
        return field


def _read_challenge_samples(root: Path, names: Sequence[str], field=None):
    """Samples ``names``; every file must have the size of the first (or ``field``)."""
    field = _eps_field(root / "EPSILON" / f"{names[0]}.npy") if field is None else field
    check_read_size(len(names), str(root), field=field)
    n = len(names)
    eps = np.empty((n, *eps_row(field)), np.float32)
    kappa = np.empty((n, *field), np.float32)
    for i, name in enumerate(names):
        file = root / "EPSILON" / f"{name}.npy"
        with open_npy(file) as arr:
            if arr.dtype.kind == "f":
                count, _, this = epsilon_layout(arr.shape, str(file))
                _one_sample(file, count, arr.shape)
                check_same_field(field, this, str(file), "its ε")
            eps[i] = read_epsilon(arr, str(file))[0]
        file = root / "KAPPA" / f"{name}.npy"
        with open_npy(file) as arr:
            if arr.dtype.kind == "f":
                count, this = kappa_layout(arr.shape, str(file))
                _one_sample(file, count, arr.shape)
                check_same_field(field, this, str(file), "its κ")
            kappa[i] = read_kappa(arr, str(file))[0]
    return eps, kappa, list(names)


def read_challenge_dir(path, start: int = 0, stop: int | None = None):
    """Read a challenge folder (``EPSILON/NAME.npy`` + ``KAPPA/NAME.npy``).

    Parameters
    ----------
    path : str or path-like
        The folder.
    start, stop : int, optional
        Read only samples ``[start:stop]`` of the name-sorted list (``stop`` past the
        end is clipped; an empty selection is an error); within
        :data:`~lensviz.data.limits.MAX_READ_BYTES`.

    Returns
    -------
    eps : ndarray, shape (N, ny, nx, 3), float32
        Channels-last ``(e1, e2, Δε)`` (the files are channels-first); ``(ny, nx)`` is
        ``(128, 128)`` for the challenge's data, and the same for every file of a folder.
    kappa : ndarray, shape (N, ny, nx), float32
    names : list of str
        ``NAME`` of each sample, sorted.

    Raises
    ------
    DataError, DataTypeError, FileNotFoundError
        See :func:`challenge_names`, :func:`lensviz.data.load_npy` and
        :func:`lensviz.data.validate_epsilon`.
    """
    root = Path(path)
    names = challenge_names(root)
    start, stop = slice_bounds(len(names), start, stop, str(root))
    return _read_challenge_samples(root, names[start:stop])


def iter_challenge_dir(
    path, batch_size: int, start: int = 0, stop: int | None = None
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
        As :func:`read_challenge_dir`, for consecutive batches (fewer than
        ``batch_size`` samples for fields too large for one read's budget).
    """
    batch_size = check_batch_size(batch_size)
    root = Path(path)
    names = challenge_names(root)
    start, stop = slice_bounds(len(names), start, stop, str(root))
    field = _eps_field(root / "EPSILON" / f"{names[start]}.npy")
    batch_size = batch_within_budget(batch_size, field)
    for i in range(start, stop, batch_size):
        yield _read_challenge_samples(root, names[i : min(i + batch_size, stop)], field)


# === Writing ===


def _check_name(name: str, source: str) -> None:
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise DataError(
            f"{source}: sample name '{quote(name)}' cannot be a file name; expected a non-empty "
            "name without '/', '\\\\' or NUL that does not start with '.'"
        )


def _check_target(path: Path, overwrite: bool) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "xb") as fh:
        np.save(fh, arr)
        fh.flush()
        os.fsync(fh.fileno())


class ChallengeDirWriter:
    """Write a challenge folder incrementally and atomically.

    Samples go to ``EPSILON/NAME.npy`` (``(3, ny, nx)`` float16, channels first; 128 ×
    128 in the challenge) and ``KAPPA/NAME.npy`` (``(ny, nx)`` float16; every sample of
    a folder has the size of the first) inside a hidden temporary folder next
    to ``path`` (named as :data:`lensviz._atomic.TEMP_NAME_PATTERN` says); leaving the
    ``with`` block normally fsyncs it and renames it to ``path``, leaving it by an
    exception (or Ctrl-C) deletes it.

    Parameters
    ----------
    path : str or path-like
        The folder to create.
    overwrite : bool, optional
        Replace an existing ``path`` (the old folder is removed only after the new one
        is complete). Default False: an existing ``path`` raises FileExistsError.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out"
    >>> eps = np.zeros((2, 128, 128, 3), np.float32)
    >>> kappa = np.zeros((2, 128, 128), np.float32)
    >>> with ChallengeDirWriter(out) as w:
    ...     w.append(eps, kappa, ["a", "b"])
    >>> sorted(p.name for p in out.iterdir()), sorted(p.name for p in (out / "KAPPA").iterdir())
    (['EPSILON', 'KAPPA'], ['a.npy', 'b.npy'])
    """

    def __init__(self, path, *, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        self._tmp: Path | None = None
        self._names: set[str] = set()
        self._field: tuple[int, int] | None = None

    @property
    def n_written(self) -> int:
        """Samples appended so far."""
        return len(self._names)

    def __enter__(self) -> ChallengeDirWriter:
        _check_target(self.path, self.overwrite)
        remove_stale_temps(self.path.parent, self.path.name)
        self._tmp = temp_dir(self.path)
        try:
            (self._tmp / "EPSILON").mkdir()
            (self._tmp / "KAPPA").mkdir()
        except BaseException:
            self._discard()
            raise
        return self

    def append(self, eps, kappa, names: Sequence[str]) -> None:
        """Write a batch: ε ``(n, ny, nx, 3)`` or channels-first, κ ``(n, ny, nx)``."""
        if self._tmp is None:
            raise ValueError(f"{self.path}: writer is not open; use it in a with block")
        source = f"batch for {self.path}"
        eps = validate_epsilon(eps, source)
        kappa = validate_kappa(kappa, source)
        check_same_length(eps, kappa, source)
        self._field = eps.shape[1:3] if self._field is None else self._field
        check_same_field(self._field, eps.shape[1:3], source, "ε")
        names = validate_names(names, len(eps), source)
        # The value bounds of lensviz.data.limits lie far inside float16's ±65504.
        eps16 = np.moveaxis(eps, -1, 1).astype(np.float16)
        kappa16 = kappa.astype(np.float16)
        for i, name in enumerate(names):
            _check_name(name, source)
            if name in self._names:
                raise DataError(f"{source}: duplicate sample name '{quote(name)}'")
            self._names.add(name)
            _save(self._tmp / "EPSILON" / f"{name}.npy", np.ascontiguousarray(eps16[i]))
            _save(self._tmp / "KAPPA" / f"{name}.npy", kappa16[i])

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
                raise DataError(f"{self.path}: no samples were written; nothing to save")
            for sub in ("EPSILON", "KAPPA", ""):
                fsync_path(self._tmp / sub)
            old = None
            if self.path.exists():
                if not self.overwrite:
                    raise FileExistsError(f"{self.path}: already exists")
                old = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
                os.rename(self.path, old)
            try:
                os.rename(self._tmp, self.path)
            except OSError:
                if old is not None:
                    os.rename(old, self.path)
                raise
            self._tmp = None
            fsync_path(self.path.parent)
            if old is not None and old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            elif old is not None:
                old.unlink()
        finally:
            self._discard()


def write_challenge_dir(path, eps, kappa, names: Sequence[str], *, overwrite: bool = False) -> None:
    """Write arrays as a challenge folder, atomically (see :class:`ChallengeDirWriter`).

    Parameters
    ----------
    path : str or path-like
    eps : array_like, shape (N, ny, nx, 3)
        Stored channels-first as float16.
    kappa : array_like, shape (N, ny, nx)
        Stored as float16.
    names : sequence of str
        File stems, unique.
    overwrite : bool, optional
    """
    with ChallengeDirWriter(path, overwrite=overwrite) as writer:
        writer.append(eps, kappa, names)
