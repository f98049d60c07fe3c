"""The worker thread: owns the engine, runs one job at a time, reports through a callback.

It never touches the server's socket; it hands ``(peer, header, blobs)`` to ``emit``, which the
server turns into messages for its own thread.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import gc
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from stylebridge.core.engine import Engine, Progress
from stylebridge.core.errors import InputError
from stylebridge.core.images import Layer, layer_from_array, layer_to_array
from stylebridge.core.settings import make_settings

from .protocol import CONTROLS, SubmitRequest, encode_image, error_header
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


class StyleCache(collections.OrderedDict):
    """LRU of style Gram targets, bounded in bytes (Grams of big layers are a few MB each)."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.bytes = 0

    @staticmethod
    def _size(grams: list[torch.Tensor]) -> int:
        return sum(g.numel() * g.element_size() for g in grams)

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, grams: list[torch.Tensor]) -> None:
        if key in self:
            self.bytes -= self._size(super().__getitem__(key))
        super().__setitem__(key, grams)
        self.bytes += self._size(grams)
        while self.bytes > self.max_bytes and len(self) > 1:
            _, old = self.popitem(last=False)
            self.bytes -= self._size(old)

    def clear(self) -> None:
        super().clear()
        self.bytes = 0


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
        self.cache = StyleCache()
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
                "style_cache": {"entries": len(self.cache), "bytes": self.cache.bytes},
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
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

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
                release_free_memory()

    def _run_job(self, job: Job) -> Final:
        try:
            engine = self.load()
        except Exception as exc:
            return engine_error(job, exc), []
        return run_job(engine, job, self.emit)


def input_field(exc: InputError) -> str | None:
    """The protocol field an engine ``InputError`` ("name: what is wrong") is about."""
    name = str(exc).split(":", 1)[0]
    if name in CONTROLS:
        return f"controls.{name}"
    return name if name == "content" or name.startswith("styles.") else None


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc (not musl, not macOS)
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


def release_free_memory() -> None:
    """glibc keeps heap pages a finished job freed: replaying the same 60 small jobs of varied
    sizes grew RSS by ~45 MB each time; trimmed between jobs it stays flat."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def engine_error(job: Job, exc: BaseException) -> dict[str, Any]:
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
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
        settings = make_settings(req.preset, **req.controls)
        content = layer_from_array(req.content)
        styles = [layer_from_array(s) for s in req.styles]
        result = engine.stylize(
            content,
            styles,
            dataclasses.replace(settings, device="auto"),
            style_weights=req.style_weights,
            on_progress=_Reporter(emit, job, req.preview),
            should_stop=job.cancel.is_set,
            preview_interval=req.preview,
        )
    except InputError as exc:
        return error_header("bad_field", str(exc), input_field(exc), job.request_id, job.id), []
    except Exception as exc:
        # the model itself is untouched by a failed job (e.g. out of memory): the next runs
        return engine_error(job, exc), []
    layer = apply_mask(result.layer, req.mask)
    spec, blob = encode_image(layer_to_array(layer, req.content.dtype), 1)
    stats = {"steps": result.steps, "elapsed": result.elapsed, "losses": result.losses}
    kind = "cancelled" if result.cancelled else "result"
    return {"type": kind, **header, "image": spec, "cancelled": result.cancelled, **stats}, [blob]


def apply_mask(layer: Layer, mask: np.ndarray | None) -> Layer:
    """Selection: the result's alpha is the content's alpha times the mask."""
    if mask is None:
        return layer
    m = layer_from_array(mask, name="mask").rgb[:1]  # the images module's exact scaling
    alpha = m if layer.alpha is None else layer.alpha * m
    return dataclasses.replace(layer, alpha=alpha.float())


class _Reporter:
    """Engine progress -> rate-limited ``progress`` and ``preview`` messages."""

    def __init__(self, emit: Emit, job: Job, preview: float | None) -> None:
        self.emit, self.job, self.preview = emit, job, preview
        self.last = -float("inf")

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        base = {"id": self.job.request_id, "job": self.job.id}
        if p.preview is not None:
            frame = (p.preview.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            spec, blob = encode_image(np.ascontiguousarray(frame), 1)
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
