"""Python client: ``Client().stylize(content, styles, ...)`` through a running server.

DEALER socket, one request id per call, Lazy Pirate liveness (ping when the server is quiet,
fail with a clear error when it does not answer; never hang).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from stylebridge.core.errors import StyleBridgeError

from .discovery import read_discovery
from .protocol import DTYPES, VERSION, encode_image, pack, unpack_header

ImageLike = np.ndarray  # H x W x C (or H x W), uint8 / uint16 / float32


class ServerError(StyleBridgeError):
    """The server answered with an error reply."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{message} [{code}]")
        self.code, self.field = code, field


class ServerUnavailable(StyleBridgeError):
    """No server, or it stopped answering."""


def find_server(endpoint: str | None = None, token: str | None = None) -> tuple[str, str]:
    """Endpoint and token from the arguments, STYLEBRIDGE_ENDPOINT/TOKEN, or the discovery file."""
    endpoint = endpoint or os.environ.get("STYLEBRIDGE_ENDPOINT")
    token = token or os.environ.get("STYLEBRIDGE_TOKEN")
    if endpoint and token:
        return endpoint, token
    info = read_discovery()
    if info is None:
        raise ServerUnavailable("no stylebridge server is running (start one: stylebridge serve)")
    return endpoint or info["endpoint"], token or info["token"]


def find_server_key(endpoint: str) -> str | None:
    """The server's CURVE public key: STYLEBRIDGE_SERVER_KEY, else the discovery file's when
    it describes this endpoint; None: a plain (loopback or trusted-LAN) server."""
    if key := os.environ.get("STYLEBRIDGE_SERVER_KEY"):
        return key
    info = read_discovery()
    return info.get("server_key") if info and info["endpoint"] == endpoint else None


def decode_array(spec: dict[str, Any], frames: list[bytes]) -> np.ndarray:
    dtype = DTYPES[spec["dtype"]]
    data = np.frombuffer(frames[spec["frame"]], dtype=dtype)
    return data.reshape(spec["height"], spec["width"], spec["channels"]).copy()


@dataclass
class Job:
    """A submitted job; ``poll`` drives it without blocking, ``wait`` until it ends."""

    client: Client
    request_id: int
    on_progress: Callable[[dict[str, Any]], None] | None = None
    on_preview: Callable[[np.ndarray, dict[str, Any]], None] | None = None
    id: str | None = None
    position: int | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    cancelled: bool = False
    image: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: ServerError | None = None

    def _on_message(self, header: dict[str, Any], frames: list[bytes]) -> None:
        kind = header.get("type")
        if kind in ("accepted", "queued"):
            self.id, self.position = header.get("job", self.id), header.get("position")
        elif kind == "progress":
            self.progress = header
            if self.on_progress:
                self.on_progress(header)
        elif kind == "preview" and self.on_preview:
            self.on_preview(decode_array(header["image"], frames), header)
        elif kind in ("result", "cancelled"):
            self.done, self.cancelled, self.info = True, kind == "cancelled", header
            if header.get("image"):
                self.image = decode_array(header["image"], frames)
        elif kind == "error":
            self.done = True
            self.error = ServerError(
                header.get("code", "?"), header.get("message", "?"), header.get("field")
            )

    def poll(self, timeout: float = 0.0) -> bool:
        """Handle what has arrived (waiting at most ``timeout`` s); True once the job ended."""
        self.client._pump(timeout)
        return self.done

    def cancel(self) -> None:
        if self.id and not self.done:
            self.client._request({"type": "cancel", "job": self.id})

    def wait(self, timeout: float | None = None) -> np.ndarray:
        """The result (or the best image so far if cancelled); raises ServerError on failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll(0.1):
            if deadline is not None and time.monotonic() > deadline:
                raise ServerUnavailable(f"job {self.id} did not finish within {timeout} s")
        if self.error:
            raise self.error
        if self.image is None:
            raise ServerError("cancelled", "the job was cancelled before it produced an image")
        return self.image


class Client:
    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        context: zmq.Context | None = None,
        server_key: str | None = None,
    ) -> None:
        self.endpoint, self.token = find_server(endpoint, token)
        self.server_key = server_key or find_server_key(self.endpoint)
        self.timeout = timeout  # seconds of silence before pinging, then before giving up
        self.ctx = context or zmq.Context.instance()
        self.sock = self._connect()
        self.ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self.replies: dict[int, tuple[dict[str, Any], list[bytes]]] = {}
        self.last_heard = time.monotonic()
        self.ping_sent: float | None = None

    def _connect(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))  # never hang on a send
        if self.server_key:  # CURVE with a throwaway key pair of our own
            sock.curve_serverkey = self.server_key.encode()
            sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.connect(self.endpoint)
        return sock

    def _unavailable(self, message: str) -> ServerUnavailable:
        """Lazy Pirate: a server that stopped answering gets a fresh socket, so nothing stale
        is sent to it when it comes back; the jobs on the old connection are lost to us."""
        self.sock.close(linger=0)
        self.sock = self._connect()
        self.jobs.clear()
        self.replies.clear()
        self.last_heard, self.ping_sent = time.monotonic(), None
        return ServerUnavailable(message)

    def close(self) -> None:
        self.sock.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------

    def _send(self, header: dict[str, Any], blobs: Sequence = (), rid: int | None = None) -> int:
        rid = next(self.ids) if rid is None else rid
        frames = pack({"v": VERSION, "id": rid, "token": self.token, **header}, list(blobs))
        try:
            self.sock.send_multipart(frames, copy=False)
        except zmq.Again:  # no connection to queue on: e.g. a CURVE handshake that failed
            raise self._unavailable(
                f"cannot reach the server at {self.endpoint} within {self.timeout:.0f} s"
                + (" (is its CURVE server key right?)" if self.server_key else "")
            ) from None
        return rid

    def _dispatch(self, frames: list[bytes]) -> None:
        self.last_heard, self.ping_sent = time.monotonic(), None
        header = unpack_header(frames[0])
        rid = header.get("id")
        if rid in self.jobs:
            self.jobs[rid]._on_message(header, frames)
        else:
            self.replies[rid] = (header, frames)

    def _pump(self, timeout: float) -> None:
        """Handle what arrives within ``timeout`` s; raise ServerUnavailable on long silence."""
        if self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            while self.sock.poll(0, zmq.POLLIN):
                self._dispatch(self.sock.recv_multipart())
        self._check_alive()

    def _check_alive(self) -> None:
        quiet = time.monotonic() - self.last_heard
        if self.ping_sent is None and quiet > self.timeout:
            self.ping_sent = time.monotonic()
            self._send({"type": "ping"})
        elif self.ping_sent is not None and time.monotonic() - self.ping_sent > self.timeout:
            raise self._unavailable(
                f"the server at {self.endpoint} stopped answering ({quiet:.0f} s of silence)"
            )

    def _request(
        self, header: dict[str, Any], blobs: Sequence = ()
    ) -> tuple[dict[str, Any], list[bytes]]:
        rid = self._send(header, blobs)
        deadline = time.monotonic() + self.timeout
        while rid not in self.replies:
            if time.monotonic() > deadline:
                raise self._unavailable(
                    f"no answer from the server at {self.endpoint} within {self.timeout:.0f} s"
                )
            self._pump(0.05)
        reply, frames = self.replies.pop(rid)
        if reply.get("type") == "error":
            raise ServerError(reply.get("code", "?"), reply.get("message", "?"), reply.get("field"))
        return reply, frames

    # --- the API ---------------------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return self._request({"type": "ping"})[0]

    def status(self) -> dict[str, Any]:
        return self._request({"type": "status"})[0]

    def shutdown(self, drain: float | None = None) -> bool:
        """Ask the server to stop after its jobs (at most ``drain`` s; None: the server's
        default, 0: cancel them now). True when jobs were still running or queued."""
        request: dict[str, Any] = {"type": "shutdown"}
        if drain is not None:
            request["drain"] = drain
        reply, _ = self._request(request)
        return bool(reply.get("pending"))

    def echo(self, image: ImageLike) -> np.ndarray:
        spec, blob = encode_image(np.asarray(image), 1)
        reply, frames = self._request({"type": "echo", "image": spec}, [blob])
        return decode_array(reply["image"], frames)

    def submit(
        self,
        content: ImageLike,
        styles: Sequence[ImageLike],
        *,
        preset: str = "fast",
        style_weights: Sequence[float] | None = None,
        mask: ImageLike | None = None,
        preview: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_preview: Callable[[np.ndarray, dict[str, Any]], None] | None = None,
        **controls: Any,
    ) -> Job:
        """Send a job and return its handle at once (``accepted`` arrives through ``poll``)."""
        blobs: list = []

        def add(image: ImageLike) -> dict[str, Any]:
            spec, blob = encode_image(np.asarray(image), len(blobs) + 1)
            blobs.append(blob)
            return spec

        header: dict[str, Any] = {
            "type": "submit",
            "content": add(content),
            "styles": [add(s) for s in styles],
            "preset": preset,
            "controls": {k: v for k, v in controls.items() if v is not None},
        }
        if style_weights is not None:
            header["style_weights"] = [float(w) for w in style_weights]
        if mask is not None:
            header["mask"] = add(mask)
        if preview is not None:
            header["preview"] = float(preview)
        rid = next(self.ids)
        job = self.jobs[rid] = Job(self, rid, on_progress, on_preview)
        self._send(header, blobs, rid)
        return job

    def stylize(self, content: ImageLike, styles: Sequence[ImageLike], **kwargs: Any) -> np.ndarray:
        """Submit and wait: the stylised image, same size, dtype and channels as ``content``."""
        job = self.submit(content, styles, **kwargs)
        try:
            return job.wait()
        except KeyboardInterrupt:
            job.cancel()
            job.wait()
            raise
