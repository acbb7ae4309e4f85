"""Atomic file writes: write into a temporary beside the target, fsync, then rename.

A reader never sees a half-written file, and a failed or interrupted write leaves the
target as it was. Used for weights, histories, model cards, power spectra, prediction
files, HDF5 datasets and challenge folders.

The protocol of :func:`atomic_path`:

1. Create a private temporary folder beside the target (same file system, so the final
   rename is atomic) and hand the writer a path *inside* it that ends like the target
   (Keras and numpy pick the format from the suffix).
2. When the writer is done: ``fsync`` the file, rename it onto the target
   (:func:`os.replace`), ``fsync`` the target's folder so the rename itself is durable
   (where the platform allows it), and remove the temporary folder.
3. On any failure, Ctrl-C included, remove the temporary folder and everything in it.

Temporary names
---------------
Every temporary this module creates is named ``.<target name>.<8 random characters>.tmp``
(:data:`TEMP_NAME_PATTERN`): hidden, and ending in ``.tmp``, so ``glob("*.keras")`` or
``glob("*.h5")`` in the target's folder never matches one. Only a kill (SIGKILL, power
loss) can leave one behind; :func:`remove_stale_temps` deletes those left for longer than
:data:`STALE_TEMP_AGE_S`, and every writer calls it for its own target before writing.
Code that lists outputs should skip names for which :func:`is_temp_name` is true.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TEMP_NAME_PATTERN",
    "STALE_TEMP_AGE_S",
    "atomic_path",
    "write_text",
    "is_temp_name",
    "temp_dir",
    "fsync_path",
    "remove_stale_temps",
]

#: Names of the temporaries of this module: ``.<target>.<8 random [a-z0-9_]>.tmp``.
TEMP_NAME_PATTERN = re.compile(r"^\.(?P<target>.+)\.(?P<token>[a-z0-9_]{8})\.tmp$")
#: A temporary untouched for this long (seconds) is a leftover of a killed writer.
STALE_TEMP_AGE_S = 3600.0


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a file or folder name, not a path) is a temporary of this module."""
    return TEMP_NAME_PATTERN.match(name) is not None


def temp_dir(path: str | os.PathLike) -> Path:
    """Create an empty private folder ``.<name>.<random>.tmp`` beside ``path``."""
    path = Path(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's data to disk (a no-op where folders cannot be synced)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        if os.path.isdir(path):  # some platforms cannot open folders
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not os.path.isdir(path):
            raise
    finally:
        os.close(fd)


def _newest_mtime(entry: Path) -> float:
    """Last modification of ``entry`` or of anything directly inside it."""
    st = entry.lstat()
    newest = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        with os.scandir(entry) as it:
            for child in it:
                newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
    return newest


def remove_stale_temps(
    folder: str | os.PathLike, target: str | None = None, min_age_s: float = STALE_TEMP_AGE_S
) -> list[Path]:
    """Delete temporaries left in ``folder`` by writers that were killed.

    Parameters
    ----------
    folder : str or path-like
    target : str, optional
        Only the temporaries of this target name (e.g. ``"lite.keras"``).
    min_age_s : float, optional
        Only those untouched for at least this many seconds, so that a write still in
        progress (which keeps touching its temporary) is left alone.

    Returns
    -------
    list of Path
        What was removed. A missing folder removes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for entry in folder.iterdir():
        match = TEMP_NAME_PATTERN.match(entry.name)
        if match is None or (target is not None and match["target"] != target):
            continue
        try:
            if now - _newest_mtime(entry) < min_age_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # removed meanwhile by its writer
            continue
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path for ``path``; on success fsync it and rename it to ``path``.

    Parameters
    ----------
    path : str or path-like
        The target. Its folder is created if missing.
    suffix : str, optional
        The temporary file ends with this (some writers choose the format by it, e.g.
        Keras wants ``.keras`` and :func:`numpy.savez` appends ``.npz`` otherwise).

    Yields
    ------
    Path
        ``.<name>.<random>.tmp/<name>[suffix]`` beside ``path``. The file ends with mode
        0644, like a normal file.

    Notes
    -----
    See the module docstring for the protocol and the temporary names.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    tmp_dir = temp_dir(path)
    name = path.name if path.name.endswith(suffix) else path.name + suffix
    tmp = tmp_dir / name
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
