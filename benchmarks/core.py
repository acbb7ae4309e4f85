"""The numpy benchmarks: KS93, the challenge metrics, the Wiener filter, the simulator.

Registered in :data:`benchmarks.BENCHMARKS`; see that package for what each measures.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from benchmarks import timeit
from lensviz.evaluation import ks93_predictor, wiener_predictor
from lensviz.inversion import _FFT_CHUNK, gaussian_smooth, ks93
from lensviz.metrics import score
from lensviz.simulate import simulate_batch, simulate_sample

__all__ = [
    "bench_ks93",
    "bench_metrics",
    "bench_wiener",
    "bench_simulate",
    "challenge_style_scores",
]


def _fields(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = gaussian_smooth(rng.normal(size=(n, 128, 128)).astype(np.float32), 2.0)
    p = t + 0.1 * rng.normal(size=t.shape).astype(np.float32)
    return t, p


def bench_ks93(quick: bool = False) -> dict:
    n = 200 if quick else 1000
    g1, g2 = _fields(n, 1)
    repeat = 3 if quick else 5

    def bare_whole():  # the 4 real FFTs of the batch in one call each
        a = sfft.rfft2(g1)
        b = sfft.rfft2(g2)
        sfft.irfft2(a, s=(128, 128))
        sfft.irfft2(b, s=(128, 128))

    def bare():  # the same FFTs in the blocks ks93 uses, nothing else
        for i in range(0, n, _FFT_CHUNK):
            a = sfft.rfft2(g1[i : i + _FFT_CHUNK])
            b = sfft.rfft2(g2[i : i + _FFT_CHUNK])
            sfft.irfft2(a, s=(128, 128))
            sfft.irfft2(b, s=(128, 128))

    batched = timeit(lambda: ks93(g1, g2), repeat)
    fft = timeit(bare, repeat)
    fft_whole = timeit(bare_whole, repeat)
    loop = timeit(lambda: [ks93(a, b) for a, b in zip(g1, g2, strict=True)], max(1, repeat // 2))
    return {
        "maps": n,
        "batched": batched,
        "bare_ffts": fft,
        "bare_ffts_one_call": fft_whole,
        "per_map_loop": loop,
        "ratio_vs_bare_ffts": batched["median_s"] / fft["median_s"],
        "ratio_vs_bare_ffts_one_call": batched["median_s"] / fft_whole["median_s"],
        "speedup_vs_loop": loop["median_s"] / batched["median_s"],
        "target": "batched within 1.5x of the bare FFTs",
    }


def challenge_style_scores(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-map loop like the challenge's scorer: scipy smoothing + peak search per map.

    Used only as the benchmark baseline; returns ``(N, 3)`` WMAPE, DICEE, DPEAKS.
    """
    footprint = np.ones((3, 3), bool)
    footprint[1, 1] = False

    def peaks(m):
        s = ndimage.gaussian_filter(m.astype(np.float64), 3.0)
        neigh = ndimage.maximum_filter(s, footprint=footprint, mode="constant", cval=-np.inf)
        mask = (s > neigh) & (s > s.min())
        mask[[0, -1], :] = mask[:, [0, -1]] = False
        ys, xs = np.nonzero(mask)
        order = np.argsort(-s[ys, xs])[:3]
        out = np.zeros((3, 2), int)
        out[: len(order)] = np.c_[ys[order], xs[order]]
        return out

    rows = []
    for t, p in zip(true.astype(np.float64), pred.astype(np.float64), strict=True):
        t = np.where(t == 0, 1e-5, t)
        p = np.where(p == 0, 1e-5, p)
        w = 1 + t / t.max()
        wm = np.sum(w * np.abs(p - t) / np.abs(t)) / np.sum(w)
        g, a = t > t.mean(), p > p.mean()
        tp, fp, fn = np.sum(g & a), np.sum(~g & a), np.sum(g & ~a)
        dc = 1 - tp / (tp + 0.5 * fp + 0.5 * fn)
        dp = np.abs(peaks(t) - peaks(p)).sum()
        rows.append((wm, dc, dp))
    return np.array(rows)


def bench_metrics(quick: bool = False) -> dict:
    n = 200 if quick else 1000
    t, p = _fields(n, 2)
    repeat = 3 if quick else 5
    challenge = ("wmape", "dicee", "dpeaks")  # what the challenge-style loop computes
    ours = timeit(lambda: score(t, p, challenge), repeat)
    all_five = timeit(lambda: score(t, p), repeat)
    loop = timeit(lambda: challenge_style_scores(t, p), max(1, repeat // 2))
    s = score(t, p, challenge)
    ref = challenge_style_scores(t, p)
    agree = {
        "wmape_max_rel_diff": float(np.abs(s["wmape"] / ref[:, 0] - 1).max()),
        "dicee_max_abs_diff": float(np.abs(s["dicee"] - ref[:, 1]).max()),
        "dpeaks_maps_differing": int(np.sum(s["dpeaks"] != ref[:, 2])),
    }
    return {
        "pairs": n,
        "batched_score": ours,
        "batched_score_all_five_metrics": all_five,
        "challenge_style_loop": loop,
        "speedup_vs_loop": loop["median_s"] / ours["median_s"],
        "agreement_with_loop": agree,
        "target": "at least 3x faster than the per-map loop",
    }


def bench_wiener(quick: bool = False) -> dict:
    n = 100 if quick else 500
    eps, _ = simulate_batch(n, 7)
    repeat = 3 if quick else 5
    wiener = wiener_predictor()
    ks = ks93_predictor(0.0)
    ks_smooth = ks93_predictor(4.0)
    t_w = timeit(lambda: wiener(eps), repeat)
    t_k = timeit(lambda: ks(eps), repeat)
    t_s = timeit(lambda: ks_smooth(eps), repeat)
    return {
        "maps": n,
        "wiener": t_w,
        "ks93": t_k,
        "ks93_smoothed": t_s,
        "wiener_ms_per_map": 1e3 * t_w["median_s"] / n,
        "ks93_ms_per_map": 1e3 * t_k["median_s"] / n,
        "wiener_vs_ks93": t_w["median_s"] / t_k["median_s"],
        "wiener_vs_smoothed_ks93": t_w["median_s"] / t_s["median_s"],
    }


def bench_simulate(quick: bool = False) -> dict:
    n = 20 if quick else 100
    simulate_sample(0)
    one = timeit(lambda: [simulate_sample(s) for s in range(n)], 3 if quick else 5)
    return {
        "samples": n,
        "time": one,
        "samples_per_s_one_core": n / one["median_s"],
        "ms_per_sample": 1e3 * one["median_s"] / n,
        "threads": "one: the simulator uses scipy.fft (workers=1) and element-wise numpy, no BLAS",
    }
