"""AppTests of the Fine-tune, Evaluate and Learn pages.

The app runs in-process (``AppTest``) on the built-in simulated set with a tiny untrained
UNet. As in ``test_app_pages.py``, the weights folders are pointed at temporary ones by
monkeypatching ``ui.shared`` (the module AppTest's ``app.py`` imports is this very
one), so the order in which test modules set the environment does not matter. The
job manager is the server's one (``shared.job_manager``, an ``st.cache_resource``),
which AppTest shares with this process.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from streamlit.testing.v1 import AppTest

from ui import shared
from lensviz.evaluation import default_power_spectrum
from lensviz.nn.training import TrainingCancelled

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 90  # seconds per AppTest run
JOB_TIMEOUT = 180  # seconds a tiny fine-tuning run may take


# === Fixtures and helpers ===


@pytest.fixture(scope="module")
def weights_dirs(tmp_path_factory):
    """Shipped: one tiny untrained UNet; fine-tuned: an empty folder. Yields both."""
    from lensviz.nn.model import UNetConfig, build_unet, save_model

    shipped = tmp_path_factory.mktemp("shipped")
    user = tmp_path_factory.mktemp("finetuned")
    save_model(build_unet(UNetConfig(base_filters=4, max_filters=8, depth=3, pad=0,
                                     n_decoder_dropout=1)), shipped / "tiny.keras")
    mp = pytest.MonkeyPatch()
    mp.setattr(shared, "SHIPPED_WEIGHTS_DIR", shipped)
    mp.setattr(shared, "USER_WEIGHTS_DIR", user)
    yield shipped, user
    mp.undo()


@pytest.fixture(scope="module")
def app(weights_dirs) -> AppTest:
    """One app session for the module (the first run pays the TensorFlow import)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"ui/pages/{page}.py").run()
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def wait_for_idle_manager(timeout: float = JOB_TIMEOUT) -> None:
    job = shared.job_manager().running()
    if job is not None:
        job.cancel()
        assert job.wait(timeout), f"job {job.name!r} did not stop"


def wait_until(at: AppTest, done, timeout: float = JOB_TIMEOUT) -> None:
    """Rerun the page (as the polling fragment would) until ``done(at)`` or timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
    raise AssertionError(f"timed out after {timeout} s; warnings {texts(at.warning)}, "
                         f"errors {texts(at.error)}")


def tiny_run_settings(at: AppTest, name: str, start: str | None = None) -> None:
    if start is not None:
        at.selectbox(key="ft_start").set_value(start)
    at.select_slider(key="ft_samples").set_value(16)
    at.select_slider(key="ft_val").set_value(8)
    at.number_input(key="ft_epochs").set_value(1)
    at.text_input(key="ft_name").input(name)
    at.run()
    assert not at.exception


# === Evaluate ===


def test_evaluate_shows_summary_histograms_and_per_sample_table(app):
    at = open_page(app, "evaluate")
    assert not at.exception
    summary = next(d.value for d in at.dataframe if "method" in d.value.columns)
    methods = {"UNet", "KS93 raw", next(m for m in summary["method"] if "smoothed" in m)}
    if default_power_spectrum() is not None:  # the shipped κ power spectrum
        methods.add("Wiener")
    assert set(summary["method"]) == methods
    assert len(summary) == len(methods) * 5  # five metrics per method
    assert {"mean", "median", "std", "± s.e. (bootstrap)"} <= set(summary.columns)
    assert (summary["± s.e. (bootstrap)"] >= 0).all()
    per_sample = [d.value for d in at.dataframe if "sample" in d.value.columns]
    assert len(per_sample) == 1 and len(per_sample[0]) == len(shared.builtin_set(0)[0])
    assert any("Summary over 24 maps" in s for s in texts(at.subheader))

    at.slider(key="eval_n").set_value(6).run()
    assert not at.exception
    assert any("Summary over 6 maps" in s for s in texts(at.subheader))
    per_sample = [d.value for d in at.dataframe if "sample" in d.value.columns][0]
    assert len(per_sample) == 6


def test_open_sample_selects_it_on_compare(weights_dirs):
    """What a click in Evaluate's per-sample table leaves for the next run of the app.

    AppTest cannot click table rows: the request ``shared.open_sample`` stores is set
    directly, and the next run of the app must apply it to the sidebar.
    """
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["_open_sample"] = 5  # what shared.open_sample stores
    at.run()
    assert not at.exception
    assert at.number_input(key="sample_index").value == 5
    assert "_open_sample" not in at.session_state  # applied once, then forgotten


# === Learn ===


def test_learn_defaults_and_noise_slider_changes_the_numbers(app):
    at = open_page(app, "learn")
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 6
    before = {m.label: (m.value, m.help) for m in at.metric}
    assert before["Galaxies per pixel"][0] == "7.50"  # 30 per arcmin² × 0.25 arcmin²
    at.select_slider(key="learn_ngal").set_value(3).run()
    assert not at.exception
    after = {m.label: (m.value, m.help) for m in at.metric}
    assert after["Galaxies per pixel"][0] == "0.75"
    raw = "RMSE · KS93 raw"
    assert float(after[raw][0]) > float(before[raw][0])  # fewer galaxies, noisier KS93
    # Every method responds: its RMSE or its Pearson r (shown as the metric's help) moves.
    # (The tiny untrained UNet's output is nearly flat, so its RMSE may not move at 4 digits.)
    methods = [k for k in before if k.startswith("RMSE")]
    assert len(methods) == 3
    assert all(before[k] != after[k] for k in methods), (before, after)


def test_learn_mass_sheet_leaves_the_shear_unchanged(app):
    at = open_page(app, "learn")
    at.slider(key="learn_sheet").set_value(0.1).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert float(values["Largest shear difference"]) < 1e-6
    assert abs(float(values["Mean of KS93 κ"])) < 1e-6
    assert float(values["Mean κ + κ₀"]) == pytest.approx(float(values["Mean κ"]) + 0.1,
                                                         abs=2e-4)


# === Fine-tune ===


def test_finetune_defaults(app):
    wait_for_idle_manager()
    at = open_page(app, "finetune")
    assert not at.exception
    assert not at.button(key="ft_start_button").disabled
    assert at.selectbox(key="ft_start").value == "tiny (shipped)"
    assert at.number_input(key="ft_term_multifocal").value == pytest.approx(0.95)
    assert at.number_input(key="ft_term_wmape").value == pytest.approx(0.05)
    assert at.radio(key="ft_which").value == "last"


def test_finetune_output_name_is_sanitised_and_shipped_names_refused(app):
    at = open_page(app, "finetune")
    at.text_input(key="ft_name").input("my run #1/../x").run()
    assert any("my_run_1_x.keras" in c for c in texts(at.caption))
    at.text_input(key="ft_name").input("tiny").run()
    assert any("shipped" in e for e in texts(at.error))
    assert at.button(key="ft_start_button").disabled


@pytest.mark.slow
def test_tiny_finetune_completes_and_registers_weights(app, weights_dirs):
    _, user = weights_dirs
    wait_for_idle_manager()
    at = open_page(app, "finetune")
    tiny_run_settings(at, "tiny run")
    at.button(key="ft_start_button").click().run()
    assert not at.exception
    wait_until(at, lambda a: bool(a.success) or bool(a.error))
    assert not texts(at.error), texts(at.error)
    assert any("tiny_run.keras" in s for s in texts(at.success))
    assert (user / "tiny_run.keras").is_file()
    assert (user / "tiny_run.json").is_file()  # the settings and metrics beside it
    assert shared.available_models()["tiny_run (fine-tuned)"] == str(user / "tiny_run.keras")
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["metric", "before", "after"]
    at.run()  # the sidebar and the start list rescan the folder on every run
    assert "tiny_run (fine-tuned)" in at.selectbox(key="ft_start").options
    # The next run is offered a fresh name, so Start is not blocked by the file just written.
    assert at.text_input(key="ft_name").value == "tiny_run-2"
    assert not at.button(key="ft_start_button").disabled


def test_failed_finetune_shows_the_error_and_writes_nothing(app, weights_dirs):
    _, user = weights_dirs
    broken = user / "zz_broken.keras"
    broken.write_bytes(b"not a zip file")
    try:
        wait_for_idle_manager()
        at = open_page(app, "finetune")
        tiny_run_settings(at, "from broken", start="zz_broken (fine-tuned)")
        at.button(key="ft_start_button").click().run()
        wait_until(at, lambda a: bool(a.error) or bool(a.success))
        assert any("failed" in e and "corrupt" in e for e in texts(at.error)), texts(at.error)
        assert not (user / "from_broken.keras").exists()
    finally:
        broken.unlink()
        at.run()


def test_busy_message_while_another_session_trains(app):
    wait_for_idle_manager()
    release = threading.Event()

    def other_session_job(on_progress, cancel):
        while not release.wait(0.02):
            if cancel.is_set():
                raise TrainingCancelled("cancelled")

    job = shared.job_manager().start("fine-tune by someone else", other_session_job)
    try:
        at = open_page(app, "finetune")
        assert not at.exception
        warnings = " ".join(texts(at.warning))
        assert "busy" in warnings and "fine-tune by someone else" in warnings
        assert at.button(key="ft_start_button").disabled
    finally:
        release.set()
        assert job.wait(10)
    at.run()
    assert not at.button(key="ft_start_button").disabled


def test_pages_without_any_weights(weights_dirs, tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "SHIPPED_WEIGHTS_DIR", tmp_path / "none")
    monkeypatch.setattr(shared, "USER_WEIGHTS_DIR", tmp_path / "none_either")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    open_page(at, "evaluate")
    assert not at.exception
    assert any("only KS93" in i for i in texts(at.info))
    summary = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert "UNet" not in set(summary["method"])
    open_page(at, "learn")
    assert not at.exception
    assert not any(m.label == "RMSE · UNet" for m in at.metric)
    open_page(at, "finetune")
    assert not at.exception
    assert any("No weights to start from" in w for w in texts(at.warning))
