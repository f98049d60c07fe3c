"""The ROUTER socket clients connect to (the server's front door and the relay's), and who may
get past its handshake.

Every front door authenticates in the ZMTP handshake, before any message frame exists: libzmq
keeps each part of an unfinished multipart message in memory, so a check of the first frame
comes too late for a peer that never sends the last one (docs/protocol.md, "Authentication").
- Without CURVE: ZMTP PLAIN, user ``PLAIN_USER``, the token as password.
- With CURVE: the client's public key must be on the allowlist, which holds the key pair every
  holder of the studio token derives from it (`credentials.token_keys`).
A ZAP handler thread decides; libzmq lets nothing else through.
"""

from __future__ import annotations

import hmac

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from stylebridge.wire.protocol import PLAIN_USER

from .credentials import token_keys
from .protocol import Limits

ZAP_DOMAIN = "stylebridge"


class TokenAuthenticator(ThreadAuthenticator):
    """The ZAP handler of one front door: the token (PLAIN) or an allowed key (CURVE)."""

    def __init__(self, ctx: zmq.Context, token: str, allowed_keys: frozenset[bytes]) -> None:
        super().__init__(ctx)
        self._token = token.encode()
        self._client_keys = allowed_keys  # z85 public keys (not `_allowed`: pyzmq's addresses)

    def _authenticate_plain(self, domain: str, username: str, password: str) -> tuple[bool, bytes]:
        # constant time: pyzmq's own check compares with ==
        ok = username == PLAIN_USER and hmac.compare_digest(password.encode(), self._token)
        return ok, b"OK" if ok else b"wrong token"

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
        ok = z85.encode(client_key) in self._client_keys
        return ok, b"OK" if ok else b"client key not allowed"


class FrontDoor:
    """A bound-to-be ROUTER with its handshake's authenticator; `close` stops both."""

    def __init__(
        self,
        ctx: zmq.Context,
        limits: Limits,
        token: str,
        curve: tuple[bytes, bytes] | None = None,
    ) -> None:
        allowed = frozenset({token_keys(token)[0]}) if curve else frozenset()
        self.auth = TokenAuthenticator(ctx, token, allowed)
        self.auth.start()  # before the socket exists: no handshake can happen without it
        router = ctx.socket(zmq.ROUTER)
        router.zap_domain = ZAP_DOMAIN.encode()
        if curve:
            router.curve_server = True
            router.curve_publickey, router.curve_secretkey = curve
        else:
            router.plain_server = True
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, limits.max_frame_bytes)
        router.setsockopt(zmq.SNDHWM, 1000)  # a client that never reads loses messages
        # sending to a vanished peer raises EHOSTUNREACH instead of dropping silently: that is
        # how a killed client's jobs are found and cancelled
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        # a host UI thread may stall for a while between polls: only a minute of silence from a
        # peer (ZMTP heartbeats unanswered) drops its connection and so cancels its jobs
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 60000)
        # a peer gets 10 s to finish the handshake (libzmq's default is 30)
        router.setsockopt(zmq.HANDSHAKE_IVL, 10000)
        self.router = router

    def close(self) -> None:
        """Stop the ZAP thread (it owns sockets of the context, which must go before it)."""
        self.auth.stop()
        self.router.close(linger=0)
