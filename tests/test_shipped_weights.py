"""The shipped weights load in a fresh process and give the metrics on their model card."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"


def test_model_card_exists_and_is_complete():
    card = json.loads((WEIGHTS / "lite.json").read_text())
    md = (WEIGHTS / "lite.md").read_text()
    assert card["file"] == "lite.keras" and card["params"] > 0
    assert "python -m lensviz train" in card["command"]
    assert card["evaluation"]["test_set"]["n_maps"] >= 500
    for method in ("unet", "ks93_raw", "ks93_smoothed", "wiener"):
        for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
            stats = card["evaluation"]["summary"][method][metric]
            assert {"mean", "median"} <= set(stats)
    assert card["training_summary"]["steps"] > 1000
    assert "## Held-out test set" in md and card["sha256"] in md
    assert (WEIGHTS / "lite.keras").stat().st_size < 10e6


def test_shipped_weights_reproduce_their_card_in_a_fresh_process():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from lensviz.nn.card import test_set_scores\n"
        f"card = json.load(open({str(WEIGHTS / 'lite.json')!r}))\n"
        "t = card['evaluation']['test_set']\n"
        f"s = test_set_scores({str(WEIGHTS / 'lite.keras')!r}, t['n_maps'], t['seeds'][0])\n"
        "print(json.dumps(s['summary']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=900, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    card = json.loads((WEIGHTS / "lite.json").read_text())["evaluation"]["summary"]
    for method in ("unet", "ks93_smoothed", "ks93_raw", "wiener"):
        for metric in ("wmape", "dicee", "dpeaks", "rmse", "r"):
            for stat in ("mean", "median"):
                assert fresh[method][metric][stat] == pytest.approx(
                    card[method][metric][stat], rel=1e-4, abs=1e-6), (method, metric, stat)
