"""The Fine-tune page: settings, names, a tiny run, failures, and the shared job slot."""

from __future__ import annotations

import json
import threading
import time

import pytest
import streamlit as st
from streamlit.elements.lib import policies

from lensviz.lab import held_out_maps, score_summary
from lensviz.nn.callbacks import TrainingCancelled
from lensviz.nn.inference import load_model, model_predictor
from tests.app.apptools import new_session, texts
from ui import cache

JOB_TIMEOUT = 180  # seconds a tiny fine-tuning run may take


def wait_until(at, done, timeout: float = JOB_TIMEOUT) -> None:
    """Rerun the page (as the polling fragment would) until ``done(at)`` or timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
    raise AssertionError(
        f"timed out after {timeout} s; warnings {texts(at.warning)}, errors {texts(at.error)}"
    )


def tiny_run_settings(at, name: str, start: str | None = None) -> None:
    if start is not None:
        at.selectbox(key="ft_start").set_value(start)
    at.select_slider(key="ft_samples").set_value(16)
    at.select_slider(key="ft_val").set_value(8)
    at.number_input(key="ft_epochs").set_value(1)
    at.text_input(key="ft_name").input(name)
    at.run()
    assert not at.exception


@pytest.fixture
def other_sessions_job(idle_jobs):
    """A job started by "another session" that runs until released; yields (job, release)."""
    release = threading.Event()

    def job_fn(on_progress, cancel):
        while not release.wait(0.02):
            if cancel.is_set():
                raise TrainingCancelled("cancelled")

    job = idle_jobs.start("fine-tune by someone else", job_fn)
    yield job, release
    release.set()
    assert job.wait(10)


def test_defaults(app, open_page, idle_jobs):
    open_page(app, "Fine-tune")
    assert not app.exception
    assert app.title[0].value == "Fine-tune a UNet"
    assert not app.button(key="ft_start_button").disabled
    assert app.selectbox(key="ft_start").value == "tiny (shipped)"
    assert app.number_input(key="ft_term_multifocal").value == pytest.approx(0.95)
    assert app.number_input(key="ft_term_wmape").value == pytest.approx(0.05)
    assert app.radio(key="ft_which").value == "last"


def test_output_name_is_sanitised_and_taken_names_refused(app, open_page, weights):
    _, user = weights
    open_page(app, "Fine-tune")
    app.text_input(key="ft_name").input("my run #1/../x").run()
    assert any("my_run_1_x.keras" in c for c in texts(app.caption))
    app.text_input(key="ft_name").input("tiny").run()
    assert any("shipped" in e for e in texts(app.error))
    assert app.button(key="ft_start_button").disabled
    # Fine-tuned weights are never overwritten: an existing name is refused, no checkbox.
    (user / "mine.keras").write_bytes(b"someone's weights")
    app.text_input(key="ft_name").input("mine").run()
    assert any("never overwritten" in e and "mine-2" in e for e in texts(app.error))
    assert app.button(key="ft_start_button").disabled
    assert (user / "mine.keras").read_bytes() == b"someone's weights"


@pytest.mark.slow
def test_tiny_finetune_completes_and_registers_weights(app, open_page, weights, idle_jobs):
    _, user = weights
    open_page(app, "Fine-tune")
    tiny_run_settings(app, "tiny run")
    app.button(key="ft_start_button").click().run()
    assert not app.exception
    wait_until(app, lambda a: bool(a.success) or bool(a.error))
    assert not texts(app.error), texts(app.error)
    assert any("tiny_run.keras" in s for s in texts(app.success))
    keras_file, card = user / "tiny_run.keras", user / "tiny_run.json"
    assert keras_file.is_file() and card.is_file()  # the settings and metrics beside it
    assert card.stat().st_mode & 0o777 == keras_file.stat().st_mode & 0o777
    assert sorted(p.name for p in user.iterdir()) == ["tiny_run.json", "tiny_run.keras"]
    assert cache.model_files()[0]["tiny_run (fine-tuned)"] == str(keras_file)
    table = app.dataframe[0].value
    assert list(table.columns[:3]) == ["metric", "before", "after"]
    app.run()  # the sidebar and the start list rescan the folder on every run
    assert "tiny_run (fine-tuned)" in app.selectbox(key="ft_start").options
    # The next run is offered a fresh name, so Start is not blocked by the file just written.
    assert app.text_input(key="ft_name").value == "tiny_run-2"
    assert not app.button(key="ft_start_button").disabled


def test_failed_finetune_shows_the_error_and_writes_nothing(app, open_page, my_job, weights):
    def broken(on_progress, cancel):
        raise ValueError("model file 'zz_broken.keras' is corrupt")

    job = my_job(app, broken, weights[1] / "from_broken.keras")
    assert job.wait(10)
    open_page(app, "Fine-tune")
    assert not app.exception
    assert any("failed" in e and "corrupt" in e for e in texts(app.error)), texts(app.error)
    assert any("Nothing was written" in e for e in texts(app.error))
    assert not any(weights[1].iterdir())
    assert not app.button(key="ft_start_button").disabled


def test_busy_message_and_cancel_with_confirmation_from_another_session(
    app, open_page, other_sessions_job
):
    job, _ = other_sessions_job
    open_page(app, "Fine-tune")
    assert not app.exception
    warnings = " ".join(texts(app.warning))
    assert "busy" in warnings and "fine-tune by someone else" in warnings
    assert app.button(key="ft_start_button").disabled
    app.button(key="ft_cancel").click().run()
    assert job.running  # not yet: a confirmation first
    assert any("started by another session" in w for w in texts(app.warning))
    app.button(key="ft_cancel_no").click().run()
    assert job.running and not job.snapshot().cancel_requested
    app.button(key="ft_cancel").click().run()
    app.button(key="ft_cancel_yes").click().run()
    assert job.wait(10)
    assert job.status == "cancelled"
    app.run()
    assert not app.button(key="ft_start_button").disabled


def test_the_job_survives_a_cache_clear(app, open_page, other_sessions_job):
    job, _ = other_sessions_job
    st.cache_resource.clear()  # what any client can trigger from its browser
    st.cache_data.clear()
    at = new_session()
    open_page(at, "Fine-tune")
    assert at.button(key="ft_start_button").disabled
    assert any("fine-tune by someone else" in w for w in texts(at.warning))


@pytest.fixture
def my_job(idle_jobs):
    """``start(fn)``: a job of this test's session (its id in the session state)."""

    def start(at, fn, out):
        job = idle_jobs.start("fine-tune tiny → mine.keras", fn, meta={"out": str(out)})
        at.session_state["ft_job"] = job.id
        return job

    return start


def test_a_cancel_redraws_at_once_as_cancelled_with_start_enabled(app, open_page, my_job, weights):
    def until_cancelled(on_progress, cancel):
        while not cancel.wait(0.02):
            pass
        raise TrainingCancelled("cancelled")

    job = my_job(app, until_cancelled, weights[1] / "mine.keras")
    open_page(app, "Fine-tune")
    assert app.button(key="ft_start_button").disabled
    app.button(key="ft_cancel").click().run()
    app.button(key="ft_cancel_yes").click().run()
    assert job.status == "cancelled"
    said = texts(app.info)
    assert any("was cancelled" in i for i in said), said
    assert not any("Cancelling" in i for i in said), said
    assert not app.get("progress")
    assert not app.button(key="ft_start_button").disabled


def _finished_at_once(out):
    """A fine-tune job that ends at once, as a run that saved ``out`` does."""
    metrics = {"rmse": 0.02, "r": 0.5}

    def done(on_progress, cancel):
        return {
            "path": str(out),
            "config": {"val_samples": 8},
            "before": metrics,
            "after": metrics,
            "history": [],
        }

    return done


def test_a_finished_run_offers_a_fresh_name_without_a_widget_warning(
    app, open_page, my_job, weights, caplog
):
    out = weights[1] / "mine.keras"
    out.write_bytes(b"weights")
    job = my_job(app, _finished_at_once(out), out)
    assert job.wait(10)
    policies._shown_default_value_warning = False  # Streamlit logs it once per process
    with caplog.at_level("WARNING", logger="streamlit"):
        open_page(app, "Fine-tune")
    assert not app.exception
    assert any("saved" in s for s in texts(app.success))
    assert app.text_input(key="ft_name").value == "mine-2"
    assert not [r for r in caplog.records if "ft_name" in r.getMessage()]


def test_a_finished_run_lands_on_the_loss_labs_axes(app, open_page, my_job, weights, lab):
    shipped, user = weights
    out = user / "mine.keras"
    out.write_bytes((shipped / "tiny.keras").read_bytes())
    job = my_job(app, _finished_at_once(out), out)
    assert job.wait(10)
    open_page(app, "Fine-tune")
    assert not app.exception
    place = app.toggle(key="ft_lab_place")
    assert "4 held-out maps at 30 gal/arcmin²" in place.label
    place.set_value(True).run()
    assert not app.exception and not app.error, texts(app.error)
    spec = next(
        json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.key == "ft_lab_pareto"
    )
    mine = [t for t in spec["data"] if t["name"] == "mine (your run)"]
    assert len(mine) == 2  # on the DICEE and the DPEAKS panel
    assert {"MSE", "MultiFocal", "UNet shipped"} <= {t["name"] for t in spec["data"]}
    # the run's point is its score on the lab's maps, as the caption says
    eps, kappa = held_out_maps(4, 0, "30")
    expected = score_summary(kappa, model_predictor(load_model(out))(eps))
    assert mine[0]["y"][0] == pytest.approx(expected["rmse"][0], rel=1e-5)
    assert mine[0]["x"][0] == pytest.approx(expected["dicee"][0], rel=1e-5)
