"""``stylebridge serve``: the ROUTER socket loop. It reads, dispatches and sends; never computes.

Each request is read into its typed message (wire/messages.py) and handed to its handler
(server/handlers.py), whose replies go back to the peer. The worker thread hands its messages
over an inproc PUSH/PULL pair, so only this thread ever touches the ROUTER socket (ZeroMQ
sockets are not thread-safe).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError
from stylebridge.core.weights import cache_dir
from stylebridge.wire.discovery import IPC_KEY, IPC_SCHEME
from stylebridge.wire.messages import Accepted, Error, Message, Result, read_request
from stylebridge.wire.protocol import VERSION

from .board import Emit, Job
from .defaults import DRAIN_SECONDS, IDLE_UNLOAD
from .discovery import local_socket, remove_discovery, write_discovery
from .estimate import COSTS_FILE, CostModel, probe_request
from .handlers import Handlers
from .members import Members
from .protocol import Limits, pack
from .sockets import FrontDoor
from .worker import Backend, Worker

POLL_MS = 100
PROBE_PEER = b""  # the cost model's probe jobs: their messages are read here, never sent


class Server:
    def __init__(
        self,
        endpoint: str,
        *,
        device: str = "auto",
        weights_path: str | None = None,
        limits: Limits | None = None,
        idle_unload: float | None = IDLE_UNLOAD,
        token: str | None = None,
        discovery: bool = True,
        backend: Callable[[Emit], Backend] | None = None,
        drain: float = DRAIN_SECONDS,
        curve: tuple[bytes, bytes] | None = None,
        members: Members | None = None,
        costs_path: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.limits = limits or Limits()
        self.token = token or secrets.token_urlsafe(32)
        # shutdown's own key: only in the private discovery file on this machine, so a token
        # holder elsewhere (a studio member, a relay) cannot stop everyone's server
        self.admin_key = secrets.token_urlsafe(32)
        self.discovery = discovery
        self.socket_path: Path | None = None  # the Unix socket this server listens on too
        self.started = time.monotonic()
        self.ctx = zmq.Context()
        # CURVE: encrypted, and clients know they reach this server (by its public key); who
        # may use it is decided in the handshake: the token (PLAIN), or with CURVE the
        # members' keys and the server's own token's (server/sockets.py)
        self.front = FrontDoor(self.ctx, self.limits, self.token, curve, self._gone, members)
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
        self.handlers = Handlers(self)
        self.bounds = self.limits.bounds()
        # the measured rates, per device: known once the model has loaded (serve_forever)
        self.costs_path = costs_path or cache_dir() / COSTS_FILE
        self.costs = CostModel(device, None)

    # --- worker -> socket ------------------------------------------------------------------------

    def _emit(self, peer: bytes, message: Message, blobs: list) -> None:
        """Called from any thread: queue a message for the socket thread to send. A job's end
        teaches the cost model; a probe job's messages end here."""
        if isinstance(message, Result):
            completed = not message.cancelled and message.image is not None
            self.costs.finished(message.job, message.elapsed, completed)
        elif isinstance(message, Error) and message.job:
            self.costs.forget(message.job)
        if peer == PROBE_PEER:
            return
        sock = getattr(self._events_out, "sock", None)
        if sock is None:
            sock = self._events_out.sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 1000)
            # no high-water mark: the job board emits under its lock, so a send must never
            # wait (the messages are the jobs' own: rate-limited progress, one result each)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(f"inproc://events-{id(self)}")
        sock.send_multipart([peer, *pack(message, blobs)], copy=False)

    def probe(self, preset: str) -> None:
        """Queue the cost model's probe job of ``preset`` (server/estimate.py)."""
        request = probe_request(preset, self.handlers.presets)
        job = Job(PROBE_PEER, None, request)
        self.costs.expect(job.id, request.settings, *request.content.shape[:2])
        self.worker.board.submit(job)

    def _gone(self, peer: bytes) -> None:
        """A peer vanished (a send found it gone): its jobs go with it."""
        self.worker.board.cancel_peer(peer)

    # --- the loop --------------------------------------------------------------------------------

    def bind(self) -> None:
        self.router.bind(self.endpoint)
        if self.discovery:
            write_discovery(
                {
                    "endpoint": self.endpoint,
                    IPC_KEY: self._bind_local_socket(),
                    "pid": os.getpid(),
                    "token": self.token,
                    "admin": self.admin_key,
                    "version": __version__,
                    "protocol": VERSION,
                    "server_key": self.server_key,
                }
            )

    def _bind_local_socket(self) -> str | None:
        """Listen on the runtime folder's Unix socket too (mode 0600 in the 0700 folder), which
        this machine's clients prefer to the port; None when there is none (`local_socket`) or
        it cannot be bound (a path over the system's limit of about 100 bytes): TCP only."""
        try:
            path = local_socket(self.endpoint)
            if path is None:
                return None
            endpoint = IPC_SCHEME + str(path)
            self.router.bind(endpoint)
            self.socket_path = path  # removed on the way out (libzmq leaves it)
            os.chmod(path, 0o600)
        except (zmq.ZMQError, OSError) as exc:
            print(
                f"stylebridge: warning: no Unix socket for this machine's clients ({exc}); "
                f"they use {self.endpoint}",
                flush=True,
            )
            return None
        return endpoint

    def serve_forever(self, ready: threading.Event | None = None) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.events_in, zmq.POLLIN)
        try:
            self.worker.load()
            device = str(self.worker.snapshot()["device"])
            self.costs = CostModel(device, self.costs_path, self.handlers.presets)
            self.worker.start()
            if ready:
                ready.set()
            while not (self.stopping.is_set() and self.drained()):
                self.front.check()
                for sock, _ in poller.poll(POLL_MS):
                    if sock is self.events_in:
                        self.front.send(self.events_in.recv_multipart(copy=False))
                    else:
                        self.front.receive(self._on_request)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for job in self.worker.board.stop():
            stopping = Error(
                "shutting_down", "the server is stopping", None, job.id, job.request_id
            )
            self.front.reply(job.peer, stopping)
        if self.worker.is_alive():
            self.worker.join(timeout=30)
        while self.events_in.poll(0):  # flush what the worker said last (its cancelled result)
            self.front.send(self.events_in.recv_multipart(copy=False))
        if self.discovery:
            remove_discovery(os.getpid(), socket=self.socket_path)
        self.front.close()
        # the worker's PUSH socket lives in its (finished) thread: destroy closes everything
        self.ctx.destroy(linger=500)

    def stop(self, drain: float | None = None) -> None:
        """Take no new jobs; let the running and queued ones finish for up to ``drain`` seconds
        (default: the server's), then cancel what is left. A second call can only shorten it."""
        deadline = time.monotonic() + (self.drain if drain is None else drain)
        self.drain_deadline = min(self.drain_deadline, deadline)
        self.stopping.set()

    def drained(self) -> bool:
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

    def _on_request(self, peer: bytes, header: dict[str, Any], parts: list[zmq.Frame]) -> None:
        frames = [p.buffer for p in parts]
        request = read_request(header, frames, self.bounds)
        member = self.front.member(parts[0])
        for reply, blobs in self.handlers.handle(peer, request, frames):
            if member and isinstance(reply, Accepted):
                print(f"stylebridge: job {reply.job} for member {member}", flush=True)
            self.front.reply(peer, reply, blobs)


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
