"""Radial and regional views of a map: tangential shear profiles and region errors.

Positions are ``(row, column)`` pixel coordinates (``(y, x)``, row 0 at the top), as
everywhere in lensviz (:func:`lensviz.metrics.find_peaks`). The polar angle φ is
measured from +x (columns) towards +y (rows), the convention of the shear components
γ1 (stretch along x) and γ2 (along the x = y diagonal).

:func:`tangential_profile`
    The azimuthal mean of the tangential shear in annuli, beside the convergence
    contrast κ̄(<θ) − κ̄(θ) it equals for any mass distribution (Schneider, Kochanek &
    Wambsganss 2006, *Gravitational Lensing: Strong, Weak and Micro*, eq. 4.24).
:func:`region_masks`
    A disc (the cluster core), a band along the border and the rest of the map.
:func:`region_rmse`
    The root-mean-square error of predictions inside each region.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["region_masks", "region_rmse", "tangential_profile"]


def tangential_profile(
    kappa, gamma1, gamma2, center: tuple[float, float], *, step: float = 2.0, r_max: float = 56.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Mean tangential shear and the convergence contrast in annuli about ``center``.

    .. math::

        \gamma_t = -\left(\gamma_1 \cos 2\phi + \gamma_2 \sin 2\phi\right),
        \qquad
        \langle\gamma_t\rangle(\theta) = \bar\kappa(<\theta) - \bar\kappa(\theta).

    The annuli are ``step`` pixels wide, from ``1.5 step`` to ``r_max``; κ̄(<θ) is the
    mean of κ over the pixels closer than the annulus centre and κ̄(θ) its mean on the
    annulus. ``gamma1, gamma2`` may be the shear or the reduced shear g = γ/(1 − κ)
    (then the identity holds only where κ ≪ 1).

    Parameters
    ----------
    kappa, gamma1, gamma2 : (ny, nx) array
        Convergence and the two shear components on the same pixels.
    center : (float, float)
        ``(row, column)`` of the centre, pixels (need not be an integer).
    step : float
        Width of the annuli, pixels.
    r_max : float
        Outer edge of the last annulus, pixels.

    Returns
    -------
    radius : (n,) ndarray
        Annulus centres, pixels.
    gamma_t : (n,) ndarray
        Mean tangential shear on each annulus.
    contrast : (n,) ndarray
        κ̄(<θ) − κ̄(θ) at each annulus.

    Raises
    ------
    ValueError
        If the maps are not 2-D with one shape, or ``step``/``r_max`` leave no annulus.

    Examples
    --------
    A constant tangential shear of 0.1 around the centre of the map:

    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> phi = np.arctan2(yy - 32.0, xx - 32.0)
    >>> r, gt, _ = tangential_profile(np.zeros((64, 64)), -0.1 * np.cos(2 * phi),
    ...                               -0.1 * np.sin(2 * phi), (32.0, 32.0), r_max=20)
    >>> np.allclose(gt, 0.1)
    True
    """
    k, g1, g2 = (np.asarray(a, dtype=np.float64) for a in (kappa, gamma1, gamma2))
    if k.ndim != 2 or g1.shape != k.shape or g2.shape != k.shape:
        raise ValueError(
            "kappa, gamma1 and gamma2 must be 2-D maps of one shape, got "
            f"{k.shape}, {g1.shape} and {g2.shape}"
        )
    if not (step > 0 and r_max > 2.5 * step):
        raise ValueError(
            f"need step > 0 and r_max > 2.5 step for one annulus, got step "
            f"{step!r} and r_max {r_max!r}"
        )
    yy, xx = np.mgrid[0 : k.shape[0], 0 : k.shape[1]]
    dy, dx = yy - center[0], xx - center[1]
    r = np.hypot(dx, dy)
    phi = np.arctan2(dy, dx)
    gt = -(g1 * np.cos(2 * phi) + g2 * np.sin(2 * phi))
    edges = np.arange(step * 1.5, r_max, step)
    centres = 0.5 * (edges[:-1] + edges[1:])
    gts, contrast = [], []
    for lo, hi, mid in zip(edges[:-1], edges[1:], centres, strict=True):
        ring = (r >= lo) & (r < hi)
        gts.append(gt[ring].mean() if ring.any() else np.nan)
        inner = r < mid
        contrast.append(k[inner].mean() - k[ring].mean() if ring.any() else np.nan)
    return centres, np.asarray(gts), np.asarray(contrast)


def region_masks(
    shape: tuple[int, int], center: tuple[float, float], radius_px: float, border_px: int
) -> dict[str, np.ndarray]:
    """Three disjoint boolean masks that cover the map: core, edge band and the rest.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` of the map.
    center : (float, float)
        ``(row, column)`` of the core's centre, pixels.
    radius_px : float
        The core is the disc ``r < radius_px`` about ``center``.
    border_px : int
        Width of the band along the four edges, pixels; pixels of the core are not in it.

    Returns
    -------
    dict
        ``{"core", "edge band", "rest"}`` → ``(ny, nx)`` bool arrays.

    Raises
    ------
    ValueError
        If ``shape`` is not two positive sizes or ``radius_px``/``border_px`` are negative.

    Examples
    --------
    >>> m = region_masks((10, 10), (5, 5), 0.0, 2)
    >>> int(m["edge band"].sum()), int(m["rest"].sum())
    (64, 36)
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be two positive sizes (ny, nx), got {shape!r}")
    if radius_px < 0 or border_px < 0:
        raise ValueError(
            f"radius_px and border_px must be ≥ 0, got {radius_px!r} and {border_px!r}"
        )
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    core = np.hypot(yy - center[0], xx - center[1]) < radius_px
    band = (np.minimum(yy, shape[0] - 1 - yy) < border_px) | (
        np.minimum(xx, shape[1] - 1 - xx) < border_px
    )
    return {"core": core, "edge band": band & ~core, "rest": ~core & ~band}


def region_rmse(
    truth, preds: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """RMSE of each prediction inside each region and on the whole map.

    Parameters
    ----------
    truth : (ny, nx) array
    preds : mapping of name → (ny, nx) array
    masks : mapping of region → (ny, nx) bool array
        E.g. from :func:`region_masks`.

    Returns
    -------
    dict
        ``{name: {region: rmse, ..., "whole map": rmse}}`` in float64; NaN for an empty
        region.

    Raises
    ------
    ValueError
        If a prediction or mask does not have the truth's shape.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 4))
    >>> core = np.zeros((4, 4), bool); core[:2] = True
    >>> region_rmse(t, {"p": np.where(core, 2.0, 0.0)}, {"core": core, "rest": ~core})
    {'p': {'core': 2.0, 'rest': 0.0, 'whole map': 1.4142135623730951}}
    """
    t = np.asarray(truth, dtype=np.float64)
    out = {}
    for name, p in preds.items():
        p = np.asarray(p, dtype=np.float64)
        if p.shape != t.shape:
            raise ValueError(
                f"prediction {name!r} has shape {p.shape}; expected the truth's {t.shape}"
            )
        err2 = (p - t) ** 2
        row = {}
        for region, m in masks.items():
            m = np.asarray(m, dtype=bool)
            if m.shape != t.shape:
                raise ValueError(f"mask {region!r} has shape {m.shape}; expected {t.shape}")
            row[region] = float(np.sqrt(err2[m].mean())) if m.any() else float("nan")
        row["whole map"] = float(np.sqrt(err2.mean()))
        out[name] = row
    return out
