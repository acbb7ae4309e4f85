"""benchmarks.loss_lab without TensorFlow: the config, labels, tables and statistics."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import loss_lab
from lensviz import constants

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
    labels = {v.name: loss_lab.variant_label(v) for v in cfg.variants}
    assert labels["mse"] == "MSE" and labels["multifocal"] == "MultiFocal"
    assert labels["mf_no_peaks"] == "MultiFocal − peaks"
    assert labels["scratch_mse"] == "MSE (scratch)"
    assert labels["ft_dicee"] == "fine-tune → DICEE"
    assert labels["ft_dicee_decoder"] == "fine-tune → DICEE (decoder)"
    assert loss_lab.variant_label(cfg.variant("mse"), seed=1) == "MSE · seed 1"
    groups = {v.name: loss_lab.variant_group(v) for v in cfg.variants}
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
    ],
)
def test_bad_configs_are_refused_naming_the_key(tmp_path, old, new, message):
    text = loss_lab.CONFIG_PATH.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ValueError, match=re.escape(message)):
        loss_lab.load_config(_write(tmp_path, text.replace(old, new, 1)))


def test_kendall_tau_and_ratio_gain_on_known_answers():
    assert loss_lab._kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert loss_lab._kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert loss_lab._kendall_tau(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx(1 / 3)
    a, b = np.array([0.9, 0.9, 0.9, 0.9]), np.array([1.0, 1.0, 1.0, 1.0])
    g = loss_lab._ratio_gain(a, b, 100, higher_better=False)
    assert g["gain"] == pytest.approx(0.1) and g["sem_boot"] == pytest.approx(0.0)
    # for r: the share of the missing correlation recovered, (0.8 − 0.6) / (1 − 0.6)
    g = loss_lab._ratio_gain(np.full(4, 0.8), np.full(4, 0.6), 100, higher_better=True)
    assert g["gain"] == pytest.approx(0.5)
    assert loss_lab._fmt(0.123456, 0.0123) == "0.123 ± 0.012"
    assert loss_lab._fmt(104.83, 6.07) == "104.8 ± 6.1"
    assert loss_lab._fmt(1.5, 0.0) == "1.5"


def test_the_lab_module_never_imports_tensorflow():
    code = (
        "import sys, benchmarks.loss_lab, lensviz.lab, lensviz.plots.lab; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
