"""NFW halos: lensing profiles, the Duffy et al. 2008 c–M relation, and κ maps.

The profiles are those of a spherical NFW halo (Navarro, Frenk & White 1997) projected
along the line of sight (Wright & Brainerd 2000): the convergence
:func:`nfw_kappa_profile`, its mean inside a radius :func:`nfw_mean_kappa_profile` and
the tangential shear :func:`nfw_shear_profile`, all as functions of ``x = r / r_s``.
:func:`nfw_params` turns ``(M200, z, c200)`` into ``(r_s, κ_s)`` for a source plane,
:func:`concentration_duffy08` gives the mean c200, and :func:`halo_kappa_map` puts
a list of :class:`HaloParams` on a pixel grid (the simulator's halos,
:mod:`lensviz.simulate`).

Units: masses in M☉/h (M200: 200 × the critical density at the halo's redshift),
lengths in Mpc/h (proper), angles in arcmin, map positions in pixels.

References
----------
Navarro, Frenk & White 1997, ApJ 490, 493.
Wright & Brainerd 2000, ApJ 534, 34 (NFW lensing).
Duffy et al. 2008, MNRAS 390, L64 (c–M relation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lensviz import constants as C
from lensviz.cosmology import critical_density, sigma_crit

__all__ = [
    "HaloParams",
    "nfw_kappa_profile",
    "nfw_mean_kappa_profile",
    "nfw_shear_profile",
    "concentration_duffy08",
    "nfw_params",
    "truncation_radius",
    "halo_kappa_map",
]

# === Model constants ===
# Duffy et al. 2008, Table 1, NFW, Δ = 200 (critical), full sample, 0 < z < 2.
DUFFY08_A = 5.71  # normalisation
DUFFY08_B = -0.084  # mass slope
DUFFY08_C = -0.47  # redshift slope
DUFFY08_M_PIVOT = 2e12  # pivot mass [M☉/h]

_SERIES_HALFWIDTH = 1e-3  # |x − 1| below which f(x) uses its Taylor series
_TABLE_X_MIN = 1e-6  # f(x) table for the maps: x from 1e-6 (floor) ...
_TABLE_LN_X_MIN = np.log(_TABLE_X_MIN)
_TABLE_DLN_X = 2e-3  # ... in steps of 0.002 in ln x ...
_TABLE_SIZE = int(np.ceil((np.log(1e5) - _TABLE_LN_X_MIN) / _TABLE_DLN_X)) + 1  # ... to 1e5


@dataclass(frozen=True)
class HaloParams:
    """One drawn halo.

    Attributes
    ----------
    kind : str
        ``"main"``, ``"field"`` or ``"sub"``.
    m200 : float
        Mass inside r200 (200 × critical density) [M☉/h].
    z : float
        Redshift.
    c : float
        Concentration c200 = r200 / r_s (with scatter).
    x, y : float
        Centre in pixel coordinates of the field: column and row, ``(0, 0)`` the centre
        of its first pixel, so the map is indexed ``[round(y), round(x)]``. In the
        simulator, halos in the margin around the field have ``x, y < 0`` or ``≥ npix``.
    q : float
        Axis ratio b/a (1 for round halos).
    angle : float
        Major-axis angle [rad], from the +x (column) axis towards +y (row).
    r_s_arcmin : float
        Scale radius [arcmin].
    kappa_s : float
        NFW convergence scale κ_s for the sources of the configuration.

    Examples
    --------
    >>> halo = HaloParams("main", 1e15, 0.3, 4.0, 63.5, 63.5, 1.0, 0.0, 2.0, 0.4)
    >>> halo.kind, halo.r_s_arcmin
    ('main', 2.0)
    """

    kind: str
    m200: float
    z: float
    c: float
    x: float
    y: float
    q: float
    angle: float
    r_s_arcmin: float
    kappa_s: float


# === NFW lensing (Wright & Brainerd 2000) ===
def _nonnegative(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if np.any(~(x >= 0.0)):
        raise ValueError(f"{name} must be finite and >= 0, got min {np.nanmin(x)!r}")
    return x


def _nfw_f(x: np.ndarray) -> np.ndarray:
    """``f(x)`` of Wright & Brainerd 2000 (κ = 2κ_s f); no input checks."""
    out = np.empty_like(x)
    t = x - 1.0
    near = np.abs(t) < _SERIES_HALFWIDTH
    lo = (x < 1.0) & ~near
    hi = (x > 1.0) & ~near
    tn = t[near]
    out[near] = 1.0 / 3.0 + tn * (-2.0 / 5.0 + tn * (13.0 / 35.0 - tn * (20.0 / 63.0)))
    xl = x[lo]
    sl = np.sqrt(1.0 - xl * xl)
    # artanh(s) = ln((1 + s)/x), written with log1p so that neither x → 0 nor x → 1 cancels
    with np.errstate(divide="ignore"):
        out[lo] = (1.0 - np.log1p((1.0 - xl + sl) / xl) / sl) / (xl * xl - 1.0)
    xh = x[hi]
    sh = np.sqrt(xh * xh - 1.0)
    out[hi] = (1.0 - np.arctan(sh) / sh) / (xh * xh - 1.0)
    return out


def nfw_kappa_profile(x, kappa_s):
    """Convergence of an NFW halo at ``x = r / r_s``.

    .. math::

        \\kappa(x) = 2 \\kappa_s f(x), \\qquad
        f(x) = \\begin{cases}
        \\dfrac{1}{x^2-1}\\left[1 - \\dfrac{2}{\\sqrt{1-x^2}}
            \\operatorname{artanh}\\sqrt{\\dfrac{1-x}{1+x}}\\right] & x < 1 \\\\[1ex]
        1/3 & x = 1 \\\\[1ex]
        \\dfrac{1}{x^2-1}\\left[1 - \\dfrac{2}{\\sqrt{x^2-1}}
            \\arctan\\sqrt{\\dfrac{x-1}{x+1}}\\right] & x > 1
        \\end{cases}

    Implemented with the equivalent ``2 artanh√((1−x)/(1+x)) = ln((1 + √(1−x²))/x)`` and
    ``2 arctan√((x−1)/(x+1)) = arctan√(x²−1)``; for ``|x − 1| < 10⁻³`` the Taylor series
    ``f = 1/3 − 2t/5 + 13t²/35 − 20t³/63`` (t = x − 1) avoids the 0/0 cancellation.

    Parameters
    ----------
    x : array_like
        Radius in units of the scale radius, ``x ≥ 0``.
    kappa_s : float or array_like
        ``κ_s = ρ_s r_s / Σ_crit`` (broadcast against ``x``).

    Returns
    -------
    ndarray
        κ(x); ``inf`` at ``x = 0`` (logarithmic cusp).

    Raises
    ------
    ValueError
        If any ``x`` is negative or NaN.

    References
    ----------
    Wright & Brainerd 2000, ApJ 534, 34, eq. 11.
    """
    x = _nonnegative(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = _nfw_f(x)
    f = np.where(x == 0.0, np.inf, f)
    return (2.0 * np.asarray(kappa_s, dtype=np.float64) * f)[()]


def _nfw_g(x: np.ndarray) -> np.ndarray:
    """``g(x) = ln(x/2) + F(x)``, the enclosed-mass function (no input checks)."""
    out = np.empty_like(x)
    small = x < 0.5
    # x < 0.5: stable form without the ln(x/2) + ln(2/x) cancellation,
    # g = [log1p(−d/2) + d ln(2/x)] / s with s = √(1 − x²), d = 1 − s = x²/(1 + s).
    xs = x[small]
    s = np.sqrt(1.0 - xs * xs)
    d = xs * xs / (1.0 + s)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[small] = (np.log1p(-0.5 * d) + d * np.log(2.0 / xs)) / s
    xb = x[~small]
    # F(x) = 1 − f(x)(x² − 1) reuses the series of f near x = 1.
    out[~small] = np.log(0.5 * xb) + 1.0 - _nfw_f(xb) * (xb * xb - 1.0)
    return out


def nfw_mean_kappa_profile(x, kappa_s):
    """Mean convergence of an NFW halo inside radius ``x = r / r_s``.

    .. math::

        \\bar\\kappa(<x) = \\frac{2}{x^2}\\int_0^x \\kappa(x')\\,x'\\,dx'
        = \\frac{4\\kappa_s}{x^2}\\, g(x), \\qquad
        g(x) = \\ln\\frac{x}{2} + \\begin{cases}
        \\dfrac{2}{\\sqrt{1-x^2}}\\operatorname{artanh}\\sqrt{\\dfrac{1-x}{1+x}} & x < 1\\\\[1ex]
        1 & x = 1\\\\[1ex]
        \\dfrac{2}{\\sqrt{x^2-1}}\\arctan\\sqrt{\\dfrac{x-1}{x+1}} & x > 1
        \\end{cases}

    Parameters
    ----------
    x : array_like
        Radius in units of the scale radius, ``x ≥ 0``.
    kappa_s : float or array_like
        NFW convergence scale.

    Returns
    -------
    ndarray
        κ̄(<x); ``inf`` at ``x = 0``.

    References
    ----------
    Wright & Brainerd 2000, ApJ 534, 34, eqs. 13–14 (M(<x) = 4π κ_s Σ_crit r_s² g(x)).
    """
    x = _nonnegative(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = 4.0 * _nfw_g(x) / (x * x)
    mean = np.where(x == 0.0, np.inf, mean)
    return (np.asarray(kappa_s, dtype=np.float64) * mean)[()]


def nfw_shear_profile(x, kappa_s):
    """Tangential shear of an NFW halo at ``x = r / r_s``.

    .. math::

        \\gamma_t(x) = \\bar\\kappa(<x) - \\kappa(x)
        = \\kappa_s \\left[\\frac{4 g(x)}{x^2} - 2 f(x)\\right]

    It tends to κ_s at the centre and is positive everywhere; in lensviz's sign
    convention ``γt = −(γ1 cos 2φ + γ2 sin 2φ)``.

    Parameters
    ----------
    x : array_like
        Radius in units of the scale radius, ``x > 0``.
    kappa_s : float or array_like
        NFW convergence scale.

    Returns
    -------
    ndarray
        γt(x).

    References
    ----------
    Wright & Brainerd 2000, ApJ 534, 34, eqs. 15–17.
    """
    x = _nonnegative(x)
    if np.any(x == 0.0):
        raise ValueError("x must be > 0 for the shear profile (γt → κ_s only as a limit)")
    ks = np.asarray(kappa_s, dtype=np.float64)
    return (ks * (4.0 * _nfw_g(x) / (x * x) - 2.0 * _nfw_f(x)))[()]


def concentration_duffy08(m200, z):
    """Mean NFW concentration c200 of Duffy et al. 2008 (full sample, Δ = 200 critical).

    .. math::

        c_{200} = 5.71 \\left(\\frac{M_{200}}{2\\times10^{12}\\,h^{-1}M_\\odot}\\right)^{-0.084}
        (1+z)^{-0.47}

    Parameters
    ----------
    m200 : array_like
        Mass [M☉/h], > 0.
    z : array_like
        Redshift, ≥ 0.

    Returns
    -------
    ndarray
        c200 (dimensionless).

    References
    ----------
    Duffy et al. 2008, MNRAS 390, L64, Table 1.
    """
    m200 = np.asarray(m200, dtype=np.float64)
    if np.any(~(m200 > 0)):
        raise ValueError(f"m200 must be > 0, got {m200!r}")
    z = _nonnegative(z, "z")
    return (DUFFY08_A * (m200 / DUFFY08_M_PIVOT) ** DUFFY08_B * (1.0 + z) ** DUFFY08_C)[()]


def nfw_params(m200, z, c, z_source: float = C.Z_SOURCE, omega_m: float = C.OMEGA_M):
    """Scale radius and convergence scale of NFW halos lensing sources at ``z_source``.

    .. math::

        M_{200} = \\frac{4\\pi}{3}\\, 200\\, \\rho_{crit}(z)\\, r_{200}^3,\\quad
        r_s = \\frac{r_{200}}{c},\\quad
        \\delta_c = \\frac{200}{3}\\frac{c^3}{\\ln(1+c) - c/(1+c)},\\quad
        \\kappa_s = \\frac{\\delta_c\\, \\rho_{crit}(z)\\, r_s}{\\Sigma_{crit}(z, z_s)}

    Parameters
    ----------
    m200 : array_like
        Mass [M☉/h].
    z : array_like
        Halo redshift(s), broadcast against ``m200``.
    c : array_like
        Concentration(s) c200.
    z_source : float, optional
        Source redshift; halos at ``z ≥ z_source`` get ``κ_s = 0``.
    omega_m : float, optional
        Matter density today.

    Returns
    -------
    r_s : ndarray
        Scale radius [Mpc/h], proper.
    kappa_s : ndarray
        Convergence scale (dimensionless).

    References
    ----------
    Navarro, Frenk & White 1997; Wright & Brainerd 2000, eqs. 2–3 and 7.
    """
    m200 = np.asarray(m200, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if np.any(~(m200 > 0)) or np.any(~(c > 0)):
        raise ValueError(f"m200 and c must be > 0, got m200={m200!r}, c={c!r}")
    rho_c = critical_density(z, omega_m)
    r200 = (3.0 * m200 / (4.0 * np.pi * 200.0 * rho_c)) ** (1.0 / 3.0)
    r_s = r200 / c
    delta_c = (200.0 / 3.0) * c**3 / (np.log1p(c) - c / (1.0 + c))
    kappa_s = delta_c * rho_c * r_s / sigma_crit(z, z_source, omega_m)
    return r_s[()], kappa_s[()]


# === κ maps ===
@lru_cache(maxsize=1)
def _nfw_f_table() -> tuple[np.ndarray, np.ndarray]:
    """f(x) on a uniform grid in ln x, and its first differences (float32, read-only)."""
    ln_x = _TABLE_LN_X_MIN + _TABLE_DLN_X * np.arange(_TABLE_SIZE)
    f = _nfw_f(np.exp(ln_x))
    tab = f.astype(np.float32)
    diff = np.diff(f, append=f[-1]).astype(np.float32)
    for a in (tab, diff):
        a.setflags(write=False)
    return tab, diff


def _nfw_f_of_x2(x2: np.ndarray) -> np.ndarray:
    """f(x) from x² by linear interpolation in ln x (relative error < 1e-5, float32).

    Below x = 1e-6 the value at 1e-6 is used (only reachable by sub-samples landing on a
    halo centre); beyond the table (x > 1e5, κ < 1e-10 κ_s) the last value is used.
    """
    tab, diff = _nfw_f_table()
    pos = np.log(np.maximum(x2, np.float32(_TABLE_X_MIN**2)))
    pos *= np.float32(0.5 / _TABLE_DLN_X)
    pos -= np.float32(_TABLE_LN_X_MIN / _TABLE_DLN_X)
    np.clip(pos, 0.0, _TABLE_SIZE - 1, out=pos)
    idx = pos.astype(np.int32)
    pos -= idx
    out = diff.take(idx)
    out *= pos
    out += tab.take(idx)
    return out


def truncation_radius(kappa_s: np.ndarray, kappa_min: float) -> np.ndarray:
    """``x = r/r_s`` beyond which an NFW halo has ``κ = 2 κ_s f(x) < κ_min``.

    Parameters
    ----------
    kappa_s : array_like
        NFW convergence scale(s).
    kappa_min : float
        Truncation level.

    Returns
    -------
    ndarray
        The first point of the f(x) table (steps of 0.002 in ln x) beyond the contour,
        so the contour lies inside; ``inf`` where ``kappa_min`` is 0 or the contour
        lies beyond the table (x > 1e5).

    Raises
    ------
    ValueError
        If a ``kappa_s`` is negative or NaN.

    Examples
    --------
    >>> truncation_radius(np.array([0.05]), 1e-4)   # 2 κ_s f(x) ≈ 2 κ_s / x² far out
    array([30.89...])
    """
    kappa_s = _nonnegative(kappa_s, "kappa_s")
    if kappa_min <= 0:
        return np.full(kappa_s.shape, np.inf)
    tab, _ = _nfw_f_table()
    with np.errstate(divide="ignore"):
        target = kappa_min / (2.0 * kappa_s)
    idx = np.searchsorted(-tab.astype(np.float64), -target, side="right")  # first f < target
    x_max = np.exp(_TABLE_LN_X_MIN + _TABLE_DLN_X * idx)
    return np.where(idx >= _TABLE_SIZE, np.inf, x_max)


def halo_kappa_map(
    halos: list[HaloParams],
    size: int,
    pixel_arcmin: float = C.PIXEL_ARCMIN,
    offset_px: float = 0.0,
    kappa_min: float = C.SIM_HALO_KAPPA_MIN,
    core_box_px: int = C.SIM_CORE_BOX_PX,
    core_supersample: int = C.SIM_CORE_SUPERSAMPLE,
) -> np.ndarray:
    """Convergence of a list of halos on a square pixel grid, pixel-averaged near centres.

    With ``(u, v)`` the offsets along the major/minor axis, the stretched radius obeys

    .. math::

        \\left(\\frac{r}{r_s}\\right)^2 = \\frac{q u^2 + v^2/q}{r_s^2}
        = a\\,dx^2 + b\\,dy^2 + c\\,dx\\,dy

    and ``κ = 2 κ_s f(r/r_s)`` (:func:`nfw_kappa_profile`, read from a table of f that
    is linear in ln x, relative error < 1e-5). Pixels within ``±core_box_px`` of a
    centre hold the mean of ``core_supersample²`` sub-samples (the cusp is finite);
    the others are sampled at their centre. Each halo is truncated at its contour
    ``κ = kappa_min``: it is evaluated only in the box that holds that contour
    (half-width ``x_max r_s / √q``) and pixels below it get nothing. The halos are
    added in order.

    Parameters
    ----------
    halos : list of HaloParams
        Centres ``(x, y)`` in pixels of the grid shifted by ``offset_px``.
    size : int
        Pixels per side of the grid.
    pixel_arcmin : float, optional
        Pixel side [arcmin].
    offset_px : float, optional
        Added to every halo's ``x`` and ``y`` (the margin of a canvas around a field).
    kappa_min : float, optional
        Truncation level; 0 keeps every halo on the whole grid.
    core_box_px : int, optional
        Half-width of the pixel-averaged box around each centre.
    core_supersample : int, optional
        Sub-samples per pixel side there; 1 samples pixel centres only.

    Returns
    -------
    ndarray, shape (size, size), float32
        κ, indexed ``[row, column] = [y, x]``.

    Raises
    ------
    ValueError
        Naming the first argument out of range.

    Examples
    --------
    >>> halo = HaloParams("main", 1e15, 0.3, 4.0, 63.5, 63.5, 1.0, 0.0, 2.0, 0.4)
    >>> kappa = halo_kappa_map([halo], 128)
    """
    for name, value, low in (
        ("size", size, 1),
        ("core_box_px", core_box_px, 0),
        ("core_supersample", core_supersample, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not (np.isfinite(pixel_arcmin) and pixel_arcmin > 0):
        raise ValueError(f"pixel_arcmin must be a finite number > 0, got {pixel_arcmin!r}")
    if not (np.isfinite(offset_px) and np.isfinite(kappa_min) and kappa_min >= 0):
        raise ValueError(
            f"offset_px must be finite and kappa_min finite and >= 0, got "
            f"{offset_px!r} and {kappa_min!r}"
        )
    out = np.zeros((size, size), dtype=np.float32)
    if not halos:
        return out
    x, y, q, angle, kappa_s, rs_arcmin = (
        np.array([getattr(hp, f) for hp in halos])
        for f in ("x", "y", "q", "angle", "kappa_s", "r_s_arcmin")
    )
    x = x + offset_px  # grid coordinates
    y = y + offset_px
    rs2 = (rs_arcmin / pixel_arcmin) ** 2
    cos2, sin2, cs = np.cos(angle) ** 2, np.sin(angle) ** 2, np.cos(angle) * np.sin(angle)
    coef = np.stack(
        [
            (q * cos2 + sin2 / q) / rs2,  # a
            (q * sin2 + cos2 / q) / rs2,  # b
            2.0 * cs * (q - 1.0 / q) / rs2,  # c
            2.0 * kappa_s,
        ]
    ).astype(np.float32)

    def kappa_at(dx, dy):
        """κ of each halo at offsets (dx, dy) [px]; dx, dy shaped (h, ...)."""
        shape = (len(halos),) + (1,) * (max(dx.ndim, dy.ndim) - 1)
        a, b, c, amp = (v.reshape(shape) for v in coef)
        x2 = a * dx * dx
        x2 = x2 + b * dy * dy
        x2 += (c * dy) * dx
        out = _nfw_f_of_x2(x2)
        out *= amp
        return out

    box, sub = core_box_px, core_supersample
    if sub > 1:
        # (2 box + 1)² pixels around each centre, sub × sub samples each, averaged
        steps = np.arange(-box, box + 1)
        cx = np.rint(x).astype(int)[:, None] + steps  # (h, B) columns
        cy = np.rint(y).astype(int)[:, None] + steps  # (h, B) rows
        off = (np.arange(sub) + 0.5) / sub - 0.5
        sdx = (cx - x[:, None])[:, None, :, None, None] + off[None, None, None, None, :]
        sdy = (cy - y[:, None])[:, :, None, None, None] + off[None, None, None, :, None]
        avg = kappa_at(sdx.astype(np.float32), sdy.astype(np.float32)).mean(axis=(3, 4))

    kappa_min = float(kappa_min)
    half = truncation_radius(kappa_s, kappa_min) * np.sqrt(rs2 / q)  # [px]
    half = np.maximum(half, box + 1.0)
    grid = np.arange(size, dtype=np.float32)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    for i in range(len(halos)):
        if not kappa_s[i] > 0:
            continue
        x0, x1 = _index_range(x[i], half[i], size)
        y0, y1 = _index_range(y[i], half[i], size)
        if x0 >= x1 or y0 >= y1:
            continue
        a, b, c, amp = coef[:, i]
        dx = grid[x0:x1] - x32[i]
        dy = grid[y0:y1] - y32[i]
        x2 = (a * dx * dx)[None, :] + (b * dy * dy)[:, None]
        x2 += (c * dy)[:, None] * dx[None, :]
        kappa = _nfw_f_of_x2(x2)
        kappa *= amp
        if sub > 1:
            rows, cols = cy[i], cx[i]
            ok_r = (rows >= y0) & (rows < y1)
            ok_c = (cols >= x0) & (cols < x1)
            kappa[np.ix_(rows[ok_r] - y0, cols[ok_c] - x0)] = avg[i][np.ix_(ok_r, ok_c)]
        if kappa_min > 0:
            kappa[kappa < kappa_min] = 0.0
        out[y0:y1, x0:x1] += kappa
    return out


def _index_range(centre: float, half: float, size: int) -> tuple[int, int]:
    """Pixel index range ``[lo, hi)`` within ``half`` of ``centre``, clipped to the canvas."""
    if not np.isfinite(half):
        return 0, size
    lo = max(0, int(np.floor(centre - half)))
    hi = min(size, int(np.ceil(centre + half)) + 1)
    return lo, hi
