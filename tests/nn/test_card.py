"""Model cards (lensviz.nn.card): the shipped card is complete, and its weights reproduce it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lensviz.nn.card import CARD_DEPTHS, card_markdown

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"


def test_model_card_exists_and_is_complete():
    card = json.loads((WEIGHTS / "lite.json").read_text())
    md = (WEIGHTS / "lite.md").read_text()
    assert card["file"] == "lite.keras" and card["params"] > 0
    assert "python -m lensviz train" in card["command"]
    assert card["evaluation"]["test_set"]["n_maps_per_depth"] >= 150
    assert list(card["evaluation"]["depths"]) == list(CARD_DEPTHS)
    for result in card["evaluation"]["depths"].values():
        for method in ("unet", "ks93_raw", "ks93_smoothed", "wiener"):
            for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
                assert {"mean", "median", "sem_boot"} <= set(result["summary"][method][metric])
    assert card["training_summary"]["steps"] > 1000
    assert card["training_domain"]["noise_free"]
    assert "## Held-out test fields at every depth" in md and card["sha256"] in md
    assert md == card_markdown(card)  # the Markdown is the JSON, rendered
    assert card["config"]["field_features"] and "field-aware inputs" in md  # v3 says so
    for section in ("errorbars", "fields", "scales", "cosmos"):  # its benchmarks travel with it
        assert section in card, section
    assert (WEIGHTS / "lite.keras").stat().st_size < 10e6


@pytest.mark.slow  # scores 150 maps at two depths with four methods
def test_shipped_weights_reproduce_their_card_in_a_fresh_process():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from lensviz.nn.card import test_set_scores\n"
        f"card = json.load(open({str(WEIGHTS / 'lite.json')!r}))\n"
        "t = card['evaluation']['test_set']\n"
        f"s = test_set_scores({str(WEIGHTS / 'lite.keras')!r}, t['n_maps_per_depth'], "
        "t['seeds'][0], depths=('30', 'inf'))\n"
        "print(json.dumps(s['depths']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    card = json.loads((WEIGHTS / "lite.json").read_text())["evaluation"]["depths"]
    for spec in ("30", "inf"):
        for method in ("unet", "ks93_smoothed", "ks93_raw", "wiener"):
            for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
                for stat in ("mean", "median"):
                    assert fresh[spec]["summary"][method][metric][stat] == pytest.approx(
                        card[spec]["summary"][method][metric][stat], rel=1e-4, abs=1e-6
                    ), (spec, method, metric, stat)
