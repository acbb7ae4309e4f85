"""Null tests of a real mass map, which has no true κ: B modes and noise realisations.

B modes (:func:`rotate_45`)
    Rotating every galaxy by 45° multiplies its complex ellipticity ``e = e1 + i e2`` by
    ``exp(2i · 45°) = i``: ``(e1, e2) → (−e2, e1)``. KS93 (lenspack's convention,
    :mod:`lensviz.inversion`) is ``κ̂_E + i κ̂_B = D̄(k) (ê1 + i ê2)`` with
    ``D = (k1² − k2² + 2i k1 k2)/k²``, so the rotated data give ``κ_E' + i κ_B' =
    i (κ_E + i κ_B)``: ``κ_E' = −κ_B`` and ``κ_B' = κ_E``. A reconstruction of the
    rotated data is therefore a map of the B modes, which gravity does not make: it
    shows the noise and the systematics alone. The E/B ratio (:func:`e_over_b`) is the
    rms of the map over that of the map made from the rotated data, both inside the
    footprint and about their mean there (a constant is the unmeasurable mass sheet).
Noise maps (:func:`randomise_orientations`, :func:`noise_realisations`)
    Rotating each galaxy by an independent random angle destroys the lensing signal and
    keeps the shape noise. With binned data the galaxies are gone; the standard
    approach, taken here, rotates each *pixel's* mean ellipticity by a random angle
    ``φ ~ U[0, π)`` (``e → e · exp(2iφ)``), which keeps ``|ē|`` per pixel: exact for the
    noise of a pixel, and it keeps the lensing signal's small share of ``|ē|`` (≈ 0.02
    against ≈ 0.28/√N) as noise, so the noise is overestimated by well under 1 %.
    Reconstructing many such realisations gives each pixel's noise rms.
Peaks (:func:`peak_significance`)
    Local maxima of the map inside the footprint (away from its edge), each with
    ``S/N = height / noise rms at that pixel`` and a false-alarm rate: the share of
    noise realisations whose highest peak in the same region is at least as high (a
    global test: it counts peaks anywhere, so it includes the look-elsewhere effect).

Every function takes a *reconstruction* ``eps (N, ny, nx, 3) -> kappa (N, ny, nx)``:
:func:`lensviz.fields.ks93_field`, :func:`lensviz.fields.wiener_field` or the UNet's
:func:`lensviz.nn.fields.predict_field` with their settings bound.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np
from scipy import ndimage

from lensviz.metrics import local_maxima

__all__ = [
    "Reconstruction",
    "Peak",
    "rotate_45",
    "randomise_orientations",
    "footprint_rms",
    "e_over_b",
    "B_OUTLIER_SIGMA",
    "GAUSSIAN_OUTLIER_SHARE",
    "b_outlier_share",
    "peak_region",
    "noise_realisations",
    "peak_significance",
    "DETECTION_FALSE_ALARM",
    "wilson_interval",
    "with_errorbars",
    "null_tests",
]

#: A reconstruction method: ``eps (N, ny, nx, 3) -> kappa (N, ny, nx)``.
Reconstruction = Callable[[np.ndarray], np.ndarray]
#: A peak is a detection when at most this share of the noise maps reach its height
#: anywhere in the field (a global test, fair to non-linear methods).
DETECTION_FALSE_ALARM = 0.05
#: A B-map pixel this many noise rms from zero is an outlier (:func:`b_outlier_share`).
B_OUTLIER_SIGMA = 3.0
#: The share of a Gaussian noise map's pixels beyond ±B_OUTLIER_SIGMA: erfc(3/√2) = 0.27 %.
GAUSSIAN_OUTLIER_SHARE = math.erfc(B_OUTLIER_SIGMA / math.sqrt(2.0))


def _eps(eps) -> np.ndarray:
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim < 3 or eps.shape[-1] != 3:
        raise ValueError(f"expected ε of shape (..., ny, nx, 3), got shape {eps.shape}")
    return eps


def rotate_45(eps) -> np.ndarray:
    """Every ellipticity rotated by 45°: ``(e1, e2, Δε) → (−e2, e1, Δε)``; E becomes B.

    Examples
    --------
    >>> from lensviz.inversion import ks93
    >>> rng = np.random.default_rng(0)
    >>> eps = rng.normal(0, 0.1, (64, 64, 3)).astype(np.float32)
    >>> e, b = ks93(eps[..., 0], eps[..., 1])
    >>> rot = rotate_45(eps)
    >>> e_rot, b_rot = ks93(rot[..., 0], rot[..., 1])
    >>> bool(np.allclose(e_rot, -b, atol=1e-6) and np.allclose(b_rot, e, atol=1e-6))
    True
    """
    eps = _eps(eps)
    out = eps.copy()
    out[..., 0] = -eps[..., 1]
    out[..., 1] = eps[..., 0]
    return out


def randomise_orientations(eps, rng: np.random.Generator) -> np.ndarray:
    """Each pixel's mean ellipticity rotated by its own random angle (a noise realisation).

    ``e → e · exp(2iφ)`` with ``φ ~ U[0, π)`` drawn per pixel; Δε and the empty pixels
    are kept.

    Parameters
    ----------
    eps : array_like, shape (..., ny, nx, 3)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, same shape, float32
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    eps = _eps(eps)
    angle = 2.0 * np.pi * rng.random(eps.shape[:-1])  # 2φ, φ uniform in [0, π)
    c, s = np.cos(angle), np.sin(angle)
    out = eps.copy()
    out[..., 0] = c * eps[..., 0] - s * eps[..., 1]
    out[..., 1] = s * eps[..., 0] + c * eps[..., 1]
    return out


def footprint_rms(kappa, footprint) -> float:
    """The rms of a map inside a footprint, about its mean there."""
    values = np.asarray(kappa, dtype=np.float64)[np.asarray(footprint, dtype=bool)]
    if values.size == 0:
        raise ValueError("the footprint holds no pixel")
    return float(np.sqrt(np.mean((values - values.mean()) ** 2)))


def e_over_b(kappa, kappa_rotated, footprint) -> float:
    """The E/B ratio: rms of the map over that of the map of the 45°-rotated data."""
    return footprint_rms(kappa, footprint) / footprint_rms(kappa_rotated, footprint)


def b_outlier_share(kappa_b, noise_rms, footprint, threshold: float = B_OUTLIER_SIGMA) -> float:
    """Share of the footprint where the B map lies beyond ±``threshold`` noise rms.

    A method whose B map (its map of the 45°-rotated data) is noise puts
    :data:`GAUSSIAN_OUTLIER_SHARE` (0.27 %) of the pixels beyond ±3 noise rms; a larger
    share means it draws structure from shear patterns that gravity does not make.

    Parameters
    ----------
    kappa_b : array_like, shape (ny, nx)
    noise_rms : array_like, shape (ny, nx)
        The method's noise rms per pixel (``null_tests(...)["noise_rms"]``).
    footprint : array_like of bool, shape (ny, nx)
    threshold : float

    Examples
    --------
    >>> b = np.random.default_rng(0).normal(size=(1024, 1024))
    >>> share = b_outlier_share(b, np.ones_like(b), np.ones(b.shape, bool))
    >>> bool(abs(share - GAUSSIAN_OUTLIER_SHARE) < 3 * np.sqrt(0.0027 / 1024**2))
    True
    """
    footprint = np.asarray(footprint, dtype=bool)
    rms = np.asarray(noise_rms, dtype=np.float64)[footprint]
    b = np.asarray(kappa_b, dtype=np.float64)[footprint]
    good = rms > 0
    return float(np.mean(np.abs(b[good]) > threshold * rms[good])) if good.any() else 0.0


def peak_region(footprint, edge_px: int = 4) -> np.ndarray:
    """Where peaks are counted: the footprint eroded by ``edge_px`` pixels.

    Near the footprint's edge and its holes every reconstruction extrapolates, and
    edge artefacts would pass for peaks.
    """
    footprint = np.asarray(footprint, dtype=bool)
    if edge_px <= 0:
        return footprint.copy()
    return ndimage.binary_erosion(footprint, iterations=int(edge_px), border_value=0)


def noise_realisations(
    reconstruct: Reconstruction,
    eps,
    n: int,
    seed: int = 0,
    batch: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Reconstructions of ``n`` noise realisations of one field (:func:`randomise_orientations`).

    Parameters
    ----------
    reconstruct : callable
        ``eps (B, ny, nx, 3) -> kappa (B, ny, nx)``.
    eps : array_like, shape (ny, nx, 3)
    n : int
        Realisations.
    seed : int, optional
        Realisation ``i`` uses ``np.random.default_rng([seed, i])``, so any subset can be
        recomputed.
    batch : int, optional
        Realisations per call of ``reconstruct``.
    on_batch : callable, optional
        Called with the number of realisations done after each batch (progress).

    Returns
    -------
    ndarray, shape (n, ny, nx), float32
    """
    eps = _eps(eps)
    if eps.ndim != 3:
        raise ValueError(f"expected one field (ny, nx, 3), got shape {eps.shape}")
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer ≥ 2, got {n!r}")
    out = np.empty((int(n), *eps.shape[:2]), np.float32)
    for i in range(0, int(n), batch):
        k = min(batch, int(n) - i)
        fake = np.stack(
            [randomise_orientations(eps, np.random.default_rng([seed, i + j])) for j in range(k)]
        )
        out[i : i + k] = reconstruct(fake)
        if on_batch is not None:
            on_batch(i + k)
    return out


@dataclasses.dataclass(frozen=True)
class Peak:
    """A peak of a real map and how it stands above the noise.

    Attributes
    ----------
    y, x : int
        Pixel (row, column).
    height : float
        κ at the peak.
    noise_rms : float
        The rms of the noise maps at that pixel.
    snr : float
        ``height / noise_rms``.
    false_alarm : float
        Share of noise maps whose highest peak in the same region is at least ``height``.
    n_noise : int
        Number of noise maps the false-alarm rate was counted on.
    std, hw95 : float or None
        The calibrated error bar of the height (half-widths of the 68.3 % and 95.4 %
        bands, :mod:`lensviz.errorbars`), when the reconstruction has one
        (:func:`with_errorbars`).
    """

    y: int
    x: int
    height: float
    noise_rms: float
    snr: float
    false_alarm: float
    n_noise: int = 0
    std: float | None = None
    hw95: float | None = None

    @property
    def false_alarm_interval(self) -> tuple[float, float]:
        """The 68.3 % Wilson interval of the false-alarm rate, a binomial share of
        :attr:`n_noise` maps (:func:`wilson_interval`)."""
        return wilson_interval(round(self.false_alarm * self.n_noise), self.n_noise)

    @property
    def detected(self) -> bool:
        """A detection: at most :data:`DETECTION_FALSE_ALARM` of the noise maps reach it."""
        return self.false_alarm <= DETECTION_FALSE_ALARM


def wilson_interval(k: int, n: int, z: float = 1.0) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n`` (``z = 1``: 68.3 %).

    .. math::

        \\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Unlike ``p̂ ± √(p̂(1−p̂)/n)`` it does not collapse to zero width at ``k = 0``.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(0, 200)]
    [0.0, 0.005]
    >>> [round(v, 3) for v in wilson_interval(10, 200)]
    [0.037, 0.068]
    """
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def with_errorbars(peaks: list[Peak], std, hw95) -> list[Peak]:
    """The peaks with their heights' calibrated error bars read off the maps."""
    std = np.asarray(std)
    hw95 = np.asarray(hw95)
    return [
        dataclasses.replace(p, std=float(std[p.y, p.x]), hw95=float(hw95[p.y, p.x])) for p in peaks
    ]


def peak_significance(
    kappa, noise, footprint, edge_px: int = 4, n_peaks: int | None = None
) -> list[Peak]:
    """The peaks of a map with their S/N against noise maps, most significant first.

    Parameters
    ----------
    kappa : array_like, shape (ny, nx)
        The reconstruction of the real data.
    noise : array_like, shape (n, ny, nx)
        The same reconstruction of noise realisations (:func:`noise_realisations`).
    footprint : array_like of bool, shape (ny, nx)
        Pixels with data.
    edge_px : int, optional
        Peaks closer than this to the footprint's edge are not counted (:func:`peak_region`).
    n_peaks : int, optional
        Keep only the most significant ones.

    Returns
    -------
    list of Peak
        Positive peaks (height > 0), by decreasing S/N.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> noise = rng.normal(0, 0.01, (200, 64, 64))
    >>> kappa = rng.normal(0, 0.01, (64, 64)); kappa[30, 40] = 0.08
    >>> top = peak_significance(kappa, noise, np.ones((64, 64), bool))[0]
    >>> (top.y, top.x, round(top.snr), top.false_alarm)
    (30, 40, 8, 0.0)
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.ndim != 3 or noise.shape[1:] != kappa.shape:
        raise ValueError(f"noise maps {noise.shape} do not fit the map {kappa.shape}")
    region = peak_region(footprint, edge_px)
    rms = noise.std(axis=0)
    noise_top = np.array([m[local_maxima(m) & region].max(initial=-np.inf) for m in noise])
    found = np.argwhere(local_maxima(kappa) & region & (kappa > 0))
    peaks = []
    for y, x in found:
        height = float(kappa[y, x])
        sigma = float(rms[y, x])
        peaks.append(
            Peak(
                int(y),
                int(x),
                height,
                sigma,
                height / sigma if sigma > 0 else float("inf"),
                float(np.mean(noise_top >= height)),
                len(noise),
            )
        )
    peaks.sort(key=lambda p: -p.snr)
    return peaks if n_peaks is None else peaks[: int(n_peaks)]


def null_tests(
    methods: Mapping[str, Reconstruction],
    eps,
    footprint,
    n_noise: int = 100,
    seed: int = 0,
    edge_px: int = 4,
    interior_px: int = 8,
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, dict]:
    """Both null tests for several reconstruction methods of one real field.

    Parameters
    ----------
    methods : mapping of str to callable
        Name → reconstruction ``eps (N, ny, nx, 3) -> kappa (N, ny, nx)``.
    eps : array_like, shape (ny, nx, 3)
    footprint : array_like of bool, shape (ny, nx)
    n_noise : int, optional
        Noise realisations per method (the same ones for every method).
    seed, edge_px : int, optional
        See :func:`noise_realisations` and :func:`peak_significance`.
    interior_px : int, optional
        The interior of the footprint, for a second E/B away from its edges
        (:func:`peak_region`).
    on_progress : callable, optional
        Called with the fraction of the work done, from 0 to 1 (a progress bar).

    Returns
    -------
    dict
        Per method: ``kappa`` and ``kappa_b`` (the map of the 45°-rotated data),
        ``e_rms``, ``b_rms``, ``e_over_b``, ``e_over_b_interior``, ``b_outlier_share``
        (:func:`b_outlier_share` of the B map), ``e_over_b_null``
        (mean and standard deviation of the ratio of the rms of two independent noise
        maps: the E/B of a field without signal, since the 45°-rotated noise is just
        another noise realisation), ``noise_rms`` (a map) and ``peaks`` (list of
        :class:`Peak`).
    """
    eps = _eps(eps)
    footprint = np.asarray(footprint, dtype=bool)
    if footprint.shape != eps.shape[:2]:
        raise ValueError(f"footprint {footprint.shape} does not fit the field {eps.shape[:2]}")
    out = {}
    for m, (name, reconstruct) in enumerate(methods.items()):
        kappa, kappa_b = reconstruct(np.stack([eps, rotate_45(eps)]))

        def on_batch(done, m=m):
            if on_progress is not None:
                on_progress((m + done / n_noise) / len(methods))

        noise = noise_realisations(reconstruct, eps, n_noise, seed, on_batch=on_batch)
        null = [e_over_b(a, b, footprint) for a, b in zip(noise[0::2], noise[1::2], strict=False)]
        noise_rms = noise.std(axis=0).astype(np.float32)
        out[name] = {
            "kappa": kappa,
            "kappa_b": kappa_b,
            "e_rms": footprint_rms(kappa, footprint),
            "b_rms": footprint_rms(kappa_b, footprint),
            "e_over_b": e_over_b(kappa, kappa_b, footprint),
            "e_over_b_interior": e_over_b(kappa, kappa_b, peak_region(footprint, interior_px)),
            "b_outlier_share": b_outlier_share(kappa_b, noise_rms, footprint),
            "e_over_b_null": (float(np.mean(null)), float(np.std(null))),
            "noise_rms": noise_rms,
            "peaks": peak_significance(kappa, noise, footprint, edge_px),
        }
    return out
