"""Pixel scale and sky coordinates of a dataset: where they come from, checked.

Every dataset lensviz reads carries a :class:`PixelGrid`: the side of a pixel in arcmin,
whether the data said so (``known``) or lensviz assumed its default, where the value
came from, and the World Coordinate System of a FITS input when it has a valid one.

Where the pixel scale comes from
    * a FITS image: its WCS (:func:`wcs_pixel_arcmin`: ``astropy.wcs`` and
      :func:`astropy.wcs.utils.proj_plane_pixel_scales`, so ``CD`` and ``PC`` matrices
      and rotations count), else its ``PIXARCM`` card (arcmin, which lensviz writes
      beside every image whose pixel scale it knows; a ``PIXSCALE`` card is not read,
      since instruments write it in arcsec);
    * an HDF5 file: its attribute ``pixel_arcmin``;
    * an ``.npz`` archive: its array ``pixel_arcmin`` (a scalar);
    * a challenge folder, an ``.npy`` file, or any of the above without one:
      :data:`DEFAULT_PIXEL_ARCMIN` (0.5′, the AstroDatatón tiles: 128 pixels over 64′),
      marked ``known = False`` so that the app and the command line can offer a setting.

    A value must lie in [:data:`~lensviz.data.limits.MIN_PIXEL_ARCMIN`,
    :data:`~lensviz.data.limits.MAX_PIXEL_ARCMIN`]. A value given by the user
    (:meth:`PixelGrid.given`) replaces the default, and must agree within 1 % with a
    value the data state.

The WCS of a FITS header
    :func:`valid_wcs` keeps the WCS cards of a header (``CTYPEi``, ``CRVALi``, ``CDi_j``,
    …) only when every one is a valid FITS card (a finite number, printable ASCII text)
    and ``astropy.wcs.WCS`` builds a transform from them with a finite, invertible pixel
    matrix. Otherwise the whole WCS is left out, with a
    :class:`~lensviz.data.errors.DataWarning` naming the file and the card: the data
    are read, without sky coordinates (a ``CRVAL1 = NAN`` or an escape byte in
    ``CTYPE1`` made FITS writes fail before). Pixels are square in lensviz; a WCS whose
    two axes differ by more than 1 % gives the geometric mean, with a warning.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from functools import cached_property

import numpy as np
from astropy import units
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from lensviz import constants
from lensviz.data.errors import DataError, DataWarning, quote
from lensviz.data.limits import MAX_PIXEL_ARCMIN, MIN_PIXEL_ARCMIN

__all__ = [
    "DEFAULT_PIXEL_ARCMIN",
    "PIXEL_CARD",
    "PixelGrid",
    "check_pixel_arcmin",
    "valid_wcs",
    "wcs_pixel_arcmin",
    "header_grid",
]

#: The pixel side assumed for data that do not state one [arcmin] (the challenge's tiles).
DEFAULT_PIXEL_ARCMIN = constants.PIXEL_ARCMIN
#: The header card lensviz reads and writes for the pixel side [arcmin].
PIXEL_CARD = "PIXARCM"
#: Header keywords of the World Coordinate System (copied to outputs when valid).
WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE\d|CUNIT\d|CRPIX\d|CRVAL\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|"
    r"PV\d_\d+|PS\d_\d+|CNAME\d|CRDER\d|CSYER\d|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|"
    r"EPOCH|MJD-OBS|DATE-OBS|MJDREF|TIMESYS|DATEREF|SPECSYS|RESTFRQ|RESTWAV|OBSGEO-[XYZ])$"
)
_SQUARE_TOLERANCE = 0.01  # relative difference of the two pixel sides taken as square
_AGREE_TOLERANCE = 0.01  # a given pixel scale must agree this well with the data's
_DEFAULT_ORIGIN = f"not stated by the data: lensviz's default {DEFAULT_PIXEL_ARCMIN:g}′"


def check_pixel_arcmin(value, source: str) -> float:
    """A pixel side [arcmin] as a float, within the bounds of :mod:`lensviz.data.limits`.

    Raises
    ------
    DataError
        Not a real number, or outside
        [:data:`~lensviz.data.limits.MIN_PIXEL_ARCMIN`,
        :data:`~lensviz.data.limits.MAX_PIXEL_ARCMIN`].
    """
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise DataError(
            f"{source}: the pixel scale is {quote(repr(value), 60)}; expected a number of "
            "arcmin per pixel"
        )
    value = float(value)
    if not (math.isfinite(value) and MIN_PIXEL_ARCMIN <= value <= MAX_PIXEL_ARCMIN):
        raise DataError(
            f"{source}: the pixel scale is {value:g}′; expected {MIN_PIXEL_ARCMIN:g}′ to "
            f"{MAX_PIXEL_ARCMIN:g}′ per pixel (lensviz.data.limits.MIN_PIXEL_ARCMIN, "
            "MAX_PIXEL_ARCMIN)"
        )
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class PixelGrid:
    """The pixel scale of a dataset, whether it was stated, and its WCS.

    Attributes
    ----------
    pixel_arcmin : float
        Side of a pixel [arcmin] (square pixels).
    known : bool
        True when the data (or the user) stated it; False for the default
        :data:`DEFAULT_PIXEL_ARCMIN`, which an app or a command line should offer to set.
    origin : str
        Where the value comes from, for people: ``"the FITS WCS (CDELT1/2, CD, PC)"``,
        ``"the HDF5 attribute pixel_arcmin"``, ``"given"``, …
    header : astropy.io.fits.Header or None
        The WCS cards of a FITS input, checked by :func:`valid_wcs`; None without a WCS.
        Only whole fields keep it: a crop or tile of a field has another reference pixel.

    Examples
    --------
    >>> PixelGrid().pixel_arcmin, PixelGrid().known
    (0.5, False)
    >>> PixelGrid().given(0.29, "x.h5").pixel_arcmin
    0.29
    """

    pixel_arcmin: float = DEFAULT_PIXEL_ARCMIN
    known: bool = False
    origin: str = _DEFAULT_ORIGIN
    header: fits.Header | None = dataclasses.field(default=None, repr=False)

    @cached_property
    def wcs(self) -> WCS | None:
        """The ``astropy.wcs.WCS`` of :attr:`header` (pixel → sky), or None."""
        if self.header is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's notes on fixed cards (checked already)
            return WCS(self.header)

    def given(self, pixel_arcmin, source: str) -> PixelGrid:
        """This grid with a pixel scale stated by the user (``--pixel-arcmin``, the app).

        Parameters
        ----------
        pixel_arcmin : float or None
            None keeps this grid.
        source : str
            The data, for messages.

        Raises
        ------
        DataError
            A value out of bounds, or one that differs by more than 1 % from the value
            the data state (the data win: say so rather than pick silently).
        """
        if pixel_arcmin is None:
            return self
        value = check_pixel_arcmin(pixel_arcmin, f"{source}: --pixel-arcmin")
        if self.known:
            if abs(value / self.pixel_arcmin - 1) > _AGREE_TOLERANCE:
                raise DataError(
                    f"{source}: the data state {self.pixel_arcmin:.4g}′ per pixel "
                    f"({self.origin}); the given {value:g}′ disagrees by more than "
                    f"{_AGREE_TOLERANCE:.0%}. Leave the pixel scale unset for these data"
                )
            return self
        return PixelGrid(value, True, "given", self.header)


def _bad_card(card: fits.Card) -> str | None:
    """Why one WCS card cannot be written to a FITS file, or None."""
    try:
        card.verify("exception")
        value = card.value
    except Exception as exc:  # noqa: BLE001 - astropy raises many types on bad cards
        return f"not a valid FITS card ({type(exc).__name__})"
    if isinstance(value, str):
        if not value.isascii() or not value.isprintable():
            return "text that is not printable ASCII"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"a value of type {type(value).__name__}"
    elif not math.isfinite(value):
        return "not a finite number"
    return None


def _pixel_matrix_ok(wcs: WCS) -> bool:
    matrix = wcs.pixel_scale_matrix
    if not np.all(np.isfinite(matrix)):
        return False
    if matrix.shape == (2, 2):
        return abs(np.linalg.det(matrix)) > 0
    return bool(np.all(np.any(matrix != 0, axis=1)))


def valid_wcs(header: fits.Header | None, source: str) -> fits.Header | None:
    """The WCS cards of ``header`` when they form a valid WCS, else None (with a warning).

    Parameters
    ----------
    header : astropy.io.fits.Header or None
    source : str
        The file, for the warning.

    Returns
    -------
    astropy.io.fits.Header or None
        A new header of the WCS cards, in order; None when there are none, or when a
        card or the transform is invalid (a :class:`~lensviz.data.errors.DataWarning`
        says which).
    """
    if header is None:
        return None
    cards = [card for card in header.cards if WCS_KEY.match(card.keyword)]
    if not cards:
        return None
    for card in cards:
        reason = _bad_card(card)
        if reason is not None:
            _drop(source, f"{card.keyword} is {reason}")
            return None
    out = fits.Header()
    for card in cards:
        out.append(fits.Card(card.keyword, card.value, _ascii(card.comment)), end=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning: astropy's own repairs
            wcs = WCS(out)
            if not _pixel_matrix_ok(wcs):
                _drop(source, "its pixel matrix (CDELT, CD or PC) is singular or not finite")
                return None
    except Exception as exc:  # noqa: BLE001 - wcslib raises many types on bad headers
        _drop(source, f"astropy.wcs cannot use it ({type(exc).__name__}: {quote(exc, 80)})")
        return None
    return out


def _ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in str(text))


def _drop(source: str, reason: str) -> None:
    warnings.warn(
        DataWarning(
            f"{source}: its WCS is invalid ({reason}); it is left out, so the data have no "
            "sky coordinates"
        ),
        stacklevel=3,
    )


def wcs_pixel_arcmin(header: fits.Header, source: str) -> float | None:
    """The pixel side [arcmin] of a valid WCS (:func:`valid_wcs`), or None.

    From :func:`astropy.wcs.utils.proj_plane_pixel_scales` of the first two axes, in
    their ``CUNIT`` (degrees for celestial axes, and for a bare ``CDELT`` without
    ``CTYPE`` or ``CUNIT``, as the FITS standard has it for angles). Axes in units that
    are not angles give None.

    Raises
    ------
    DataError
        A scale outside the bounds of :func:`check_pixel_arcmin`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header)
    if wcs.has_celestial:
        wcs = wcs.celestial
    if wcs.naxis < 2:
        return None
    scales = proj_plane_pixel_scales(wcs)[:2]
    sides = []
    for scale, unit in zip(scales, (wcs.wcs.cunit[0], wcs.wcs.cunit[1]), strict=True):
        unit = units.deg if str(unit) == "" else unit
        if not unit.is_equivalent(units.deg):
            return None
        sides.append(float((scale * unit).to_value(units.arcmin)))
    if abs(sides[0] / sides[1] - 1) > _SQUARE_TOLERANCE:
        warnings.warn(
            DataWarning(
                f"{source}: the WCS has pixels of {sides[0]:.4g}′ × {sides[1]:.4g}′; "
                "lensviz's pixels are square: it uses their geometric mean"
            ),
            stacklevel=2,
        )
    return check_pixel_arcmin(math.sqrt(sides[0] * sides[1]), f"{source}: its WCS")


def header_grid(header: fits.Header | None, source: str) -> PixelGrid:
    """The :class:`PixelGrid` of a FITS header: its valid WCS, else its ``PIXARCM`` card,
    else the default.

    Raises
    ------
    DataError
        A pixel scale out of bounds (:func:`check_pixel_arcmin`).
    """
    wcs = valid_wcs(header, source)
    if wcs is not None:
        scale = wcs_pixel_arcmin(wcs, source)
        if scale is not None:
            return PixelGrid(scale, True, "the FITS WCS", wcs)
    if header is not None and PIXEL_CARD in header:
        card = header.cards[PIXEL_CARD]
        where = f"{source}: card {PIXEL_CARD}"
        reason = _bad_card(card)
        if reason is not None:
            raise DataError(f"{where} is {reason}; expected arcmin per pixel")
        return PixelGrid(
            check_pixel_arcmin(card.value, where), True, f"the FITS card {PIXEL_CARD}", wcs
        )
    return PixelGrid(header=wcs)
