"""Survey depth read from the data: how much signal each pixel holds.

Everything here is computed from the Δε channel alone, so it works the same on simulated,
challenge and real data:

* :func:`pixel_noise_var` — the mean per-component noise variance of the pixels that hold
  galaxies (the white-noise power of the KS93 map);
* :func:`masked_fraction` — the share of empty (or masked) pixels;
* :func:`effective_n_gal` — the galaxy density that this noise implies,
  ``n_gal = σ_e² / (⟨Δε²⟩ A_pix)``;
* :func:`ks93_sigma` — the one rule for the KS93 smoothing σ at that depth, used by the
  CLI, the model cards and the app alike;
* :class:`TrainingDomain` and :func:`domain_warnings` — whether a sample lies inside
  what a model was trained on, so that a UNet is never shown silently wrong.

Conventions as in :mod:`lensviz.constants`: an empty pixel has ``e1 = e2 = 0`` and
``Δε = EMPTY_PIXEL_SIGMA``; a noise-free pixel has ``Δε = 0``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lensviz import constants
from lensviz.wiener import noise_power

__all__ = [
    "pixel_noise_var",
    "masked_fraction",
    "effective_n_gal",
    "depth_label",
    "ks93_sigma",
    "KS93_SIGMA_RULE",
    "TrainingDomain",
    "LEGACY_DOMAIN",
    "domain_issues",
    "domain_warnings",
    "DomainTally",
    "measure_domain",
    "training_weight",
]

#: The KS93 smoothing rule: the Gaussian σ [pixels] that gave the lowest mean RMSE against
#: galaxy density n_gal [arcmin⁻²], measured on calibration seeds with
#: :func:`lensviz.evaluation.choose_ks93_sigma` (200 maps per depth from seed 500 000, the
#: default simulator: the central 128² of a 384² canvas; no padding; σ on the grid 0.25,
#: 0.5, 0.75, 1, 1.5, 2, …, 10 px). Between the nodes σ is interpolated linearly in
#: log n_gal; beyond them it is held at the end values; ``inf`` is the noise-free value
#: (σ = 0.25 and 0 tie there: 0.00797 against 0.00797).
KS93_SIGMA_RULE: dict[float, float] = {
    3.0: 8.0,
    10.0: 6.0,
    30.0: 4.0,
    100.0: 2.0,
    300.0: 1.0,
    1000.0: 0.75,
    3000.0: 0.5,
    math.inf: 0.25,
}

# Expected squared error of a good reconstruction against the pixel noise variance N:
# E² ≈ R0² + C·√N (fitted by eye to the best-smoothed KS93 RMSE at n_gal 10, 30, 100 and
# no noise on the isolated 128² field). Used only to balance depths in training.
_R0_SQ = 0.0066**2
_C_ERR = 3.6e-3
_LSST_NOISE_VAR = (constants.SIGMA_E**2) / (constants.N_GAL_ARCMIN2 * constants.PIXEL_ARCMIN**2)


_LAMBDA_MIN = 1e-3  # galaxies per pixel: the floor of the zero-truncated Poisson solve
_NEWTON_STEPS = 40


def _delta_e(delta_e) -> np.ndarray:
    d = np.asarray(delta_e, dtype=np.float64)
    if d.ndim < 2:
        raise ValueError(f"expected Δε maps of shape (..., ny, nx), got shape {d.shape}")
    return d


def pixel_noise_var(delta_e) -> np.ndarray:
    """Mean per-component noise variance ⟨Δε²⟩ over the pixels that hold galaxies.

    Parameters
    ----------
    delta_e : array_like, shape (..., ny, nx)

    Returns
    -------
    ndarray, shape (...)
        0 for noise-free data, and 0 for a map with no galaxy at all.
    """
    return noise_power(_delta_e(delta_e))


def masked_fraction(delta_e) -> np.ndarray:
    """Share of empty or masked pixels (``Δε ≥ EMPTY_PIXEL_SIGMA``), shape ``(...)``."""
    d = _delta_e(delta_e)
    return (d >= constants.EMPTY_PIXEL_SIGMA).mean(axis=(-2, -1))


def effective_n_gal(
    delta_e, sigma_e: float = constants.SIGMA_E, pixel_arcmin: float = constants.PIXEL_ARCMIN
) -> np.ndarray:
    """Galaxy density n_gal [arcmin⁻²] implied by Δε; ``inf`` for noise-free maps.

    A pixel with N galaxies has Δε = σ_e/√N, so it holds N = (σ_e/Δε)². Empty and masked
    pixels look alike (Δε = ``EMPTY_PIXEL_SIGMA``), so only the filled ones are used: for
    Poisson counts of mean λ = n_gal A_pix their mean N is that of a zero-truncated
    Poisson law,

    .. math::

        \\langle N \\rangle_{N \\ge 1} = \\frac{\\lambda}{1 - e^{-\\lambda}},

    which is solved for λ (Newton's method, from above). Masks that remove pixels
    whatever their count leave the estimate unbiased; at 30 gal/arcmin² it returns 30
    (the mean of 1/Δε² alone would say 25).

    Parameters
    ----------
    delta_e : array_like, shape (..., ny, nx)
    sigma_e : float
        Intrinsic ellipticity dispersion per component that Δε was computed with.
    pixel_arcmin : float
        Pixel side [arcmin].

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(30 * 0.25, (128, 128))
    >>> d = np.where(counts > 0, 0.26 / np.sqrt(np.maximum(counts, 1)), 1.0)
    >>> round(float(effective_n_gal(d)))
    30
    """
    d = _delta_e(delta_e)
    noise_free = pixel_noise_var(d) == 0
    filled = (d > 0) & (d < constants.EMPTY_PIXEL_SIGMA)
    n_filled = filled.sum(axis=(-2, -1))
    per_pixel = np.where(filled, (sigma_e / np.where(filled, d, 1.0)) ** 2, 0.0)
    mean = per_pixel.sum(axis=(-2, -1)) / np.maximum(n_filled, 1)
    lam = np.maximum(mean, _LAMBDA_MIN)  # λ/(1 − e^−λ) ≥ λ: start above the root
    for _ in range(_NEWTON_STEPS):
        e = np.exp(-lam)
        f = lam / (1.0 - e) - mean
        df = (1.0 - e - lam * e) / (1.0 - e) ** 2
        lam = np.maximum(lam - f / df, _LAMBDA_MIN)
    return np.where(noise_free, np.inf, lam / pixel_arcmin**2)


def depth_label(n_gal: float) -> str:
    """Human label of a depth: ``'30 gal/arcmin²'`` or ``'no shape noise'``."""
    n_gal = float(n_gal)
    if math.isinf(n_gal):
        return "no shape noise"
    return f"{n_gal:.3g} gal/arcmin²"


def ks93_sigma(
    delta_e, sigma_e: float = constants.SIGMA_E, pixel_arcmin: float = constants.PIXEL_ARCMIN
) -> float:
    """The KS93 smoothing σ [pixels] for data of this depth (:data:`KS93_SIGMA_RULE`).

    The rule was measured on 0.5′ pixels; on pixels of another side it keeps the same σ
    on the sky, ``σ_px = σ_rule · 0.5′ / pixel_arcmin``: at a given galaxy density the
    noise per arcmin² and the signal's structure in arcmin are the pixels' own business.

    Parameters
    ----------
    delta_e : array_like, shape (..., ny, nx)
        Δε of one sample or of a set; a set is treated as one depth (its mean ⟨Δε²⟩).
    sigma_e : float
        Intrinsic ellipticity dispersion per component.
    pixel_arcmin : float
        Pixel side [arcmin].

    Returns
    -------
    float
        Rounded to two significant digits.

    Examples
    --------
    >>> def delta_e(pixel_arcmin, n_gal=30.0):     # Δε of Poisson counts at this depth
    ...     n = np.random.default_rng(0).poisson(n_gal * pixel_arcmin**2, (128, 128))
    ...     return np.where(n > 0, 0.26 / np.sqrt(np.maximum(n, 1)), 1.0)
    >>> ks93_sigma(delta_e(0.5)), ks93_sigma(delta_e(0.25), pixel_arcmin=0.25)  # 2′ on the sky
    (4.0, 8.0)
    """
    d = _delta_e(delta_e)
    n = float(effective_n_gal(d.reshape(-1, d.shape[-1]), sigma_e, pixel_arcmin))
    nodes = np.array([k for k in KS93_SIGMA_RULE if math.isfinite(k)])
    values = np.array([KS93_SIGMA_RULE[k] for k in nodes])
    if math.isinf(n):
        sigma = float(KS93_SIGMA_RULE[math.inf])
    else:
        sigma = float(np.interp(np.log(n), np.log(nodes), values))
    sigma *= constants.PIXEL_ARCMIN / pixel_arcmin
    return float(f"{sigma:.2g}")  # two significant digits: finer is below the RMSE's grain


@dataclasses.dataclass(frozen=True)
class TrainingDomain:
    """What a model saw in training; samples outside it get a warning.

    Attributes
    ----------
    n_gal_range : tuple of float
        Galaxy densities [arcmin⁻²] of the training samples (``inf`` allowed as the upper
        end when noise-free samples were included).
    noise_free : bool
        Noise-free samples (Δε = 0) were part of training.
    max_masked_fraction : float
        Largest share of empty or masked pixels seen in training.
    max_abs_e : float
        Largest |e1|, |e2| a pixel had in training.
    sigma_e : float
        Intrinsic ellipticity dispersion used to turn Δε into n_gal.
    pixel_arcmin_range : tuple of float
        Pixel sides [arcmin] of the training maps, from the smallest to the largest
        (``(0.5, 0.5)`` for a model trained at the challenge's scale only).
    """

    n_gal_range: tuple[float, float] = (3.0, 1000.0)
    noise_free: bool = True
    max_masked_fraction: float = 0.5
    max_abs_e: float = 1.0
    sigma_e: float = constants.SIGMA_E
    pixel_arcmin_range: tuple[float, float] = (constants.PIXEL_ARCMIN, constants.PIXEL_ARCMIN)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["n_gal_range"] = [float(x) for x in self.n_gal_range]
        d["pixel_arcmin_range"] = [float(x) for x in self.pixel_arcmin_range]
        return d

    @classmethod
    def from_dict(cls, values: dict) -> TrainingDomain:
        """Inverse of :meth:`to_dict`; a model file written before pixel scales were
        recorded holds one ``pixel_arcmin``, its only scale."""
        values = dict(values)
        values["n_gal_range"] = tuple(float(x) for x in values.get("n_gal_range", (3, 1000)))
        if "pixel_arcmin" in values:
            p = float(values.pop("pixel_arcmin"))
            values.setdefault("pixel_arcmin_range", (p, p))
        values["pixel_arcmin_range"] = tuple(
            float(x) for x in values.get("pixel_arcmin_range", (0.5, 0.5))
        )
        return cls(**values)


#: The domain of a model trained before depth was recorded: LSST depth (30 per arcmin²)
#: only, give or take the scatter of the estimate over a 128² map.
LEGACY_DOMAIN = TrainingDomain(
    n_gal_range=(25.0, 35.0), noise_free=False, max_masked_fraction=0.01, max_abs_e=1.0
)


def measure_domain(
    eps, sigma_e: float = constants.SIGMA_E, pixel_arcmin=constants.PIXEL_ARCMIN
) -> TrainingDomain:
    """The :class:`TrainingDomain` spanned by a set of samples (e.g. a training set).

    Parameters
    ----------
    eps : array_like, shape (N, ny, nx, 3)
    sigma_e : float
    pixel_arcmin : float or array_like, shape (N,)
        Pixel side of the samples [arcmin], one value or one per sample.

    Returns
    -------
    TrainingDomain
        n_gal from the least to the most deep noisy sample, whether noise-free samples
        occur, the largest masked fraction and the largest |e1|, |e2|.

    Raises
    ------
    ValueError
        For an empty set or a bad shape.
    """
    eps = np.asarray(eps)
    if eps.ndim != 4 or eps.shape[-1] != 3 or len(eps) == 0:
        raise ValueError(f"expected samples of shape (N, ny, nx, 3), N >= 1, got {eps.shape}")
    scale = np.broadcast_to(np.asarray(pixel_arcmin, np.float64), eps.shape[:1])
    n = effective_n_gal(eps[..., 2], sigma_e, 1.0) / scale**2
    finite = n[np.isfinite(n)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (math.inf, math.inf)
    return TrainingDomain(
        n_gal_range=(lo, hi),
        noise_free=bool(np.isinf(n).any()),
        max_masked_fraction=float(masked_fraction(eps[..., 2]).max()),
        max_abs_e=float(np.abs(eps[..., :2]).max()),
        sigma_e=sigma_e,
        pixel_arcmin_range=(float(scale.min()), float(scale.max())),
    )


def domain_issues(
    eps, domain: TrainingDomain, pixel_arcmin: float = constants.PIXEL_ARCMIN
) -> dict[str, str]:
    """Why a sample lies outside a model's training domain, by kind.

    Parameters
    ----------
    eps : array_like, shape (ny, nx, 3)
        One sample ``(e1, e2, Δε)``.
    domain : TrainingDomain
    pixel_arcmin : float
        The sample's pixel side [arcmin].

    Returns
    -------
    dict
        ``{"scale" | "noise" | "masked" | "values": sentence}``; empty when the sample
        is inside.
    """
    eps = np.asarray(eps)
    if eps.ndim != 3 or eps.shape[-1] != 3:
        raise ValueError(f"expected one sample of shape (ny, nx, 3), got shape {eps.shape}")
    out = {}
    p_lo, p_hi = domain.pixel_arcmin_range
    if not p_lo * (1 - 1e-6) <= pixel_arcmin <= p_hi * (1 + 1e-6):
        span = f"{p_lo:.3g}′" if p_lo == p_hi else f"{p_lo:.3g}′–{p_hi:.3g}′"
        out["scale"] = (
            f"its pixels are {pixel_arcmin:.3g}′ wide; the model was trained on {span} pixels"
        )
    n = float(effective_n_gal(eps[..., 2], domain.sigma_e, pixel_arcmin))
    lo, hi = domain.n_gal_range
    if math.isinf(n):
        if not domain.noise_free:
            out["noise"] = (
                "the sample has no shape noise (Δε = 0); the model was trained on "
                f"noisy data only ({lo:.3g}–{hi:.3g} gal/arcmin²)"
            )
    elif not lo <= n <= hi:
        out["noise"] = (
            f"the noise in Δε corresponds to {n:.3g} gal/arcmin², outside the "
            f"{lo:.3g}–{hi:.3g} the model was trained on"
        )
    frac = float(masked_fraction(eps[..., 2]))
    if frac > domain.max_masked_fraction:
        out["masked"] = (
            f"{frac:.0%} of the pixels are empty or masked; the model saw at most "
            f"{domain.max_masked_fraction:.0%}"
        )
    e_max = float(np.max(np.abs(eps[..., :2]))) if eps.size else 0.0
    if e_max > domain.max_abs_e:
        out["values"] = (
            f"|ε| reaches {e_max:.3g}, beyond the {domain.max_abs_e:.3g} seen in "
            "training: check the units and the sign convention"
        )
    return out


def domain_warnings(
    eps, domain: TrainingDomain, pixel_arcmin: float = constants.PIXEL_ARCMIN
) -> list[str]:
    """The sentences of :func:`domain_issues`, in the order scale, noise, mask, values."""
    return list(domain_issues(eps, domain, pixel_arcmin).values())


class DomainTally:
    """Counts the samples of a stream that lie outside a training domain (batch commands).

    Examples
    --------
    >>> tally = DomainTally(TrainingDomain())
    >>> tally.add(np.zeros((2, 8, 8, 3)))      # two noise-free samples: inside
    >>> tally.warnings()
    []
    """

    def __init__(self, domain: TrainingDomain, pixel_arcmin: float = constants.PIXEL_ARCMIN):
        self.domain = domain
        self.pixel_arcmin = float(pixel_arcmin)
        self.n = 0
        self.n_outside = 0
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def add(self, eps) -> None:
        """Check every sample of a batch ``(N, ny, nx, 3)``."""
        for sample in np.asarray(eps):
            self.n += 1
            issues = domain_issues(sample, self.domain, self.pixel_arcmin)
            self.n_outside += bool(issues)
            for kind, message in issues.items():
                self.counts[kind] = self.counts.get(kind, 0) + 1
                self.examples.setdefault(kind, message)

    def warnings(self) -> list[str]:
        """One line per kind of problem: how many samples, and the first example."""
        return [
            f"{count} of {self.n} samples lie outside the UNet's training domain "
            f"({kind}), e.g. {self.examples[kind]}"
            for kind, count in self.counts.items()
        ]


def training_weight(noise_var):
    """Per-sample loss weight that balances depths in training.

    .. math::

        w = \\frac{R_0^2 + C\\sqrt{N_\\mathrm{LSST}}}{R_0^2 + C\\sqrt{N}}

    the inverse of the expected squared error of a good reconstruction at noise variance
    N (fitted to the best-smoothed KS93 RMSE: R0 = 0.0066 with no noise, C = 3.6e-3),
    normalised to 1 at LSST depth. Without it the noisiest maps dominate the loss and the
    network neglects the high signal-to-noise regime: w ≈ 9 for noise-free maps, 0.4 at
    3 gal/arcmin².

    Works on numpy arrays and TensorFlow tensors alike (arithmetic only).
    """
    return (_R0_SQ + _C_ERR * math.sqrt(_LSST_NOISE_VAR)) / (_R0_SQ + _C_ERR * noise_var**0.5)
