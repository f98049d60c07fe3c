"""``stylebridge serve``: the ROUTER socket loop. It validates, answers, queues; never computes.

The worker thread hands its messages over an inproc PUSH/PULL pair, so only this thread ever
touches the ROUTER socket (ZeroMQ sockets are not thread-safe).
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from stylebridge.core import __version__, jobs
from stylebridge.core.errors import InputError, StyleBridgeError
from stylebridge.core.memory import estimate_peak_bytes
from stylebridge.core.request import JobRequest
from stylebridge.wire.messages import PREVIEW_SIDE

from .board import Emit, Job
from .discovery import remove_discovery, write_discovery
from .protocol import (
    CONTROLS,
    PRESETS,
    VERSION,
    Limits,
    ProtocolError,
    check_envelope,
    control_field,
    decode_image,
    encode_image,
    error_header,
    pack,
    parse_submit,
    require,
    submit_settings,
    unpack_header,
)
from .sockets import FrontDoor
from .worker import Backend, Worker

POLL_MS = 100
DRAIN_SECONDS = 60.0  # on stop, queued and running jobs get this long to finish


class Server:
    def __init__(
        self,
        endpoint: str,
        *,
        device: str = "auto",
        weights_path: str | None = None,
        limits: Limits | None = None,
        idle_unload: float | None = 600.0,
        token: str | None = None,
        discovery: bool = True,
        backend: Callable[[Emit], Backend] | None = None,
        drain: float = DRAIN_SECONDS,
        curve: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.limits = limits or Limits()
        self.token = token or secrets.token_urlsafe(32)
        # shutdown's own key: only in the private discovery file on this machine, so a token
        # holder elsewhere (a studio member, a relay) cannot stop everyone's server
        self.admin_key = secrets.token_urlsafe(32)
        self.discovery = discovery
        self.started = time.monotonic()
        self.ctx = zmq.Context()
        # CURVE: encrypted, and clients know they reach this server (by its public key); who
        # may use it is decided by the token, in the handshake either way (server/sockets.py)
        self.front = FrontDoor(self.ctx, self.limits, self.token, curve)
        self.router = self.front.router
        self.server_key = curve[0].decode() if curve else None
        self.events_in = self.ctx.socket(zmq.PULL)
        self.events_in.setsockopt(zmq.RCVHWM, 0)
        self.events_in.bind(f"inproc://events-{id(self)}")
        self._events_out = threading.local()
        # jobs run in this process (Worker) or on a cluster's actors (cluster.ClusterWorker)
        self.worker: Backend = (
            backend(self._emit)
            if backend
            else Worker(
                self._emit, device=device, weights_path=weights_path, idle_unload=idle_unload
            )
        )
        self.stopping = threading.Event()
        self.drain = drain
        self.drain_deadline = float("inf")

    # --- worker -> socket ------------------------------------------------------------------------

    def _emit(self, peer: bytes, header: dict[str, Any], blobs: list) -> None:
        """Called from any thread: queue a message for the socket thread to send."""
        sock = getattr(self._events_out, "sock", None)
        if sock is None:
            sock = self._events_out.sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 1000)
            # no high-water mark: the job board emits under its lock, so a send must never
            # wait (the messages are the jobs' own: rate-limited progress, one result each)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(f"inproc://events-{id(self)}")
        sock.send_multipart([peer, *pack({"v": VERSION, **header}, blobs)], copy=False)

    def _send(self, peer: bytes, header: dict[str, Any], blobs: list = ()) -> None:
        self._forward([peer, *pack({"v": VERSION, **header}, blobs)])

    def _forward(self, frames: list) -> None:
        """Send without ever blocking: a slow peer loses the message, a gone one its jobs."""
        try:
            self.router.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # connected but not reading (high-water mark): drop, keep serving
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            peer = frames[0].bytes if isinstance(frames[0], zmq.Frame) else frames[0]
            self.worker.board.cancel_peer(peer)

    # --- the loop --------------------------------------------------------------------------------

    def bind(self) -> None:
        self.router.bind(self.endpoint)
        if self.discovery:
            write_discovery(
                {
                    "endpoint": self.endpoint,
                    "pid": os.getpid(),
                    "token": self.token,
                    "admin": self.admin_key,
                    "version": __version__,
                    "protocol": VERSION,
                    "server_key": self.server_key,
                }
            )

    def serve_forever(self, ready: threading.Event | None = None) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.events_in, zmq.POLLIN)
        try:
            self.worker.load()
            self.worker.start()
            if ready:
                ready.set()
            while not (self.stopping.is_set() and self._drained()):
                for sock, _ in poller.poll(POLL_MS):
                    if sock is self.events_in:
                        self._forward(self.events_in.recv_multipart(copy=False))
                    else:
                        self._handle(self.router.recv_multipart(copy=False))
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for job in self.worker.board.stop():
            self._send(
                job.peer,
                error_header(
                    "shutting_down", "the server is stopping", None, job.request_id, job.id
                ),
            )
        if self.worker.is_alive():
            self.worker.join(timeout=30)
        while self.events_in.poll(0):  # flush what the worker said last (its cancelled result)
            self._forward(self.events_in.recv_multipart(copy=False))
        if self.discovery:
            remove_discovery(os.getpid())
        self.front.close()
        # the worker's PUSH socket lives in its (finished) thread: destroy closes everything
        self.ctx.destroy(linger=500)

    def stop(self, drain: float | None = None) -> None:
        """Take no new jobs; let the running and queued ones finish for up to ``drain`` seconds
        (default: the server's), then cancel what is left. A second call can only shorten it."""
        deadline = time.monotonic() + (self.drain if drain is None else drain)
        self.drain_deadline = min(self.drain_deadline, deadline)
        self.stopping.set()

    def _drained(self) -> bool:
        return self.worker.board.idle() or time.monotonic() >= self.drain_deadline

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if self.stopping.is_set():  # asked twice: stop now
                self.stop(0)
                return
            self.stop()
            if not self.worker.board.idle():
                print(
                    f"stylebridge: stopping after the current jobs (at most {self.drain:.0f} s); "
                    "interrupt again to cancel them",
                    flush=True,
                )

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    # --- one request -----------------------------------------------------------------------------

    def _handle(self, parts: list[zmq.Frame]) -> None:
        peer = parts[0].bytes
        request_id = None
        try:
            if len(parts) < 2:
                raise ProtocolError("bad_message", "a message needs a header frame")
            if len(parts) > self.limits.max_styles + 4:
                raise ProtocolError("too_large", f"{len(parts) - 1} frames is too many")
            header = unpack_header(parts[1].bytes)
            request_id = header.get("id") if isinstance(header.get("id"), int | str) else None
            kind, request_id = check_envelope(header)
            frames = [p.buffer for p in parts[1:]]
            getattr(self, f"_on_{kind}")(peer, request_id, header, frames)
        except ProtocolError as exc:
            self._send(peer, exc.reply(request_id))
        except Exception as exc:
            self._send(
                peer, error_header("bad_message", f"{type(exc).__name__}: {exc}", None, request_id)
            )

    def _on_ping(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        self._send(
            peer,
            {
                "type": "pong",
                "id": rid,
                "version": __version__,
                "protocol": VERSION,
                # the vocabulary this server takes: a client can offer what it did not know of
                "presets": list(PRESETS),
                "controls": list(CONTROLS),
            },
        )

    def _on_status(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        memory = {"rss": current_rss(), "cuda_allocated": jobs.device_memory()}
        self._send(
            peer,
            {
                "type": "status",
                "id": rid,
                "version": __version__,
                "protocol": VERSION,
                "endpoint": self.endpoint,
                "pid": os.getpid(),
                "memory": memory,
                "uptime": time.monotonic() - self.started,
                "limits": self.limits.as_dict(),
                "draining": self.stopping.is_set(),
                "worker_alive": self.worker.is_alive(),
                **self.worker.snapshot(),
            },
        )

    def _on_echo(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        array = decode_image(require(header, "image", dict), frames, self.limits, "image")
        spec, blob = encode_image(array, 1)
        self._send(peer, {"type": "echo", "id": rid, "image": spec}, [blob])

    def _on_submit(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        request = parse_submit(header, frames, self.limits)
        settings = submit_settings(request)  # refused now, not after waiting in the queue
        try:
            need = estimate_peak_bytes(
                settings, *request.content.shape[:2], [s.shape[:2] for s in request.styles]
            )
        except InputError as exc:
            raise ProtocolError("bad_field", str(exc), control_field(exc)) from None
        ceiling = self.limits.max_memory
        if ceiling is not None and need > ceiling:
            raise ProtocolError(
                "too_large",
                f"this job needs about {need / 2**30:.1f} GiB, over the server's memory ceiling "
                f"of {ceiling / 2**30:.1f} GiB: lower size (or tile_size for a large layer)",
                "controls.size",
            )
        if self.stopping.is_set():
            raise ProtocolError("shutting_down", "the server is stopping")
        if not self.worker.is_alive():  # never queue a job nothing will run
            raise ProtocolError(
                "engine_error", "the server's worker has stopped: restart the server (see its log)"
            )
        board = self.worker.board
        if board.pending() >= self.limits.max_queue:
            raise ProtocolError("queue_full", f"{self.limits.max_queue} jobs are already waiting")
        share = self.limits.client_share()  # one client never fills it for everyone
        if board.pending_for(peer) >= share:
            raise ProtocolError(
                "queue_full",
                f"this client already has {share} of the {self.limits.max_queue} places in the "
                "queue (the rest are kept for other clients): wait for one to finish",
            )
        job_request, nbytes = kept(
            JobRequest(
                request.content,
                request.styles,
                settings,
                request.style_weights,
                request.mask,
                request.preview,
                PREVIEW_SIDE,
            )
        )
        if ceiling is not None and need + board.held_bytes() + nbytes > ceiling:
            raise ProtocolError(
                "queue_full",
                f"the jobs already queued hold {board.held_bytes() / 2**30:.2f} GiB of images: "
                f"with this one the server would pass its memory ceiling of "
                f"{ceiling / 2**30:.1f} GiB; wait for the queue to drain",
            )
        job = Job(peer, rid, job_request, nbytes=nbytes)
        position = self.worker.board.submit(job)
        self._send(peer, {"type": "accepted", "id": rid, "job": job.id, "position": position})

    def _on_cancel(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        job_id = require(header, "job", str)
        job = self.worker.board.cancel(peer, job_id)
        if job is None:
            raise ProtocolError(
                "unknown_job",
                f"job {job_id[:40]!r} is not queued or running for this client",
                "job",
            )
        self._send(peer, {"type": "cancelling", "id": rid, "job": job.id})
        if not job.started:  # was queued: it ends here; a running one reports
            self._send(
                peer,
                {
                    "type": "cancelled",
                    "id": job.request_id,
                    "job": job.id,
                    "image": None,
                    "steps": 0,
                },
            )

    def _on_shutdown(self, peer: bytes, rid: Any, header: dict, frames: list) -> None:
        admin = header.get("admin")
        if not isinstance(admin, str) or not hmac.compare_digest(
            admin.encode(), self.admin_key.encode()
        ):
            raise ProtocolError(
                "forbidden",
                "shutdown needs the server's admin key: run `stylebridge stop` as the server's "
                "user on its machine (the key is in its discovery file)",
                "admin",
            )
        drain = header.get("drain")
        if drain is not None and (
            isinstance(drain, bool)
            or not isinstance(drain, int | float)
            or not 0 <= drain <= 24 * 3600
        ):
            raise ProtocolError("bad_field", "drain: seconds, 0..86400", "drain")
        self.stop(drain)
        self._send(peer, {"type": "bye", "id": rid, "pending": 0 if self._drained() else 1})


def kept(request: JobRequest) -> tuple[JobRequest, int]:
    """The request with its images copied out of the message's zmq buffers, which live only as
    long as the message; images decoded from the same frame (content, styles, mask) share one
    copy. Also returns the bytes kept."""
    copies: dict[tuple[int, tuple[int, ...], str], np.ndarray] = {}

    def keep(array: np.ndarray) -> np.ndarray:
        key = (array.__array_interface__["data"][0], array.shape, array.dtype.str)
        if key not in copies:
            copies[key] = array.copy()
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


def run_server(endpoint: str, **kwargs: Any) -> int:
    """Bind, load the model, say so, and serve until stop / SIGINT / SIGTERM."""
    server = Server(endpoint, **kwargs)
    try:
        server.bind()
    except zmq.ZMQError as exc:
        server.front.close()
        server.ctx.destroy(linger=0)
        raise StyleBridgeError(f"cannot listen on {endpoint}: {exc.strerror}") from None
    server.install_signal_handlers()
    print(f"stylebridge {__version__}: loading the model...", flush=True)
    ready = threading.Event()
    threading.Thread(target=_announce, args=(server, ready), daemon=True).start()
    server.serve_forever(ready)
    print("stylebridge: stopped", flush=True)
    return 0


def _announce(server: Server, ready: threading.Event) -> None:
    ready.wait()
    engine = server.worker.engine
    where = f"{engine.device}, weights: {engine.weights_source}" if engine else "model not loaded"
    print(f"stylebridge: ready on {server.endpoint} ({where})", flush=True)
    if server.server_key:
        print(f"stylebridge: CURVE encryption on; server key {server.server_key}", flush=True)
