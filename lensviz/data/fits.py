"""FITS images: binned shear (g1, g2 with counts or σ, and a mask) in, κ maps out.

Reading shear
    :func:`read_shear_fits` takes one 2-D image per quantity, the usual form of binned
    shear catalogues: ``g1`` and ``g2`` (or e1 and e2, the same for lensviz), and either
    a galaxy *count* map ``N`` (then ``Δε = σ_e/√N``, with σ_e given or estimated from the
    data, :func:`estimate_sigma_e`) or a *σ* map (``Δε`` itself), and optionally a *mask*
    image (nonzero or NaN = masked). Pixels with no galaxy (``N = 0``), NaN shear or σ,
    or masked become empty pixels: ``e1 = e2 = 0``, ``Δε = EMPTY_PIXEL_SIGMA``.
    :func:`read_field_fits` reads the multi-extension file lensviz writes
    (:func:`write_field_fits`: ``E1``, ``E2``, ``SIGMA``, optional ``KAPPA``), which is
    also what :func:`lensviz.data.load_dataset` reads for a ``.fits`` path.
WCS and pixel scale
    The headers of :func:`read_shear_fits`, :func:`read_field_fits` and
    :func:`read_kappa_fits` keep their WCS only when it is valid
    (:func:`lensviz.data.sky.valid_wcs`; an invalid one is left out with a
    :class:`~lensviz.data.errors.DataWarning`). :attr:`ShearField.grid` gives the pixel
    scale from the WCS (or the ``PIXARCM`` card lensviz writes), else the default 0.5′.
Writing
    :func:`write_kappa_fits` writes a κ map (primary HDU, float32) with the valid WCS
    cards of the input image, when it has some (never an invented one), the pixel scale
    when known (``PIXARCM``), and the mask as a ``MASK`` extension (uint8, 1 = masked).
    No header content can make a write fail: every card of ``attrs`` is made printable
    ASCII (:func:`ascii_text`: ``'KS93 (σ 4 px)'`` → ``'KS93 (sigma 4 px)'``), a path
    keeps only its file name, NaN becomes text. The file is made in memory, then written
    atomically (:func:`lensviz._atomic.atomic_path`): a refused write leaves nothing.
Axes
    FITS stores ``NAXIS1`` (x, fastest) × ``NAXIS2`` (y); astropy returns ``(NAXIS2,
    NAXIS1)`` arrays, which are lensviz's ``[y, x]`` maps as they are. No flip is applied:
    row 0 is the first row of the file (FITS pixel y = 1).

Hostile files
    Before astropy sees a byte, :func:`scan_fits` walks the file's headers itself, 2880
    bytes at a time: at most :data:`~lensviz.data.limits.MAX_FITS_HDUS` HDUs and
    :data:`~lensviz.data.limits.MAX_FITS_HEADER_BYTES` of header each, ``BITPIX`` one of
    the six FITS types, the declared data sizes within
    :data:`~lensviz.data.limits.MAX_DECLARED_BYTES` and within the file (a truncated file
    is refused), images 2-D and 64-2048 pixels a side. Random groups and tile-compressed
    images (a decompression bomb can hide there) are refused. Only then is the chosen
    HDU read by astropy, whole (``memmap=False``: nothing stays mapped) and only that
    one (``lazy_load_hdus``). FITS has no links to follow; astropy reads no other file.
    Every error is a :class:`~lensviz.data.errors.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import os
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from lensviz import constants
from lensviz._atomic import atomic_path
from lensviz.data.errors import (
    DataError,
    DataTypeError,
    DataWarning,
    LimitError,
    UnsafeFileError,
    quote,
)
from lensviz.data.limits import (
    MAX_DECLARED_BYTES,
    MAX_FIELD_PX,
    MAX_FITS_HDUS,
    MAX_FITS_HEADER_BYTES,
    MIN_FIELD_PX,
)
from lensviz.data.sky import (
    PIXEL_CARD,
    WCS_KEY,
    PixelGrid,
    check_pixel_arcmin,
    header_grid,
    valid_wcs,
)
from lensviz.data.validate import (
    check_epsilon_values,
    check_kappa_values,
    validate_epsilon,
    validate_kappa,
)

__all__ = [
    "FITS_SUFFIXES",
    "FitsHDU",
    "ShearField",
    "scan_fits",
    "read_image",
    "estimate_sigma_e",
    "read_shear_fits",
    "read_field_fits",
    "read_kappa_fits",
    "wcs_cards",
    "ascii_text",
    "header_cards",
    "write_kappa_fits",
    "kappa_fits_bytes",
    "write_field_fits",
    "MIN_SINGLE_GALAXY_PIXELS",
]

FITS_SUFFIXES = constants.FITS_SUFFIXES

#: Pixels with exactly one galaxy needed to estimate σ_e from them (else from all pixels).
MIN_SINGLE_GALAXY_PIXELS = 30

_BLOCK = 2880  # FITS record size [bytes]
_CARD = 80
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_FLOAT_BITPIX = (-32, -64)
_ASTROPY_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    EOFError,
    UnicodeError,
    OverflowError,
    MemoryError,
    fits.VerifyError,
)


# === Scanning the headers ===


@dataclasses.dataclass(frozen=True)
class FitsHDU:
    """What one HDU of a FITS file declares (from :func:`scan_fits`).

    Attributes
    ----------
    index : int
        Position in the file (0: primary).
    kind : str
        ``"PRIMARY"``, or the ``XTENSION`` value (``"IMAGE"``, ``"BINTABLE"``, …).
    extname : str
        ``EXTNAME`` (upper case), ``""`` if none.
    bitpix : int
    shape : tuple of int
        ``(NAXIS2, NAXIS1)`` for an image: numpy's order, ``(ny, nx)``.
    data_offset, data_bytes : int
        Where the data start in the file and how many bytes they declare.
    compressed : bool
        A tile-compressed image (``ZIMAGE = T``).
    """

    index: int
    kind: str
    extname: str
    bitpix: int
    shape: tuple[int, ...]
    data_offset: int
    data_bytes: int
    compressed: bool = False


def _card_value(card: str):
    """The value of a ``KEY = value / comment`` card: int, float, bool or str (None if odd)."""
    if card[8:10] != "= ":
        return None
    text = card[10:].strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1 : end + 2] == "'":  # '' is an escaped quote
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").rstrip() if end != -1 else None
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _read_header(fp, source: str, index: int) -> tuple[dict[str, object], int] | None:
    """The cards of the header at ``fp``'s position (None at the end of the file)."""
    cards: dict[str, object] = {}
    size = 0
    while True:
        block = fp.read(_BLOCK)
        if not block and size == 0:
            return None
        if len(block) < _BLOCK:
            if size == 0 and not block.strip(b"\0 "):
                return None  # trailing padding after the last HDU
            raise DataError(
                f"{source}: cannot read as FITS: header {index} is truncated "
                f"(it ends after {size + len(block)} bytes without an END card)"
            )
        size += _BLOCK
        if size > MAX_FITS_HEADER_BYTES:
            raise LimitError(
                f"{source}: header {index} is longer than "
                f"{MAX_FITS_HEADER_BYTES // _BLOCK} blocks of 2880 bytes "
                "(lensviz.data.limits.MAX_FITS_HEADER_BYTES)"
            )
        try:
            text = block.decode("ascii")
        except UnicodeDecodeError:
            raise DataError(
                f"{source}: cannot read as FITS: header {index} holds bytes that "
                "are not ASCII (FITS headers are ASCII text)"
            ) from None
        for i in range(0, _BLOCK, _CARD):
            card = text[i : i + _CARD]
            key = card[:8].rstrip()
            if key == "END":
                return cards, size
            if key and key not in cards:
                cards[key] = _card_value(card)


def _int_card(cards: dict, key: str, source: str, index: int, default=None) -> int:
    value = cards.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(
            f"{source}: header {index} has {key} = {quote(value)}; expected an "
            "integer (a FITS file with a corrupt or missing header)"
        )
    return value


def scan_fits(fp, source: str) -> list[FitsHDU]:
    """Walk the headers of a FITS stream without reading any data; check what they declare.

    Parameters
    ----------
    fp : binary file object
        Seekable, positioned at the start of the file.
    source : str
        Name for messages.

    Returns
    -------
    list of FitsHDU

    Raises
    ------
    DataError
        Not FITS (no ``SIMPLE = T`` first card), a corrupt or truncated header, data
        running past the end of the file, an unknown ``BITPIX``.
    LimitError
        More than :data:`~lensviz.data.limits.MAX_FITS_HDUS` HDUs, a header over
        :data:`~lensviz.data.limits.MAX_FITS_HEADER_BYTES` or data over
        :data:`~lensviz.data.limits.MAX_DECLARED_BYTES`.
    """
    size = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    if fp.read(30) != b"SIMPLE  =                    T":
        raise DataError(
            f"{source}: cannot read as FITS: it does not start with the card 'SIMPLE = T'"
        )
    fp.seek(0)
    hdus: list[FitsHDU] = []
    pos = 0
    while pos < size:
        index = len(hdus)
        if index >= MAX_FITS_HDUS:
            raise LimitError(
                f"{source}: holds more than {MAX_FITS_HDUS} HDUs "
                "(lensviz.data.limits.MAX_FITS_HDUS)"
            )
        fp.seek(pos)
        found = _read_header(fp, source, index)
        if found is None:
            break
        cards, header_bytes = found
        kind = "PRIMARY" if index == 0 else str(cards.get("XTENSION", "")).strip().upper()
        if index > 0 and "XTENSION" not in cards:
            raise DataError(
                f"{source}: cannot read as FITS: HDU {index} has no XTENSION card "
                "(garbage after the last HDU, or a corrupt file)"
            )
        bitpix = _int_card(cards, "BITPIX", source, index)
        if bitpix not in _BITPIX:
            raise DataError(
                f"{source}: header {index} has BITPIX = {bitpix}; expected one of {sorted(_BITPIX)}"
            )
        naxis = _int_card(cards, "NAXIS", source, index)
        if not 0 <= naxis <= 999:
            raise DataError(f"{source}: header {index} has NAXIS = {naxis}; expected 0 to 999")
        axes = [_int_card(cards, f"NAXIS{i}", source, index) for i in range(1, naxis + 1)]
        if any(a < 0 for a in axes):
            raise DataError(f"{source}: header {index} declares a negative axis {axes}")
        groups = index == 0 and cards.get("GROUPS") is True and axes[:1] == [0]
        pcount = _int_card(cards, "PCOUNT", source, index, 0)
        gcount = _int_card(cards, "GCOUNT", source, index, 1)
        if pcount < 0 or gcount < 0:
            raise DataError(
                f"{source}: header {index} has PCOUNT = {pcount}, GCOUNT = "
                f"{gcount}; expected values ≥ 0"
            )
        elements = math.prod(axes[1:] if groups else axes) if axes else 0
        data_bytes = abs(bitpix) // 8 * gcount * (pcount + elements)
        if data_bytes > MAX_DECLARED_BYTES:
            raise LimitError(
                f"{source}: HDU {index} declares {data_bytes / 2**30:.3g} GiB of "
                f"data; the limit is {MAX_DECLARED_BYTES / 2**30:.0f} GiB "
                "(lensviz.data.limits.MAX_DECLARED_BYTES)"
            )
        data_offset = pos + header_bytes
        if data_offset + data_bytes > size:
            raise DataError(
                f"{source}: cannot read as FITS: HDU {index} declares "
                f"{data_bytes} bytes of data but the file ends "
                f"{data_offset + data_bytes - size} bytes early (truncated)"
            )
        extname = cards.get("EXTNAME", "")
        hdus.append(
            FitsHDU(
                index=index,
                kind="GROUPS" if groups else kind,
                extname=extname.strip().upper() if isinstance(extname, str) else "",
                bitpix=bitpix,
                shape=tuple(reversed(axes)),
                data_offset=data_offset,
                data_bytes=data_bytes,
                compressed=cards.get("ZIMAGE") is True,
            )
        )
        pos = data_offset + -(-data_bytes // _BLOCK) * _BLOCK
    return hdus


# === Opening files and reading images ===


class _KeepOpen(io.RawIOBase):
    """A read-only view of a binary stream that astropy may "close" without closing it."""

    def __init__(self, fp):
        super().__init__()
        self._fp = fp

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._fp.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        return self._fp.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def close(self) -> None:  # the owner of the stream closes it
        pass

    @property
    def closed(self) -> bool:
        return False


@contextlib.contextmanager
def _open(file, source: str | None) -> Iterator[tuple[object, str]]:
    """A seekable binary stream of a path, bytes or file object, and its name."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(file)), source or "upload"
        return
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        source = source or str(path)
        if not path.exists():
            raise FileNotFoundError(f"{source}: no such file")
        if not path.is_file():
            raise DataError(f"{source}: is not a regular file; expected a FITS file")
        with open(path, "rb") as fp:
            yield fp, source
        return
    yield file, source or getattr(file, "name", "upload")


def _file_name(file, source: str | None, role: str) -> str:
    """The name of ``file`` for a message: ``source``, the path, or the image's role."""
    if source is not None:
        return quote(source, 200)
    if isinstance(file, (str, os.PathLike)):
        return quote(os.fspath(file), 200)
    return quote(getattr(file, "name", f"the {role} image"), 200)


def _image_hdu(hdus: Sequence[FitsHDU], source: str, extname: str | None = None) -> FitsHDU:
    """The HDU holding the image: ``extname``, or the primary / first IMAGE with data."""
    if extname is not None:
        found = [h for h in hdus if h.extname == extname]
        if not found:
            names = sorted({h.extname for h in hdus if h.extname})
            raise DataError(f"{source}: has no extension '{extname}' (found {quote(names)})")
        hdu = found[0]
    else:
        candidates = [h for h in hdus if h.kind in ("PRIMARY", "IMAGE") and h.data_bytes > 0]
        compressed = [h for h in hdus if h.compressed]
        if not candidates and compressed:
            hdu = compressed[0]
        elif not candidates:
            raise DataError(
                f"{source}: holds no image; expected a 2-D image in the primary "
                "HDU or an IMAGE extension"
            )
        else:
            hdu = candidates[0]
    if hdu.compressed:
        raise UnsafeFileError(
            f"{source}: HDU {hdu.index} is a tile-compressed image; "
            "lensviz reads uncompressed images only (decompress it with "
            "funpack or astropy first)"
        )
    if hdu.kind == "GROUPS" or hdu.kind not in ("PRIMARY", "IMAGE"):
        raise DataError(f"{source}: HDU {hdu.index} is a {hdu.kind.lower()} HDU, not an image")
    dims = hdu.shape
    if len(dims) != 2 or not all(MIN_FIELD_PX <= d <= MAX_FIELD_PX for d in dims):
        raise DataError(
            f"{source}: HDU {hdu.index} is an image of shape {dims} (NAXIS2, "
            f"NAXIS1); expected a 2-D image of {MIN_FIELD_PX} to {MAX_FIELD_PX} "
            "pixels a side"
        )
    return hdu


def read_image(
    file, source: str | None = None, *, extname: str | None = None, floats_only: bool = False
) -> tuple[np.ndarray, fits.Header, str]:
    """One checked 2-D image of a FITS file, as float64 ``(ny, nx)``, with its header.

    Parameters
    ----------
    file : str, path-like, bytes or binary file object
    source : str, optional
        Name for messages.
    extname : str, optional
        Read the extension of this ``EXTNAME``; default the primary HDU, or the first
        IMAGE extension when the primary holds no data.
    floats_only : bool, optional
        Refuse integer images (``BITPIX > 0``), e.g. for shear.

    Returns
    -------
    data : ndarray, shape (ny, nx), float64
        ``BSCALE``/``BZERO`` applied, ``BLANK`` integers as NaN; may hold NaN and inf.
    header : astropy.io.fits.Header
    source : str

    Raises
    ------
    DataError, DataTypeError, LimitError, UnsafeFileError, FileNotFoundError
        See :func:`scan_fits` and the module docstring.
    """
    with _open(file, source) as (fp, source):
        hdus = scan_fits(fp, source)
        hdu = _image_hdu(hdus, source, extname)
        if floats_only and hdu.bitpix not in _FLOAT_BITPIX:
            raise DataTypeError(
                f"{source}: HDU {hdu.index} holds integers (BITPIX = "
                f"{hdu.bitpix}); expected a float image (BITPIX -32 or -64)"
            )
        fp.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # non-standard cards of foreign writers
                with fits.open(
                    _KeepOpen(fp),
                    memmap=False,
                    lazy_load_hdus=True,
                    cache=False,
                    ignore_missing_simple=False,
                ) as hdul:
                    image = hdul[hdu.index]
                    header = image.header.copy()
                    data = image.data
                    data = None if data is None else np.array(data, dtype=np.float64)
        except _ASTROPY_ERRORS as exc:
            raise DataError(
                f"{source}: cannot read as FITS: {type(exc).__name__}: {quote(exc, 100)}"
            ) from exc
    if data is None or data.shape != hdu.shape:
        raise DataError(
            f"{source}: HDU {hdu.index} holds no image of the declared shape {hdu.shape}"
        )
    return data, header, source


# === Shear images → ε ===


@dataclasses.dataclass(frozen=True)
class ShearField:
    """A field of binned shear read from FITS.

    Attributes
    ----------
    eps : ndarray, shape (ny, nx, 3), float32
        ``(e1, e2, Δε)`` on lensviz's conventions; empty and masked pixels have
        ``e1 = e2 = 0`` and ``Δε = EMPTY_PIXEL_SIGMA``.
    header : astropy.io.fits.Header
        The header of the g1 image (or of the ``E1`` extension), its WCS cards left out
        when they do not form a valid WCS (:func:`lensviz.data.sky.valid_wcs`, with a
        warning); a valid WCS is written out with the κ maps (:func:`write_kappa_fits`).
    sigma_e : float or None
        The σ_e that turned counts into Δε (given or estimated); None with a σ map.
    kappa : ndarray, shape (ny, nx), float32, or None
        True κ, when the file holds it (``KAPPA`` extension of a lensviz file).
    source : str
    """

    eps: np.ndarray
    header: fits.Header
    sigma_e: float | None
    kappa: np.ndarray | None
    source: str

    @property
    def mask(self) -> np.ndarray:
        """Empty or masked pixels, bool ``(ny, nx)``."""
        return self.eps[..., 2] >= constants.EMPTY_PIXEL_SIGMA

    @functools.cached_property
    def grid(self) -> PixelGrid:
        """The pixel scale and WCS of :attr:`header` (:func:`lensviz.data.sky.header_grid`)."""
        return header_grid(self.header, self.source)

    @property
    def pixel_arcmin(self) -> float:
        """Pixel side [arcmin]: from the WCS or the ``PIXARCM`` card, else the default."""
        return self.grid.pixel_arcmin


def _checked_header(header: fits.Header, source: str) -> fits.Header:
    """``header`` without its WCS cards when they do not form a valid WCS (warned once)."""
    if valid_wcs(header, source) is not None:
        return header
    keys = {card.keyword for card in header.cards if WCS_KEY.match(card.keyword)}
    if not keys:
        return header
    out = fits.Header()
    for card in header.cards:
        if card.keyword not in keys:
            out.append(card, end=True)
    return out


def estimate_sigma_e(g1, g2, counts) -> float:
    """The intrinsic ellipticity dispersion per component, from binned shear and counts.

    The spread of the mean ellipticity over pixels holding exactly one galaxy is that of
    single galaxies: ``σ_e² = (Var g1 + Var g2)/2`` over those pixels (the lensing signal
    adds ≈ 0.02² at most). With fewer than :data:`MIN_SINGLE_GALAXY_PIXELS` of them,
    ``σ_e² = ⟨N (g1² + g2²)/2⟩`` over the pixels with galaxies (``Var ḡ = σ_e²/N``).

    Parameters
    ----------
    g1, g2, counts : array_like, shape (ny, nx)
        NaN shear counts as no data.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If no pixel holds a galaxy.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> counts = np.ones((100, 100))
    >>> g1, g2 = rng.normal(0, 0.28, (2, 100, 100))
    >>> round(estimate_sigma_e(g1, g2, counts), 2)
    0.28
    """
    g1, g2, counts = (np.asarray(a, dtype=np.float64) for a in (g1, g2, counts))
    ok = np.isfinite(g1) & np.isfinite(g2) & np.isfinite(counts) & (counts > 0)
    single = ok & (counts == 1)
    if single.sum() >= MIN_SINGLE_GALAXY_PIXELS:
        return float(np.sqrt(0.5 * (g1[single].var() + g2[single].var())))
    if not ok.any():
        raise ValueError("no pixel holds a galaxy: cannot estimate σ_e")
    return float(np.sqrt(np.mean(0.5 * counts[ok] * (g1[ok] ** 2 + g2[ok] ** 2))))


def _same_shape(arrays: dict[str, np.ndarray], sources: dict[str, str]) -> None:
    shapes = {name: a.shape for name, a in arrays.items()}
    first = next(iter(shapes))
    for name, shape in shapes.items():
        if shape != shapes[first]:
            raise DataError(
                f"{sources[name]}: the {name} image is {shape[0]} × {shape[1]} "
                f"but the {first} image ({sources[first]}) is "
                f"{shapes[first][0]} × {shapes[first][1]}; expected images of one "
                "size"
            )


def _no_inf(data: np.ndarray, source: str, what: str) -> None:
    bad = np.isinf(data)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DataError(
            f"{source}: the {what} image holds {int(bad.sum())} infinite "
            f"value(s) (first at y={y}, x={x}); expected finite values (NaN marks "
            "a pixel without data)"
        )


def _no_negative(data: np.ndarray, source: str, what: str, item: str, expected: str) -> None:
    bad = data < 0
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DataError(
            f"{source}: the {what} image holds a negative {item} ({data[y, x]:g} at y={y}, "
            f"x={x}); expected {expected}"
        )


def _assemble(
    images: dict[str, tuple[np.ndarray, str]], sigma_e: float | None, source: str
) -> tuple[np.ndarray, float | None]:
    """ε ``(ny, nx, 3)`` float32 from the g1, g2, counts/sigma and mask images."""
    data = {k: v[0] for k, v in images.items()}
    sources = {k: v[1] for k, v in images.items()}
    _same_shape(data, sources)
    g1, g2 = data["g1"], data["g2"]
    for name in data:
        _no_inf(data[name], sources[name], name)
    empty = np.isnan(g1) | np.isnan(g2)
    if "mask" in data:
        empty |= np.isnan(data["mask"]) | (data["mask"] != 0)
    if "counts" in data:
        counts = data["counts"]
        _no_negative(counts, sources["counts"], "count", "count", "galaxy numbers ≥ 0")
        counts = np.where(np.isnan(counts), 0.0, counts)
        if sigma_e is None:
            try:
                sigma_e = estimate_sigma_e(np.where(empty, np.nan, g1), g2, counts)
            except ValueError as exc:
                raise DataError(f"{sources['counts']}: {exc}") from None
        elif not (isinstance(sigma_e, (int, float)) and 0 < sigma_e < 1):
            raise ValueError(f"sigma_e must be a number in (0, 1), got {sigma_e!r}")
        empty |= counts <= 0
        with np.errstate(divide="ignore"):
            delta = sigma_e / np.sqrt(np.where(counts > 0, counts, 1.0))
    else:
        delta = data["sigma"]
        _no_negative(delta, sources["sigma"], "σ", "value", "standard deviations")
        empty |= np.isnan(delta) | (delta >= constants.EMPTY_PIXEL_SIGMA)
    eps = np.empty((*g1.shape, 3), np.float32)
    eps[..., 0] = np.where(empty, 0.0, g1)
    eps[..., 1] = np.where(empty, 0.0, g2)
    eps[..., 2] = np.where(empty, constants.EMPTY_PIXEL_SIGMA, delta)
    check_epsilon_values(eps[None], source)
    return eps, (None if "counts" not in data else float(sigma_e))


def read_shear_fits(
    g1,
    g2,
    *,
    counts=None,
    sigma=None,
    mask=None,
    sigma_e: float | None = None,
    sources: Sequence[str] | None = None,
) -> ShearField:
    """Binned shear from FITS images: g1, g2 and either counts or σ, optionally a mask.

    Parameters
    ----------
    g1, g2 : str, path-like, bytes or binary file object
        Float images of the mean shear (or ellipticity) per pixel, same size; NaN marks
        a pixel without data.
    counts : same types, optional
        Galaxies per pixel, ≥ 0 (not necessarily integers: effective numbers work); ``Δε =
        σ_e/√N``, and ``N = 0`` is an empty pixel.
    sigma : same types, optional
        Δε per pixel instead of counts; NaN or ``≥ EMPTY_PIXEL_SIGMA`` marks an empty pixel.
        Exactly one of ``counts`` and ``sigma``.
    mask : same types, optional
        Nonzero (or NaN) where a pixel is masked.
    sigma_e : float, optional
        σ_e for ``counts``, in (0, 1); None estimates it (:func:`estimate_sigma_e`).
    sources : sequence of str, optional
        Names for messages, one per given file in the order g1, g2, counts/sigma, mask.

    Returns
    -------
    ShearField

    Raises
    ------
    DataError, DataTypeError, LimitError, UnsafeFileError, FileNotFoundError
        Any file refused by :func:`read_image`, images of different sizes, infinite
        values, negative counts or σ, values beyond the bounds of
        :func:`lensviz.data.validate_epsilon`.
    ValueError
        Neither or both of ``counts`` and ``sigma``, or a bad ``sigma_e``.
    """
    if (counts is None) == (sigma is None):
        named = [*(sources or ())[:2], None, None][:2]
        names = [
            _file_name(f, s, role) for f, s, role in zip((g1, g2), named, ("g1", "g2"), strict=True)
        ]
        given = "both" if counts is not None else "neither"
        raise ValueError(
            f"{names[0]}, {names[1]}: the shear images need exactly one of a counts image "
            f"(galaxies per pixel) and a sigma image (Δε per pixel); got {given}"
        )
    given = [
        ("g1", g1),
        ("g2", g2),
        ("counts" if counts is not None else "sigma", counts if counts is not None else sigma),
    ]
    if mask is not None:
        given.append(("mask", mask))
    names = list(sources) if sources is not None else [None] * len(given)
    images: dict[str, tuple[np.ndarray, str]] = {}
    header = None
    for (name, file), src in zip(given, names, strict=False):
        data, head, src = read_image(file, src, floats_only=name in ("g1", "g2", "sigma"))
        images[name] = (data, src)
        header = head if name == "g1" else header
    eps, used = _assemble(images, sigma_e, images["g1"][1])
    source = images["g1"][1]
    field = ShearField(eps, _checked_header(header, source), used, None, source)
    field.grid  # noqa: B018 - a pixel scale out of bounds is refused here, on every path
    return field


def read_field_fits(file, source: str | None = None) -> ShearField:
    """A field written by :func:`write_field_fits` (extensions ``E1``, ``E2``, ``SIGMA`` or
    ``COUNTS``, optional ``MASK`` and ``KAPPA``).

    Raises
    ------
    DataError, DataTypeError, LimitError, UnsafeFileError, FileNotFoundError
        As :func:`read_shear_fits`; a file without ``E1``/``E2`` names the extensions found.
    """
    with _open(file, source) as (fp, source):
        hdus = scan_fits(fp, source)
        names = {h.extname for h in hdus}
        if not {"E1", "E2"} <= names or not names & {"SIGMA", "COUNTS"}:
            raise DataError(
                f"{source}: has extensions {quote(sorted(n for n in names if n))}; "
                "expected E1, E2 and SIGMA (or COUNTS), as lensviz writes (or read "
                "separate g1/g2 images with a fits: data spec)"
            )

        def image(name, floats_only=True):
            fp.seek(0)
            return read_image(fp, source, extname=name, floats_only=floats_only)

        g1, header, _ = image("E1")
        images = {"g1": (g1, f"{source} [E1]"), "g2": (image("E2")[0], f"{source} [E2]")}
        if "SIGMA" in names:
            images["sigma"] = (image("SIGMA")[0], f"{source} [SIGMA]")
        else:
            images["counts"] = (image("COUNTS", False)[0], f"{source} [COUNTS]")
        if "MASK" in names:
            images["mask"] = (image("MASK", False)[0], f"{source} [MASK]")
        kappa = None
        if "KAPPA" in names:
            kappa = validate_kappa(image("KAPPA")[0], f"{source} [KAPPA]")[0]
    eps, used = _assemble(images, None, source)
    if kappa is not None and kappa.shape != eps.shape[:2]:
        raise DataError(
            f"{source}: KAPPA is {kappa.shape} but E1 is {eps.shape[:2]}; expected maps of one size"
        )
    field = ShearField(eps, _checked_header(header, source), used, kappa, source)
    field.grid  # noqa: B018 - a pixel scale out of bounds is refused here, on every path
    return field


def read_kappa_fits(
    file, source: str | None = None, extname: str | None = None
) -> tuple[np.ndarray, fits.Header]:
    """A κ map from FITS: ``(ny, nx)`` float32 and its header.

    The primary image (or the first IMAGE extension, or ``extname``); the ``KAPPA``
    extension of a lensviz field file is found by name.

    Raises
    ------
    DataError
        As :func:`read_image`, and NaN/inf or ``|κ| > KAPPA_ABS_MAX`` values.
    """
    with _open(file, source) as (fp, source):
        if extname is None:
            names = {h.extname for h in scan_fits(fp, source)}
            extname = "KAPPA" if "KAPPA" in names and "E1" in names else None
            fp.seek(0)
        data, header, source = read_image(fp, source, extname=extname)
    return validate_kappa(data, source)[0], _checked_header(header, source)


# === Writing ===

#: Characters that lensviz's labels use, written out in ASCII (FITS headers are ASCII).
_ASCII_NAMES = {
    "σ": "sigma",
    "κ": "kappa",
    "ε": "eps",
    "γ": "gamma",
    "Δ": "Delta",
    "μ": "mu",
    "′": "'",
    "″": '"',
    "²": "2",
    "³": "3",
    "×": "x",
    "±": "+/-",
    "≤": "<=",
    "≥": ">=",
    "–": "-",
    "—": "-",
    "…": "...",
    "·": ".",
    "°": "deg",
    "☉": "sun",
}
#: Keywords that describe the file's structure: never taken from ``attrs``.
_STRUCTURE = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|GROUPS|END|EXTNAME|EXTVER|"
    r"CHECKSUM|DATASUM|BSCALE|BZERO|BLANK|BUNIT|ZIMAGE|TFIELDS|THEAP)$"
)
_MAX_CARD_TEXT = 2000  # characters of one string value (long strings use CONTINUE cards)


def ascii_text(text) -> str:
    """``text`` as printable ASCII for a FITS header: Greek letters and primes spelled
    out, accents dropped, anything else ``?``.

    Examples
    --------
    >>> ascii_text("KS93 (σ 4 px, 0.35′) — éte\\n")
    "KS93 (sigma 4 px, 0.35') - ete?"
    """
    spelled = "".join(_ASCII_NAMES.get(c, c) for c in str(text))
    out = []
    for c in unicodedata.normalize("NFKD", spelled):
        if " " <= c <= "~":
            out.append(c)
        elif not unicodedata.combining(c):
            out.append("?")
    return "".join(out)[:_MAX_CARD_TEXT]


def _writable_value(value):
    """A value a FITS card can hold: numbers, bools, ASCII text; a path keeps its name."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    if value is None:
        return None
    if isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isabs(value)):
        value = Path(value).name  # never a server's folders: the file name is enough
    return ascii_text(value)


def header_cards(attrs: dict | None, source: str) -> list[fits.Card]:
    """``attrs`` as FITS cards that cannot fail to write.

    Keys become upper-case ASCII (``HIERARCH`` beyond 8 characters); values become
    numbers, bools or printable ASCII (:func:`ascii_text`; NaN and ±inf as text; a
    ``Path`` or an absolute path as its file name); a ``(value, comment)`` pair keeps
    its comment. A key that would change the file's structure (``NAXIS``, ``BITPIX``…)
    is left out with a :class:`~lensviz.data.errors.DataWarning`, as is a card astropy
    still refuses.
    """
    cards = []
    for key, item in (attrs or {}).items():
        value, comment = item if isinstance(item, tuple) and len(item) == 2 else (item, "")
        name = re.sub(r"[^A-Z0-9_-]", "_", ascii_text(key).upper().strip()) or "_"
        if _STRUCTURE.match(name):
            warnings.warn(
                DataWarning(f"{source}: the card {name} describes the file; it is left out"),
                stacklevel=3,
            )
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # HIERARCH notes
                card = fits.Card(name, _writable_value(value), ascii_text(comment))
                card.verify("exception")
                str(card)  # the 80-character image(s): fails on what cannot be written
        except Exception as exc:  # noqa: BLE001 - astropy raises many types on bad cards
            warnings.warn(
                DataWarning(f"{source}: the card {name} cannot be written ({quote(exc, 80)})"),
                stacklevel=3,
            )
            continue
        cards.append(card)
    return cards


def wcs_cards(header: fits.Header | None, source: str = "header") -> fits.Header:
    """The World Coordinate System cards of ``header`` when valid, else none.

    See :func:`lensviz.data.sky.valid_wcs`: an invalid WCS is left out with a
    :class:`~lensviz.data.errors.DataWarning` naming ``source``.
    """
    return valid_wcs(header, source) or fits.Header()


def _image_header(header, pixel_arcmin, source: str) -> fits.Header:
    """The WCS cards of ``header`` and, when known, the pixel side (``PIXARCM``)."""
    out = wcs_cards(header, source)
    if pixel_arcmin is not None:
        value = check_pixel_arcmin(pixel_arcmin, source)
        out[PIXEL_CARD] = (value, "pixel side [arcmin]")
    return out


def _check_target(path: Path, overwrite: bool) -> None:
    if path.suffix.lower() not in FITS_SUFFIXES:
        raise ValueError(f"{path}: a FITS output must end in {' or '.join(FITS_SUFFIXES)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")


def _mask_hdu(mask, shape: tuple[int, int], path: Path) -> fits.ImageHDU:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise DataError(f"{path}: the mask is {mask.shape} but the map is {shape}")
    hdu = fits.ImageHDU(mask.astype(np.uint8), name="MASK")
    hdu.header["COMMENT"] = "1 = masked or empty pixel: no data, do not read kappa there"
    return hdu


def _fits_bytes(hdus: list) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf, output_verify="exception", checksum=True)
    return buf.getvalue()


def _write(path: Path, hdus: list) -> None:
    """Write ``hdus`` to ``path`` atomically; the bytes are made before any file is."""
    raw = _fits_bytes(hdus)
    with atomic_path(path, suffix=".fits") as tmp, open(tmp, "wb") as fp:
        fp.write(raw)


def _band_hdu(
    values, name: str, comment: str, shape, header, pixel_arcmin, source
) -> fits.ImageHDU:
    values = validate_kappa(values, f"{source} [{name}]")
    if values.shape[1:] != shape:
        raise DataError(f"{source}: {name} is {values.shape[1:]} but the map is {shape}")
    hdu = fits.ImageHDU(values[0], header=_image_header(header, pixel_arcmin, source), name=name)
    hdu.header["BUNIT"] = ("kappa", "convergence, dimensionless")
    hdu.header["COMMENT"] = comment
    return hdu


def _kappa_hdus(kappa, header, mask, attrs, pixel_arcmin, source: str, std=None, hw95=None) -> list:
    kappa = validate_kappa(kappa, f"{source} [kappa]")
    if len(kappa) != 1:
        raise DataError(f"{source}: got {len(kappa)} maps; a κ FITS file holds one map")
    check_kappa_values(kappa, source)
    primary = fits.PrimaryHDU(kappa[0], header=_image_header(header, pixel_arcmin, source))
    primary.header["BUNIT"] = ("kappa", "convergence, dimensionless")
    primary.header["ORIGIN"] = "lensviz"
    primary.header.extend(header_cards(attrs, source), update=True)
    hdus = [primary]
    shape = kappa.shape[1:]
    if std is not None:
        comment = "kappa +- STD holds the true kappa in 68.3% of the pixels (calibrated)"
        hdus.append(_band_hdu(std, "STD", comment, shape, header, pixel_arcmin, source))
    if hw95 is not None:
        comment = "kappa +- HW95 holds the true kappa in 95.4% of the pixels (calibrated)"
        hdus.append(_band_hdu(hw95, "HW95", comment, shape, header, pixel_arcmin, source))
    if mask is not None:
        hdus.append(_mask_hdu(mask, shape, source))
    return hdus


def write_kappa_fits(
    path,
    kappa,
    header: fits.Header | None = None,
    mask=None,
    *,
    overwrite: bool = False,
    attrs: dict | None = None,
    pixel_arcmin: float | None = None,
    std=None,
    hw95=None,
) -> None:
    """Write a κ map as FITS, atomically, with the input's WCS when it has a valid one.

    Nothing in ``header`` or ``attrs`` can make the write fail: an invalid WCS is left
    out (:func:`wcs_cards`) and every card is made writable (:func:`header_cards`), both
    with a :class:`~lensviz.data.errors.DataWarning`. The file is made in memory first,
    so a refused map leaves no file and no temporary.

    Parameters
    ----------
    path : str or path-like
        Ends in ``.fits`` (or ``.fit``/``.fts``).
    kappa : array_like, shape (ny, nx)
        Stored as float32 in the primary HDU (``BUNIT = 'kappa'``).
    header : astropy.io.fits.Header, optional
        The input image's header: its WCS cards, when valid, are copied. Without one the
        file has no WCS (no sky position is invented).
    mask : array_like of bool, shape (ny, nx), optional
        Masked or empty pixels, written as the ``MASK`` extension (uint8, 1 = masked).
    overwrite : bool, optional
    attrs : dict, optional
        Extra cards: method, weights… (see :func:`header_cards`).
    pixel_arcmin : float, optional
        The pixel side, written as the card ``PIXARCM`` [arcmin] when given.
    std, hw95 : array_like, shape (ny, nx), optional
        Calibrated error bars: the half-widths of the 68.3 % and 95.4 % bands, written
        as the extensions ``STD`` and ``HW95`` (float32, with the WCS).

    Raises
    ------
    DataError
        Non-finite or out-of-bounds κ, a mask or error bar of another shape, a pixel
        scale out of bounds.
    FileExistsError, FileNotFoundError, ValueError
        An existing target without ``overwrite``, a missing folder, a wrong suffix.
    """
    path = Path(path)
    hdus = _kappa_hdus(kappa, header, mask, attrs, pixel_arcmin, str(path), std, hw95)
    _check_target(path, overwrite)
    _write(path, hdus)


def kappa_fits_bytes(
    kappa,
    header=None,
    mask=None,
    *,
    attrs: dict | None = None,
    pixel_arcmin=None,
    std=None,
    hw95=None,
) -> bytes:
    """The FITS file :func:`write_kappa_fits` writes, as bytes (for a download).

    Examples
    --------
    >>> raw = kappa_fits_bytes(np.zeros((64, 64)), mask=np.eye(64, dtype=bool))
    >>> with fits.open(io.BytesIO(raw)) as hdul:
    ...     [h.name for h in hdul], int(hdul["MASK"].data.sum())
    (['PRIMARY', 'MASK'], 64)
    """
    return _fits_bytes(_kappa_hdus(kappa, header, mask, attrs, pixel_arcmin, "κ map", std, hw95))


def write_field_fits(
    path,
    eps,
    kappa=None,
    header: fits.Header | None = None,
    *,
    overwrite: bool = False,
    attrs: dict | None = None,
    pixel_arcmin: float | None = None,
) -> None:
    """Write one ε field (and its true κ) as a multi-extension FITS file, atomically.

    Extensions ``E1``, ``E2``, ``SIGMA`` (Δε; ``EMPTY_PIXEL_SIGMA`` on empty pixels) and
    ``KAPPA`` when given, float32, each with the valid WCS cards of ``header`` and the
    pixel side (``PIXARCM``) when given; the primary HDU holds no data, only ``attrs``
    (:func:`header_cards`). :func:`read_field_fits` reads it back exactly, pixel scale
    included.

    Parameters
    ----------
    path : str or path-like
    eps : array_like, shape (ny, nx, 3)
    kappa : array_like, shape (ny, nx), optional
    header : astropy.io.fits.Header, optional
    overwrite : bool, optional
    attrs : dict, optional
        Cards of the primary header (how the field was made).
    pixel_arcmin : float, optional
        Pixel side [arcmin].
    """
    path = Path(path)
    source = str(path)
    eps = validate_epsilon(eps, f"{path} [eps]")
    if len(eps) != 1:
        raise DataError(f"{path}: got {len(eps)} fields; a field FITS file holds one")
    eps = eps[0]
    if kappa is not None:
        kappa = validate_kappa(kappa, f"{path} [kappa]")
        if kappa.shape != (1, *eps.shape[:2]):
            raise DataError(f"{path}: κ is {kappa.shape[1:]} but ε is {eps.shape[:2]}")
    _check_target(path, overwrite)
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "lensviz"
    primary.header["COMMENT"] = "ellipticity field: E1, E2, SIGMA (delta_e) [, KAPPA]"
    primary.header.extend(header_cards(attrs, source), update=True)
    image = _image_header(header, pixel_arcmin, source)
    hdus = [primary]
    for name, data in (("E1", eps[..., 0]), ("E2", eps[..., 1]), ("SIGMA", eps[..., 2])):
        hdus.append(fits.ImageHDU(np.ascontiguousarray(data), header=image.copy(), name=name))
    if kappa is not None:
        hdus.append(fits.ImageHDU(kappa[0], header=image.copy(), name="KAPPA"))
    _write(path, hdus)
