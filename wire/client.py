"""The stylebridge client: one implementation of the protocol's request and job bookkeeping,
with the transport as the only variation. Standard library only.

Embedded Pythons (Krita, GIMP) use it as it is: a `DealerSocket` (ZMTP 3.1 in plain Python) and
pixels as raw bytes in an `Image`. ``stylebridge.server.client.Client`` is the same class over
pyzmq (and CurveZMQ) with numpy arrays in and out: it only passes another ``transport`` and
overrides `Client.encode` / `Client.decode`.

For a UI thread everything is non-blocking::

    client = Client()                            # discovery file, or STYLEBRIDGE_ENDPOINT/TOKEN
    job = client.submit(content, [style], preview=0.5, balance=0.6)
    # from a timer (or when client.fileno() turns readable):
    if job.poll(0):                              # never waits longer than its timeout
        ...                                      # job.result / job.error / job.cancelled
    job.cancel()                                 # sends, returns at once

Replies and events come as the typed messages of messages.py (`Status`, `Progress`, `Result`,
...). Scripts and tests have blocking conveniences: `Client.ping`, `status`, `echo`, `stylize`. A
dead or silent server always ends in `ServerUnavailable`, never in a hang: after ``timeout``
seconds without a message while something is outstanding the client sends ``ping``; without an
answer within another ``timeout`` seconds it gives up (Lazy Pirate: the socket is closed, and
the next call connects again with a new one).

Poll at least every few seconds while a job runs: the stdlib socket only answers the server's
transport heartbeats inside calls, and the server drops a connection that stays silent for
60 s (the job is then cancelled and `poll` raises `ServerUnavailable`). An idle client whose
connection was dropped reconnects by itself on its next request.

One client (and its jobs) belongs to one thread. Only relative imports: the package is
vendored into the plug-ins under another parent package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .discovery import find_server
from .messages import (
    ANSWERS,
    PREVIEW_SIDE,
    Accepted,
    Cancel,
    Cancelling,
    Echo,
    Error,
    Estimate,
    EstimateQuery,
    ImageSpec,
    Message,
    Ping,
    Pong,
    Preview,
    Progress,
    Proof,
    ProtocolError,
    Prove,
    Queued,
    Result,
    Shutdown,
    Status,
    StatusQuery,
    Submit,
    chunks,
    read_reply,
)
from .msgpack_lite import packb, unpackb
from .protocol import (
    MAX_HEADER_BYTES,
    MAX_HEADER_DEPTH,
    NONCE_BYTES,
    PLAIN_USER,
    ClientError,
    Image,
    ServerError,
    ServerUnavailable,
    TransportError,
    plain_password,
    server_proof,
)
from .zmtp import DealerSocket

_WAIT_SLICE = 0.25  # blocking calls wake at least this often to check an upload's progress


# ==================================================================================== jobs

if TYPE_CHECKING:  # collections.abc.Callable cannot be subscripted at run time on 3.8
    ProgressCallback = Callable[[Progress], None]
    PreviewCallback = Callable[[Image, Preview], None]


class JobHandle:
    """A submitted job. `poll` drives it (and every other request of its client).

    Attributes, updated by `poll`:
        request_id: the submit's request id.
        job_id: the server's job id (str), None until ``accepted`` arrives.
        position: jobs ahead of this one (0: running), None until accepted.
        progress: the last `Progress` event (step, total_steps, stage, stages, width, height,
            losses, elapsed, eta); None before the first.
        latest_preview: the newest preview frame (8-bit RGB Image), or None.
        preview_step: the optimisation step of ``latest_preview``.
        result: the stylised Image (the content's size, dtype and channels); after a cancel,
            the best image so far when the server had one.
        info: the `Result` that ended it (steps, elapsed, losses, controls), None otherwise.
        cancelled: the job ended by a cancel.
        cancelling: the server confirmed the cancel request.
        error: a `ServerError` when the server failed the job, else None.
        unavailable: a `ServerUnavailable` when the connection died before the job ended.
        done: the job ended, one way or another.
    """

    def __init__(
        self,
        client: Client,
        request_id: int,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        content: Image | None = None,
        masked: bool = False,
    ) -> None:
        self._client = client
        self.request_id = request_id
        # what a result may be: the content's size, channels and dtype; with a mask, a layer
        # without alpha comes back with one (docs/protocol.md, submit)
        self._shapes = [] if content is None else [_shape(content)]
        if content is not None and masked and content.channels in (1, 3):
            width, height, channels, dtype = _shape(content)
            self._shapes.append((width, height, channels + 1, dtype))
        self.on_progress = on_progress
        self.on_preview = on_preview
        self.job_id: str | None = None
        self.position: int | None = None
        self.progress: Progress | None = None
        self.latest_preview: Image | None = None
        self.preview_step: int | None = None
        self.result: Image | None = None
        self.info: Result | None = None
        self.cancelled = False
        self.cancelling = False
        self.error: ServerError | None = None
        self.unavailable: ServerUnavailable | None = None
        self.done = False
        self._cancel_wanted = False

    def __repr__(self) -> str:
        state = "done" if self.done else "running" if self.position == 0 else "waiting"
        return f"<JobHandle {self.job_id or '?'} (request {self.request_id}) {state}>"

    def poll(self, timeout: float = 0.0) -> bool:
        """Handle what has arrived, waiting at most ``timeout`` s for this job to end.

        Returns True once the job ended (result, cancelled or error). Raises
        `ServerUnavailable` (every time) if the connection died before it ended.
        """
        if not self.done:
            self._client._pump(timeout, lambda: self.done)
        if self.unavailable is not None:
            raise self.unavailable
        return self.done

    def cancel(self) -> None:
        """Ask the server to stop the job; returns at once. ``cancelled`` follows via `poll`.

        Before ``accepted`` arrived the request goes out as soon as the job id is known.
        """
        if self.done or self._cancel_wanted:
            return
        self._cancel_wanted = True
        if self.job_id is not None:
            self._client._send_cancel(self)

    def wait(self, timeout: float | None = None) -> Image:
        """Block until the job ends; the result (or the best image so far if cancelled).

        Raises the job's `ServerError`, `ServerUnavailable`, or ``ServerError("cancelled")``
        when it was cancelled before it produced an image. ``timeout`` None: as long as the
        server is alive and working on it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll(_WAIT_SLICE):
            if deadline is not None and time.monotonic() >= deadline:
                raise ServerUnavailable(
                    f"job {self.job_id or self.request_id} did not finish within {timeout:g} s"
                )
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise ServerError("cancelled", "the job was cancelled before it produced an image")
        return self.result

    # -------------------------------------------------------------------- client side

    def _on_message(self, header: dict[str, Any], frames: list[bytes]) -> None:
        if self.done:
            return
        try:
            message = read_reply(header, frames)
        except ProtocolError as exc:  # an image that does not fit its frame
            if header.get("type") in ("result", "cancelled"):
                self._end()
                self.cancelled = header.get("type") == "cancelled"
                self.error = _bad_image(exc)
            return  # a preview is a nicety: a bad one is skipped, the job goes on
        if message is None:
            return  # other event types: ignored, as the protocol asks of clients
        job = getattr(message, "job", None)
        if isinstance(job, str) and self.job_id is None:
            self.job_id = job
            if self._cancel_wanted and not isinstance(message, (Result, Error)):
                self._client._send_cancel(self)
        if isinstance(message, (Accepted, Queued)):
            if message.position is not None:
                self.position = message.position
        elif isinstance(message, Progress):
            self.position = 0
            self.progress = message
            if self.on_progress is not None:
                self.on_progress(message)
        elif isinstance(message, Preview):
            self.position = 0
            self._on_preview(message, frames)
        elif isinstance(message, Result):
            self._end()
            self.info = message
            self.cancelled = message.cancelled
            if message.image is not None:
                try:
                    self.result = self._client.decode(self._fitting(message, frames))
                except ServerError as exc:
                    self.error = exc
        elif isinstance(message, Error):
            self._end()
            self.error = message.exception()

    def _on_preview(self, preview: Preview, frames: list[bytes]) -> None:
        if preview.image is None:
            return
        try:
            raw = preview.image.image(frames)
            _check_preview(raw)
            image = self._client.decode(raw)
        except ServerError:
            return  # a preview is a nicety: a bad one is skipped, the job goes on
        self.latest_preview = image
        self.preview_step = preview.step
        if self.on_preview is not None:
            self.on_preview(image, preview)

    def _fitting(self, result: Result, frames: list[bytes]) -> Image:
        """The result's image, if it is what the layer sent can take back."""
        raw = result.image.image(frames)
        if self._shapes and _shape(raw) not in self._shapes:
            raise ServerError(
                "bad_reply",
                f"the server's {result.type} is {_describe(_shape(raw))}, "
                f"not {_describe(self._shapes[0])} like the layer sent",
                f"{result.type}.image",
            )
        return raw

    def _end(self) -> None:
        self.done = True
        self._client._jobs.pop(self.request_id, None)

    def _lose(self, exc: ServerUnavailable) -> None:
        self.unavailable = exc
        self._end()


# ================================================================================== client


class PendingReply:
    """A request sent, its reply collected by polling: `Client.begin` hands one to a host's
    timer (so its UI thread never waits on the network), and every blocking request of the
    client waits on one. The ``timeout`` counts from the last progress of the request's upload:
    a large request still being sent is not silence."""

    def __init__(self, client: Client, rid: Any, answer: type[Message]) -> None:
        self._client, self._rid, self._answer = client, rid, answer
        self._deadline = time.monotonic() + client.timeout
        self._unsent = client._unsent()

    def poll(self) -> Any:
        """The reply once it has come, else None, at once. Raises `ServerError` for an error
        reply, `ServerUnavailable` when the connection failed or ``timeout`` passed."""
        answer = self.wait(0.0)
        return answer[0] if answer is not None else None

    def wait(self, seconds: float) -> tuple[Any, list[bytes]] | None:
        """The reply (the request's answer, a typed message) and its frames, waiting at most
        ``seconds`` for them; else None."""
        client, rid = self._client, self._rid
        try:
            client._pump(min(seconds, max(0.0, self._deadline - time.monotonic())),
                         lambda: rid in client._replies)  # fmt: skip
            if rid in client._replies:
                header, frames = client._replies.pop(rid)
                reply = self._read(header, frames)
                client._waiting.discard(rid)
                return reply, frames
            unsent = client._unsent()
            if unsent < self._unsent:  # the upload moved on
                self._deadline = time.monotonic() + client.timeout
            self._unsent = unsent
            if time.monotonic() >= self._deadline:
                reason = (
                    f"no answer from the stylebridge server at {client.endpoint} "
                    f"within {client.timeout:g} s"
                )
                if not client._jobs:  # Lazy Pirate: the next call starts on a new socket
                    raise client._fail(reason)
                raise ServerUnavailable(reason)  # the jobs' own liveness checks go on
            return None
        except BaseException:
            client._waiting.discard(rid)
            client._replies.pop(rid, None)
            raise

    def _read(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        """The reply as its message: `ServerError` for an ``error``, or for anything but the
        answer the request expects (``bad_reply``)."""
        try:
            reply = read_reply(header, frames)
        except ProtocolError as exc:
            raise _bad_image(exc) from None
        if isinstance(reply, Error):
            raise reply.exception()
        if not isinstance(reply, self._answer):
            kind = str(header.get("type"))[:40]
            raise ServerError("bad_reply", f"the server answered {kind!r}, not {self._answer.TYPE}")
        return reply


def plain_dealer(endpoint: str, token: str) -> DealerSocket:
    """The standard-library transport: ZMTP PLAIN with `plain_password` (never the token)."""
    return DealerSocket(endpoint, plain=(PLAIN_USER, plain_password(token)))


class Client:
    """A connection to the stylebridge server (one DEALER socket, many requests in flight).

    Args:
        endpoint, token: see `find_server` (arguments, environment, discovery file).
        timeout: seconds of silence before the liveness ping, and again before giving up; also
            how long the blocking requests wait for their reply.
        transport: ``transport(endpoint, token)`` opens the socket and presents the token in its
            handshake (default: `plain_dealer`): anything with `DealerSocket`'s
            ``send``, ``poll``, ``close``, ``fileno``, ``connected`` and ``pending_bytes``,
            raising `TransportError` when the connection fails; one whose ``proves_server``
            is true has proved the server in its handshake (CURVE, by the server's key), so
            no ``prove`` request goes before the pixels.
        ipc: the transport speaks ipc:// too (pyzmq's; `plain_dealer` speaks TCP only), so
            this machine's server, found by its discovery file, is reached by its Unix socket.

    Raises `ServerUnavailable` when no server can be found; connection errors show up on the
    first call that does I/O, also as `ServerUnavailable`.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        transport: Callable[[str, str], Any] | None = None,
        ipc: bool = False,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self._given = (endpoint, token, ipc)
        self.endpoint, self.token = find_server(*self._given)
        self.timeout = float(timeout)
        self._transport = transport or plain_dealer
        self._ids = itertools.count(1)
        self._sock: Any = None
        self._proven: Any = None  # the socket whose server proved it holds the token
        self._proof: tuple[Any, str] | None = None  # the prove request in flight: id, nonce
        self._held: list[list[Any]] = []  # messages with pixels that wait for its answer
        self._closed = False
        self._jobs: dict[Any, JobHandle] = {}  # submit request id -> handle, while not done
        self._cancels: dict[Any, JobHandle] = {}  # cancel request id -> its job
        self._waiting: set[Any] = set()  # ids of blocking requests still expecting a reply
        self._replies: dict[Any, tuple[dict[str, Any], list[bytes]]] = {}
        self._backlog: deque[list[bytes]] = deque()
        self._last_heard = time.monotonic()
        self._ping_sent: float | None = None
        self._pending_seen = 0
        # No connection yet: it opens with the first request. One opened here and left
        # unpolled (a host reads a large layer first) would be closed by the server's
        # handshake timeout before its greeting was even sent.

    # ------------------------------------------------------------------ public API

    def fileno(self) -> int:
        """The OS socket for a host event loop to watch (-1 while there is none); it changes
        when the client reconnects."""
        return self._sock.fileno() if self._sock is not None else -1

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._sock.connected

    def close(self) -> None:
        """Drop the connection at once; jobs still running end as unavailable. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self._drop(ServerUnavailable(f"the client for {self.endpoint} was closed"))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def poll(self, timeout: float = 0.0) -> None:
        """Handle what has arrived for every job, waiting at most ``timeout`` s.

        Raises `ServerUnavailable` when the server is gone (its jobs are then lost).
        """
        self._pump(timeout, lambda: False)

    def submit(
        self,
        content: Image,
        styles: list[Image],
        *,
        preset: str | None = None,
        style_weights: list[float] | None = None,
        mask: Image | None = None,
        preview: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        **controls: Any,
    ) -> JobHandle:
        """Send a job and return its handle at once; `JobHandle.poll` does the rest.

        ``preset``: a preset's name (None: the server's default). ``controls`` are engine
        controls by name (strength, preserve_colors, size, steps, ...; None values are left
        out). ``preview``: seconds between preview frames (>= 0.2). Callbacks run inside
        `poll`: ``on_progress(progress)``, ``on_preview(image, preview)``.
        """
        blobs: list[Any] = []
        content = self.encode(content, "content")  # once: the handle checks the result by it

        def add(image: Any, what: str) -> ImageSpec:
            image = self.encode(image, what)
            spec = ImageSpec.of(image, len(blobs) + 1)
            blobs.extend(chunks(image.data))
            return spec

        request = Submit(
            add(content, "content"),
            [add(s, f"styles[{i}]") for i, s in enumerate(styles)],
            preset,
            {k: v for k, v in controls.items() if v is not None},
            None if style_weights is None else [float(w) for w in style_weights],
            None if mask is None else add(mask, "mask"),
            None if preview is None else float(preview),
        )
        rid = next(self._ids)
        handle = JobHandle(self, rid, on_progress, on_preview, content, mask is not None)
        self._send(rid, request, blobs)
        self._jobs[rid] = handle
        return handle

    def ping(self) -> Pong:
        """The `Pong` reply (version, protocol, the presets and controls the server takes)."""
        return self._request(Ping())[0]

    def status(self) -> Status:
        """The `Status` reply (device, model_loaded, queue, running, memory, limits, ...)."""
        return self._request(StatusQuery())[0]

    def estimate(
        self, width: int, height: int, *, preset: str | None = None, **controls: Any
    ) -> Estimate:
        """How long a job on content of ``width`` x ``height`` px would take on this server
        (`Estimate`: seconds, or None while it is still measuring)."""
        request = EstimateQuery(
            width, height, preset, {k: v for k, v in controls.items() if v is not None}
        )
        return self._request(request)[0]

    def begin(self, request: Message) -> PendingReply:
        """Send a request without waiting for it (`StatusQuery`, `Ping`, `Shutdown`,
        `EstimateQuery`): the returned `PendingReply` is polled for the reply, within
        ``timeout`` s."""
        return self._begin(request)

    def echo(self, image: Any) -> Any:
        """Send an image and get it back from the server: the transport's round-trip check."""
        image = self.encode(image, "image")
        reply, frames = self._request(Echo(ImageSpec.of(image, 1)), chunks(image.data))
        return self.decode(reply.image.image(frames))

    def shutdown(self, admin: str, drain: float | None = None) -> bool:
        """Ask the server to stop after its jobs (at most ``drain`` s; None: the server's
        default, 0: cancel them now). ``admin``: the key in the server's discovery file (a
        server refuses shutdown without it). True when jobs were still running or queued."""
        return bool(self._request(Shutdown(admin, drain))[0].pending)

    # ------------------------------------------------------------------ pixels

    def encode(self, image: Any, what: str) -> Image:
        """What the caller passes as an image, as the protocol carries it (here: an `Image`)."""
        if not isinstance(image, Image):
            raise TypeError(f"{what} must be an Image, not {type(image).__name__!r}")
        return image

    def decode(self, image: Image) -> Any:
        """A received image as the caller gets it (here: the `Image` itself)."""
        return image

    def stylize(
        self,
        content: Image,
        styles: list[Image],
        *,
        on_progress: ProgressCallback | None = None,
        **kwargs: Any,
    ) -> Image:
        """Submit and wait: the stylised image, in the content's size, dtype and channels.

        ``kwargs`` as for `submit`. Raises `ServerError` if the server fails the job and
        `ServerUnavailable` if it dies or goes silent; Ctrl+C cancels the job.
        """
        job = self.submit(content, styles, on_progress=on_progress, **kwargs)
        try:
            return job.wait()
        except KeyboardInterrupt:
            job.cancel()
            with contextlib.suppress(ClientError):
                job.poll(min(self.timeout, 5.0))
            raise

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> DealerSocket:
        if self._closed:
            raise ServerUnavailable(f"the client for {self.endpoint} is closed")
        if self._sock is None:
            self.endpoint, self.token = find_server(*self._given)
            try:
                self._sock = self._transport(self.endpoint, self.token)
            except ValueError as exc:
                raise ServerUnavailable(f"bad server endpoint {self.endpoint!r}: {exc}") from None
            if getattr(self._sock, "proves_server", False):  # CURVE: its handshake did
                self._proven = self._sock
            self._last_heard = time.monotonic()
            self._ping_sent = None
            self._pending_seen = 0
        return self._sock

    def _busy(self) -> bool:
        return bool(self._jobs or self._waiting or self._proof)

    def _drop(self, exc: ServerUnavailable) -> None:
        """Close the socket; everything outstanding on it ends with ``exc``."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._proven, self._proof, self._held = None, None, []
        self._backlog.clear()
        self._waiting.clear()
        self._replies.clear()
        self._cancels.clear()
        for handle in list(self._jobs.values()):
            handle._lose(exc)
        self._jobs.clear()

    def _fail(self, reason: str) -> ServerUnavailable:
        exc = ServerUnavailable(reason)
        self._drop(exc)
        return exc

    def _on_proof(self, header: dict[str, Any]) -> None:
        """The answer to this connection's prove request: the held messages go if it proves
        the server holds the token, else nothing more does (docs/protocol.md,
        "Authentication") and every job ends with one sentence saying why."""
        nonce = self._proof[1] if self._proof is not None else ""
        held, self._proof, self._held = self._held, None, []
        mac = header.get("mac") if header.get("type") == Proof.TYPE else None
        want = server_proof(self.token, nonce).encode()
        if isinstance(mac, str) and hmac.compare_digest(mac.encode("utf-8", "replace"), want):
            self._proven = self._sock
            for frames in held:
                try:
                    self._sock.send(frames)
                except TransportError as exc:
                    raise self._fail(
                        f"stylebridge server at {self.endpoint} unavailable: {exc}"
                    ) from None
            return
        if header.get("type") == Error.TYPE:
            why = f"it answered {str(header.get('message'))[:80]!r}"
        else:
            why = "its proof was wrong"
        raise self._fail(
            f"the server at {self.endpoint} did not prove it holds this client's token ({why}), "
            "so no pixels were sent to it: it may be another program that took the port of a "
            "stylebridge server that was killed, or a server of another protocol version; "
            "start the server again (stylebridge serve)"
        )

    def _send(self, rid: Any, request: Message, blobs: Sequence[bytes] = ()) -> None:
        frame0 = packb(dataclasses.replace(request, id=rid).to_header())
        if not self._busy() and self._sock is not None:
            # Idle: a connection that died meanwhile (server restarted) is replaced quietly,
            # since nothing is lost with it.
            try:
                self._backlog.extend(self._sock.poll(0))
            except TransportError:
                self._drop(ServerUnavailable("reconnecting"))
        sock = self._connect()
        if not self._busy():
            self._last_heard = time.monotonic()  # silence counts from the first request
            self._ping_sent = None
        try:
            if blobs and self._proven is not sock:  # no pixels before the server proved itself
                if self._proof is None:
                    nonce = os.urandom(NONCE_BYTES).hex()
                    self._proof = (next(self._ids), nonce)
                    sock.send([packb(Prove(nonce, id=self._proof[0]).to_header())])
                self._held.append([frame0, *blobs])  # sent when the proof comes (`_on_proof`)
                return
            sock.send([frame0, *blobs])
        except TransportError as exc:
            raise self._fail(f"stylebridge server at {self.endpoint} unavailable: {exc}") from None

    def _send_cancel(self, handle: JobHandle) -> None:
        rid = next(self._ids)
        self._cancels[rid] = handle
        # On failure the job is marked unavailable, and its poll reports it.
        with contextlib.suppress(ServerUnavailable):
            self._send(rid, Cancel(handle.job_id))

    def _begin(self, request: Message, blobs: Sequence[bytes] = ()) -> PendingReply:
        rid = next(self._ids)
        self._send(rid, request, blobs)
        self._waiting.add(rid)
        return PendingReply(self, rid, ANSWERS[type(request)])

    def _request(self, request: Message, blobs: Sequence[bytes] = ()) -> tuple[Any, list[bytes]]:
        """Send and wait for the reply: at most ``timeout`` s after the request left."""
        pending = self._begin(request, blobs)
        while True:
            answer = pending.wait(_WAIT_SLICE)
            if answer is not None:
                return answer

    def _unsent(self) -> int:
        """Bytes the transport has yet to send."""
        return self._sock.pending_bytes if self._sock is not None else 0

    def _pump(self, timeout: float, until: Callable[[], bool]) -> None:
        """Move messages for at most ``timeout`` s, or until ``until()``; liveness checks."""
        self._dispatch_backlog()
        if until() or self._sock is None:
            return  # no socket: nothing outstanding (a failure ended it all); nothing to do
        sock = self._sock
        deadline = time.monotonic() + max(0.0, timeout)
        wait = 0.0
        while True:
            try:
                messages = sock.poll(wait)
            except TransportError as exc:
                raise self._fail(
                    f"stylebridge server at {self.endpoint} unavailable: {exc}"
                ) from None
            if messages:
                self._last_heard = time.monotonic()
                self._ping_sent = None
                self._backlog.extend(messages)
                self._dispatch_backlog()
                if until() or self._sock is not sock:
                    return  # done, or a failed send (of a cancel) replaced the socket
            now = time.monotonic()
            wake = self._check_alive(sock, now)
            if now >= deadline:
                return
            wait = deadline - now if wake is None else max(0.0, min(deadline, wake) - now)

    def _check_alive(self, sock: Any, now: float) -> float | None:
        """Ping after ``timeout`` s of silence, give up after another ``timeout`` s (only while
        something is outstanding). Returns when to check again (None: nothing to watch)."""
        pending = sock.pending_bytes
        if pending < self._pending_seen:  # the server is reading our upload: it is alive
            self._last_heard = now
            self._ping_sent = None
        self._pending_seen = pending
        if not self._busy():
            return None
        if self._ping_sent is None:
            if now - self._last_heard < self.timeout:
                return self._last_heard + self.timeout
            self._ping_sent = now
            rid = next(self._ids)
            frame0 = packb(Ping(id=rid).to_header())
            try:
                sock.send([frame0])
            except TransportError as exc:
                raise self._fail(
                    f"stylebridge server at {self.endpoint} unavailable: {exc}"
                ) from None
            return now + self.timeout
        if now - self._ping_sent >= self.timeout:
            raise self._fail(
                f"the stylebridge server at {self.endpoint} stopped answering: "
                f"{now - self._last_heard:.1f} s of silence and no answer to a ping"
            )
        return self._ping_sent + self.timeout

    def _dispatch_backlog(self) -> None:
        # One message at a time from a queue: if a callback raises, the rest stay for later.
        while self._backlog:
            self._dispatch(self._backlog.popleft())

    def _dispatch(self, frames: list[bytes]) -> None:
        # The protocol's limits hold for replies too: a bad server cannot make the host's UI
        # thread unpack megabytes of nested arrays (the transport already capped the frames).
        if not frames or len(frames[0]) > MAX_HEADER_BYTES:
            return
        try:
            header = unpackb(frames[0], max_depth=MAX_HEADER_DEPTH)
        except (ValueError, IndexError):
            return  # not a header we can read: nothing to route it to
        if not isinstance(header, dict):
            return
        rid = header.get("id")
        if isinstance(rid, (list, dict)):
            return
        if self._proof is not None and rid == self._proof[0]:
            self._on_proof(header)
            return
        handle = self._jobs.get(rid)
        if handle is not None:
            handle._on_message(header, frames)
            return
        handle = self._cancels.pop(rid, None)
        if handle is not None:
            # ``cancelling``; or ``unknown_job`` when the job ended first: nothing to do then
            if header.get("type") == Cancelling.TYPE:
                handle.cancelling = True
            return
        if rid in self._waiting:
            self._replies[rid] = (header, frames)
        # anything else (a pong to a liveness ping, a late reply): dropped


def _bad_image(exc: ProtocolError) -> ServerError:
    return ServerError("bad_reply", f"the server sent a bad image: {exc.message}", exc.field)


def _shape(image: Image) -> tuple[int, int, int, str]:
    return image.width, image.height, image.channels, image.dtype


def _describe(shape: tuple[int, int, int, str]) -> str:
    width, height, channels, dtype = shape
    return f"{width}x{height}, {channels} channels of {dtype}"


def _check_preview(image: Image) -> None:
    """A preview is 8-bit RGB of at most PREVIEW_SIDE px a side (hosts wrap its bytes as such)."""
    if (
        image.channels != 3
        or image.dtype != "uint8"
        or max(image.width, image.height) > (PREVIEW_SIDE)
    ):
        raise ServerError(
            "bad_reply",
            f"preview is {_describe(_shape(image))}, not 8-bit RGB within {PREVIEW_SIDE} px",
            "preview.image",
        )
