"""``stylebridge relay``: a loopback front door for a remote (studio) server.

The plug-ins speak plain ZMTP with no crypto library. The relay gives them what a local server
would (a loopback endpoint, a per-start token checked in the handshake, the discovery file) and
carries each local client over its own CURVE connection to the studio server, which shows the
member's key (derived from their own token) in its handshake. The studio server therefore
still sees one peer per client: fair queueing, and a client that vanishes has its jobs
cancelled there too.
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import threading
from typing import Any

import zmq

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError
from stylebridge.wire.messages import ProtocolError, Shutdown
from stylebridge.wire.protocol import FRAME_BYTES, VERSION

from .client import present_token
from .discovery import remove_discovery, write_discovery
from .protocol import Limits
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
        self.door = FrontDoor(self.ctx, self.limits, self.token, on_gone=self._close)
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
                self.door.check()
                for sock, _ in self.poller.poll(POLL_MS):
                    if sock is self.front:
                        self.door.receive(self._from_client)
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
        sock.setsockopt(zmq.MAXMSGSIZE, FRAME_BYTES)
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

    def _from_client(self, peer: bytes, header: dict[str, Any], frames: list) -> None:
        """Forward as it came: the studio server checks it itself; all but shutdown."""
        if header.get("type") == Shutdown.TYPE:  # a member never stops the studio's server
            raise ProtocolError(
                "forbidden",
                "the relay does not forward shutdown: stop the studio server on its machine",
                "type",
            )
        try:  # never block the relay on one connection (e.g. a CURVE handshake that failed)
            self._connection(peer).send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            raise ProtocolError(
                "unavailable", f"the relay cannot reach the studio server at {self.remote}"
            ) from None

    def _from_server(self, sock: zmq.Socket) -> None:
        frames = sock.recv_multipart(copy=False)
        peer = self.peer_of.get(sock)
        if peer is not None:
            self.door.send([peer, *frames])


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
