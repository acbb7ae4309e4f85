"""Model files read without TensorFlow: whether a ``.keras`` file's weights are finite.

Shared by the sidebar's model list (:func:`ui.cache.model_files`, which must not load
TensorFlow) and the fine-tuning job (:mod:`ui.jobs`).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np

__all__ = ["first_non_finite_weight"]


def first_non_finite_weight(path: str | os.PathLike) -> str | None:
    """The name of the first weight array with NaN or ±inf in a ``.keras`` file, or None.

    Reads the HDF5 weights inside the zip with h5py (no TensorFlow).

    Raises
    ------
    ValueError
        If the file is not a readable ``.keras`` archive with ``model.weights.h5``.
    """
    try:
        with zipfile.ZipFile(path) as z:
            raw = z.read("model.weights.h5")
        bad = []
        with h5py.File(io.BytesIO(raw), "r") as f:

            def check(name, obj):
                if (
                    not bad
                    and isinstance(obj, h5py.Dataset)
                    and obj.dtype.kind == "f"
                    and not np.isfinite(obj[()]).all()
                ):
                    bad.append(name)

            f.visititems(check)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read the weights of {Path(path).name!r}: {exc}") from exc
    return bad[0] if bad else None
