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

Sky coordinates: the files carry no WCS; :data:`COSMOS_WCS` is the one measured by binning
the public Schrabback et al. 2010 catalogue (417,117 galaxies with RA and Dec) on a
gnomonic tangent plane and matching its footprint to these files' (overlap 0.92; the
pixel shears correlate with the catalogue's binned ellipticities at r = +0.52 for g1 and
−0.51 for g2, since columns run along +RA): ``RA---TAN``/``DEC--TAN``, CRVAL (150.1131843°,
2.2313761°) at CRPIX (129, 127), CDELT +0.0058667° on both axes. Columns increase with RA
(East to the right) and rows with Dec (North up), so in the usual orientation (East
left) the image is mirrored left to right. :func:`load_cosmos` attaches it to the
field's header, so the field's :attr:`~lensviz.data.ShearField.grid`, its FITS outputs
and the app know RA and Dec. The pixel scale :data:`COSMOS_PIXEL_ARCMIN` follows from it:
0.352′ ± 0.005′ (the fit's uncertainty), and the alignment is good to about one pixel.
Only quantities in arcmin depend on it (axes, the galaxy density of 36.5 per arcmin²);
every reconstruction works in pixels. (lensviz used 0.36′, from the survey's area of
about 1.6 deg², before the WCS was measured.)
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from lensviz.data import ShearField, read_shear_fits

__all__ = [
    "COSMOS_DIR",
    "COSMOS_FILES",
    "COSMOS_WCS",
    "COSMOS_PIXEL_ARCMIN",
    "COSMOS_PIXEL_ARCMIN_ERROR",
    "load_cosmos",
    "galaxy_density",
]

#: Where the COSMOS files live (shipped inside the package).
COSMOS_DIR = Path(__file__).resolve().parent / "datasets" / "cosmos"
#: The three images, by the role :func:`lensviz.data.read_shear_fits` gives them.
COSMOS_FILES = {"g1": "cosmos_g1.fits", "g2": "cosmos_g2.fits", "counts": "cosmos_countmap.fits"}
_CDELT_DEG = 0.0058667  # pixel side of the measured WCS [deg] (0.352′)
#: The measured WCS of the COSMOS grid (module docstring; the files carry none).
COSMOS_WCS = fits.Header(
    [
        ("WCSAXES", 2),
        ("CTYPE1", "RA---TAN", "gnomonic projection; columns increase with RA"),
        ("CTYPE2", "DEC--TAN", "rows increase with Dec"),
        ("CRPIX1", 129.0, "reference pixel (1-based)"),
        ("CRPIX2", 127.0),
        ("CRVAL1", 150.1131843, "[deg] RA at the reference pixel"),
        ("CRVAL2", 2.2313761, "[deg] Dec at the reference pixel"),
        ("CDELT1", _CDELT_DEG, "[deg] measured: 0.352 +/- 0.005 arcmin"),
        ("CDELT2", _CDELT_DEG, "[deg]"),
        ("CUNIT1", "deg"),
        ("CUNIT2", "deg"),
    ]
)
#: Pixel side [arcmin], from :data:`COSMOS_WCS` (0.352′).
COSMOS_PIXEL_ARCMIN = _CDELT_DEG * 60.0
#: Uncertainty of the pixel side [arcmin] in the WCS fit.
COSMOS_PIXEL_ARCMIN_ERROR = 0.005


@lru_cache(maxsize=1)
def _read() -> ShearField:
    paths = {role: COSMOS_DIR / name for role, name in COSMOS_FILES.items()}
    field = read_shear_fits(paths["g1"], paths["g2"], counts=paths["counts"])
    field.eps.setflags(write=False)
    header = field.header.copy()
    header.extend(COSMOS_WCS.cards, update=True)
    return dataclasses.replace(field, header=header)


def load_cosmos() -> ShearField:
    """The COSMOS field: ε ``(256, 256, 3)`` (read-only, cached), header, σ_e.

    Returns
    -------
    lensviz.data.ShearField
        ``eps`` with channels ``(g1, g2, Δε)``; ``mask`` the pixels without galaxies;
        ``kappa`` None (real data have no true κ); ``sigma_e`` ≈ 0.283; ``header`` with
        :data:`COSMOS_WCS`, so ``grid.pixel_arcmin`` is 0.352′ and ``grid.wcs`` maps
        pixels to RA and Dec.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data files.

    Examples
    --------
    >>> field = load_cosmos()
    >>> field.eps.shape, round(float(1 - field.mask.mean()), 2)
    ((256, 256, 3), 0.67)
    >>> round(field.grid.pixel_arcmin, 3), field.grid.known
    (0.352, True)
    """
    return _read()


def galaxy_density(field: ShearField | None = None) -> float:
    """Galaxies per arcmin² inside the footprint, at :data:`COSMOS_PIXEL_ARCMIN`."""
    field = load_cosmos() if field is None else field
    counts = (field.sigma_e / field.eps[..., 2][~field.mask]) ** 2
    return float(np.mean(counts) / COSMOS_PIXEL_ARCMIN**2)
