"""lensviz.reliability: the measured coverage of a card or a benchmark, the nearest depth,
and the number of noise maps that makes detections stable."""

from __future__ import annotations

import json
import math

import pytest

from lensviz.reliability import (
    coverage_at,
    nearest_depth,
    read_coverage,
    stable_noise_maps,
)

DEPTHS = ("5", "10", "30", "100", "300", "inf")


def stats(c68: float, c95: float, std: float) -> dict:
    return {"coverage_68": c68, "coverage_95": c95, "mean_std": std}


def test_a_card_and_a_benchmark_read_alike(tmp_path):
    card = {
        "name": "lite",
        "errorbars": {
            "depths": {
                d: {
                    "unet": {"masked_tiles": stats(0.68, 0.95, 0.01 * (i + 1))},
                    "ks93_rule": {"fields_384": stats(0.70, 0.96, 0.02)},
                }
                for i, d in enumerate(DEPTHS)
            }
        },
    }
    bench = {
        "coverage": {
            d: {
                "masked_tiles": {
                    "unet": {"all": stats(0.68, 0.95, 0.01 * (i + 1)), "edge": stats(0.5, 0.9, 1)}
                },
                "fields_384": {"ks93_rule": {"all": stats(0.70, 0.96, 0.02)}},
                "unet_std_over_wiener": 0.8,
            }
            for i, d in enumerate(DEPTHS)
        }
    }
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    # A card may carry the benchmark's own layout under "errorbars" too.
    (tmp_path / "card2.json").write_text(json.dumps({"sha256": "x", "errorbars": bench}))
    a = read_coverage(tmp_path / "card.json")
    b = read_coverage(tmp_path / "bench.json")
    assert a == b == read_coverage(tmp_path / "card2.json")
    assert set(a) == set(DEPTHS) and set(a["30"]) == {"unet", "ks93_rule"}
    got = coverage_at(a, 33.0, "unet", "masked_tiles")
    assert (got.depth, got.coverage_68, got.coverage_95, got.mean_std) == ("30", 0.68, 0.95, 0.03)
    assert got.n_gal == 30.0
    assert coverage_at(a, math.inf, "unet", "masked_tiles").depth == "inf"
    assert coverage_at(a, 30.0, "unet", "fields_384") is None  # not measured
    assert coverage_at(a, 30.0, "wiener", "masked_tiles") is None
    # A card without coverage yet holds none.
    (tmp_path / "old.json").write_text(json.dumps({"name": "lite"}))
    assert read_coverage(tmp_path / "old.json") == {}


def test_nearest_depth_in_log_galaxy_density():
    assert nearest_depth(7.0, DEPTHS) == "5"  # |ln 7/5| < |ln 7/10|
    assert nearest_depth(7.1, DEPTHS) == "10"
    assert nearest_depth(173.0, DEPTHS) == "100" and nearest_depth(174.0, DEPTHS) == "300"
    assert nearest_depth(2999.0, DEPTHS) == "300" and nearest_depth(3000.0, DEPTHS) == "inf"
    assert nearest_depth(math.inf, ("5", "30")) == "30"  # no "inf" node: the deepest
    assert nearest_depth(30.0, ()) is None


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"coverage": {"30": {"masked_tiles": {"unet": stats(1.2, 0.9, 0.1)}}}}, "from 0 to 1"),
        ({"coverage": {"30": {"masked_tiles": {"unet": stats(0.6, "x", 0.1)}}}}, "a number"),
        ({"coverage": {"nan": {}}}, "a depth is"),
        ({"coverage": {"-3": {}}}, "a depth is"),
        ({"coverage": {"30": {"masked_tiles": {"unet": stats(0.6, 0.9, -1)}}}}, "mean_std"),
        ({"coverage": [1, 2]}, "object of depths"),
    ],
)
def test_bad_coverage_is_refused_naming_the_entry(tmp_path, bad, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=match):
        read_coverage(path)


def test_not_json_and_too_large_are_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_coverage(path)
    path.write_bytes(b" " * 4_000_001)
    with pytest.raises(ValueError, match="bytes"):
        read_coverage(path)


def test_stable_noise_maps_is_the_fewest_from_which_on_every_method_agrees(tmp_path):
    runs = {
        "50": {"unet": {"agreement": 0.4}, "wiener": {"agreement": 1.0}},
        "100": {"unet": {"agreement": 0.85}, "wiener": {"agreement": 0.95}},
        "200": {"unet": {"agreement": 0.92}, "wiener": {"agreement": 0.9}},
        "400": {"unet": {"agreement": 0.95}, "wiener": {"agreement": 1.0}},
    }
    path = tmp_path / "detections.json"
    path.write_text(json.dumps({"runs": runs}))
    n, table = stable_noise_maps(path)
    assert n == 200 and table[100] == {"unet": 0.85, "wiener": 0.95}
    assert stable_noise_maps(path, threshold=0.99)[0] is None
    # Agreement at 50 maps that breaks at 100 is luck: stable from 200 on (the first
    # COSMOS run: Wiener's 2 detections at 50, 3 or 2 at 100, 3 from 200).
    runs["50"] = {"unet": {"agreement": 1.0}, "wiener": {"agreement": 1.0}}
    runs["100"] = {"unet": {"agreement": 1.0}, "wiener": {"agreement": 0.67}}
    path.write_text(json.dumps({"runs": runs}))
    assert stable_noise_maps(path)[0] == 200
    path.write_text(json.dumps({"runs": {"50": {"unet": {"agreement": 2}}}}))
    with pytest.raises(ValueError, match="from 0 to 1"):
        stable_noise_maps(path)
    path.write_text(json.dumps({"runs": {"fifty": {"unet": {"agreement": 1}}}}))
    with pytest.raises(ValueError, match="whole number"):
        stable_noise_maps(path)
