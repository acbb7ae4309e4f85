"""The scoring commands of the CLI (lensviz.cli.evaluate) with a UNet: evaluate --weights."""

import json


def test_evaluate_scores_the_unet_beside_ks93(tmp_path, run_cli, tiny_weights, dataset):
    path, _, _ = dataset
    status, out, _ = run_cli(
        "evaluate", path, "--weights", tiny_weights, "--sigma", 2, "--json", tmp_path / "e.json"
    )
    assert status == 0
    summary = json.loads((tmp_path / "e.json").read_text())["summary"]
    assert {"unet", "ks93_raw", "ks93_smoothed"} <= set(json.dumps(summary).split('"'))
    assert "unet" in out
