"""Scoring mass-mapping methods on a dataset.

A *predictor* is any callable ``eps (N, ny, nx, 3) float32 -> kappa (N, ny, nx)``
(128 × 128 tiles, or whole fields of any size), which may take the maps' pixel side as a
keyword, ``pixel_arcmin`` (every predictor of lensviz does; one that does not is
called without it, at its own scale);
:func:`evaluate_methods` takes a ``{name: predictor}`` dict, so a method is added by
adding an entry. :func:`ks93_predictor` and :func:`wiener_predictor` build the classical
ones here; the UNet's is :func:`lensviz.nn.inference.unet_predictor` (TensorFlow).

The smoothing σ of KS93 is a free parameter. It is chosen by :func:`choose_ks93_sigma`
on :func:`calibration_set` (simulated seeds disjoint from the test seeds,
:data:`lensviz.constants.CALIBRATION_SEED_START`), never on the data being scored.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from lensviz import constants, depth, metrics
from lensviz.data import apply_convention, validate_epsilon, validate_kappa
from lensviz.inversion import gaussian_smooth, ks93
from lensviz.simulate import depth_config, simulate_batch
from lensviz.wiener import PowerSpectrum, noise_power, wiener

__all__ = [
    "Predictor",
    "takes_pixel_scale",
    "DEFAULT_SIGMAS",
    "CONVENTION_SIGMA_PX",
    "N_BOOTSTRAP",
    "HIGHER_IS_BETTER",
    "WMAPE_EXPLODED",
    "ks93_predictor",
    "ks93_depth_predictor",
    "wiener_predictor",
    "default_weights",
    "default_power_spectrum",
    "choose_ks93_sigma",
    "calibration_set",
    "score_methods",
    "summarize",
    "evaluate_methods",
    "evaluate_depths",
    "format_table",
    "wmape_note",
    "convention_scores",
]

Predictor = Callable[[np.ndarray], np.ndarray]

DEFAULT_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)  # KS93 smoothing grid, pixels
CONVENTION_SIGMA_PX = 2.0  # smoothing (pixels) of KS93 when testing data conventions
N_BOOTSTRAP = 1000  # bootstrap resamples for the standard error of a mean
HIGHER_IS_BETTER = frozenset({"r"})  # every other metric of metrics.METRIC_NAMES: lower is better
_BOOT_CHUNK_ELEMENTS = 4_000_000  # resample indices drawn at once (bounds memory)
#: A mean WMAPE above this is set by true pixels at zero to float precision (wmape_note).
WMAPE_EXPLODED = 1e6


def ks93_predictor(sigma_px: float = 0.0, pad: int = 0) -> Predictor:
    """A predictor returning the KS93 E-mode map, optionally Gaussian-smoothed.

    Parameters
    ----------
    sigma_px : float, optional
        Smoothing σ in pixels, whatever their side; 0 gives raw KS93.
    pad : int, optional
        Zero-padding per side before the FFT (:func:`lensviz.inversion.ks93`).

    Returns
    -------
    callable
        ``eps (N, ny, nx, 3) -> kappa_E (N, ny, nx)`` float32, mean zero per map
        (KS93 cannot recover the mean: mass-sheet degeneracy); its ``pixel_arcmin``
        keyword is accepted and unused (KS93 is the same on any pixel grid).
    """
    sigma_px = float(sigma_px)
    if not np.isfinite(sigma_px) or sigma_px < 0:
        raise ValueError(f"sigma_px must be finite and non-negative, got {sigma_px!r}")

    def predict(eps: np.ndarray, pixel_arcmin: float = constants.PIXEL_ARCMIN) -> np.ndarray:
        eps = np.asarray(eps)
        kappa_e, _ = ks93(eps[..., 0], eps[..., 1], pad=pad)
        return gaussian_smooth(kappa_e, sigma_px)

    predict.__name__ = f"ks93_sigma{sigma_px:g}"
    predict.__doc__ = f"KS93 E mode, pad {pad} px, Gaussian σ = {sigma_px:g} px."
    return predict


def ks93_depth_predictor(pad: int = 0) -> Predictor:
    """KS93 smoothed by the depth rule: each map with σ = :func:`lensviz.depth.ks93_sigma`
    of its own Δε.

    The one rule for "best-smoothed KS93" in lensviz (CLI, model cards and app alike): the
    σ that minimised the RMSE on calibration seeds at the depth that the map's noise
    implies (:data:`lensviz.depth.KS93_SIGMA_RULE`).

    Returns
    -------
    callable
        ``eps (N, ny, nx, 3), pixel_arcmin=0.5 -> kappa (N, ny, nx)`` float32; the σ of
        the rule is kept on the sky at other pixel scales.
    """

    def predict(eps: np.ndarray, pixel_arcmin: float = constants.PIXEL_ARCMIN) -> np.ndarray:
        eps = np.asarray(eps)
        kappa_e, _ = ks93(eps[..., 0], eps[..., 1], pad=pad)
        maps = eps.reshape(-1, *eps.shape[-3:])
        sigmas = np.array([depth.ks93_sigma(e[..., 2], pixel_arcmin=pixel_arcmin) for e in maps])
        out = np.empty_like(kappa_e).reshape(-1, *kappa_e.shape[-2:])
        flat = kappa_e.reshape(out.shape)
        for s in np.unique(sigmas):  # one smoothing call per distinct σ
            pick = sigmas == s
            out[pick] = gaussian_smooth(flat[pick], float(s))
        return out.reshape(kappa_e.shape)

    predict.__name__ = "ks93_depth_rule"
    predict.__doc__ = f"KS93 E mode, pad {pad} px, Gaussian σ from the depth rule of each map."
    return predict


def default_weights() -> Path | None:
    """The shipped UNet, ``lite.keras`` in :data:`lensviz.constants.WEIGHTS_DIR`, or None."""
    path = constants.WEIGHTS_DIR / constants.DEFAULT_WEIGHTS_FILE
    return path if path.exists() else None


def default_power_spectrum() -> Path | None:
    """The shipped κ power spectrum of the Wiener filter, or None when it is absent.

    ``kappa_power.npz`` in :data:`lensviz.constants.WEIGHTS_DIR`.
    """
    path = constants.WEIGHTS_DIR / constants.POWER_SPECTRUM_FILE
    return path if path.exists() else None


def wiener_predictor(signal=None, pad: int = 0) -> Predictor:
    """A predictor returning the Wiener-filtered E mode (:func:`lensviz.wiener.wiener`).

    Parameters
    ----------
    signal : PowerSpectrum, path or None
        The κ power spectrum S; None loads :func:`default_power_spectrum`.
    pad : int
        Zero-padding per side; S must then describe the padded grid's pixels (it does:
        S is per pixel, and padding keeps the pixel scale).

    The noise power N of each sample comes from its own Δε channel
    (:func:`lensviz.wiener.noise_power`); S is taken at the maps' pixel scale (the
    predictor's ``pixel_arcmin`` keyword, :meth:`lensviz.wiener.PowerSpectrum.on_grid`).
    """
    if signal is None:
        signal = default_power_spectrum()
        if signal is None:
            path = constants.WEIGHTS_DIR / constants.POWER_SPECTRUM_FILE
            raise FileNotFoundError(
                f"{path} not found; make it with `python -m lensviz powerspec --out {path}`"
            )
    if not isinstance(signal, PowerSpectrum):
        signal = PowerSpectrum.load(signal)

    def predict(eps: np.ndarray, pixel_arcmin: float = constants.PIXEL_ARCMIN) -> np.ndarray:
        eps = np.asarray(eps)
        noise = noise_power(eps[..., 2])
        return wiener(eps[..., 0], eps[..., 1], noise, signal, pad=pad, pixel_arcmin=pixel_arcmin)

    predict.__name__ = "wiener"
    predict.__doc__ = f"Wiener filter S/(S+N) on the KS93 E mode, pad {pad} px."
    return predict


def _pair(eps, kappa, source: str) -> tuple[np.ndarray, np.ndarray]:
    eps = validate_epsilon(eps, f"{source} eps")
    kappa = validate_kappa(kappa, f"{source} kappa")
    if len(eps) != len(kappa):
        raise ValueError(
            f"{source}: eps holds {len(eps)} samples and kappa {len(kappa)} maps; "
            "expected the same number"
        )
    return eps, kappa


def choose_ks93_sigma(
    eps, kappa, sigmas: Sequence[float] = DEFAULT_SIGMAS, pad: int = 0
) -> tuple[float, dict[float, float]]:
    """Pick the Gaussian σ of smoothed KS93 that minimises the mean RMSE against κ.

    Parameters
    ----------
    eps : array_like, shape (N, 128, 128, 3)
        Calibration ε (use :func:`calibration_set`, not the data to be scored).
    kappa : array_like, shape (N, 128, 128)
        True κ of the same samples.
    sigmas : sequence of float, optional
        Candidate σ in pixels.
    pad : int, optional
        KS93 zero-padding per side.

    Returns
    -------
    best_sigma : float
        The candidate with the lowest mean RMSE (the smallest σ on a tie).
    table : dict of float to float
        Mean RMSE per candidate σ, in the order given.

    Notes
    -----
    The criterion is the mean per-map RMSE, ``mean_i sqrt(mean_pixels (κ̂_σ − κ)²)``.
    Smoothing trades noise variance (falls with σ) against blurring of the signal
    (grows with σ); RMSE measures exactly that trade-off, is smooth in σ, and is
    dominated by neither the near-zero pixels that make WMAPE explode nor the discrete
    thresholds of DICEE and DPEAKS. KS93's unrecoverable mean adds the same constant
    offset for every σ, so it does not move the minimum.
    """
    eps, kappa = _pair(eps, kappa, "choose_ks93_sigma")
    sigmas = [float(s) for s in sigmas]
    if not sigmas:
        raise ValueError("sigmas must hold at least one candidate σ")
    kappa_e = ks93_predictor(0.0, pad)(eps)
    table = {s: float(metrics.rmse(kappa, gaussian_smooth(kappa_e, s)).mean()) for s in sigmas}
    best = min(sorted(table), key=table.__getitem__)
    return best, table


def calibration_set(n: int = 200, config=None) -> tuple[np.ndarray, np.ndarray]:
    """Simulated samples for choosing hyper-parameters such as the KS93 σ.

    Sample ``i`` uses seed ``constants.CALIBRATION_SEED_START + i``, a range disjoint
    from the test seeds (``TEST_SEED_START``) and the training seeds.

    Parameters
    ----------
    n : int, optional
        Number of samples; must stay below 500 000 (the calibration seed range).
    config : optional
        Simulator configuration, passed to :func:`lensviz.simulate.simulate_batch`.

    Returns
    -------
    eps : ndarray, shape (n, 128, 128, 3), float32
    kappa : ndarray, shape (n, 128, 128), float32
    """
    n_max = constants.TRAIN_SEED_START - constants.CALIBRATION_SEED_START
    if isinstance(n, bool) or int(n) != n or not 0 < n <= n_max:
        raise ValueError(f"n must be an integer in [1, {n_max}], got {n!r}")
    return simulate_batch(int(n), seed=constants.CALIBRATION_SEED_START, config=config)


def takes_pixel_scale(predictor: Callable) -> bool:
    """Whether a predictor accepts the ``pixel_arcmin`` keyword (or any keyword)."""
    try:
        params = inspect.signature(predictor).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no keywords to rely on
        return False
    return any(p.name == "pixel_arcmin" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _predict(
    name: str,
    predictor: Predictor,
    eps: np.ndarray,
    batch_size: int | None,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
):
    kwargs = {"pixel_arcmin": pixel_arcmin} if takes_pixel_scale(predictor) else {}
    if batch_size is None:
        pred = np.asarray(predictor(eps, **kwargs))
    else:
        parts = [
            np.asarray(predictor(eps[i : i + batch_size], **kwargs))
            for i in range(0, len(eps), batch_size)
        ]
        pred = np.concatenate(parts)
    if pred.ndim == 4 and pred.shape[-1] == 1:  # Keras-style (N, 128, 128, 1)
        pred = pred[..., 0]
    expected = tuple(eps.shape[:3])  # one map per sample, of the samples' size
    if pred.shape != expected:
        raise ValueError(f"predictor {name!r} returned shape {pred.shape}; expected {expected}")
    if pred.dtype.kind != "f" or not np.isfinite(pred).all():
        raise ValueError(
            f"predictor {name!r} returned non-finite or non-float values "
            f"(dtype {pred.dtype}); expected finite float maps"
        )
    return pred


def score_methods(
    eps,
    kappa,
    predictors: Mapping[str, Predictor],
    *,
    batch_size: int | None = None,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> dict[str, dict[str, np.ndarray]]:
    """Per-map scores of each predictor.

    Parameters
    ----------
    eps : array_like, shape (N, 128, 128, 3)
    kappa : array_like, shape (N, 128, 128)
    predictors : mapping of str to callable
        ``{name: eps -> kappa prediction (N, 128, 128)}``; ``(N, 128, 128, 1)`` is
        accepted too.
    batch_size : int, optional
        Call each predictor on batches of this many samples (default: all at once).
    pixel_arcmin : float, optional
        Pixel side of the maps [arcmin], passed to the predictors that take it.

    Returns
    -------
    dict
        ``{method: {metric: (N,) float64 array}}`` with the metrics of
        :data:`lensviz.metrics.METRIC_NAMES`.
    """
    eps, kappa = _pair(eps, kappa, "score_methods")
    if not predictors:
        raise ValueError("predictors is empty; expected {name: callable}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    out = {}
    for name, predictor in predictors.items():
        if not callable(predictor):
            raise TypeError(
                f"predictor {name!r} is a {type(predictor).__name__}; "
                "expected a callable eps -> kappa"
            )
        pred = _predict(name, predictor, eps, batch_size, pixel_arcmin)
        scores = metrics.score(kappa, pred)
        out[name] = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    return out


def summarize(
    per_map: Mapping[str, Mapping[str, np.ndarray]], *, n_boot: int = N_BOOTSTRAP, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, median, standard deviation and bootstrap standard error of per-map scores.

    Parameters
    ----------
    per_map : mapping
        ``{method: {metric: (N,) array}}``, as from :func:`score_methods`; all arrays of
        the same length.
    n_boot : int, optional
        Bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap generator. The same resampled map sets are used for every
        method and metric (a paired bootstrap).

    Returns
    -------
    dict
        ``{method: {metric: {"mean", "median", "std", "sem_boot", "n"}}}``; ``std`` is
        the spread over maps (ddof=0), ``sem_boot`` the standard deviation of the mean
        over ``n_boot`` resamples of the maps with replacement, and ``n`` the number of
        maps. ``sem_boot`` is NaN where it is undefined: for one map (no spread to
        resample) and for a metric with a non-finite value (``std`` is NaN there too).
        No RuntimeWarning is raised either way.
    """
    lengths = {len(v) for m in per_map.values() for v in m.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"per-map arrays must be non-empty and of one length, got {lengths}")
    if int(n_boot) != n_boot or n_boot < 2:
        raise ValueError(f"n_boot must be an integer ≥ 2, got {n_boot!r}")
    n = lengths.pop()
    values = {
        (meth, met): np.asarray(v, np.float64)
        for meth, m in per_map.items()
        for met, v in m.items()
    }
    finite = {key: bool(np.isfinite(v).all()) for key, v in values.items()}
    # Deviations from the mean are resampled: the same spread, and exactly 0 for a constant.
    deviations = {key: v - v.mean() for key, v in values.items() if finite[key]}
    boot = {key: [] for key in deviations}
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
    for b0 in range(0, n_boot if n > 1 else 0, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - b0), n))
        for key, means in boot.items():
            means.append(deviations[key][idx].mean(axis=1))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for (meth, met), v in values.items():
        with np.errstate(invalid="ignore", over="ignore"):  # ±inf: the mean says so itself
            mean, median = float(v.mean()), float(np.median(v))
        defined = finite[meth, met] and n > 1
        summary.setdefault(meth, {})[met] = {
            "mean": mean,
            "median": median,
            "std": float(v.std()) if finite[meth, met] else math.nan,
            "sem_boot": float(np.concatenate(boot[meth, met]).std(ddof=1)) if defined else math.nan,
            "n": n,
        }
    return summary


def evaluate_methods(
    eps,
    kappa,
    predictors: Mapping[str, Predictor],
    *,
    n_boot: int = N_BOOTSTRAP,
    seed: int = 0,
    batch_size: int | None = None,
    pixel_arcmin: float = constants.PIXEL_ARCMIN,
) -> dict:
    """Score several mass-mapping methods on the same samples.

    Parameters
    ----------
    eps : array_like, shape (N, 128, 128, 3)
    kappa : array_like, shape (N, 128, 128)
    predictors : mapping of str to callable
        ``{name: eps -> kappa}``, e.g. ``{"ks93": ks93_predictor(), "unet": ...}``.
    n_boot, seed : int, optional
        Bootstrap settings of :func:`summarize`.
    batch_size, pixel_arcmin : optional
        As in :func:`score_methods`.

    Returns
    -------
    dict
        ``n_maps`` (int), ``metrics`` (list of str), ``per_map``
        (``{method: {metric: (N,) array}}``) and ``summary`` (as :func:`summarize`).

    Examples
    --------
    >>> from lensviz.simulate import depth_config, simulate_batch
    >>> eps, kappa = simulate_batch(4, seed=0)
    >>> result = evaluate_methods(eps, kappa, {"ks93": ks93_predictor(),
    ...                                        "ks93 σ=2": ks93_predictor(2.0)}, n_boot=100)
    >>> result["n_maps"], sorted(result["summary"]), result["per_map"]["ks93"]["rmse"].shape
    (4, ['ks93', 'ks93 σ=2'], (4,))
    >>> print(format_table(result["summary"]))  # doctest: +ELLIPSIS
    metric    ks93 ...
    """
    per_map = score_methods(
        eps, kappa, predictors, batch_size=batch_size, pixel_arcmin=pixel_arcmin
    )
    return {
        "n_maps": len(next(iter(next(iter(per_map.values())).values()))),
        "metrics": list(metrics.METRIC_NAMES),
        "per_map": per_map,
        "summary": summarize(per_map, n_boot=n_boot, seed=seed),
    }


def evaluate_depths(
    predictors: Mapping[str, Predictor],
    depths: Sequence[str],
    n: int,
    seed: int = constants.TEST_SEED_START,
    *,
    pad: int = 0,
    n_boot: int = N_BOOTSTRAP,
    boot_seed: int = 0,
    on_depth: Callable[[str], None] | None = None,
    on_samples: Callable[[str, np.ndarray], None] | None = None,
) -> dict[str, dict]:
    """Score methods at several survey depths on the same simulated fields.

    For each depth the same ``n`` seeds are simulated (the same κ, only the galaxies
    change), and every method is scored beside raw KS93 and KS93 smoothed by the depth
    rule (:func:`ks93_depth_predictor`).

    Parameters
    ----------
    predictors : mapping of str to callable
        Extra methods (UNet, Wiener, ...), ``eps -> kappa``.
    depths : sequence of str
        Depth specs of :func:`lensviz.simulate.depth_config`: survey names, numbers of
        galaxies per arcmin² or ``"inf"``.
    n : int
        Maps per depth.
    seed : int
        First seed (held-out test range by default).
    pad, n_boot, boot_seed
        KS93 zero-padding; bootstrap resamples and seed of :func:`summarize`.
    on_depth : callable, optional
        Called with each depth spec before it is scored (progress).
    on_samples : callable, optional
        Called with each depth spec and its ε ``(n, ny, nx, 3)`` (e.g. a domain check).

    Returns
    -------
    dict
        ``{depth spec: {"n_gal": float, "label": str, "ks93_sigma_px": float,
        "summary": summarize(...)}}``.
    """
    out = {}
    for spec in depths:
        if on_depth is not None:
            on_depth(spec)
        config = depth_config(str(spec))
        eps, kappa = simulate_batch(n, seed, config)
        if on_samples is not None:
            on_samples(str(spec), eps)
        methods = {
            "ks93_raw": ks93_predictor(0.0, pad),
            "ks93_smoothed": ks93_depth_predictor(pad),
            **predictors,
        }
        per_map = score_methods(eps, kappa, methods)
        out[str(spec)] = {
            "n_gal": float(config.n_gal),
            "label": depth.depth_label(config.n_gal),
            "ks93_sigma_px": depth.ks93_sigma(eps[..., 2]),
            "summary": summarize(per_map, n_boot=n_boot, seed=boot_seed),
        }
    return out


def wmape_note(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str | None:
    """A sentence on exploded WMAPE values in a summary, or None when there are none.

    WMAPE divides by ``|T|`` pixel by pixel (docs/reference.md §3). Where some true
    pixels are zero to float precision, as in the tails of an analytic κ, a map's WMAPE
    reaches 10³⁰ or more whatever the method: the value then measures those pixels, not
    the reconstruction. A mean WMAPE above :data:`WMAPE_EXPLODED` is read as that case
    (simulated maps score below 100, the challenge's float16 maps cannot hold such
    pixels).

    Parameters
    ----------
    summary : mapping
        As returned by :func:`summarize`.
    """
    exploded = {
        meth: stats["wmape"]["mean"]
        for meth, stats in summary.items()
        if "wmape" in stats and stats["wmape"]["mean"] > WMAPE_EXPLODED
    }
    if not exploded:
        return None
    worst = max(exploded.values())
    return (
        f"WMAPE of {', '.join(exploded)} is above {WMAPE_EXPLODED:.0e} (up to {worst:.2g}): "
        "WMAPE divides by |true κ| pixel by pixel, and these true maps have pixels at zero "
        "to float precision (the tails of an analytic κ, for instance); the value is the "
        "challenge scorer's and measures those pixels, not the method: compare DICEE, "
        "DPEAKS, RMSE and r instead"
    )


def format_table(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Plain-text table of a summary: one row per metric, one column per method.

    Each cell reads ``mean ± sem_boot (median)``, or just the value for one map (no
    spread to give); ``± sem_boot`` is left out where it is undefined (a non-finite
    value). ``*`` marks the best mean of a row (lowest, or highest for r), only where
    every mean of the row is finite. Arrows in the first column give the direction.
    An exploded WMAPE (:func:`wmape_note`) gets a note under the table and no ``*``.

    Parameters
    ----------
    summary : mapping
        As returned by :func:`summarize` (with ``n``, the number of maps).

    Returns
    -------
    str
    """
    methods = list(summary)
    if not methods:
        raise ValueError("summary is empty")
    metric_names = list(next(iter(summary.values())))
    one_map = all(s["n"] == 1 for m in summary.values() for s in m.values())
    note = wmape_note(summary)
    header = ["metric"] + methods
    rows = []
    for met in metric_names:
        means = {m: summary[m][met]["mean"] for m in methods}
        pick = max if met in HIGHER_IS_BETTER else min
        comparable = (
            len(methods) > 1
            and all(math.isfinite(v) for v in means.values())
            and not (met == "wmape" and note is not None)  # exploded: no ranking
        )
        best = pick(means, key=means.__getitem__) if comparable else None
        arrow = "↑" if met in HIGHER_IS_BETTER else "↓"
        row = [f"{met} {arrow}"]
        for m in methods:
            s = summary[m][met]
            cell = f"{s['mean']:.4g}"
            if not one_map:
                if math.isfinite(s["sem_boot"]):
                    cell += f" ± {s['sem_boot']:.2g}"
                cell += f" ({s['median']:.4g})"
            row.append(cell + (" *" if m == best else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    cells = "the one map's values" if one_map else "mean ± bootstrap s.e. (median)"
    lines.append(f"cells: {cells}; ↓ lower is better, ↑ higher; * best mean")
    if note is not None:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def convention_scores(
    eps, kappa, sigma_px: float = CONVENTION_SIGMA_PX, pad: int = 0
) -> list[dict]:
    """Which sign/axis convention makes KS93 of ``eps`` match ``kappa`` best.

    Tries the 8 variants of :func:`lensviz.data.apply_convention` (e1 sign ±, e2 sign ±,
    maps transposed or not; the 4 untransposed ones for maps that are not square),
    computes KS93 smoothed with ``sigma_px`` for each, and its Pearson r with κ map by
    map. Data in lensviz's convention picks the identity.

    Parameters
    ----------
    eps : array_like, shape (N, ny, nx, 3)
    kappa : array_like, shape (N, ny, nx)
    sigma_px : float, optional
        Smoothing of the KS93 maps (pixels); raw KS93 of noisy data is mostly noise.
    pad : int, optional
        KS93 zero-padding per side.

    Returns
    -------
    list of dict
        One per variant, best first (highest mean r), with keys ``negate_e1``,
        ``negate_e2``, ``transpose`` (bool; pass them to ``apply_convention`` to convert
        the data), ``identity`` (bool: lensviz's own convention), ``mean_r`` and
        ``median_r`` (float).
    """
    eps, kappa = _pair(eps, kappa, "convention_scores")
    predict = ks93_predictor(sigma_px, pad)
    rows = []
    square = eps.shape[1] == eps.shape[2]  # a transposed non-square map has another shape
    for transpose in (False, True) if square else (False,):
        for negate_e1 in (False, True):
            for negate_e2 in (False, True):
                variant = {"negate_e1": negate_e1, "negate_e2": negate_e2, "transpose": transpose}
                r = metrics.pearson_r(kappa, predict(apply_convention(eps, **variant)))
                rows.append(
                    {
                        **variant,
                        "identity": not (negate_e1 or negate_e2 or transpose),
                        "mean_r": float(np.mean(r)),
                        "median_r": float(np.median(r)),
                    }
                )
    rows.sort(key=lambda row: -row["mean_r"])
    return rows
