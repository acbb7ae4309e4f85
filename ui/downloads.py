"""What the download buttons hand out: κ as ``.npy``, as FITS and as a figure PNG.

Pure functions of a :class:`ui.sidebar.Selection` and a map; the pages draw the buttons
and pass these as deferred callables, so nothing is built until a click.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from lensviz import data

__all__ = ["fits_attrs", "kappa_fits", "npy_bytes", "slug"]


def npy_bytes(m: np.ndarray) -> bytes:
    """``m`` as a float32 ``.npy`` file."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(m, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def slug(text: str) -> str:
    """A file-name part: ``"KS93 (σ 4 px)"`` → ``"ks93_sigma_4_px"``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower().replace("σ", "sigma")).strip("_")


def fits_attrs(sel, method: str) -> dict[str, str]:
    """The primary-header cards of a κ download: the method as the page names it, the
    sample and, for the UNet, the model's file name (never its path on the server).
    The FITS writer makes every string ASCII-safe (:func:`lensviz.data.kappa_fits_bytes`).
    """
    attrs = {"METHOD": method, "DATA": sel.sample_name}
    if method == "UNet" and sel.model_path is not None:
        attrs["MODEL"] = Path(sel.model_path).name
    return attrs


def kappa_fits(
    sel, method: str, kappa: np.ndarray, std: np.ndarray | None = None, hw95=None
) -> bytes:
    """A FITS file of ``kappa``: float32 in the primary image with the WCS of a FITS
    input and the pixel side the data state (``PIXARCM``), :func:`fits_attrs`, a MASK
    extension (1: no galaxies) on masked data, and, when given, the calibrated error
    bars as the STD and HW95 extensions (half-widths of the 68.3 % and 95.4 % bands)."""
    mask = sel.sample_mask if sel.sample_mask.any() else None
    return data.kappa_fits_bytes(
        kappa,
        sel.header,
        mask,
        attrs=fits_attrs(sel, method),
        pixel_arcmin=sel.pixel_arcmin if sel.grid.known else None,
        std=std,
        hw95=hw95,
    )
