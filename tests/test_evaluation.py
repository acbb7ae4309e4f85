"""Tests of lensviz.evaluation on seeded synthetic fields (κ blobs → shear + noise)."""

import warnings

import numpy as np
import pytest

from lensviz import constants, evaluation, metrics
from lensviz.data import apply_convention
from lensviz.inversion import gaussian_smooth, ks93inv, project_modes
from lensviz.simulate import simulate_batch
from tests.fields import gaussian_blobs


def make_sample(n, noise, seed):
    """ε (n, 128, 128, 3) from κ blobs through the exact inverse KS93, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    kappa = gaussian_blobs(rng, n_maps=n).astype(np.float32)
    g1, g2 = ks93inv(kappa)
    eps = np.stack(
        [
            g1 + noise * rng.standard_normal(g1.shape),
            g2 + noise * rng.standard_normal(g2.shape),
            np.full(g1.shape, noise),
        ],
        axis=-1,
    ).astype(np.float32)
    return eps, kappa


def test_ks93_predictor_known_answer():
    eps, kappa = make_sample(3, 0.0, seed=1)
    raw = evaluation.ks93_predictor()(eps)
    assert raw.shape == (3, 128, 128) and raw.dtype == np.float32
    np.testing.assert_allclose(raw, project_modes(kappa), atol=1e-5)
    smooth = evaluation.ks93_predictor(2.0)(eps)
    np.testing.assert_allclose(smooth, gaussian_smooth(raw, 2.0), atol=1e-6)
    with pytest.raises(ValueError, match="sigma_px"):
        evaluation.ks93_predictor(-1.0)


def test_choose_ks93_sigma():
    # Noise-free: any smoothing only blurs, so the smallest candidate wins.
    best, table = evaluation.choose_ks93_sigma(*make_sample(4, 0.0, seed=2))
    assert best == 0.5 and list(table) == list(evaluation.DEFAULT_SIGMAS)
    # Noisy: an interior σ wins, and it is the argmin of the table.
    best, table = evaluation.choose_ks93_sigma(*make_sample(4, 0.3, seed=3))
    assert best == min(table, key=table.get)
    assert 0.5 < best < 8.0
    assert table[best] < table[0.5] and table[best] < table[8.0]
    with pytest.raises(ValueError, match="4 samples and kappa 2"):
        evaluation.choose_ks93_sigma(
            *make_sample(4, 0.3, seed=3)[:1], make_sample(2, 0.3, seed=3)[1]
        )


def test_summarize_known_values():
    per_map = {"a": {"x": np.array([1.0, 2.0, 3.0, 4.0])}, "b": {"x": np.array([2.0] * 4)}}
    s = evaluation.summarize(per_map, n_boot=4000, seed=0)
    assert s["a"]["x"]["mean"] == 2.5 and s["a"]["x"]["median"] == 2.5
    assert s["a"]["x"]["std"] == pytest.approx(np.sqrt(1.25))
    # Bootstrap s.e. of the mean → population std / sqrt(N) = 0.559.
    assert s["a"]["x"]["sem_boot"] == pytest.approx(np.sqrt(1.25) / 2, rel=0.05)
    assert s["b"]["x"]["sem_boot"] == 0.0  # exactly: deviations from the mean are resampled
    assert s["a"]["x"]["n"] == s["b"]["x"]["n"] == 4
    assert evaluation.summarize(per_map, n_boot=100, seed=3) == evaluation.summarize(
        per_map, n_boot=100, seed=3
    )
    with pytest.raises(ValueError, match="one length"):
        evaluation.summarize({"a": {"x": np.ones(3)}, "b": {"x": np.ones(4)}})


def test_evaluate_methods_structure_and_perfect_predictor():
    eps, kappa = make_sample(4, 0.1, seed=4)
    result = evaluation.evaluate_methods(
        eps,
        kappa,
        {
            "truth": lambda e: kappa,
            "keras-shaped": lambda e: kappa[..., None],
            "ks93": evaluation.ks93_predictor(),
        },
        n_boot=50,
    )
    assert result["n_maps"] == 4
    assert result["metrics"] == list(metrics.METRIC_NAMES)
    assert set(result["per_map"]) == set(result["summary"]) == {"truth", "keras-shaped", "ks93"}
    for method in result["per_map"].values():
        assert set(method) == set(metrics.METRIC_NAMES)
        assert all(v.shape == (4,) for v in method.values())
    truth = result["summary"]["truth"]
    assert truth["rmse"]["mean"] == 0.0 and truth["dicee"]["mean"] == 0.0
    assert truth["dpeaks"]["mean"] == 0.0 and truth["r"]["mean"] == pytest.approx(1.0)
    assert truth["wmape"]["mean"] == 0.0
    assert result["summary"]["keras-shaped"] == truth
    assert set(truth["rmse"]) == {"mean", "median", "std", "sem_boot", "n"}
    # Batching does not change the scores.
    batched = evaluation.score_methods(
        eps, kappa, {"ks93": evaluation.ks93_predictor()}, batch_size=3
    )
    np.testing.assert_allclose(batched["ks93"]["rmse"], result["per_map"]["ks93"]["rmse"])


def test_evaluate_methods_rejects_bad_predictors():
    eps, kappa = make_sample(2, 0.1, seed=5)
    with pytest.raises(ValueError, match=r"'half' returned shape \(2, 64, 64\)"):
        evaluation.evaluate_methods(eps, kappa, {"half": lambda e: kappa[:, :64, :64]})
    with pytest.raises(ValueError, match="'nan' returned non-finite"):
        evaluation.evaluate_methods(eps, kappa, {"nan": lambda e: kappa * np.nan})
    with pytest.raises(TypeError, match="'x' is a str"):
        evaluation.evaluate_methods(eps, kappa, {"x": "ks93"})
    with pytest.raises(ValueError, match="empty"):
        evaluation.evaluate_methods(eps, kappa, {})
    with pytest.raises(ValueError, match="ε has shape"):
        evaluation.evaluate_methods(eps[..., :2], kappa, {"ks93": evaluation.ks93_predictor()})


def _stats(mean, median=None, sem=0.01, n=4):
    median = mean if median is None else median
    return {"mean": mean, "median": median, "std": 0.1, "sem_boot": sem, "n": n}


def test_format_table():
    summary = {
        "raw": {"rmse": _stats(0.5, 0.4), "r": _stats(0.2)},
        "smooth": {"rmse": _stats(0.1), "r": _stats(0.7)},
    }
    lines = evaluation.format_table(summary).splitlines()
    assert lines[0].split() == ["metric", "raw", "smooth"]
    rmse = next(line for line in lines if line.startswith("rmse"))
    r = next(line for line in lines if line.startswith("r ↑"))
    assert rmse.endswith("0.1 ± 0.01 (0.1) *") and "0.5 ± 0.01 (0.4)" in rmse
    assert r.endswith("0.7 ± 0.01 (0.7) *")  # r: higher is better
    # Columns are aligned: the second column starts at the same offset on every row.
    offset = lines[0].index("raw")
    assert rmse[offset:].startswith("0.5") and r[offset:].startswith("0.2")
    assert lines[-1].startswith("cells: mean ± bootstrap s.e. (median)")


def test_summarize_and_format_table_of_one_map_with_an_infinite_value():
    per_map = {
        "a": {"wmape": np.array([np.inf]), "rmse": np.array([0.3])},
        "b": {"wmape": np.array([2.0]), "rmse": np.array([0.1])},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = evaluation.summarize(per_map, n_boot=50)
        table = evaluation.format_table(s)
    rmse_b = s["b"]["rmse"]
    assert (rmse_b["mean"], rmse_b["median"], rmse_b["std"], rmse_b["n"]) == (0.1, 0.1, 0.0, 1)
    assert np.isnan(rmse_b["sem_boot"])  # no spread to resample from one map
    assert s["a"]["wmape"]["mean"] == np.inf and np.isnan(s["a"]["wmape"]["std"])
    lines = table.splitlines()
    wmape = next(line for line in lines if line.startswith("wmape"))
    rmse = next(line for line in lines if line.startswith("rmse"))
    assert wmape.split()[2:] == ["inf", "2"]  # no star beside a non-finite mean
    assert rmse.split()[2:] == ["0.3", "0.1", "*"]
    assert "±" not in table and "(" not in table.split("\n")[2]
    assert "cells: the one map's values" in table
    assert "note: WMAPE of a is above 1e+06 (up to inf)" in table


def test_summarize_of_a_non_finite_value_among_many_has_a_median_and_no_error():
    per_map = {"a": {"x": np.array([1.0, 2.0, np.inf])}, "b": {"x": np.array([1.0, 1.0, 1.0])}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = evaluation.summarize(per_map, n_boot=50)
        row = evaluation.format_table(s).splitlines()[2]
    assert s["a"]["x"]["median"] == 2.0 and np.isnan(s["a"]["x"]["sem_boot"])
    assert row.split()[2:] == ["inf", "(2)", "1", "±", "0", "(1)"]  # and no star


def test_wmape_note_only_for_exploded_values():
    summary = {"ks93": {"wmape": _stats(3.2)}, "unet": {"wmape": _stats(1.5)}}
    assert evaluation.wmape_note(summary) is None
    table = evaluation.format_table(summary)
    assert "note:" not in table and table.splitlines()[2].endswith("*")
    summary["ks93"]["wmape"] = _stats(4.2e40)
    note = evaluation.wmape_note(summary)
    assert note.startswith("WMAPE of ks93 is above 1e+06 (up to 4.2e+40)")
    assert "DICEE, DPEAKS, RMSE and r" in note
    lines = evaluation.format_table(summary).splitlines()
    assert lines[-1] == f"note: {note}"
    assert "*" not in lines[2]  # an exploded WMAPE ranks nothing


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"transpose": True},
        {"negate_e1": True},
        {"negate_e2": True},
        {"negate_e1": True, "negate_e2": True, "transpose": True},
    ],
)
def test_convention_scores_recovers_variant(variant):
    eps, kappa = make_sample(6, 0.1, seed=6)
    rows = evaluation.convention_scores(apply_convention(eps, **variant), kappa)
    assert len(rows) == 8
    best = rows[0]
    expected = {k: variant.get(k, False) for k in ("negate_e1", "negate_e2", "transpose")}
    assert {k: best[k] for k in expected} == expected
    assert best["identity"] == (not variant)
    assert best["mean_r"] > 0.5 and best["mean_r"] > rows[1]["mean_r"] + 0.1
    assert [row["mean_r"] for row in rows] == sorted((row["mean_r"] for row in rows), reverse=True)


def test_calibration_set_uses_calibration_seeds():
    eps, kappa = evaluation.calibration_set(2)
    ref_eps, ref_kappa = simulate_batch(2, seed=constants.CALIBRATION_SEED_START)
    assert eps.shape == (2, 128, 128, 3) and kappa.shape == (2, 128, 128)
    np.testing.assert_array_equal(eps, ref_eps)
    np.testing.assert_array_equal(kappa, ref_kappa)
    test_eps, _ = simulate_batch(1, seed=constants.TEST_SEED_START)
    assert not np.array_equal(eps[0], test_eps[0])
    with pytest.raises(ValueError, match="n must be"):
        evaluation.calibration_set(0)
