"""Whole fields: κ on a survey field of any size, from a method that works on 128 × 128 tiles.

A *field* is one ε cube ``(ny, nx, 3)`` of any size (64 to 2048 pixels a side, square or
not; :mod:`lensviz.data.limits`), with channels ``(e1, e2, Δε)`` as everywhere in
lensviz. KS93 and the Wiener filter work on any grid and run on the whole field
(:func:`ks93_field`, :func:`wiener_field`), zero-padded by :data:`FIELD_PAD_PX`. The
UNet takes a fixed 128 × 128 input, so it runs on overlapping tiles that are blended
into one map (:func:`predict_tiled`; the TensorFlow side is
:func:`lensviz.nn.fields.predict_field`).

Tiles
    Along each axis, :func:`tile_origins` places ``1 + ⌈(n − T)/(T − overlap)⌉`` tiles of
    side ``T`` evenly from the first pixel to the last, so neighbours share at least
    ``overlap`` pixels; ``T/2 ≤ overlap < T``. A field smaller than a tile is padded with
    empty pixels (``ε = 0``, ``Δε = EMPTY_PIXEL_SIGMA``) to one tile first.
Blending
    Tile ``k`` with centre ``c_k`` gets the raised-cosine ("Hann") weight

    .. math::

        w_k(x) = \\cos^2\\Big(\\frac{\\pi}{2}\\,\\frac{x - c_k}{c_{k\\pm1} - c_k}\\Big)

    between its centre and each neighbour's centre, 0 beyond them, and 1 between its
    centre and the field's edge when it is the first or last tile. Between two centres
    the two weights are ``cos²`` and ``sin²`` of the same angle, so the weights of every
    pixel sum to exactly 1 (a partition of unity); the 2-D weight of a tile is the outer
    product of its two 1-D weights, so the sum is 1 there too (:func:`blend_weights`).
    Since ``overlap ≥ T/2`` the neighbouring centres lie inside the tile: every tile's
    weight falls to 0 before its own border, where a tile reconstruction is worst (the
    mass outside the tile is missing from its KS93), except along the field's own edges.
    With the default overlap (:data:`DEFAULT_OVERLAP_PX`, 80) it is 0 on the tile's
    outer 15 pixels, and no tile border falls where a single tile rules alone.
Masks
    A pixel is empty or masked when ``Δε ≥ EMPTY_PIXEL_SIGMA`` (:func:`field_mask`).
    Reconstructions are defined there too (an interpolation from the data around), so
    outputs carry the mask beside κ, and plots draw masked pixels grey
    (:func:`masked`), so that no one reads κ where there was no data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lensviz import constants
from lensviz.depth import TrainingDomain, domain_issues
from lensviz.evaluation import ks93_depth_predictor, ks93_predictor
from lensviz.wiener import PowerSpectrum, noise_power, wiener

__all__ = [
    "TILE_PX",
    "DEFAULT_OVERLAP_PX",
    "FIELD_PAD_PX",
    "as_field",
    "field_mask",
    "masked",
    "pad_field",
    "tile_origins",
    "axis_weights",
    "blend_weights",
    "split_tiles",
    "cut_tiles",
    "merge_tiles",
    "predict_tiled",
    "ks93_field",
    "wiener_field",
    "tile_domain_warnings",
]

#: Side of the UNet's input and output tiles [pixels].
TILE_PX = constants.NPIX
#: Pixels that neighbouring tiles share, at least. With 80 (steps ≤ 48 px) every tile
#: border lies ≥ 15.5 px from every tile centre, where two tiles share the pixel, and a
#: tile's outer 15 px never count (but along the field's edges). Half a tile (64) lets the
#: borders of some tiles fall on the centres of others, where one tile rules alone:
#: without shape noise the error there was 10 % above the rest (the averaging of two
#: tiles is lost), 6.6 % along the borders of a 384² field (8 fields, shipped ``lite``).
DEFAULT_OVERLAP_PX = 80
#: Zero-padding per side [pixels] of KS93 and Wiener on a whole field: one tile's half,
#: as in the simulator (lensviz.constants.SIM_KS_PAD_PX) and the UNet's own KS93 channel.
FIELD_PAD_PX = 64


def as_field(eps) -> np.ndarray:
    """One field as a float32 ``(ny, nx, 3)`` array; ValueError naming the shape otherwise."""
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim != 3 or eps.shape[-1] != 3 or min(eps.shape[:2]) < 1:
        raise ValueError(f"expected one ε field of shape (ny, nx, 3), got shape {eps.shape}")
    return eps


def field_mask(eps) -> np.ndarray:
    """Empty or masked pixels, ``Δε ≥ EMPTY_PIXEL_SIGMA``: bool ``(..., ny, nx)``.

    Parameters
    ----------
    eps : array_like, shape (..., ny, nx, 3)

    Examples
    --------
    >>> eps = np.zeros((64, 96, 3)); eps[5, 7, 2] = 1.0
    >>> field_mask(eps).sum(), field_mask(eps)[5, 7]
    (np.int64(1), np.True_)
    """
    eps = np.asarray(eps)
    if eps.ndim < 3 or eps.shape[-1] != 3:
        raise ValueError(f"expected ε of shape (..., ny, nx, 3), got shape {eps.shape}")
    return eps[..., 2] >= constants.EMPTY_PIXEL_SIGMA


def masked(kappa, mask) -> np.ndarray:
    """κ as float32 with NaN on the masked pixels: for plots, which draw NaN grey."""
    kappa = np.array(kappa, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != kappa.shape[-mask.ndim :]:
        raise ValueError(f"mask {mask.shape} does not fit κ {kappa.shape}")
    kappa[..., mask] = np.nan
    return kappa


def pad_field(eps, ny: int, nx: int) -> np.ndarray:
    """A field padded at its far sides to at least ``(ny, nx)`` with empty pixels.

    Empty pixels have ``e1 = e2 = 0`` and ``Δε = EMPTY_PIXEL_SIGMA``, exactly as masked
    ones, so every method reads them as "no data".
    """
    eps = as_field(eps)
    py, px = max(ny - eps.shape[0], 0), max(nx - eps.shape[1], 0)
    if py == 0 and px == 0:
        return eps
    out = np.zeros((eps.shape[0] + py, eps.shape[1] + px, 3), np.float32)
    out[..., 2] = constants.EMPTY_PIXEL_SIGMA
    out[: eps.shape[0], : eps.shape[1]] = eps
    return out


def _check_tiling(tile: int, overlap: int) -> tuple[int, int]:
    if isinstance(tile, bool) or int(tile) != tile or tile < 2:
        raise ValueError(f"tile must be an integer ≥ 2, got {tile!r}")
    if isinstance(overlap, bool) or int(overlap) != overlap or not tile / 2 <= overlap < tile:
        raise ValueError(
            f"overlap must be an integer with tile/2 ≤ overlap < tile ({tile / 2:g} ≤ overlap "
            f"< {tile}), got {overlap!r}"
        )
    return int(tile), int(overlap)


def tile_origins(n: int, tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX) -> np.ndarray:
    """First pixels of the tiles along an axis of ``n ≥ tile`` pixels.

    Parameters
    ----------
    n : int
        Pixels along the axis.
    tile : int, optional
        Tile side.
    overlap : int, optional
        Pixels neighbouring tiles share at least, ``tile/2 ≤ overlap < tile``.

    Returns
    -------
    ndarray of int
        ``1 + ⌈(n − tile)/(tile − overlap)⌉`` origins from 0 to ``n − tile``, evenly
        spaced (steps differ by at most one pixel).

    Examples
    --------
    >>> tile_origins(360).tolist()
    [0, 46, 93, 139, 186, 232]
    >>> tile_origins(360, overlap=64).tolist()
    [0, 58, 116, 174, 232]
    """
    tile, overlap = _check_tiling(tile, overlap)
    if n < tile:
        raise ValueError(f"an axis of {n} pixels is shorter than a tile ({tile}); pad it first")
    count = 1 + math.ceil((n - tile) / (tile - overlap))
    return np.rint(np.linspace(0, n - tile, count)).astype(int)


def axis_weights(n: int, tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX) -> np.ndarray:
    """The 1-D blending weight of each tile along an axis: ``(count, tile)`` float64.

    Row ``k`` is tile ``k``'s weight at its pixels ``origin_k … origin_k + tile − 1``
    (see the module docstring); the weights of every pixel of the axis sum to 1.
    """
    origins = tile_origins(n, tile, overlap)
    centres = origins + (tile - 1) / 2.0
    x = np.arange(tile, dtype=np.float64)
    out = np.empty((len(origins), tile))
    for k, origin in enumerate(origins):
        pos = origin + x
        w = np.ones(tile)
        if k > 0:  # rises from the previous centre to this one
            t = np.clip((pos - centres[k - 1]) / (centres[k] - centres[k - 1]), 0.0, 1.0)
            w = np.where(pos < centres[k], np.sin(0.5 * np.pi * t) ** 2, w)
        if k < len(origins) - 1:  # falls from this centre to the next one
            t = np.clip((pos - centres[k]) / (centres[k + 1] - centres[k]), 0.0, 1.0)
            fall = np.where(t < 1.0, np.cos(0.5 * np.pi * t) ** 2, 0.0)  # exactly 0 beyond
            w = np.where(pos > centres[k], fall, w)
        out[k] = w
    return out


def blend_weights(
    shape: tuple[int, int], tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX
) -> np.ndarray:
    """Total blending weight of every pixel of a ``(ny, nx)`` field (1 everywhere).

    The check of :func:`axis_weights`' partition of unity, in 2-D; useful in tests and to
    show the tiling.
    """
    ny, nx = shape
    total = np.zeros((ny, nx))
    wy, wx = axis_weights(ny, tile, overlap), axis_weights(nx, tile, overlap)
    for oy, w_y in zip(tile_origins(ny, tile, overlap), wy, strict=True):
        for ox, w_x in zip(tile_origins(nx, tile, overlap), wx, strict=True):
            total[oy : oy + tile, ox : ox + tile] += np.outer(w_y, w_x)
    return total


def split_tiles(
    eps, tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cut a field into overlapping tiles.

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3)
        The field; padded with empty pixels to at least one tile (:func:`pad_field`).
    tile, overlap : int, optional
        See :func:`tile_origins`.

    Returns
    -------
    tiles : ndarray, shape (T, tile, tile, 3), float32
    origins : list of (int, int)
        ``(y0, x0)`` of each tile in the (padded) field, row by row.
    """
    return cut_tiles(pad_field(as_field(eps), tile, tile), tile, overlap)


def cut_tiles(cube, tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX):
    """The overlapping tiles of a ``(ny, nx, C)`` cube at least one tile large (pad it
    first, :func:`pad_field`): ``(T, tile, tile, C)`` and their origins, as
    :func:`split_tiles` cuts ε."""
    cube = np.asarray(cube)
    ny, nx = cube.shape[:2]
    origins = [
        (int(y), int(x))
        for y in tile_origins(ny, tile, overlap)
        for x in tile_origins(nx, tile, overlap)
    ]
    tiles = np.stack([cube[y : y + tile, x : x + tile] for y, x in origins])
    return tiles, origins


def merge_tiles(
    tiles, shape: tuple[int, int], tile: int = TILE_PX, overlap: int = DEFAULT_OVERLAP_PX
) -> np.ndarray:
    """Blend per-tile maps ``(T, tile, tile)`` of :func:`split_tiles` into one field.

    Parameters
    ----------
    tiles : array_like, shape (T, tile, tile)
        One map per tile, in the order of :func:`split_tiles`.
    shape : tuple of int
        ``(ny, nx)`` of the field as given to :func:`split_tiles` (before padding).
    tile, overlap : int, optional
        As for :func:`split_tiles`.

    Returns
    -------
    ndarray, shape (ny, nx), float32
        ``Σ_k w_k · map_k`` with the weights of :func:`axis_weights`.
    """
    tiles = np.asarray(tiles, dtype=np.float64)
    ny, nx = max(shape[0], tile), max(shape[1], tile)
    oy, ox = tile_origins(ny, tile, overlap), tile_origins(nx, tile, overlap)
    if tiles.shape != (len(oy) * len(ox), tile, tile):
        raise ValueError(
            f"expected {len(oy) * len(ox)} tiles of {tile} × {tile} for a field "
            f"of {shape}, got shape {tiles.shape}"
        )
    wy, wx = axis_weights(ny, tile, overlap), axis_weights(nx, tile, overlap)
    out = np.zeros((ny, nx))
    k = 0
    for y, w_y in zip(oy, wy, strict=True):
        for x, w_x in zip(ox, wx, strict=True):
            out[y : y + tile, x : x + tile] += np.outer(w_y, w_x) * tiles[k]
            k += 1
    return out[: shape[0], : shape[1]].astype(np.float32)


def predict_tiled(
    predict: Callable[[np.ndarray], np.ndarray],
    eps,
    tile: int = TILE_PX,
    overlap: int = DEFAULT_OVERLAP_PX,
    batch_size: int = 32,
    inputs: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Reconstruct a whole field with a method that works on ``tile × tile`` cubes.

    Parameters
    ----------
    predict : callable
        ``eps (B, tile, tile, 3) -> kappa (B, tile, tile)``: a predictor of
        :mod:`lensviz.evaluation`, or the UNet's (:func:`lensviz.nn.fields.predict_field`
        passes it).
    eps : array_like, shape (ny, nx, 3) or (N, ny, nx, 3)
        One field or several of the same size.
    tile, overlap : int, optional
        See :func:`tile_origins`.
    batch_size : int, optional
        Tiles per call of ``predict``.
    inputs : callable, optional
        ``(ny, nx, 3) -> (ny, nx, C)``: what ``predict`` reads, computed on the whole
        field (padded to a tile) before it is cut, e.g. the field features of a
        field-aware UNet (:func:`lensviz.features.unet_features`); the tiles are then
        cut from its output. None: the tiles of ε.

    Returns
    -------
    ndarray, shape (ny, nx) or (N, ny, nx), float32

    Examples
    --------
    A method that returns e1 itself is reproduced exactly, since the blending weights
    sum to 1:

    >>> eps = np.random.default_rng(0).normal(size=(200, 300, 3)).astype(np.float32)
    >>> out = predict_tiled(lambda t: t[..., 0], eps)
    >>> float(np.abs(out - eps[..., 0]).max()) < 1e-6
    True
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim == 4:
        return np.stack([predict_tiled(predict, e, tile, overlap, batch_size, inputs) for e in eps])
    eps = as_field(eps)
    cube = pad_field(eps, tile, tile)
    if inputs is not None:
        cube = np.asarray(inputs(cube), dtype=np.float32)
    tiles, _ = cut_tiles(cube, tile, overlap)
    out = np.concatenate(
        [
            np.asarray(predict(tiles[i : i + batch_size]), np.float32)
            for i in range(0, len(tiles), batch_size)
        ]
    )
    return merge_tiles(out, eps.shape[:2], tile, overlap)


def ks93_field(
    eps,
    sigma_px: float | None = None,
    pad: int = FIELD_PAD_PX,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> np.ndarray:
    """KS93 E mode of whole fields, zero-padded, smoothed.

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3) or (N, ny, nx, 3)
    sigma_px : float, optional
        Gaussian smoothing σ [pixels]; None: each field's σ from its depth
        (:func:`lensviz.depth.ks93_sigma`, the one "best-smoothed KS93" rule).
    pad : int, optional
        Zero-padding per side (:data:`FIELD_PAD_PX`).
    pixel_arcmin : float, optional
        Pixel side [arcmin], for the depth rule.

    Returns
    -------
    ndarray, shape (ny, nx) or (N, ny, nx), float32
    """
    eps = np.asarray(eps, dtype=np.float32)
    single = eps.ndim == 3
    batch = eps[None] if single else eps
    if sigma_px is None:
        out = ks93_depth_predictor(pad)(batch, pixel_arcmin=pixel_arcmin)
    else:
        out = ks93_predictor(sigma_px, pad)(batch)
    return out[0] if single else out


def wiener_field(
    eps,
    signal: PowerSpectrum,
    pad: int = FIELD_PAD_PX,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> np.ndarray:
    """Wiener-filtered E mode of whole fields, zero-padded (:func:`lensviz.wiener.wiener`).

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3) or (N, ny, nx, 3)
        The noise power of each field comes from its own Δε (:func:`lensviz.wiener.noise_power`;
        empty and masked pixels are left out of it).
    signal : PowerSpectrum
        The κ power spectrum (the shipped ``weights/kappa_power.npz``), taken at the
        field's pixel scale.
    pad : int, optional
        Zero-padding per side (:data:`FIELD_PAD_PX`).
    pixel_arcmin : float, optional
        Pixel side [arcmin].

    Returns
    -------
    ndarray, shape (ny, nx) or (N, ny, nx), float32
    """
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim not in (3, 4) or eps.shape[-1] != 3:
        raise ValueError(f"expected ε of shape (ny, nx, 3) or (N, ny, nx, 3), got {eps.shape}")
    noise = noise_power(eps[..., 2])
    return wiener(eps[..., 0], eps[..., 1], noise, signal, pad=pad, pixel_arcmin=pixel_arcmin)


def tile_domain_warnings(
    eps,
    domain: TrainingDomain,
    tile: int = TILE_PX,
    overlap: int = DEFAULT_OVERLAP_PX,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> list[str]:
    """Why a model that runs on tiles may be wrong on a field: its training domain
    (:func:`lensviz.depth.domain_issues`) checked on every tile it sees.

    A field's edge tiles can be mostly empty while its inner tiles are like the training
    data; a check of the whole field would miss both. One sentence per kind of issue
    (noise, mask, values), saying in how many tiles it occurs, with the first such tile's
    numbers; empty when every tile lies inside the domain. A field of one tile gets the
    sentences of :func:`lensviz.depth.domain_warnings`.

    Examples
    --------
    >>> from lensviz.depth import LEGACY_DOMAIN
    >>> eps = np.zeros((128, 256, 3), np.float32); eps[..., 2] = 0.1
    >>> eps[:, 200:, 2] = constants.EMPTY_PIXEL_SIGMA  # the right edge is empty
    >>> tile_domain_warnings(eps, LEGACY_DOMAIN)[0].split(" (")[0]
    'in 2 of the 4 tiles it sees'
    """
    tiles, _ = split_tiles(eps, tile, overlap)
    found: dict[str, list[str]] = {}
    for t in tiles:
        for kind, sentence in domain_issues(t, domain, pixel_arcmin).items():
            found.setdefault(kind, []).append(sentence)
    if len(tiles) == 1:
        return [sentences[0] for sentences in found.values()]
    return [
        f"in {len(sentences)} of the {len(tiles)} tiles it sees ({sentences[0]})"
        for sentences in found.values()
    ]
