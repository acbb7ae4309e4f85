"""Background jobs: one long-running training function at a time per process.

The app fine-tunes a UNet from the browser. The run takes minutes, so it must not block
the page, and two runs at once would share the CPU (or GPU) and each crawl. A
:class:`JobManager` runs one function at a time in a daemon thread::

    manager = JobManager()
    job = manager.start("fine-tune lite", finetune, weights=..., out_path=..., cfg=...)
    job.snapshot().progress     # the latest Progress record, from any thread
    job.cancel()                # sets the threading.Event that finetune polls

The function is called as ``fn(on_progress=..., cancel=..., **kwargs)``; this is the
calling convention of :func:`lensviz.nn.training.finetune` and :func:`lensviz.nn.training.train`.
A second :meth:`JobManager.start` while a job runs raises :class:`JobBusy`, naming the
running job and its progress.

Every read goes through :meth:`Job.snapshot`, an immutable copy taken under the job's
lock, so a reader never sees a half-updated job. The module is free of Streamlit; the
app keeps one manager per server with ``st.cache_resource``.

:func:`weights_file_name` turns a user-typed name into a safe ``.keras`` file name.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "STATUSES",
    "MAX_NAME_LENGTH",
    "Job",
    "JobBusy",
    "JobManager",
    "JobSnapshot",
    "describe_progress",
    "format_duration",
    "weights_file_name",
]

#: Life cycle of a job: "running", then exactly one of the three final states.
STATUSES = ("running", "done", "cancelled", "failed")
MAX_NAME_LENGTH = 48  # characters of a user-given weights name (before ".keras")
_MAX_RECORDS = 20_000  # progress records kept per job (a few per second of training)
_HISTORY = 8  # finished jobs a manager remembers


def format_duration(seconds: float) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"42 s"``; ``"–"`` when unknown (NaN, inf, < 0)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def describe_progress(progress: Any) -> str:
    """One line for a training :class:`~lensviz.nn.training.Progress` record (or None).

    Example: ``"epoch 2/5, step 30/64 (39%), loss 0.0123, ETA 1 min 20 s"``.
    """
    if progress is None:
        return "starting (no step finished yet)"
    parts = []
    epoch, epochs = getattr(progress, "epoch", None), getattr(progress, "epochs", None)
    if epoch is not None and epochs:
        parts.append(f"epoch {epoch + 1}/{epochs}")
    step, steps = getattr(progress, "step", None), getattr(progress, "steps", None)
    fraction = getattr(progress, "fraction", None)
    if step is not None and steps:
        parts.append(f"step {step}/{steps}" + (f" ({fraction:.0%})" if fraction is not None
                                                else ""))
    loss = getattr(progress, "loss", None)
    if loss is not None and math.isfinite(loss):
        parts.append(f"loss {loss:.4g}")
    eta = getattr(progress, "eta_s", None)
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return ", ".join(parts) or repr(progress)


class JobBusy(RuntimeError):
    """Raised by :meth:`JobManager.start` while another job runs; ``.job`` is that job."""

    def __init__(self, job: Job):
        self.job = job
        snap = job.snapshot()
        super().__init__(
            f"a job is already running: {snap.name!r} (started "
            f"{format_duration(time.time() - snap.started_at)} ago; "
            f"{describe_progress(snap.progress)}). Wait for it to finish or cancel it.")


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
        Whether :meth:`Job.cancel` was called.
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

    def __init__(self, job_id: int, name: str, fn: Callable[..., Any], kwargs: dict,
                 meta: dict | None = None,
                 cancel_exceptions: tuple[type[BaseException], ...] = ()):
        self.id = job_id
        self.name = name
        self.meta = dict(meta or {})
        self._fn, self._kwargs = fn, kwargs
        self._cancel_exceptions = cancel_exceptions
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._status = "running"
        self._records: deque = deque(maxlen=_MAX_RECORDS)
        self._progress = None
        self._result = None
        self._error: str | None = None
        self.started_at = time.time()
        self._finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"lensviz-job-{job_id}",
                                        daemon=True)

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
            self._finish("cancelled" if cancelled else "failed", None,
                         f"{type(exc).__name__}: {exc}")
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
                id=self.id, name=self.name, status=self._status, progress=self._progress,
                records=tuple(self._records), result=self._result, error=self._error,
                started_at=self.started_at, finished_at=self._finished_at,
                cancel_requested=self._cancel.is_set(), meta=dict(self.meta))

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

    def cancel(self) -> None:
        """Ask the function to stop (it polls the event); returns at once."""
        self._cancel.set()

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
        ``"failed"``). Default: :class:`lensviz.nn.training.TrainingCancelled`. Any exception
        raised after :meth:`Job.cancel` also counts as a cancellation.
    """

    def __init__(self, cancel_exceptions: Iterable[type[BaseException]] | None = None):
        if cancel_exceptions is None:
            from lensviz.nn.training import TrainingCancelled

            cancel_exceptions = (TrainingCancelled,)
        self._cancel_exceptions = tuple(cancel_exceptions)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: deque[Job] = deque(maxlen=_HISTORY)

    def start(self, name: str, fn: Callable[..., Any], *, meta: dict | None = None,
              **kwargs) -> Job:
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


def weights_file_name(name: str, out_dir: str | Path, reserved: Iterable[str] = (),
                      max_length: int = MAX_NAME_LENGTH) -> Path:
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
        raise ValueError(f"name {name!r} has no usable characters; use letters, digits, "
                         "'_' or '-'")
    if safe.lower() in {r.lower() for r in reserved}:
        raise ValueError(f"{safe!r} is the name of shipped weights; choose another name "
                         "(shipped weights are never overwritten)")
    return Path(out_dir) / f"{safe}.keras"
