"""What the server answers: one handler per request type, over the typed messages of
wire/messages.py. A handler returns its replies (the socket loop sends them) or raises
``ProtocolError`` (the loop answers it as an ``error``); none ever computes or waits.

A submit is checked here once, completely: the message by the wire package, its controls by
the engine's declarations, its memory need and its place in the queue. What the job board gets
is a ready `JobRequest`; nothing after this point validates it again.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from stylebridge.core import __version__, jobs
from stylebridge.core.errors import InputError
from stylebridge.core.memory import estimate_peak_bytes
from stylebridge.core.request import JobRequest
from stylebridge.core.settings import PRESETS, Settings
from stylebridge.wire.messages import (
    Accepted,
    Bye,
    Cancel,
    Cancelling,
    Echo,
    Echoed,
    Estimate,
    EstimateQuery,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Result,
    Shutdown,
    Status,
    StatusQuery,
    Submit,
)
from stylebridge.wire.protocol import VERSION

from .board import Job
from .estimate import CostModel
from .protocol import (
    CONTROLS,
    Limits,
    control_field,
    decode_image,
    encode_image,
    job_request,
    owns_pixels,
    submit_settings,
)
from .worker import Backend

Replies = list[tuple[Message, list]]  # messages to the requesting peer, each with its blobs
Handler = Callable[[bytes, Any, Sequence[Any]], Replies]


class Serving(Protocol):
    """What the handlers read of the server they answer for (server.Server)."""

    endpoint: str
    started: float  # time.monotonic() at start
    limits: Limits
    admin_key: str  # shutdown's key, in the discovery file only
    stopping: threading.Event
    worker: Backend
    costs: CostModel  # how long a job takes here (server/estimate.py)

    def stop(self, drain: float | None = None) -> None: ...
    def drained(self) -> bool: ...
    def probe(self, preset: str) -> None: ...  # queue the cost model's probe job of ``preset``


class Handlers:
    """The handlers of one server; ``table`` maps each request class to its handler."""

    def __init__(self, server: Serving, presets: Mapping[str, Settings] = PRESETS) -> None:
        self.server, self.presets = server, presets
        self.table: dict[type[Message], Handler] = {
            Ping: self.ping,
            StatusQuery: self.status,
            Echo: self.echo,
            Submit: self.submit,
            Cancel: self.cancel,
            Shutdown: self.shutdown,
            EstimateQuery: self.estimate,
        }

    def handle(self, peer: bytes, request: Message, frames: Sequence[Any]) -> Replies:
        return self.table[type(request)](peer, request, frames)

    def ping(self, peer: bytes, request: Ping, frames: Sequence[Any]) -> Replies:
        # the vocabulary this server takes: a client can offer what it did not know of
        pong = Pong(__version__, VERSION, list(self.presets), list(CONTROLS), id=request.id)
        return [(pong, [])]

    def status(self, peer: bytes, request: StatusQuery, frames: Sequence[Any]) -> Replies:
        server = self.server
        status = Status(
            version=__version__,
            protocol=VERSION,
            endpoint=server.endpoint,
            pid=os.getpid(),
            memory={"rss": current_rss(), "cuda_allocated": jobs.device_memory()},
            uptime=time.monotonic() - server.started,
            limits=server.limits.as_dict(),
            draining=server.stopping.is_set(),
            worker_alive=server.worker.is_alive(),
            **server.worker.snapshot(),
            id=request.id,
        )
        return [(status, [])]

    def echo(self, peer: bytes, request: Echo, frames: Sequence[Any]) -> Replies:
        spec, blobs = encode_image(decode_image(request.image, frames, "image"), 1)
        return [(Echoed(spec, id=request.id), blobs)]

    def submit(self, peer: bytes, request: Submit, frames: Sequence[Any]) -> Replies:
        job_req = job_request(request, frames, self.presets)  # refused now, not after the queue
        need = self._memory_need(job_req.settings, request)
        server, limits = self.server, self.server.limits
        if server.stopping.is_set():
            raise ProtocolError("shutting_down", "the server is stopping")
        if not server.worker.is_alive():  # never queue a job nothing will run
            raise ProtocolError(
                "engine_error", "the server's worker has stopped: restart the server (see its log)"
            )
        board = server.worker.board
        if board.pending() >= limits.max_queue:
            raise ProtocolError("queue_full", f"{limits.max_queue} jobs are already waiting")
        share = limits.client_share()  # one client never fills it for everyone
        if board.pending_for(peer) >= share:
            raise ProtocolError(
                "queue_full",
                f"this client already has {share} of the {limits.max_queue} places in the "
                "queue (the rest are kept for other clients): wait for one to finish",
            )
        job_req, nbytes = kept(job_req)
        ceiling = limits.max_memory
        if ceiling is not None and need + board.held_bytes() + nbytes > ceiling:
            raise ProtocolError(
                "queue_full",
                f"the jobs already queued hold {board.held_bytes() / 2**30:.2f} GiB of images: "
                f"with this one the server would pass its memory ceiling of "
                f"{ceiling / 2**30:.1f} GiB; wait for the queue to drain",
            )
        job = Job(peer, request.id, job_req, nbytes=nbytes)
        server.costs.expect(job.id, job_req.settings, *job_req.content.shape[:2])
        position = board.submit(job)
        return [(Accepted(job.id, position, id=request.id), [])]

    def _memory_need(self, settings: Settings, request: Submit) -> int:
        """The job's estimated peak; `ProtocolError` when it is over the server's ceiling."""
        styles = [(s.height, s.width) for s in request.styles]
        try:
            need = estimate_peak_bytes(
                settings, request.content.height, request.content.width, styles
            )
        except InputError as exc:
            raise ProtocolError("bad_field", str(exc), control_field(exc)) from None
        ceiling = self.server.limits.max_memory
        if ceiling is not None and need > ceiling:
            raise ProtocolError(
                "too_large",
                f"this job needs about {need / 2**30:.1f} GiB, over the server's memory ceiling "
                f"of {ceiling / 2**30:.1f} GiB: lower size (or tile_size for a large layer)",
                "controls.size",
            )
        return need

    def estimate(self, peer: bytes, request: EstimateQuery, frames: Sequence[Any]) -> Replies:
        """Seconds a job would take here (None while the preset is being measured: the first
        such question queues the cost model's probe job)."""
        settings = submit_settings(request, self.presets)
        costs = self.server.costs
        try:
            seconds, basis = costs.estimate(settings, request.height, request.width)
        except InputError as exc:  # a content too thin to see
            raise ProtocolError("bad_field", str(exc), control_field(exc)) from None
        if seconds is None and costs.needs_probe(settings.preset):
            self.server.probe(settings.preset)
        return [(Estimate(seconds, basis, id=request.id), [])]

    def cancel(self, peer: bytes, request: Cancel, frames: Sequence[Any]) -> Replies:
        job = self.server.worker.board.cancel(peer, request.job)
        if job is None:
            raise ProtocolError(
                "unknown_job",
                f"job {request.job[:40]!r} is not queued or running for this client",
                "job",
            )
        replies: Replies = [(Cancelling(job.id, id=request.id), [])]
        if not job.started:  # was queued: it ends here; a running one reports
            replies.append((Result(job.id, None, 0, cancelled=True, id=job.request_id), []))
        return replies

    def shutdown(self, peer: bytes, request: Shutdown, frames: Sequence[Any]) -> Replies:
        server = self.server
        if request.admin is None or not hmac.compare_digest(
            request.admin.encode(), server.admin_key.encode()
        ):
            raise ProtocolError(
                "forbidden",
                "shutdown needs the server's admin key: run `stylebridge stop` as the server's "
                "user on its machine (the key is in its discovery file)",
                "admin",
            )
        server.stop(request.drain_seconds())
        return [(Bye(0 if server.drained() else 1, id=request.id), [])]


def kept(request: JobRequest) -> tuple[JobRequest, int]:
    """The request with its images copied out of the message's zmq buffers, which live only as
    long as the message (images joined from several frames are numpy's already); images
    decoded from the same frames (content, styles, mask) share one copy. Also returns the
    bytes kept."""
    copies: dict[tuple[int, tuple[int, ...], str], np.ndarray] = {}

    def keep(array: np.ndarray) -> np.ndarray:
        key = (array.__array_interface__["data"][0], array.shape, array.dtype.str)
        if key not in copies:
            copies[key] = array if owns_pixels(array) else array.copy()
        return copies[key]

    request = dataclasses.replace(
        request,
        content=keep(request.content),
        styles=[keep(s) for s in request.styles],
        mask=None if request.mask is None else keep(request.mask),
    )
    return request, sum(a.nbytes for a in copies.values())


def current_rss() -> int:
    """Resident set size now (Linux /proc), else the peak as the OS reports it."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource  # not on Windows; there the figure is simply absent

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
