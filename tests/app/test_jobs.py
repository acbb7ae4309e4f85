"""The background job runner: life cycle, one job at a time, cancel, failure, a late
cancel, a diverged run, names that never overwrite, and a real run."""

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit as st

from lensviz.nn.callbacks import TrainingCancelled
from lensviz.nn.finetuning import FinetuneConfig
from lensviz.nn.inference import save_model
from lensviz.nn.unet import build_unet
from tests.app.apptools import TINY
from ui import jobs
from ui.jobs import (
    CancelToken,
    JobBusy,
    JobManager,
    finetune_job,
    unused_path,
    weights_file_name,
)
from ui.text import count, describe_progress, format_duration, format_number
from ui.weights import first_non_finite_weight

TIMEOUT = 10.0  # seconds a fake job may take at most


def _steps(on_progress, cancel, n=5, release=None, value=42):
    """A fake training function: n progress records, optionally waiting for ``release``."""
    for i in range(n):
        on_progress(
            SimpleNamespace(
                epoch=0,
                epochs=1,
                step=i + 1,
                steps=n,
                fraction=(i + 1) / n,
                loss=1.0 / (i + 1),
                eta_s=n - i,
            )
        )
        if release is not None:
            while not release.wait(0.01):
                if cancel.is_set():
                    raise TrainingCancelled(f"cancelled at step {i + 1}")
    return {"value": value}


def test_job_runs_to_done_with_progress_and_result():
    manager = JobManager()
    job = manager.start("fake", _steps, n=4, value=7)
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == "done" and not snap.running
    assert snap.result == {"value": 7}
    assert snap.error is None
    assert [r.step for r in snap.records] == [1, 2, 3, 4]
    assert snap.progress.step == 4
    assert snap.finished_at >= snap.started_at
    assert manager.running() is None
    assert manager.latest() is job and manager.get(job.id) is job


def test_second_start_while_running_raises_busy_naming_the_job():
    manager = JobManager()
    release = threading.Event()
    job = manager.start("first run", _steps, n=3, release=release)
    try:
        deadline = time.time() + TIMEOUT
        while job.progress is None and time.time() < deadline:
            time.sleep(0.01)
        with pytest.raises(JobBusy, match="first run") as info:
            manager.start("second run", _steps)
        assert info.value.job is job
        assert "step 1/3" in str(info.value)
        assert manager.running() is job
    finally:
        release.set()
    assert job.wait(TIMEOUT)
    assert job.status == "done"
    # Free again: the next job starts.
    second = manager.start("second run", _steps, n=1)
    assert second.wait(TIMEOUT) and second.status == "done"
    assert second.id != job.id


def test_cancel_ends_in_cancelled_without_result():
    manager = JobManager()
    release = threading.Event()  # never set: only cancel ends the job
    job = manager.start("to cancel", _steps, n=100, release=release)
    job.cancel()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == "cancelled"
    assert snap.cancel_requested
    assert snap.result is None
    assert "TrainingCancelled" in snap.error


def test_failure_is_reported_with_its_message():
    def broken(on_progress, cancel):
        on_progress(None)
        raise ValueError("weights file 'x.keras' is corrupt")

    job = JobManager().start("broken", broken)
    assert job.wait(TIMEOUT)
    assert job.status == "failed"
    assert job.error == "ValueError: weights file 'x.keras' is corrupt"


def test_snapshots_are_consistent_under_concurrent_updates():
    n = 2000
    manager = JobManager()
    job = manager.start("many", _steps, n=n)
    seen = []
    while job.running:
        snap = job.snapshot()
        if snap.records:  # the latest progress is always the last record
            assert snap.progress is snap.records[-1]
            seen.append(len(snap.records))
    assert job.wait(TIMEOUT)
    assert len(job.snapshot().records) == n
    assert seen == sorted(seen)


def test_start_rejects_non_callables():
    with pytest.raises(TypeError, match="callable"):
        JobManager().start("bad", 42)


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("my run #2", "my_run_2.keras"),
        ("  lite-ft.keras ", "lite-ft.keras"),
        ("../../etc/passwd", "etc_passwd.keras"),
        ("ä" * 3 + "b", "b.keras"),
        ("x" * 200, "x" * 48 + ".keras"),
    ],
)
def test_weights_file_name_sanitises(tmp_path, typed, expected):
    path = weights_file_name(typed, tmp_path)
    assert path == tmp_path / expected
    assert path.parent == tmp_path


@pytest.mark.parametrize("typed", ["", "  ", "###", ".keras"])
def test_weights_file_name_rejects_empty(tmp_path, typed):
    with pytest.raises(ValueError, match="no usable characters"):
        weights_file_name(typed, tmp_path)


def test_weights_file_name_refuses_shipped_names(tmp_path):
    with pytest.raises(ValueError, match="shipped"):
        weights_file_name("LITE", tmp_path, reserved=["lite"])


def test_formatting_helpers():
    assert count(1, "sample") == "1 sample" and count(24, "sample") == "24 samples"
    assert format_number(0.5, 3) == "0.500" and format_number(float("nan"), 3) == "–"
    assert format_duration(float("nan")) == "–"
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
    assert describe_progress(None).startswith("starting")
    p = SimpleNamespace(
        epoch=1, epochs=5, step=30, steps=64, fraction=94 / 320, loss=0.0123, eta_s=80.0
    )
    assert describe_progress(p) == "epoch 2/5, step 30/64 (29%), loss 0.0123, ETA 1 min 20 s"


def test_the_manager_is_one_per_process_and_survives_a_cache_clear():
    first = jobs.manager()
    st.cache_resource.clear()
    st.cache_data.clear()
    assert jobs.manager() is first


def test_cancel_token_refuses_a_cancel_once_committed():
    token = CancelToken()
    assert token.commit(lambda: 7) == 7
    assert token.set() is False and not token.is_set()
    late = CancelToken()
    assert late.set() is True
    with pytest.raises(TrainingCancelled):
        late.commit(lambda: pytest.fail("must not run"))


def test_a_cancel_after_the_job_ended_is_refused():
    job = JobManager().start("quick", _steps, n=1)
    assert job.wait(TIMEOUT)
    assert job.cancel() is False
    assert job.snapshot().status == "done" and not job.snapshot().cancel_requested


def test_unused_path_counts_up(tmp_path):
    assert unused_path(tmp_path / "a.keras") == tmp_path / "a.keras"
    (tmp_path / "a.keras").touch()
    (tmp_path / "a-2.keras").touch()
    assert unused_path(tmp_path / "a.keras") == tmp_path / "a-3.keras"


# === finetune_job, with a fake finetune (no training) ===


@pytest.fixture
def fake_finetune(monkeypatch):
    """Replace lensviz's finetune by one that saves the tiny UNet, optionally with NaN
    weights or losses, optionally setting the cancel event after its last step."""
    options = {"nan_weights": False, "nan_loss": False, "cancel_at_end": False}

    def finetune(weights, out_path, cfg, on_progress=None, cancel=None):
        model = build_unet(TINY)
        if options["nan_weights"]:
            model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
        save_model(model, out_path)
        if options["cancel_at_end"]:
            cancel.set()  # the user presses Cancel after the last step
        loss = float("nan") if options["nan_loss"] else 0.5
        return {
            "path": str(out_path),
            "before": {"rmse": 0.1},
            "after": {"rmse": 0.09},
            "history": [{"epoch": 1, "loss": loss, "val_loss": 0.4}],
        }

    monkeypatch.setattr(jobs, "finetune", finetune)
    return options


def _run(manager, out):
    job = manager.start(
        "fake fine-tune",
        finetune_job,
        weights="start.keras",
        out_path=str(out),
        cfg=FinetuneConfig(epochs=1),
    )
    assert job.wait(TIMEOUT)
    return job.snapshot()


def test_finetune_job_publishes_the_weights_and_a_card_with_the_same_mode(tmp_path, fake_finetune):
    out = tmp_path / "user" / "run.keras"
    snap = _run(JobManager(), out)
    assert snap.status == "done", snap.error
    assert snap.result["path"] == str(out)
    card = out.with_suffix(".json")
    assert json.loads(card.read_text())["path"] == str(out)
    assert card.stat().st_mode & 0o777 == out.stat().st_mode & 0o777
    assert sorted(p.name for p in out.parent.iterdir()) == ["run.json", "run.keras"]
    assert first_non_finite_weight(out) is None


def test_finetune_job_never_overwrites_another_sessions_weights(tmp_path, fake_finetune):
    out = tmp_path / "run.keras"
    out.write_bytes(b"another session's weights")
    snap = _run(JobManager(), out)
    assert snap.status == "done", snap.error
    assert out.read_bytes() == b"another session's weights"
    assert snap.result["path"] == str(tmp_path / "run-2.keras")
    assert (tmp_path / "run-2.json").is_file()


def test_a_late_cancel_writes_nothing(tmp_path, fake_finetune):
    fake_finetune["cancel_at_end"] = True
    snap = _run(JobManager(), tmp_path / "run.keras")
    assert snap.status == "cancelled", snap.error
    assert list(tmp_path.iterdir()) == []  # no weights, no card, no temporary file


@pytest.mark.parametrize("what", ["nan_weights", "nan_loss"])
def test_a_diverged_run_fails_and_writes_nothing(tmp_path, fake_finetune, what):
    fake_finetune[what] = True
    snap = _run(JobManager(), tmp_path / "run.keras")
    assert snap.status == "failed"
    assert "TrainingDiverged" in snap.error and "nothing was saved" in snap.error
    assert list(tmp_path.iterdir()) == []


def test_first_non_finite_weight_names_the_array(tmp_path):
    model = build_unet(TINY)
    weights = model.get_weights()
    weights[3] = np.full_like(weights[3], np.inf)
    model.set_weights(weights)
    save_model(model, tmp_path / "inf.keras")
    assert first_non_finite_weight(tmp_path / "inf.keras") is not None
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.keras"):
        first_non_finite_weight(tmp_path / "junk.keras")


@pytest.mark.slow
def test_real_tiny_finetune_runs_as_a_job(tmp_path):
    start = tmp_path / "tiny.keras"
    save_model(build_unet(TINY), start)
    out = tmp_path / "user" / "tiny-ft.keras"
    cfg = FinetuneConfig(epochs=1, n_samples=16, batch_size=8, val_samples=4)
    manager = JobManager()
    job = manager.start(
        "fine-tune tiny", finetune_job, weights=str(start), out_path=str(out), cfg=cfg
    )
    assert job.wait(180)
    snap = job.snapshot()
    assert snap.status == "done", snap.error
    assert out.is_file()
    assert snap.result["path"] == str(out)
    assert set(snap.result["before"]) >= {"wmape", "dicee", "dpeaks", "rmse", "r"}
    assert snap.progress.stage == "epoch_end"
    assert [r["epoch"] for r in snap.result["history"]] == [1]

    # A cancelled real run writes nothing.
    out2 = tmp_path / "user" / "cancelled.keras"
    job2 = manager.start(
        "cancelled",
        finetune_job,
        weights=str(start),
        out_path=str(out2),
        cfg=FinetuneConfig(epochs=3, n_samples=64, val_samples=4),
    )
    job2.cancel()
    assert job2.wait(180)
    assert job2.status == "cancelled", job2.error
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny-ft.json", "tiny-ft.keras"]
