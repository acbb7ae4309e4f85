"""Atomic file writes: write a temporary file beside the target, then rename it.

A reader never sees a half-written file, and a failed or interrupted write leaves the
target as it was. Used for weights, histories, model cards, power spectra and
prediction files (the HDF5 and challenge-folder writers of :mod:`lensviz.data` follow
the same rule with their own temporary siblings).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success rename it to ``path``.

    ``suffix`` is appended to the temporary name (some writers choose the format by it,
    e.g. Keras wants ``.keras``). The file ends with mode 0644, like a normal file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
