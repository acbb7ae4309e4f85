"""lensviz.lab (the loss lab's results, Pareto fronts, closest variant) and its figure."""

import json

import numpy as np
import pytest

from lensviz import constants
from lensviz.data.errors import DataError, LimitError
from lensviz.lab import (
    MAX_RESULTS_BYTES,
    LabVariant,
    closest_variant,
    coefficient_shares,
    load_lab,
    pareto_front,
)
from lensviz.plots.lab import pareto_figure

REPORT = dict(constants.MULTIFOCAL_COEFFS)


def _variant(name, loss="multifocal", kind="train", init="warm", **coeffs):
    c = None if loss == "mse" else {**REPORT, **coeffs}
    return LabVariant(name, kind, loss, c, None, init, 10, 0, "", f"{name}.keras")


VARIANTS = [
    _variant("mse", loss="mse"),
    _variant("focal", loss="focal", local=0, peaks=0, structure=0, edges=0),
    _variant("multifocal"),
    _variant("mf_no_peaks", peaks=0),
    _variant("mf_no_edges", edges=0),
    _variant("scratch_multifocal", init="scratch"),
    _variant("ft_dicee", loss="combined", kind="finetune", init="multifocal"),
]


def test_pareto_front_keeps_the_points_nothing_beats_on_both_scores():
    x = [1.0, 2.0, 3.0, 2.0, 2.0, np.nan]
    y = [3.0, 1.0, 0.0, 2.0, 1.0, 0.0]
    # (2, 2) is beaten by (2, 1); the two (2, 1) tie and neither beats the other; NaN is out
    assert pareto_front(x, y).tolist() == [True, True, True, False, True, False]
    assert pareto_front([1.0], [1.0]).tolist() == [True]
    with pytest.raises(ValueError, match="one length"):
        pareto_front([1.0, 2.0], [1.0])


def test_coefficient_shares_are_scale_free_and_zero_for_mse():
    shares = coefficient_shares(REPORT)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[constants.MULTIFOCAL_COMPONENTS.index("peaks")] == pytest.approx(3 / 8.5)
    np.testing.assert_allclose(coefficient_shares({k: 4 * a for k, a in REPORT.items()}), shares)
    assert coefficient_shares(None).tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="unknown MultiFocal components"):
        coefficient_shares({"nope": 1.0})


def test_closest_variant_matches_slider_settings_to_training_variants():
    assert closest_variant(REPORT, VARIANTS) == ("multifocal", 0.0)
    # scaling every coefficient trains the same loss
    assert closest_variant({k: 2 * a for k, a in REPORT.items()}, VARIANTS)[0] == "multifocal"
    assert closest_variant({**REPORT, "peaks": 0.0}, VARIANTS) == ("mf_no_peaks", 0.0)
    assert closest_variant({**REPORT, "peaks": 0.2}, VARIANTS)[0] == "mf_no_peaks"
    only_focal = {k: float(k == "focal") for k in REPORT}
    assert closest_variant(only_focal, VARIANTS) == ("focal", 0.0)
    # neither the from-scratch control nor a fine-tune is ever the answer
    for coeffs in (REPORT, only_focal, {**REPORT, "edges": 0.0}):
        assert closest_variant(coeffs, VARIANTS)[0] not in ("scratch_multifocal", "ft_dicee")
    with pytest.raises(ValueError, match="no training variant"):
        closest_variant(REPORT, VARIANTS[-2:])


def _lab_json(variants=("mse", "multifocal")):
    summary = {
        n: {m: {"mean": 0.1, "sem_boot": 0.01} for m in ("rmse", "dicee", "dpeaks")}
        for n in (*variants, "ks93_best")
    }
    return {
        "variants": [
            {
                "name": n,
                "kind": "train",
                "loss": "mse" if n == "mse" else "multifocal",
                "coeffs": None if n == "mse" else REPORT,
                "init": "warm",
                "steps": 2400,
                "seed": 0,
                "file": f"{n}.keras",
            }
            for n in variants
        ],
        "scores": {"30": {"label": "30 gal/arcmin²", "summary": summary}},
        "labels": {"mse": "MSE"},
    }


def test_load_lab_reads_the_results_and_refuses_what_is_not_them(tmp_path):
    path = tmp_path / "lab.json"
    with pytest.raises(FileNotFoundError, match="benchmarks.loss_lab"):
        load_lab(path)
    path.write_text(json.dumps(_lab_json()))
    lab = load_lab(path)
    assert lab.names == ("mse", "multifocal") and lab.depths == ("30",)
    assert lab.point("mse", "30", "dicee") == (0.1, 0.01)
    assert lab.label("mse") == "MSE" and lab.label("multifocal") == "multifocal"
    assert lab.variant("multifocal").shares().sum() == pytest.approx(1.0)
    assert lab.model_path("mse") is None  # named, but not in the folder
    (tmp_path / "mse.keras").write_bytes(b"")
    assert lab.model_path("mse") == tmp_path / "mse.keras"
    with pytest.raises(KeyError, match="no 'r' of 'mse'"):
        lab.point("mse", "30", "r")

    bad = _lab_json()
    bad["variants"][0]["file"] = "../../etc/x.keras"
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="names the file"):
        load_lab(path)
    bad = _lab_json()
    del bad["scores"]["30"]["summary"]["multifocal"]
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"no scores for \['multifocal'\]"):
        load_lab(path)
    bad = _lab_json()
    bad["variants"][1]["coeffs"] = {"focal": -1}
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="variant record is malformed"):
        load_lab(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON file"):
        load_lab(path)
    path.write_bytes(b" " * (MAX_RESULTS_BYTES + 1))
    with pytest.raises(LimitError, match="lab.json"):
        load_lab(path)


def _points():
    def point(name, group, rmse, dicee):
        return {
            "name": name,
            "label": name.upper(),
            "group": group,
            "rmse": (rmse, 0.001),
            "dicee": (dicee, 0.01),
            "dpeaks": (100.0, 5.0),
        }

    return [
        point("mse", "plain", 0.014, 0.31),
        point("multifocal", "multifocal", 0.015, 0.30),
        point("mf_no_peaks", "ablation", 0.016, 0.32),  # dominated
        point("ks93_best", "baseline", 0.018, 0.29),
    ]


def test_pareto_figure_draws_each_point_once_per_panel_and_its_front():
    fig = pareto_figure(
        {"30": _points()}, highlight="multifocal", targets={"30": {"dicee": 0.27, "rmse": 0.0147}}
    )
    points = [t for t in fig.data if t.mode != "lines"]
    assert len(points) == 2 * 4  # two panels
    assert sum(t.showlegend for t in points) == 4  # one legend entry per model
    ringed = [t for t in points if t.marker.line.width == 3]
    assert [t.name for t in ringed] == ["MULTIFOCAL", "MULTIFOCAL"]
    front = [t for t in fig.data if t.mode == "lines"]
    # the DICEE panel's front: mse and multifocal (mf_no_peaks is beaten; KS93 does not compete)
    assert sorted(front[0].x) == [0.30, 0.31]
    assert len(fig.layout.shapes) == 1  # the target, on the DICEE panel only
    with pytest.raises(ValueError, match="unknown group"):
        pareto_figure({"30": [{**_points()[0], "group": "nope"}]})
    with pytest.raises(ValueError, match="has no 'dpeaks'"):
        pareto_figure({"30": [{k: v for k, v in _points()[0].items() if k != "dpeaks"}]})
