"""``stylebridge relay``: a loopback front door for a remote (studio) server.

The plug-ins speak plain ZMTP with no crypto library. The relay gives them what a local server
would (a loopback endpoint, a per-start token checked in the handshake, the discovery file) and
carries each local client over its own CURVE connection to the studio server, which shows the
studio token in its handshake. The studio server therefore still sees one peer per client: fair
queueing, and a client that vanishes has its jobs cancelled there too.
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import threading

import zmq

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError

from .client import present_token
from .discovery import remove_discovery, write_discovery
from .protocol import (
    VERSION,
    Limits,
    ProtocolError,
    error_header,
    pack,
    unpack_header,
)
from .sockets import FrontDoor

POLL_MS = 200
MAX_CLIENTS = 256  # local connections kept open upstream; the least recently used goes first


class Relay:
    def __init__(
        self,
        listen: str,
        remote: str,
        remote_token: str,
        server_key: str | None,
        *,
        limits: Limits | None = None,
        discovery: bool = True,
    ) -> None:
        self.listen, self.remote = listen, remote
        self.remote_token, self.server_key = remote_token, server_key
        self.token = secrets.token_urlsafe(32)
        self.discovery = discovery
        self.limits = limits or Limits()
        self.ctx = zmq.Context()
        self.door = FrontDoor(self.ctx, self.limits, self.token)
        self.front = self.door.router
        self.poller = zmq.Poller()
        self.poller.register(self.front, zmq.POLLIN)
        # local peer -> its own upstream connection, least recently used first
        self.upstream: collections.OrderedDict[bytes, zmq.Socket] = collections.OrderedDict()
        self.peer_of: dict[zmq.Socket, bytes] = {}
        self.stopping = threading.Event()

    def bind(self) -> None:
        self.front.bind(self.listen)
        if self.discovery:
            write_discovery(
                {
                    "endpoint": self.listen,
                    "pid": os.getpid(),
                    "token": self.token,
                    "version": __version__,
                    "protocol": VERSION,
                    "relay_to": self.remote,
                }
            )

    def serve_forever(self) -> None:
        try:
            while not self.stopping.is_set():
                for sock, _ in self.poller.poll(POLL_MS):
                    if sock is self.front:
                        self._from_client(self.front.recv_multipart(copy=False))
                    else:
                        self._from_server(sock)
        finally:
            if self.discovery:
                remove_discovery(os.getpid())
            self.door.close()
            self.ctx.destroy(linger=0)

    def stop(self) -> None:
        self.stopping.set()

    def _connection(self, peer: bytes) -> zmq.Socket:
        sock = self.upstream.get(peer)
        if sock is not None:
            self.upstream.move_to_end(peer)
            return sock
        if len(self.upstream) >= MAX_CLIENTS:
            self._close(next(iter(self.upstream)))
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 60000)
        present_token(sock, self.remote_token, self.server_key)
        sock.connect(self.remote)
        self.upstream[peer], self.peer_of[sock] = sock, peer
        self.poller.register(sock, zmq.POLLIN)
        return sock

    def _close(self, peer: bytes) -> None:
        """The local client is gone: closing its connection lets the studio server cancel
        that client's jobs, as it would for a client of its own."""
        sock = self.upstream.pop(peer, None)
        if sock is not None:
            self.poller.unregister(sock)
            del self.peer_of[sock]
            sock.close(linger=0)

    def _from_client(self, parts: list[zmq.Frame]) -> None:
        peer = parts[0].bytes
        request_id = None
        try:
            if len(parts) < 2:
                raise ProtocolError("bad_message", "a message needs a header frame")
            header = unpack_header(parts[1].bytes)
            request_id = header.get("id") if isinstance(header.get("id"), int | str) else None
            if header.get("type") == "shutdown":  # a member never stops the studio's server
                raise ProtocolError(
                    "forbidden",
                    "the relay does not forward shutdown: stop the studio server on its machine",
                    "type",
                )
        except ProtocolError as exc:
            self._to_client([peer, *pack(exc.reply(request_id))])
            return
        frames = parts[1:]  # as they came: the studio server checks them itself
        try:  # never block the relay on one connection (e.g. a CURVE handshake that failed)
            self._connection(peer).send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            message = f"the relay cannot reach the studio server at {self.remote}"
            self._to_client([peer, *pack(error_header("unavailable", message, None, request_id))])

    def _from_server(self, sock: zmq.Socket) -> None:
        frames = sock.recv_multipart(copy=False)
        peer = self.peer_of.get(sock)
        if peer is not None:
            self._to_client([peer, *frames])

    def _to_client(self, frames: list) -> None:
        try:
            self.front.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # a client that does not read loses messages, as with the server itself
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._close(frames[0] if isinstance(frames[0], bytes) else frames[0].bytes)


def run_relay(listen: str, remote: str, remote_token: str, server_key: str | None) -> int:
    relay = Relay(listen, remote, remote_token, server_key)
    try:
        relay.bind()
    except zmq.ZMQError as exc:
        relay.door.close()
        relay.ctx.destroy(linger=0)
        raise StyleBridgeError(f"cannot listen on {listen}: {exc.strerror}") from None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: relay.stop())
    secure = "CURVE" if server_key else "unencrypted"
    print(f"stylebridge relay: ready on {listen} -> {remote} ({secure})", flush=True)
    relay.serve_forever()
    print("stylebridge relay: stopped", flush=True)
    return 0
