"""What a field-aware UNet reads: features of a whole field's ``(e1, e2, Δε)``.

A UNet sees a 128 × 128 tile, but the large scales and the far edges of a survey field
are known only to the whole field. The features are therefore computed on the whole
field, before it is cut into tiles, and a tile's features are the crop of the field's.
On a lone 128² tile the tile *is* the field. Five channels (:data:`FEATURES`):

``e1_E``, ``e2_E``
    The E-mode part of the shear: the ellipticities of the filled pixels (0 in empty or
    masked ones), inverted to κ by KS93 on the zero-padded field, the B mode dropped,
    and shear rebuilt from the E mode alone (:func:`e_mode_shear`). Gravity makes no B
    modes (to first order), so the B modes are noise, or the systematics a null test
    looks for: an input with no B modes makes the UNet's answer to a pure B-mode field
    (the 45°-rotated data of the null tests) zero by design, up to the E/B leakage of
    the field's edges and holes.
``weight``
    The inverse-variance weight of the pixel in [0, 1],

    .. math::

        w = \\frac{\\sigma_\\mathrm{ref}^2}{\\Delta\\varepsilon^2 + \\sigma_\\mathrm{ref}^2}

    1 without shape noise, ≈ 0.5 at LSST depth on 0.5′ pixels, 0 where the pixel is empty
    or masked: the network reads the noise and the mask from it.
``kappa_E``
    The KS93 E-mode convergence of the whole field, zero-padded by ``pad`` pixels
    (:func:`lensviz.inversion.ks93`). Without shape noise it is exact away from the
    field's edges (up to the reduced shear and the mass sheet); the UNet's output adds a
    learned fraction of it to a learned correction
    (:class:`lensviz.nn.layers.GatedResidual`), so it can be exact where KS93 is.
``log_scale``
    ``log2(pixel_arcmin / 0.5)``, the same in every pixel: 0 at the challenge's 0.5′,
    −1 at 0.25′, +1 at 1′. The same cluster spans twice as many pixels at half the
    pixel side, and the signal's power per mode changes with it; the UNet is trained
    across pixel scales with this channel telling it which.

Conventions as everywhere in lensviz: maps ``(..., ny, nx)``, channels last, float32;
empty pixels have ``Δε ≥ EMPTY_PIXEL_SIGMA``. Shapes are any size: a batch of tiles
``(N, 128, 128, 3)`` gives the features of each tile as its own field, one field
``(ny, nx, 3)`` gives ``(ny, nx, 5)``.
"""

from __future__ import annotations

import numpy as np

from lensviz import constants
from lensviz.inversion import ks93, ks93inv

__all__ = [
    "FEATURES",
    "SIGMA_REF",
    "KAPPA_E_CHANNEL",
    "FEATURE_PAD_PX",
    "pixel_weight",
    "e_mode_shear",
    "log_scale",
    "unet_features",
    "pad_features",
]

#: Names of the feature channels, in order.
FEATURES = ("e1_E", "e2_E", "weight", "kappa_E", "log_scale")
#: Index of ``kappa_E`` in :data:`FEATURES` (the map the UNet's output gate scales).
KAPPA_E_CHANNEL = FEATURES.index("kappa_E")
#: Δε at which a pixel's weight is 1/2: about the per-pixel noise at LSST depth on 0.5′
#: pixels (σ_e / √(n_gal A_pix) = 0.26 / √7.5 ≈ 0.095).
SIGMA_REF = 0.1
#: Zero-padding per side [pixels] of the field's KS93: half a 128-pixel tile, as for
#: KS93 and Wiener on whole fields (:data:`lensviz.fields.FIELD_PAD_PX`).
FEATURE_PAD_PX = 64


def _check_eps(eps) -> np.ndarray:
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim < 3 or eps.shape[-1] != 3 or min(eps.shape[-3:-1]) < 2:
        raise ValueError(f"expected ε of shape (..., ny, nx, 3), got shape {eps.shape}")
    return eps


def _check_scale(pixel_arcmin) -> np.ndarray:
    scale = np.asarray(pixel_arcmin, dtype=np.float64)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"pixel_arcmin must be finite and > 0, got {pixel_arcmin!r}")
    return scale


def pixel_weight(delta_e, sigma_ref: float = SIGMA_REF) -> np.ndarray:
    """The ``weight`` channel: ``σ_ref² / (Δε² + σ_ref²)``, 0 on empty pixels.

    Examples
    --------
    >>> pixel_weight(np.array([0.0, 0.1, 1.0])).tolist()   # no noise, LSST-like, empty
    [1.0, 0.5, 0.0]
    """
    d = np.asarray(delta_e, dtype=np.float32)
    s2 = np.float32(sigma_ref**2)
    return np.where(d < constants.EMPTY_PIXEL_SIGMA, s2 / (d * d + s2), 0.0).astype(np.float32)


def e_mode_shear(e1, e2, pad: int = FEATURE_PAD_PX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The E-mode part of a shear field, and its KS93 E-mode κ.

    .. math::

        \\kappa_E + i\\kappa_B = \\mathrm{KS93}(e_1 + i e_2),\\qquad
        e^E_1 + i e^E_2 = \\mathrm{KS93}^{-1}(\\kappa_E)

    both on the field zero-padded by ``pad`` pixels, then cropped. On the padded grid
    the projection is exact: the E part of a pure-E field is the field (up to the mean
    and Nyquist modes, which carry no shear), that of a pure-B field is 0.

    Parameters
    ----------
    e1, e2 : array_like, shape (..., ny, nx)
        Ellipticities, 0 in empty pixels.
    pad : int
        Zero-padding per side [pixels].

    Returns
    -------
    e1_E, e2_E, kappa_E : ndarray, shape (..., ny, nx), float32

    Examples
    --------
    >>> from lensviz.inversion import ks93inv
    >>> kappa = np.zeros((64, 64)); kappa[30:34, 30:34] = 0.1
    >>> g1, g2 = ks93inv(kappa)
    >>> b1, b2 = g2, -g1                 # rotated by 45°: a pure B-mode field
    >>> e1, e2, _ = e_mode_shear(b1, b2, pad=0)
    >>> bool(np.abs(e1).max() < 1e-6 and np.abs(e2).max() < 1e-6)
    True
    """
    e1 = np.asarray(e1, dtype=np.float32)
    e2 = np.asarray(e2, dtype=np.float32)
    kappa_e, _ = ks93(e1, e2, pad=pad)
    e1_e, e2_e = ks93inv(kappa_e, pad=pad)
    return e1_e, e2_e, kappa_e


def log_scale(pixel_arcmin) -> np.ndarray:
    """The ``log_scale`` channel's value, ``log2(pixel_arcmin / 0.5)``.

    Examples
    --------
    >>> float(log_scale(0.5)), float(log_scale(1.0)), float(log_scale(0.25))
    (0.0, 1.0, -1.0)
    """
    return np.log2(_check_scale(pixel_arcmin) / constants.PIXEL_ARCMIN)


def unet_features(eps, pixel_arcmin=constants.PIXEL_ARCMIN, pad: int = FEATURE_PAD_PX):
    """The features (:data:`FEATURES`) of whole fields.

    Parameters
    ----------
    eps : array_like, shape (..., ny, nx, 3)
        ``(e1, e2, Δε)`` of one field, or a batch of fields (each its own field: tiles
        cut from one larger field need :func:`unet_features` of that field instead).
    pixel_arcmin : float or array_like, shape (...)
        Pixel side [arcmin], one value or one per field.
    pad : int
        Zero-padding per side of the KS93 inversions [pixels].

    Returns
    -------
    ndarray, shape (..., ny, nx, 5), float32

    Raises
    ------
    ValueError
        For ε of another shape or a pixel scale that is not a positive number.

    Examples
    --------
    >>> from lensviz.simulate import simulate_sample
    >>> eps, kappa = simulate_sample(0)
    >>> unet_features(eps).shape                           # (128, 128, 3) → 5 channels
    (128, 128, 5)
    """
    eps = _check_eps(eps)
    scale = log_scale(pixel_arcmin)
    lead = eps.shape[:-3]
    if scale.shape not in ((), lead):
        raise ValueError(
            f"pixel_arcmin must be one value or one per field {lead}, got shape {scale.shape}"
        )
    filled = eps[..., 2] < constants.EMPTY_PIXEL_SIGMA
    e1_e, e2_e, kappa_e = e_mode_shear(eps[..., 0] * filled, eps[..., 1] * filled, pad)
    out = np.empty(eps.shape[:-1] + (len(FEATURES),), dtype=np.float32)
    out[..., 0] = e1_e
    out[..., 1] = e2_e
    out[..., 2] = pixel_weight(eps[..., 2])
    out[..., 3] = kappa_e
    out[..., 4] = np.reshape(scale, scale.shape + (1, 1))
    return out


def pad_features(features, ny: int, nx: int) -> np.ndarray:
    """Features padded at their far sides to at least ``(ny, nx)`` with empty pixels.

    An empty pixel has no shear, no weight and no κ_E; ``log_scale`` keeps its value,
    which is a property of the field, not of the pixel.

    Parameters
    ----------
    features : array_like, shape (fy, fx, 5)
    ny, nx : int

    Returns
    -------
    ndarray, shape (max(fy, ny), max(fx, nx), 5), float32
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3 or features.shape[-1] != len(FEATURES):
        raise ValueError(f"expected features of shape (ny, nx, 5), got shape {features.shape}")
    fy, fx = features.shape[:2]
    if fy >= ny and fx >= nx:
        return features
    out = np.zeros((max(fy, ny), max(fx, nx), len(FEATURES)), np.float32)
    out[..., 4] = features[0, 0, 4]
    out[:fy, :fx] = features
    return out
