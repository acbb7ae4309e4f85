import warnings

import numpy as np
import pytest
from scipy import ndimage

from lensviz import metrics
from lensviz.metrics import (
    dicee,
    dicee_confusion,
    dpeaks,
    find_peaks,
    local_maxima,
    pearson_r,
    rmse,
    score,
    wmape,
)


def test_wmape_hand_computed():
    t = [[2, 3], [5, 7]]
    p = [[2.5, 3.5], [4, 6]]
    # W = 1 + T/7; terms W|P-T|/|T|: (9/7)(.25) + (10/7)(1/6) + (12/7)(.2) + 2(1/7); ΣW = 45/7
    expected = ((9 / 7) * 0.25 + (10 / 7) / 6 + (12 / 7) * 0.2 + 2 / 7) / (45 / 7)
    assert wmape(t, p) == pytest.approx(0.1848148, abs=1e-7)
    assert wmape(t, p) == pytest.approx(expected, rel=1e-12)


def test_wmape_replaces_exact_zeros():
    t = np.array([[0.0, 1.0], [1.0, 1.0]])
    p = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert wmape(t, p) == 0.0
    p2 = p.copy()
    p2[0, 0] = 1e-5 + 1e-6  # |P-T|/|T| = 0.1 at the zero pixel, weight 1 + 1e-5
    w = np.array([1 + 1e-5, 2, 2, 2])
    assert wmape(t, p2) == pytest.approx(w[0] * 0.1 / w.sum(), rel=1e-6)


def test_dicee_hand_computed():
    assert dicee([[1, -1], [0, 0]], [[1, 1], [0, 0]]) == pytest.approx(1 / 3)
    assert dicee([[1, -1], [0, 0]], [[1, -1], [0, 0]]) == 0.0
    assert dicee([[1, -1], [0, 0]], [[-1, 1], [0, 0]]) == pytest.approx(1.0)


def test_confusion_codes_match_dicee(rng):
    t, p = rng.normal(size=(2, 3, 32, 32))
    codes = dicee_confusion(t, p)
    c = metrics.CONFUSION_CODES
    tp, fp, fn = ((codes == c[k]).sum(axis=(1, 2)) for k in ("TP", "FP", "FN"))
    np.testing.assert_allclose(dicee(t, p), 1 - tp / (tp + 0.5 * fp + 0.5 * fn))
    assert codes.dtype == np.uint8 and set(np.unique(codes)) <= {0, 1, 2, 3}
    one = dicee_confusion([[1, -1], [0, 0]], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(one, [[c["TP"], c["FP"]], [c["TN"], c["TN"]]])


def _bumps(centres, heights, n=128, s=2.0):
    yy, xx = np.mgrid[0:n, 0:n]
    return sum(
        h * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
        for (y, x), h in zip(centres, heights)
    )


def test_find_peaks_on_constructed_map():
    centres = [(30, 40), (90, 100), (64, 20), (100, 30)]
    heights = [1.0, 0.8, 0.6, 0.4]
    pos, h = find_peaks(_bumps(centres, heights), n=4)
    np.testing.assert_array_equal(pos, centres)
    assert np.all(np.diff(h) < 0)


def test_missing_peaks_are_at_origin_with_nan_height():
    pos, h = find_peaks(_bumps([(50, 60)], [1.0]), n=3)
    np.testing.assert_array_equal(pos, [[50, 60], [0, 0], [0, 0]])
    assert h[0] > 0 and np.isnan(h[1:]).all()
    pos, h = find_peaks(np.zeros((16, 16)), n=2)  # flat map: no peak strictly above min
    np.testing.assert_array_equal(pos, 0)


def test_border_pixels_are_never_peaks():
    m = np.zeros((16, 16))
    m[0, 5] = 10.0
    m[8, 8] = 1.0
    assert not local_maxima(m)[0, 5] and local_maxima(m)[8, 8]


def test_dpeaks_known_offsets():
    t = _bumps([(30, 40), (90, 100), (64, 20)], [1.0, 0.8, 0.6])
    p = _bumps([(32, 41), (90, 100), (60, 20)], [1.0, 0.8, 0.6])
    assert dpeaks(t, p) == 3 + 0 + 4
    # swapped ranks are penalised: rank 1 of P sits at rank 2 of T
    p_swap = _bumps([(30, 40), (90, 100), (64, 20)], [0.8, 1.0, 0.6])
    assert dpeaks(t, p_swap) == 2 * (60 + 60)
    # a prediction with one peak: the two missing ones count from (0, 0)
    p_one = _bumps([(30, 40)], [1.0])
    assert dpeaks(t, p_one) == (90 + 100) + (64 + 20)


def test_dpeaks_matches_reference_loop(rng):
    """Our batched finder against a per-map scipy loop (skimage-style maximum filter)."""
    t = ndimage.gaussian_filter(rng.normal(size=(5, 64, 64)), (0, 2, 2))
    p = t + 0.02 * rng.normal(size=t.shape)

    def ref_peaks(m):
        s = ndimage.gaussian_filter(m, 3.0)
        fp = np.ones((3, 3), bool)
        fp[1, 1] = False
        strict = s > ndimage.maximum_filter(s, footprint=fp, mode="constant", cval=-np.inf)
        strict[[0, -1], :] = False
        strict[:, [0, -1]] = False
        strict &= s > s.min()
        ys, xs = np.nonzero(strict)
        order = np.argsort(-s[ys, xs], kind="stable")[:3]
        out = np.zeros((3, 2), int)
        out[: len(order)] = np.c_[ys[order], xs[order]]
        return out

    ref = [np.abs(ref_peaks(a) - ref_peaks(b)).sum() for a, b in zip(t, p)]
    np.testing.assert_array_equal(dpeaks(t, p), ref)


def test_rmse_and_pearson():
    t = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert rmse(t, t + 0.5) == pytest.approx(0.5)
    assert pearson_r(t, 2 * t + 1) == pytest.approx(1.0)
    assert pearson_r(t, -t) == pytest.approx(-1.0)
    assert pearson_r(t, np.ones_like(t)) == 0.0


def test_single_and_batch_forms_agree(rng):
    t = ndimage.gaussian_filter(rng.normal(size=(3, 128, 128)), (0, 3, 3))
    p = t + 0.05 * rng.normal(size=t.shape)
    s = score(t, p)
    for name, values in s.items():
        assert values.shape == (3,)
        single = getattr(metrics, {"r": "pearson_r"}.get(name, name))(t[1], p[1])
        assert isinstance(single, float)
        assert single == pytest.approx(values[1])


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same shape"):
        wmape(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="expected maps"):
        dicee(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="positive integer"):
        find_peaks(np.ones((8, 8)), n=0)


def test_float32_maps_score_like_float64(rng):
    t = ndimage.gaussian_filter(rng.normal(size=(70, 64, 64)), (0, 2, 2))  # > one block
    p = t + 0.05 * rng.normal(size=t.shape)
    s64 = score(t, p)
    s32 = score(t.astype(np.float32), p.astype(np.float32))
    for name in ("wmape", "rmse", "r"):
        np.testing.assert_allclose(s32[name], s64[name], rtol=1e-4, err_msg=name)
    np.testing.assert_array_equal(s32["dicee"], dicee(t.astype(np.float32), p.astype(np.float32)))
    np.testing.assert_allclose(s32["dicee"], s64["dicee"], atol=1e-3)


def test_score_selects_metrics():
    t = np.arange(16.0).reshape(4, 4) + 1
    out = score(t, t + 1, names=("rmse", "dicee"))
    assert list(out) == ["rmse", "dicee"] and out["rmse"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown metrics"):
        score(t, t, names=("mse",))


def _challenge_wmape(t, p):
    """WMAPE of one map as the challenge's scorer computes it: float64, per map."""
    t = np.where(t == 0, 1e-5, np.asarray(t, np.float64))
    p = np.where(p == 0, 1e-5, np.asarray(p, np.float64))
    w = 1 + t / t.max()
    return float((w * np.abs(p - t) / np.abs(t)).sum() / w.sum())


def test_wmape_of_a_truth_near_zero_is_finite_and_the_challenges_value():
    # An analytic κ: its tails underflow to float32 subnormals (down to 1.4e-45), where
    # |P − T|/|T| overflows float32. Such a map is scored in float64, as the scorer does.
    yy, xx = np.mgrid[0:128, 0:128]
    analytic = (0.4 * np.exp(-((yy - 64.0) ** 2 + (xx - 64.0) ** 2) / 72.0)).astype(np.float32)
    assert 0 < np.abs(analytic[analytic != 0]).min() < 1e-38  # subnormal pixels
    smooth = ndimage.gaussian_filter(np.random.default_rng(5).normal(size=(128, 128)), 3)
    t = np.stack([analytic, smooth.astype(np.float32)])
    p = (t + 0.01).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning either
        values = wmape(t, p)
        scored = score(t, p, names=("wmape",))["wmape"]
    assert np.isfinite(values).all() and values[0] > 1e30
    assert values[0] == pytest.approx(_challenge_wmape(t[0], p[0]), rel=1e-12)
    # the other map of the block keeps its float32 value
    assert values[1] == wmape(t[1], p[1])
    assert values[1] == pytest.approx(_challenge_wmape(t[1], p[1]), rel=1e-5)
    np.testing.assert_array_equal(scored, values)


# === Known answers that single planted bugs broke unnoticed (issue 21, item 9) ===


def test_find_peaks_on_a_non_square_field_gives_row_and_column():
    # 40 rows × 70 columns: splitting the flat index by ny instead of nx moves every peak
    yy, xx = np.mgrid[0:40, 0:70]
    bumps = [(10, 55, 3.0), (30, 12, 2.0), (25, 40, 1.0)]
    m = sum(h * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 6.0) for y, x, h in bumps)
    pos, heights = find_peaks(m, n=3, sigma_px=0)
    assert pos.tolist() == [[10, 55], [30, 12], [25, 40]]
    np.testing.assert_allclose(heights, [3.0, 2.0, 1.0], rtol=1e-3)
    # the same in a batch with the map transposed (70 × 40): (y, x) swap
    pos_t, _ = find_peaks(np.stack([m.T, m.T]), n=3, sigma_px=0)
    assert pos_t[1].tolist() == [[55, 10], [12, 30], [40, 25]]
    # and after the challenge's 3 px smoothing, the peaks stay where the bumps are
    smoothed, _ = find_peaks(m, n=2, sigma_px=3.0)
    assert smoothed.tolist() == [[10, 55], [30, 12]]


def test_local_maxima_are_strict_equal_neighbours_are_not_maxima():
    m = np.zeros((7, 9))
    m[2, 2] = m[2, 3] = 1.0  # a plateau of two equal pixels: neither is strictly higher
    m[5, 6] = 2.0  # a lone peak
    m[4, 6] = 2.0  # ... with an equal neighbour above it: not a maximum either
    m[1, 7] = 0.5  # strictly above all its neighbours
    assert np.argwhere(local_maxima(m)).tolist() == [[1, 7]]
    flat = np.full((5, 5), 0.3)
    assert not local_maxima(flat).any()  # a constant map has no peak (nor above its minimum)
