"""The worker thread: owns the engine, runs one job at a time, reports through a callback.

It never touches the server's socket; it hands ``(peer, header, blobs)`` to ``emit``, which the
server turns into messages for its own thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stylebridge.core import jobs
from stylebridge.core.engine import Engine
from stylebridge.core.errors import InputError
from stylebridge.core.progress import Progress

from .protocol import CONTROLS, SubmitRequest, control_field, encode_image, error_header
from .scheduler import FairQueue

Emit = Callable[[bytes, dict[str, Any], list], None]
Final = tuple[dict[str, Any], list]  # a job's last message: header and blobs
PROGRESS_INTERVAL = 0.1  # seconds: at most 10 progress events a second


class Backend(Protocol):
    """What the server needs of whatever runs its jobs: this module's ``Worker`` thread, or the
    cluster's dispatcher. Every method is called from the server's socket thread; results,
    progress and previews go back through the ``emit`` callback given at construction."""

    def load(self) -> Any: ...  # warm up (model or actors); raises if that is impossible
    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...
    def submit(self, job: Job) -> int: ...  # how many jobs are ahead of it
    def pending(self) -> int: ...  # jobs waiting, not running
    def idle(self) -> bool: ...  # nothing running, nothing waiting
    def cancel(self, peer: bytes, job_id: str) -> Job | None: ...
    def cancel_peer(self, peer: bytes) -> None: ...
    def stop(self) -> list[Job]: ...  # cancel running jobs, return the queued ones dropped
    def snapshot(self) -> dict[str, Any]: ...  # the status reply's worker fields


@dataclass
class Job:
    peer: bytes
    request_id: Any
    request: SubmitRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False  # taken from the queue: it ends with its own final message


class Worker(threading.Thread):
    def __init__(
        self,
        emit: Emit,
        *,
        device: str = "auto",
        weights_path: str | None = None,
        idle_unload: float | None = 600.0,
        engine_factory: Callable[..., Engine] = Engine,
    ) -> None:
        super().__init__(name="stylebridge-worker", daemon=True)
        self.emit = emit
        self.device, self.weights_path, self.idle_unload = device, weights_path, idle_unload
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.cache = jobs.GramCache()
        self.queue = FairQueue()
        self.running: Job | None = None
        self.lock = threading.Condition()
        self.stopping = False
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
            with self.lock:
                self.engine = engine
        return engine

    def submit(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it (the running one included)."""
        with self.lock:
            position = self.queue.push(job) + (1 if self.running else 0)
            self.lock.notify()
        return position

    def pending(self) -> int:
        with self.lock:
            return len(self.queue)

    def idle(self) -> bool:
        with self.lock:
            return self.running is None and not self.queue

    def cancel(self, peer: bytes, job_id: str) -> Job | None:
        """Cancel a queued job (removed now) or the running one (stops within a step)."""
        with self.lock:
            job = self.queue.remove(peer, job_id)
            if job is not None:
                self._announce_positions()
                return job
            if self.running and self.running.id == job_id and self.running.peer == peer:
                self.running.cancel.set()
                return self.running
        return None

    def cancel_peer(self, peer: bytes) -> None:
        """A client vanished: drop its queued jobs and stop its running one."""
        with self.lock:
            if self.queue.drop_peer(peer):
                self._announce_positions()
            if self.running and self.running.peer == peer:
                self.running.cancel.set()

    def stop(self) -> list[Job]:
        """Stop taking jobs, cancel the running one; returns the queued jobs it dropped."""
        with self.lock:
            self.stopping = True
            dropped = self.queue.clear()
            if self.running:
                self.running.cancel.set()
            self.lock.notify()
        return dropped

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            engine = self.engine
            return {
                "device": str(engine.device) if engine else self.device,
                "model_loaded": engine is not None,
                "weights": engine.weights_source if engine else None,
                "queue": [j.id for j in self.queue],
                "running": self.running.id if self.running else None,
                "style_cache": self.cache.stats(),
            }

    # --- the worker thread -----------------------------------------------------------------------

    def _announce_positions(self) -> None:
        for position, job in enumerate(self.queue, start=1):
            self.emit(
                job.peer,
                {"type": "queued", "id": job.request_id, "job": job.id, "position": position},
                [],
            )

    def _next_job(self) -> Job | None:
        with self.lock:
            while not self.queue and not self.stopping:
                timeout = None
                if self.engine is not None and self.idle_unload is not None:
                    timeout = self.last_job_end + self.idle_unload - time.monotonic()
                    if timeout <= 0:
                        self._unload()
                        continue
                self.lock.wait(timeout)
            if self.stopping:
                return None
            self.running = self.queue.pop()
            self.running.started = True
            self._announce_positions()
            return self.running

    def _unload(self) -> None:
        """Idle: give the model and the cached Grams back (GPU memory above all)."""
        self.engine = None
        self.cache.clear()
        jobs.release_model_memory()

    def run(self) -> None:
        while (job := self._next_job()) is not None:
            final: Final | None = None
            try:
                final = self._run_job(job)
            finally:
                with self.lock:
                    self.running = None
                    self.last_job_end = time.monotonic()
                # after clearing `running`: a client holding its result sees the server idle
                if final is not None:
                    self.emit(job.peer, *final)
                jobs.release_free_memory()

    def _run_job(self, job: Job) -> Final:
        try:
            engine = self.load()
        except Exception as exc:
            return engine_error(job, exc), []
        return run_job(engine, job, self.emit)


def engine_error(job: Job, exc: BaseException) -> dict[str, Any]:
    message = f"{type(exc).__name__}: {exc}"
    if jobs.out_of_memory(exc):
        message = (
            "out of memory while stylising: lower size or tile_size, or close other work "
            f"({message})"
        )
    return error_header("engine_error", message, None, job.request_id, job.id)


def run_job(engine: Engine, job: Job, emit: Emit) -> Final:
    """Run one job on a warm engine; returns its final message (result, cancelled or error).

    Progress and previews go out through ``emit`` as they happen. Shared by the local worker
    thread and the cluster's actors.
    """
    header = {"id": job.request_id, "job": job.id}
    req = job.request
    try:
        result = jobs.run(
            engine,
            req.preset,
            req.controls,
            req.content,
            req.styles,
            style_weights=req.style_weights,
            mask=req.mask,
            on_progress=_Reporter(emit, job),
            should_stop=job.cancel.is_set,
            preview_interval=req.preview,
        )
    except InputError as exc:
        return error_header("bad_field", str(exc), control_field(exc), job.request_id, job.id), []
    except Exception as exc:
        # the model itself is untouched by a failed job (e.g. out of memory): the next runs
        return engine_error(job, exc), []
    spec, blob = encode_image(result.image, 1)
    stats = {
        "steps": result.steps,
        "elapsed": result.elapsed,
        "losses": result.losses,
        # every control's value as run: a client that predates one still learns it
        "controls": {name: getattr(result.settings, name) for name in CONTROLS},
    }
    kind = "cancelled" if result.cancelled else "result"
    return {"type": kind, **header, "image": spec, "cancelled": result.cancelled, **stats}, [blob]


class _Reporter:
    """Engine progress -> rate-limited ``progress`` and ``preview`` messages."""

    def __init__(self, emit: Emit, job: Job) -> None:
        self.emit, self.job = emit, job
        self.last = -float("inf")

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        base = {"id": self.job.request_id, "job": self.job.id}
        if p.preview is not None:
            spec, blob = encode_image(p.preview, 1)
            self.emit(
                self.job.peer, {"type": "preview", **base, "step": p.step, "image": spec}, [blob]
            )
        if now - self.last < PROGRESS_INTERVAL and p.step != p.total_steps:
            return
        self.last = now
        self.emit(
            self.job.peer,
            {
                "type": "progress",
                **base,
                "step": p.step,
                "total_steps": p.total_steps,
                "stage": p.stage,
                "stages": p.stages,
                "width": p.width,
                "height": p.height,
                "losses": p.losses,
                "elapsed": p.elapsed,
                "eta": p.eta,
            },
            [],
        )
