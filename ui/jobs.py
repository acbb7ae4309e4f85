"""Background jobs: one long-running training function at a time per server process.

The app fine-tunes a UNet from the browser. The run takes minutes, so it must not block
the page, and two runs at once would share the CPU (or GPU) and each crawl. A
:class:`JobManager` runs one function at a time in a daemon thread::

    job = manager().start("fine-tune lite", finetune_job, weights=..., out_path=..., cfg=...)
    job.snapshot().progress     # the latest Progress record, from any thread
    job.cancel()                # sets the CancelToken that finetune polls

The function is called as ``fn(on_progress=..., cancel=..., **kwargs)``; this is the
calling convention of :func:`lensviz.nn.finetuning.finetune` and :func:`lensviz.nn.training.train`.
A second :meth:`JobManager.start` while a job runs raises :class:`JobBusy`, naming the
running job and its progress.

**One manager per process.** :func:`manager` returns a module-level singleton, not an
``st.cache_resource``: any client can send Streamlit's clear-cache message, which would
otherwise forget a running job (still training, no longer visible or cancellable) and
let a second one start. Every session sees the running job and may cancel it (the page
asks for a confirmation first).

**Nothing half-done is written.** :func:`finetune_job` trains into a hidden temporary
file and publishes it only if the run finished, was not cancelled, and its loss,
metrics and weights are all finite; a cancel that arrives while it publishes is refused
(:class:`CancelToken`), one that arrives earlier, even after the last step, means
nothing is written. Fine-tuned weights are **never overwritten**, not even another
session's: a name already taken when the run ends gets the next free ``-2``, ``-3``, …
suffix, and the result says which file was written.

Every read goes through :meth:`Job.snapshot`, an immutable copy taken under the job's
lock, so a reader never sees a half-updated job. The module is free of Streamlit.
:func:`weights_file_name` turns a user-typed name into a safe ``.keras`` file name.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lensviz._atomic import write_text
from lensviz.nn.callbacks import TrainingCancelled
from lensviz.nn.finetuning import FinetuneConfig, finetune
from ui.text import describe_progress, format_duration
from ui.weights import first_non_finite_weight

__all__ = [
    "STATUSES",
    "MAX_NAME_LENGTH",
    "CancelToken",
    "Job",
    "JobBusy",
    "JobManager",
    "JobSnapshot",
    "TrainingDiverged",
    "finetune_job",
    "manager",
    "unused_path",
    "weights_file_name",
]

#: Life cycle of a job: "running", then exactly one of the three final states.
STATUSES = ("running", "done", "cancelled", "failed")
MAX_NAME_LENGTH = 48  # characters of a user-given weights name (before ".keras")
_MAX_RECORDS = 20_000  # progress records kept per job (a few per second of training)
_HISTORY = 8  # finished jobs a manager remembers


class TrainingDiverged(RuntimeError):
    """The run finished with a non-finite loss, metric or weight; nothing was saved."""


class CancelToken(threading.Event):
    """A cancel event that closes when the job publishes its result.

    The training loop polls :meth:`is_set` as with a plain :class:`threading.Event`.
    :meth:`commit` runs the final write under a lock: a cancel requested before it
    makes it raise :class:`~lensviz.nn.callbacks.TrainingCancelled` (nothing written), a
    cancel requested during or after it is refused (:meth:`set` returns False).
    """

    def __init__(self):
        super().__init__()
        self._commit_lock = threading.Lock()
        self._closed = False

    def set(self) -> bool:
        """Request cancellation; False (and no effect) once the result is published."""
        with self._commit_lock:
            if self._closed:
                return False
            super().set()
            return True

    def commit(self, action: Callable[[], Any]) -> Any:
        """Return ``action()`` unless a cancel was requested; no cancel is accepted after.

        Raises
        ------
        TrainingCancelled
            If a cancel was requested before the commit.
        """
        with self._commit_lock:
            if self.is_set():
                raise TrainingCancelled("cancelled after the last step; nothing was saved")
            self._closed = True
            return action()


class JobBusy(RuntimeError):
    """Raised by :meth:`JobManager.start` while another job runs; ``.job`` is that job."""

    def __init__(self, job: Job):
        self.job = job
        snap = job.snapshot()
        super().__init__(
            f"a job is already running: {snap.name!r} (started "
            f"{format_duration(time.time() - snap.started_at)} ago; "
            f"{describe_progress(snap.progress)}). Wait for it to finish or cancel it."
        )


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """An immutable view of a :class:`Job` at one instant.

    Attributes
    ----------
    id : int
        Unique within the process.
    name : str
        What the job does, for people.
    status : str
        One of :data:`STATUSES`.
    progress : object or None
        The latest record passed to ``on_progress`` (a training ``Progress``).
    records : tuple
        Every record so far (at most the last 20 000), oldest first.
    result : object or None
        What the function returned (``status == "done"`` only).
    error : str or None
        ``"ExceptionType: message"`` for a failed (or cancelled) job.
    started_at, finished_at : float
        ``time.time()`` stamps; ``finished_at`` is None while running.
    cancel_requested : bool
        Whether a :meth:`Job.cancel` was accepted.
    meta : dict
        Free-form data given to :meth:`JobManager.start` (e.g. the output file).
    """

    id: int
    name: str
    status: str
    progress: Any
    records: tuple
    result: Any
    error: str | None
    started_at: float
    finished_at: float | None
    cancel_requested: bool
    meta: dict

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.time()
        return end - self.started_at


class Job:
    """One run of a function in a daemon thread. Create it with :meth:`JobManager.start`."""

    def __init__(
        self,
        job_id: int,
        name: str,
        fn: Callable[..., Any],
        kwargs: dict,
        meta: dict | None = None,
        cancel_exceptions: tuple[type[BaseException], ...] = (),
    ):
        self.id = job_id
        self.name = name
        self.meta = dict(meta or {})
        self._fn, self._kwargs = fn, kwargs
        self._cancel_exceptions = cancel_exceptions
        self._lock = threading.Lock()
        self._cancel = CancelToken()
        self._finished = threading.Event()
        self._status = "running"
        self._records: deque = deque(maxlen=_MAX_RECORDS)
        self._progress = None
        self._result = None
        self._error: str | None = None
        self.started_at = time.time()
        self._finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"lensviz-job-{job_id}", daemon=True)

    # --- the worker side ---

    def _report(self, progress: Any) -> None:
        with self._lock:
            self._progress = progress
            self._records.append(progress)

    def _run(self) -> None:
        try:
            result = self._fn(on_progress=self._report, cancel=self._cancel, **self._kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure must end the job
            cancelled = isinstance(exc, self._cancel_exceptions) or self._cancel.is_set()
            self._finish(
                "cancelled" if cancelled else "failed", None, f"{type(exc).__name__}: {exc}"
            )
        else:
            self._finish("done", result, None)

    def _finish(self, status: str, result: Any, error: str | None) -> None:
        with self._lock:
            self._status, self._result, self._error = status, result, error
            self._finished_at = time.time()
        self._finished.set()

    # --- the reader side ---

    def snapshot(self) -> JobSnapshot:
        """A consistent, immutable copy of the job's state (thread-safe)."""
        with self._lock:
            return JobSnapshot(
                id=self.id,
                name=self.name,
                status=self._status,
                progress=self._progress,
                records=tuple(self._records),
                result=self._result,
                error=self._error,
                started_at=self.started_at,
                finished_at=self._finished_at,
                cancel_requested=self._cancel.is_set(),
                meta=dict(self.meta),
            )

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def progress(self) -> Any:
        with self._lock:
            return self._progress

    @property
    def result(self) -> Any:
        with self._lock:
            return self._result

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def cancel(self) -> bool:
        """Ask the function to stop (it polls the event); returns at once.

        Returns False when it is too late: the job has ended or is publishing its result.
        """
        if self._finished.is_set():
            return False
        return self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends or ``timeout`` seconds pass; True if it ended."""
        return self._finished.wait(timeout)

    def __repr__(self) -> str:
        return f"Job(id={self.id}, name={self.name!r}, status={self.status!r})"


class JobManager:
    """Runs at most one :class:`Job` at a time; thread-safe.

    Parameters
    ----------
    cancel_exceptions : tuple of exception types, optional
        Exceptions that mean "stopped on request" (status ``"cancelled"``, not
        ``"failed"``). Default: :class:`lensviz.nn.callbacks.TrainingCancelled`. Any exception
        raised after :meth:`Job.cancel` also counts as a cancellation.
    """

    def __init__(self, cancel_exceptions: Iterable[type[BaseException]] | None = None):
        if cancel_exceptions is None:
            cancel_exceptions = (TrainingCancelled,)
        self._cancel_exceptions = tuple(cancel_exceptions)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: deque[Job] = deque(maxlen=_HISTORY)

    def start(
        self, name: str, fn: Callable[..., Any], *, meta: dict | None = None, **kwargs
    ) -> Job:
        """Run ``fn(on_progress=..., cancel=..., **kwargs)`` in a daemon thread.

        Parameters
        ----------
        name : str
            What the job does, shown to other users while it runs.
        fn : callable
            Takes keyword arguments ``on_progress`` (call it with progress records) and
            ``cancel`` (a :class:`threading.Event` to poll) plus ``kwargs``.
        meta : dict, optional
            Kept on the job for readers (e.g. who started it, the output file).

        Returns
        -------
        Job
            Already running.

        Raises
        ------
        JobBusy
            If a job is running; the new one is not started.
        TypeError
            If ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        with self._lock:
            running = self.running()
            if running is not None:
                raise JobBusy(running)
            job = Job(next(self._ids), str(name), fn, kwargs, meta, self._cancel_exceptions)
            self._jobs.append(job)
            job._thread.start()
        return job

    def running(self) -> Job | None:
        """The job that is running now, or None."""
        latest = self._jobs[-1] if self._jobs else None
        return latest if latest is not None and latest.running else None

    def latest(self) -> Job | None:
        """The most recently started job, running or finished, or None."""
        return self._jobs[-1] if self._jobs else None

    def get(self, job_id: int | None) -> Job | None:
        """The job with this id among the last few, or None."""
        for job in list(self._jobs):
            if job.id == job_id:
                return job
        return None


_MANAGER = JobManager()


def manager() -> JobManager:
    """The process's one job manager, shared by every session (see the module docstring)."""
    return _MANAGER


def weights_file_name(
    name: str, out_dir: str | Path, reserved: Iterable[str] = (), max_length: int = MAX_NAME_LENGTH
) -> Path:
    """Turn a user-typed name into a safe ``out_dir/<name>.keras`` path.

    Every character outside ``[A-Za-z0-9_-]`` becomes ``_``, runs of ``_`` collapse,
    leading/trailing ``_`` and ``-`` are stripped, and the name is cut to
    ``max_length`` characters. The result can never leave ``out_dir``.

    Parameters
    ----------
    name : str
        What the user typed, e.g. ``"my run #2"``; a trailing ``.keras`` is ignored.
    out_dir : path
        Directory of the fine-tuned weights.
    reserved : iterable of str
        Stems that may not be used (case-insensitively), e.g. the shipped weights'.
    max_length : int

    Returns
    -------
    Path
        ``out_dir / (sanitised + ".keras")``, e.g. ``runs/finetuned/my_run_2.keras``.

    Raises
    ------
    ValueError
        If nothing usable is left, or the name is reserved.
    """
    text = str(name).strip()
    if text.lower().endswith(".keras"):
        text = text[: -len(".keras")]
    safe = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]", "_", text)).strip("_-")[:max_length]
    safe = safe.rstrip("_-")
    if not safe:
        raise ValueError(f"name {name!r} has no usable characters; use letters, digits, '_' or '-'")
    if safe.lower() in {r.lower() for r in reserved}:
        raise ValueError(
            f"{safe!r} is the name of shipped weights; choose another name "
            "(shipped weights are never overwritten)"
        )
    return Path(out_dir) / f"{safe}.keras"


def unused_path(path: str | Path) -> Path:
    """``path``, or ``stem-2.keras``, ``stem-3.keras``, …: the first that does not exist."""
    path = Path(path)
    candidate, i = path, 1
    while candidate.exists():
        i += 1
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
    return candidate


def _publish(tmp: Path, out: Path) -> Path:
    """Give ``tmp`` the name ``out`` or the first free ``out-N``; never replaces a file.

    A hard link claims the name atomically and fails if it exists. On a file system
    without hard links the name is claimed by an exclusive create, then replaced.
    """
    candidate, i = out, 1
    while True:
        try:
            try:
                os.link(tmp, candidate)
            except FileExistsError:
                raise
            except OSError:  # no hard links here
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                os.replace(tmp, candidate)
            return candidate
        except FileExistsError:
            i += 1
            candidate = out.with_name(f"{out.stem}-{i}{out.suffix}")


def _divergence(result: dict, weights: Path) -> str | None:
    """Why a finished fine-tuning run must not be saved, or None."""
    for record in result.get("history", []):
        for key in ("loss", "val_loss"):
            value = record.get(key)
            if value is not None and not math.isfinite(value):
                return f"the {key} of epoch {record.get('epoch')} is {value}"
    for name, value in result.get("after", {}).items():
        if value is not None and not math.isfinite(value):
            return f"the validation {name} after training is {value}"
    bad = first_non_finite_weight(weights)
    if bad is not None:
        return f"the weights {bad} contain NaN or inf"
    return None


def finetune_job(
    weights: str,
    out_path: str,
    cfg: FinetuneConfig,
    on_progress: Callable | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Fine-tune ``weights`` and publish ``out_path`` with a JSON card beside it.

    Runs :func:`lensviz.nn.finetuning.finetune` into a hidden temporary ``.keras`` file
    in the output folder (never listed as a model), then publishes it under
    ``out_path``, or the first free ``-N`` variant of it (never overwriting a file),
    and writes ``<name>.json`` (settings and metrics) with the same file mode.

    Returns
    -------
    dict
        :func:`~lensviz.nn.finetuning.finetune`'s result; ``path`` is the file written.

    Raises
    ------
    TrainingCancelled
        If ``cancel`` was set at any time before the file was published.
    TrainingDiverged
        If the loss, the validation metrics or the weights are not finite.
    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp.keras", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        result = finetune(weights, tmp, cfg, on_progress=on_progress, cancel=cancel)
        problem = _divergence(result, tmp)
        if problem is not None:
            raise TrainingDiverged(
                f"the run diverged ({problem}); nothing was saved. Try a smaller learning rate."
            )

        def publish() -> Path:
            return _publish(tmp, out)

        final = cancel.commit(publish) if isinstance(cancel, CancelToken) else publish()
    finally:
        tmp.unlink(missing_ok=True)
    result["path"] = str(final)
    card = final.with_suffix(".json")
    try:  # the weights are saved: a card that cannot be written must not fail the run
        write_text(card, json.dumps(result, indent=1, default=str))
        os.chmod(card, stat.S_IMODE(final.stat().st_mode))
    except OSError as exc:
        result["card_error"] = f"could not write {card.name}: {exc}"
    return result
