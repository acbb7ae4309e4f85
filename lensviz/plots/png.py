"""Maps as PNG images, drawn with Pillow (no matplotlib, no kaleido).

:func:`map_png` is a map's pixels in a plotly colour scale; :func:`map_figure_png` a
slide-ready figure of one map with axes, ticks, a colour bar and units. NaN pixels are
grey (:data:`lensviz.plots.maps.MASK_COLOR`), as in the app's figures.
"""

from __future__ import annotations

import io

import numpy as np
import plotly.colors as pcolors
from PIL import Image, ImageDraw, ImageFont

from lensviz.plots.maps import KAPPA_COLORSCALE, MASK_COLOR, _check_map, robust_range
from lensviz.plots.sky import nice_ticks

__all__ = ["colormap_lut", "map_png", "map_figure_png", "nice_ticks"]


def colormap_lut(colorscale: str = KAPPA_COLORSCALE, n: int = 256) -> np.ndarray:
    """A ``(n, 3)`` uint8 lookup table sampled evenly from a plotly colour scale."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    colours = pcolors.sample_colorscale(colorscale, np.linspace(0.0, 1.0, n), colortype="rgb")
    rgb = [pcolors.unlabel_rgb(c) for c in colours]
    return np.clip(np.rint(np.asarray(rgb, dtype=np.float64)), 0, 255).astype(np.uint8)


def map_png(
    m,
    *,
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    upscale: int = 1,
) -> bytes:
    """A map as PNG bytes (row 0 at the top), coloured with a plotly colour scale.

    Parameters
    ----------
    m : (ny, nx) array
    colorscale : str
        A plotly colour-scale name (sampled into a 256-entry table, no matplotlib).
    zrange : (float, float), optional
        Values mapped to the two ends of the scale; default :func:`robust_range`.
        Values outside are clipped; NaN pixels are grey (:data:`MASK_COLOR`).
    upscale : int
        Nearest-neighbour magnification (e.g. 4 gives 512 × 512 for a 128 × 128 map).

    Returns
    -------
    bytes
        An RGB PNG image.
    """
    a = _check_map(m).astype(np.float64)
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale!r}")
    zmin, zmax = robust_range(a) if zrange is None else (float(zrange[0]), float(zrange[1]))
    if not zmax > zmin:
        raise ValueError(f"zrange must be increasing, got ({zmin}, {zmax})")
    lut = colormap_lut(colorscale)
    idx = np.clip((a - zmin) / (zmax - zmin), 0.0, 1.0)
    idx = np.rint(np.nan_to_num(idx, nan=0.0) * (len(lut) - 1)).astype(np.intp)
    rgb = lut[idx]
    rgb[np.isnan(a)] = pcolors.hex_to_rgb(MASK_COLOR)
    if upscale > 1:
        rgb = np.repeat(np.repeat(rgb, int(upscale), axis=0), int(upscale), axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# === Publication-style PNG (Pillow, no matplotlib or kaleido) ===

_FIGURE_FONT = "DejaVuSans.ttf"  # found in the system's font folders; Pillow's own if absent
_GREEK_ASCII = str.maketrans(
    {"κ": "kappa", "ε": "eps", "σ": "sigma", "Δ": "d", "γ": "gamma", "′": "'", "−": "-"}
)


def _font(size: int):
    """A TrueType font with Greek letters (DejaVu Sans) and whether it was found."""
    try:
        return ImageFont.truetype(_FIGURE_FONT, size), True
    except OSError:
        return ImageFont.load_default(size), False


def map_figure_png(
    m,
    *,
    title: str = "",
    colorscale: str = KAPPA_COLORSCALE,
    zrange: tuple[float, float] | None = None,
    label: str = "κ",
    pixel_arcmin: float | None = None,
    upscale: int = 4,
    dpi: int = 150,
) -> bytes:
    """A slide-ready figure of one map as PNG bytes: axes, ticks, colour bar and units.

    Drawn with Pillow (no matplotlib, no kaleido): the map at ``upscale`` × its size,
    row 0 at the top as in the app, a frame with ticks in arcmin (or pixels), a colour
    bar with round ticks and the quantity's name, and an optional title.

    Parameters
    ----------
    m : (ny, nx) array
    title : str
        Drawn above the map.
    colorscale : str
        A plotly colour-scale name.
    zrange : (float, float), optional
        Colour limits; default :func:`robust_range`. Values outside are clipped.
    label : str
        The quantity on the colour bar, e.g. ``"κ"`` or ``"Δκ"``.
    pixel_arcmin : float, optional
        Pixel size in arcmin: the axes are then in arcmin, else in pixels.
    upscale : int
        Nearest-neighbour magnification of the map.
    dpi : int
        Resolution written into the PNG (for slide and print software).

    Returns
    -------
    bytes
        An RGB PNG image.

    Raises
    ------
    ValueError
        If ``m`` is not 2-D, ``upscale`` is not a positive integer or ``zrange`` is not
        increasing.
    """
    a = _check_map(m)
    ny, nx = a.shape
    zmin, zmax = robust_range(a) if zrange is None else (float(zrange[0]), float(zrange[1]))
    image = Image.open(
        io.BytesIO(map_png(a, colorscale=colorscale, zrange=(zmin, zmax), upscale=upscale))
    )
    font, unicode_ok = _font(20)
    small, _ = _font(17)

    def text(s: str) -> str:
        return s if unicode_ok else s.translate(_GREEK_ASCII)

    w, h = image.size
    left, top, bottom = 95, 60 if title else 25, 85
    bar_gap, bar_w, right = 30, 26, 120
    canvas = Image.new("RGB", (left + w + bar_gap + bar_w + right, top + h + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    canvas.paste(image, (left, top))
    ink = (38, 39, 48)
    draw.rectangle([left - 1, top - 1, left + w, top + h], outline=ink, width=2)
    unit = "arcmin" if pixel_arcmin else "px"
    scale = float(pixel_arcmin) if pixel_arcmin else 1.0
    for t in nice_ticks(0.0, nx * scale):  # x ticks along the bottom edge
        x = left + t / (nx * scale) * w
        draw.line([x, top + h, x, top + h + 8], fill=ink, width=2)
        draw.text((x, top + h + 12), f"{t:g}", fill=ink, font=small, anchor="mt")
    for t in nice_ticks(0.0, ny * scale):  # y ticks, row 0 at the top
        y = top + t / (ny * scale) * h
        draw.line([left - 8, y, left, y], fill=ink, width=2)
        draw.text((left - 12, y), f"{t:g}", fill=ink, font=small, anchor="rm")
    draw.text((left + w / 2, top + h + 45), f"x [{unit}]", fill=ink, font=font, anchor="mt")
    ylab = Image.new("RGB", (200, 30), "white")
    ImageDraw.Draw(ylab).text((100, 15), f"y [{unit}]", fill=ink, font=font, anchor="mm")
    canvas.paste(ylab.rotate(90, expand=True), (8, top + h // 2 - 100))
    if title:
        draw.text((left + w / 2, top - 18), text(title), fill=ink, font=font, anchor="mb")
    # The colour bar: the top of the scale at the top.
    lut = colormap_lut(colorscale)
    ramp = lut[np.linspace(len(lut) - 1, 0, h).round().astype(int)]
    bar = Image.fromarray(np.repeat(ramp[:, None, :], bar_w, axis=1))
    x0 = left + w + bar_gap
    canvas.paste(bar, (x0, top))
    draw.rectangle([x0 - 1, top - 1, x0 + bar_w, top + h], outline=ink, width=1)
    for t in nice_ticks(zmin, zmax):
        y = top + (zmax - t) / (zmax - zmin) * h
        draw.line([x0 + bar_w, y, x0 + bar_w + 6, y], fill=ink, width=2)
        draw.text((x0 + bar_w + 10, y), f"{t:.3g}", fill=ink, font=small, anchor="lm")
    blab = Image.new("RGB", (200, 30), "white")
    ImageDraw.Draw(blab).text((100, 15), text(label), fill=ink, font=font, anchor="mm")
    canvas.paste(blab.rotate(90, expand=True), (x0 + bar_w + 72, top + h // 2 - 100))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()
