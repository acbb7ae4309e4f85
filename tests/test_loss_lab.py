"""benchmarks.loss_lab without TensorFlow: the config, labels, tables and statistics."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import loss_lab, loss_lab_report, loss_lab_scores
from lensviz import constants
from lensviz.lab import load_lab

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cfg():
    return loss_lab.load_config()


def test_the_lab_holds_every_variant_the_issue_asks_for(cfg):
    by_name = {v.name: v for v in cfg.variants}
    train = [v for v in cfg.variants if v.kind == "train" and v.init == "warm"]
    assert any("mse" in v.name and v.loss == "mse" for v in train)
    assert any(v.loss == "focal" for v in train)
    assert by_name["multifocal"].coeffs == constants.MULTIFOCAL_COEFFS
    # MultiFocal with each of the five components removed in turn, the others the report's
    for component in constants.MULTIFOCAL_COMPONENTS:
        removed = [
            v
            for v in train
            if v.loss == "multifocal"
            and v.coeffs[component] == 0
            and all(
                v.coeffs[k] == a for k, a in constants.MULTIFOCAL_COEFFS.items() if k != component
            )
        ]
        assert len(removed) == 1, component
    # the Combined fine-tune of the MultiFocal model toward each metric
    aims = {v.metric for v in cfg.variants if v.kind == "finetune" and v.init == "multifocal"}
    assert aims == {"wmape", "dicee", "dpeaks"}
    # one budget for every training variant, none stopped early
    assert cfg.train["patience"] >= cfg.train["epochs"]
    assert len({cfg.steps(v) for v in train}) == 1


def test_labels_and_groups_say_what_each_variant_is(cfg):
    labels = {v.name: loss_lab_report.variant_label(v) for v in cfg.variants}
    assert labels["mse"] == "MSE" and labels["multifocal"] == "MultiFocal"
    assert labels["mf_no_peaks"] == "MultiFocal − peaks"
    assert labels["scratch_mse"] == "MSE (scratch)"
    assert labels["ft_dicee"] == "fine-tune → DICEE"
    assert labels["ft_dicee_decoder"] == "fine-tune → DICEE (decoder)"
    assert labels["ft_dicee_all"] == "fine-tune → DICEE (all layers)"
    # a fine-tune's own settings over the [finetune] table, and its budget from them
    assert cfg.finetune_settings(cfg.variant("ft_dicee_all"))["which"] == "all"
    assert cfg.finetune_settings(cfg.variant("ft_dicee"))["which"] == "last"
    assert cfg.steps(cfg.variant("ft_dicee_all")) == cfg.steps(cfg.variant("mse")) == 2400
    assert loss_lab_report.variant_label(cfg.variant("mse"), seed=1) == "MSE · seed 1"
    groups = {v.name: loss_lab_report.variant_group(v) for v in cfg.variants}
    assert groups["mse"] == groups["focal"] == "plain"
    assert groups["multifocal"] == "multifocal" and groups["mf_no_edges"] == "ablation"
    assert groups["scratch_multifocal"] == "scratch" and groups["ft_wmape"] == "finetune"


def _write(tmp_path, text):
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("patience = 6", "patience = 2", "early stopping would give the variants"),
        ('name = "focal"\nloss = "focal"', 'name = "focal"\nloss = "mae"', "has loss 'mae'"),
        ("coeffs = { peaks = 0.0 }", "coeffs = { peak = 0.0 }", "unknown MultiFocal components"),
        ('metric = "dpeaks"', 'metric = "r"', "aims at 'r'"),
        ('name = "focal"', 'name = "mse"', "appears twice"),
        ("epochs = 6", 'epochs = "6"', "expected a int"),
        ('depth = "30"\nmetric', 'depth = "20"\nmetric', "[moonshot] depth '20' is not scored"),
        ("share = 0.5", "share = 1.0", "share must be in (0, 1)"),
        ("n_samples = 4800", "n_samples = 0", "has n_samples = 0"),
        ('which = "all"', 'which = "encoder"', "trains 'encoder'"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(tmp_path, old, new, message):
    text = loss_lab.CONFIG_PATH.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ValueError, match=re.escape(message)):
        loss_lab.load_config(_write(tmp_path, text.replace(old, new, 1)))


def test_kendall_tau_and_ratio_gain_on_known_answers():
    assert loss_lab_scores._kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert loss_lab_scores._kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert loss_lab_scores._kendall_tau(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx(1 / 3)
    a, b = np.array([0.9, 0.9, 0.9, 0.9]), np.array([1.0, 1.0, 1.0, 1.0])
    g = loss_lab_scores._ratio_gain(a, b, 100, higher_better=False)
    assert g["gain"] == pytest.approx(0.1) and g["sem_boot"] == pytest.approx(0.0)
    # for r: the share of the missing correlation recovered, (0.8 − 0.6) / (1 − 0.6)
    g = loss_lab_scores._ratio_gain(np.full(4, 0.8), np.full(4, 0.6), 100, higher_better=True)
    assert g["gain"] == pytest.approx(0.5)
    assert loss_lab_report._fmt(0.123456, 0.0123) == "0.123 ± 0.012"
    assert loss_lab_report._fmt(104.83, 6.07) == "104.8 ± 6.1"
    assert loss_lab_report._fmt(1.5, 0.0) == "1.5"


def test_the_lab_module_never_imports_tensorflow():
    code = (
        "import sys, benchmarks.loss_lab, benchmarks.loss_lab_report, lensviz.lab; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# === The shipped lab: its files say what lab.json says ===


@pytest.fixture(scope="module")
def shipped_lab(cfg):
    return load_lab(cfg.weights / "lab.json")


def test_every_shipped_lab_model_is_the_file_lab_json_names(cfg, shipped_lab):
    assert shipped_lab.names == tuple(v.name for v in cfg.variants)
    for record in shipped_lab.raw["variants"]:
        path = cfg.weights / record["file"]
        assert path.stat().st_size == record["bytes"]
        assert loss_lab.sha256(path) == record["sha256"], path.name
        assert record["steps"] == cfg.steps(cfg.variant(record["name"]))
    assert sum(p.stat().st_size for p in cfg.weights.iterdir()) < 40e6  # kept in git
    assert {p.name for p in cfg.weights.glob("*.keras")} == {
        f"{n}.keras" for n in shipped_lab.names
    }


def test_the_lab_docs_are_what_the_report_stage_writes_from_lab_json(cfg, shipped_lab):
    figure = Path(os.path.relpath(cfg.figure, cfg.weights)).as_posix()
    readme = (cfg.weights / "README.md").read_text(encoding="utf-8")
    assert readme == loss_lab_report.readme(shipped_lab, figure)
    block = loss_lab_report.readme_block(
        shipped_lab, Path(os.path.relpath(cfg.figure, ROOT)).as_posix()
    )
    assert block in (ROOT / "README.md").read_text(encoding="utf-8")
    assert cfg.figure.is_file()
    for name in shipped_lab.names:  # the table has every variant
        assert f"| `{name}` " in readme


def test_the_shipped_scores_hold_every_method_at_every_depth(cfg, shipped_lab):
    assert shipped_lab.depths == tuple(cfg.score["depths"])
    n_maps, seed = shipped_lab.test_maps
    assert (n_maps, seed) == (cfg.score["n_maps"], cfg.score["seed"])
    for depth in shipped_lab.depths:
        for name in (*shipped_lab.names, "shipped", "wiener", "ks93_best", "ks93_rule"):
            for metric in ("rmse", "r", "wmape", "dicee", "dpeaks"):
                mean, se = shipped_lab.point(name, depth, metric)
                assert np.isfinite(mean) and se > 0, (name, depth, metric)
