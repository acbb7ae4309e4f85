"""The COSMOS field, shipped with lensviz: real binned HST shear, 256 × 256 pixels.

Files (``lensviz/datasets/cosmos/``, package data; provenance, licence and attribution
in the ``README.md`` beside them): ``cosmos_g1.fits`` and ``cosmos_g2.fits``, the mean
shear estimate per pixel (0 where a pixel holds no galaxy), and ``cosmos_countmap.fits``,
the number of galaxies per pixel (0 to 20). From the public ``lenspack`` repository
(CosmoStat), the COSMOS input of the MCALens paper (Starck et al. 2021, A&A 649, A99),
built from the shear catalogue of Schrabback et al. 2010, A&A 516, A63; MIT licence.

:func:`load_cosmos` reads them through :func:`lensviz.data.read_shear_fits`: Δε =
σ_e/√N with σ_e estimated from the pixels with one galaxy (0.283), and the pixels
without galaxies (33 %: the tilted edge of the survey and round holes around bright
stars) as empty pixels. The signs and axes need no change: KS93 in lensviz's convention,
applied to (g1, g2) as stored, gives the highest E-to-B ratio of the sign and transpose
variants.

The pixel scale (:data:`COSMOS_PIXEL_ARCMIN`) is not stored with the data. The ACS
survey covers 1.6 deg² (1.64 deg², Koekemoer et al. 2007); spread over the 43,900 pixels
that hold galaxies it gives 0.362′ per pixel (0.367′ for 1.64 deg²), and over the
47,743 pixels inside the outer edge (star holes filled) 0.347-0.352′. lensviz uses
0.36′, the middle of that range, good to about ±3 %. Only quantities in arcmin depend on
it (axes, the galaxy density of 34 per arcmin²); every reconstruction works in pixels.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from lensviz.data import ShearField, read_shear_fits

__all__ = [
    "COSMOS_DIR",
    "COSMOS_FILES",
    "COSMOS_PIXEL_ARCMIN",
    "COSMOS_AREA_DEG2",
    "load_cosmos",
    "galaxy_density",
]

#: Where the COSMOS files live (shipped inside the package).
COSMOS_DIR = Path(__file__).resolve().parent / "datasets" / "cosmos"
#: The three images, by the role :func:`lensviz.data.read_shear_fits` gives them.
COSMOS_FILES = {"g1": "cosmos_g1.fits", "g2": "cosmos_g2.fits", "counts": "cosmos_countmap.fits"}
#: Pixel side [arcmin], derived in the module docstring (not stored with the data).
COSMOS_PIXEL_ARCMIN = 0.36
#: The survey area [deg²] the pixel scale is derived from.
COSMOS_AREA_DEG2 = 1.6


@lru_cache(maxsize=1)
def _read() -> ShearField:
    paths = {role: COSMOS_DIR / name for role, name in COSMOS_FILES.items()}
    field = read_shear_fits(paths["g1"], paths["g2"], counts=paths["counts"])
    field.eps.setflags(write=False)
    return field


def load_cosmos() -> ShearField:
    """The COSMOS field: ε ``(256, 256, 3)`` (read-only, cached), header, σ_e.

    Returns
    -------
    lensviz.data.ShearField
        ``eps`` with channels ``(g1, g2, Δε)``; ``mask`` the pixels without galaxies;
        ``kappa`` None (real data have no true κ); ``sigma_e`` ≈ 0.283.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data files.

    Examples
    --------
    >>> field = load_cosmos()
    >>> field.eps.shape, round(float(1 - field.mask.mean()), 2)
    ((256, 256, 3), 0.67)
    """
    return _read()


def galaxy_density(field: ShearField | None = None) -> float:
    """Galaxies per arcmin² inside the footprint, at :data:`COSMOS_PIXEL_ARCMIN`."""
    field = load_cosmos() if field is None else field
    counts = (field.sigma_e / field.eps[..., 2][~field.mask]) ** 2
    return float(np.mean(counts) / COSMOS_PIXEL_ARCMIN**2)
