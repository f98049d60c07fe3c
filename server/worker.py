"""The worker thread: owns the engine, runs one job at a time, reports through a callback.

It never touches the server's socket; it hands ``(peer, message, blobs)`` to ``emit``, which the
server packs for its own thread to send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from stylebridge.core import jobs, progress
from stylebridge.core.engine import Engine
from stylebridge.core.errors import InputError
from stylebridge.wire.messages import Error, Message, Preview, Progress, Result

from .board import Emit, Job, JobBoard
from .defaults import IDLE_UNLOAD
from .protocol import CONTROLS, control_field, encode_image

Final = tuple[Message, list]  # a job's last message (result, cancelled or error) and its blobs
PROGRESS_INTERVAL = 0.1  # seconds: at most 10 progress events a second


class Backend(Protocol):
    """What the server needs of whatever runs its jobs: this module's ``Worker`` thread, or the
    cluster's dispatcher. Both keep their jobs on a ``JobBoard`` (submit, cancel, stop: the same
    rules everywhere) and differ in how a job runs. Every method is called from the server's
    socket thread; results, progress and previews go back through the ``emit`` callback given
    at construction."""

    board: JobBoard

    def load(self) -> Any: ...  # warm up (model or actors); raises if that is impossible
    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...  # the status reply's worker fields


class Worker(threading.Thread):
    """The local backend: one thread, one engine, the jobs on a ``JobBoard``."""

    def __init__(
        self,
        emit: Emit,
        *,
        device: str = "auto",
        weights_path: str | None = None,
        idle_unload: float | None = IDLE_UNLOAD,
        engine_factory: Callable[..., Engine] = Engine,
    ) -> None:
        super().__init__(name="stylebridge-worker", daemon=True)
        self.emit = emit
        self.device, self.weights_path, self.idle_unload = device, weights_path, idle_unload
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.cache = jobs.GramCache()
        self.board = JobBoard(emit)
        self.last_job_end = time.monotonic()

    # --- called from the server thread -----------------------------------------------------------

    def load(self) -> Engine:
        """The warm engine, loading it first if idle unload dropped it (outside the lock, so
        status and submit never wait on a model load)."""
        engine = self.engine
        if engine is None:
            engine = self.engine_factory(
                device=self.device, weights_path=self.weights_path, style_cache=self.cache
            )
            with self.board.lock:
                self.engine = engine
        return engine

    def snapshot(self) -> dict[str, Any]:
        engine = self.engine
        running = self.board.running_ids()
        return {
            "device": str(engine.device) if engine else self.device,
            "model_loaded": engine is not None,
            "weights": engine.weights_source if engine else None,
            "queue": self.board.waiting_ids(),
            "running": running[0] if running else None,
            "style_cache": self.cache.stats(),
        }

    # --- the worker thread -----------------------------------------------------------------------

    def _until_unload(self) -> float | None:
        """Under the board's lock while idle: unload a model idle for ``idle_unload`` seconds;
        returns how long to wait before looking again (None: until a job comes)."""
        if self.engine is None or self.idle_unload is None:
            return None
        left = self.last_job_end + self.idle_unload - time.monotonic()
        if left > 0:
            return left
        # idle: give the model and the cached Grams back (GPU memory above all)
        self.engine = None
        self.cache.clear()
        jobs.release_model_memory()
        return None

    def run(self) -> None:
        while (job := self.board.take(self._until_unload)) is not None:
            final = self._run_job(job)
            self.board.finish(job)
            self.last_job_end = time.monotonic()
            # after finishing it: a client holding its result sees the server idle
            self.emit(job.peer, *final)
            jobs.release_free_memory()

    def _run_job(self, job: Job) -> Final:
        """Every way a job can end is its final message: no failure leaves this thread."""
        try:
            return run_job(self.load(), job, self.emit)
        except Exception as exc:  # the model load, or what run_job does not turn into a reply
            return engine_error(job, exc), []


def engine_error(job: Job, exc: BaseException) -> Error:
    """The job's ``engine_error``; out of memory names the working size, the control that
    bounds the memory a client sets (a plug-in then says which of its controls to lower)."""
    message = f"{type(exc).__name__}: {exc}"
    field = None
    if jobs.out_of_memory(exc):
        message = (
            "out of memory while stylising: lower size (or tile_size for a large layer), or "
            f"close other work ({message})"
        )
        field = "controls.size"
    return Error("engine_error", message, field, job.id, id=job.request_id)


def run_job(engine: Engine, job: Job, emit: Emit) -> Final:
    """Run one job on a warm engine; returns its final message (result, cancelled or error).

    Progress and previews go out through ``emit`` as they happen. Shared by the local worker
    thread and the cluster's actors.
    """
    try:
        result = jobs.run(
            engine, job.request, on_progress=_Reporter(emit, job), should_stop=job.cancel.is_set
        )
        spec, blobs = encode_image(result.image, 1)
    except InputError as exc:
        return Error("bad_field", str(exc), control_field(exc), job.id, id=job.request_id), []
    except Exception as exc:
        # the model itself is untouched by a failed job (e.g. out of memory): the next runs
        return engine_error(job, exc), []
    final = Result(
        job=job.id,
        image=spec,
        steps=result.steps,
        cancelled=result.cancelled,
        elapsed=result.elapsed,
        losses=result.losses,
        controls={name: getattr(result.settings, name) for name in CONTROLS},
        notes=result.notes or None,
        id=job.request_id,
    )
    return final, blobs


class _Reporter:
    """Engine progress -> rate-limited ``progress`` and ``preview`` messages."""

    def __init__(self, emit: Emit, job: Job) -> None:
        self.emit, self.job = emit, job
        self.last = -float("inf")

    def __call__(self, p: progress.Progress) -> None:
        now = time.monotonic()
        job = self.job
        if p.preview is not None:
            spec, blobs = encode_image(p.preview, 1)
            self.emit(job.peer, Preview(job.id, p.step, spec, id=job.request_id), blobs)
        if now - self.last < PROGRESS_INTERVAL and p.step != p.total_steps:
            return
        self.last = now
        event = Progress(
            job=job.id,
            step=p.step,
            total_steps=p.total_steps,
            stage=p.stage,
            stages=p.stages,
            width=p.width,
            height=p.height,
            losses=p.losses,
            elapsed=p.elapsed,
            eta=p.eta,
            id=job.request_id,
        )
        self.emit(job.peer, event, [])
