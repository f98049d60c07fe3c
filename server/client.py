"""The Python client: the one client core (``stylebridge.wire.Client``) over pyzmq, with numpy
arrays in and out and CurveZMQ for a studio server; the token goes in the handshake.

    with Client() as client:  # discovery file, or STYLEBRIDGE_ENDPOINT/_TOKEN
        out = client.stylize(content, [style], balance=0.6)  # H x W x C arrays
        job = client.submit(content, [style], preview=0.5, on_preview=show)  # non-blocking

Requests, jobs, liveness (Lazy Pirate) and errors are the wire package's; this module only
brings the transport and the pixel codec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from stylebridge.wire import Client as WireClient
from stylebridge.wire import Image, ServerError, ServerUnavailable, TransportError
from stylebridge.wire.discovery import IPC_KEY, read_discovery
from stylebridge.wire.protocol import FRAME_BYTES, PLAIN_USER, plain_password

from .credentials import is_local, token_keys

__all__ = [
    "Client",
    "ServerError",
    "ServerUnavailable",
    "ZmqDealer",
    "find_server_key",
    "present_token",
]

ImageLike = np.ndarray  # H x W x C (or H x W), uint8 / uint16 / float32


def find_server_key(endpoint: str) -> str | None:
    """The server's CURVE public key: STYLEBRIDGE_SERVER_KEY, else the discovery file's when
    it describes this endpoint; None: a plain (loopback or trusted-LAN) server."""
    if key := os.environ.get("STYLEBRIDGE_SERVER_KEY"):
        return key
    info = read_discovery()
    if info and endpoint in (info["endpoint"], info.get(IPC_KEY)):
        return info.get("server_key")
    return None


# What the monitor reports when a handshake fails (libzmq >= 4.3)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def present_token(sock: zmq.Socket, token: str, server_key: str | None) -> None:
    """Set up ``sock`` to show ``token`` in its handshake (docs/protocol.md, "Authentication"):
    as the ZMTP PLAIN password, or, to a CURVE server, as the key pair derived from it."""
    if server_key:
        sock.curve_serverkey = server_key.encode()
        sock.curve_publickey, sock.curve_secretkey = token_keys(token)
    else:
        sock.plain_username = PLAIN_USER.encode()
        sock.plain_password = plain_password(token).encode()  # never the token: PLAIN shows it


class ZmqDealer:
    """The transport: a pyzmq DEALER socket that shows the token in its handshake, with CurveZMQ
    when ``server_key`` is given. A refused handshake (wrong token, wrong server key) raises
    `TransportError` at once, as does a send that cannot be queued within ``send_timeout``."""

    connected = True  # ZeroMQ reconnects by itself
    pending_bytes = 0  # and queues what is sent: no upload to watch

    def __init__(
        self,
        endpoint: str,
        token: str,
        server_key: str | None = None,
        send_timeout: float = 15.0,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint, self.server_key = endpoint, server_key
        # CURVE proves the server by its key in the handshake: the client sends no prove
        self.proves_server = server_key is not None
        sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, int(send_timeout * 1000))  # never hang on a send
        sock.setsockopt(zmq.MAXMSGSIZE, FRAME_BYTES)  # nor hold a server's gigabyte frame
        present_token(sock, token, server_key)
        self.monitor = sock.get_monitor_socket(_HANDSHAKE_FAILED)
        sock.connect(endpoint)
        self.sock = sock
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def _check_handshake(self) -> None:
        """Raise if the monitor saw the server refuse us: no reply would ever come."""
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH and event["value"] == 500:
                reason = "its check of this client's credentials failed (see its log)"
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                reason = "it did not accept this client's token (not that server's token?)"
            else:
                reason = "the handshake failed" + (
                    " (is its CURVE server key right?)" if self.server_key else ""
                )
            raise TransportError(f"the server at {self.endpoint} refused the connection: {reason}")

    def send(self, frames: Sequence[Any]) -> None:
        self._check_handshake()
        try:
            self.sock.send_multipart(list(frames), copy=False)
        except zmq.Again:
            self._check_handshake()
            hint = " (is its CURVE server key right?)" if self.server_key else ""
            raise TransportError(f"cannot reach the server at {self.endpoint}{hint}") from None

    def poll(self, timeout: float = 0.0) -> list[list[bytes]]:
        messages: list[list[bytes]] = []
        ready = dict(self.poller.poll(int(timeout * 1000)))
        if self.monitor in ready:
            self._check_handshake()
        if self.sock in ready:
            while self.sock.poll(0, zmq.POLLIN):
                messages.append(self.sock.recv_multipart())
        return messages

    def fileno(self) -> int:
        return self.sock.getsockopt(zmq.FD)

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


def plain_refused(endpoint: str) -> str:
    """Why a client or relay will not speak PLAIN beyond this machine unless asked to."""
    return (
        f"{endpoint} is beyond this machine and no CURVE server key is given, so the pictures "
        "would cross the network unencrypted to whoever answers: give the server's key "
        "(--server-key, or STYLEBRIDGE_SERVER_KEY), or --insecure to send them anyway"
    )


class Client(WireClient):
    """``stylebridge.wire.Client`` over `ZmqDealer`; images are numpy arrays (``Image`` is
    taken too), results come back as arrays in the content's size, dtype and channels."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        server_key: str | None = None,
        insecure: bool = False,
    ) -> None:
        self._server_key, self.insecure = server_key, insecure
        super().__init__(endpoint, token, timeout=timeout, transport=self._open, ipc=True)
        # connected now, so that a refused endpoint says so at once: libzmq's own thread keeps
        # the handshake going, which the plug-ins' stdlib transport cannot do unpolled
        self._connect()

    def _open(self, endpoint: str, token: str) -> ZmqDealer:
        self.server_key = self._server_key or find_server_key(endpoint)
        if not (self.server_key or self.insecure or is_local(endpoint)):
            raise ServerUnavailable(plain_refused(endpoint))
        return ZmqDealer(endpoint, token, self.server_key, self.timeout)

    def encode(self, image: Any, what: str) -> Image:
        if isinstance(image, Image):
            return image
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.dtype.name not in ("uint8", "uint16", "float32"):
            raise TypeError(
                f"{what} must be an H x W x C uint8, uint16 or float32 array, "
                f"not {array.dtype} {array.shape}"
            )
        array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        height, width, channels = array.shape
        return Image(width, height, channels, array.dtype.name, memoryview(array).cast("B"))

    def decode(self, image: Image) -> np.ndarray:
        dtype = np.dtype(image.dtype).newbyteorder("<")
        data = np.frombuffer(image.data, dtype=dtype)
        return data.reshape(image.height, image.width, image.channels).copy()
