"""The ROUTER socket clients connect to (the server's front door and the relay's): who may get
past its handshake, how a message comes in (its header decoded, or an ``error`` reply), and how
a reply goes out (never blocking).

Every front door authenticates in the ZMTP handshake, before any message frame exists: libzmq
keeps each part of an unfinished multipart message in memory, so a check of the first frame
comes too late for a peer that never sends the last one (docs/protocol.md, "Authentication").
- Without CURVE: ZMTP PLAIN, user ``PLAIN_USER``, `plain_password` (derived from the token:
  PLAIN shows it to whatever answers) as password.
- With CURVE: the client's public key must be a member's (server/members.py: each member's
  own token derives their key pair, `credentials.token_keys`) or the one the server's own token
  derives (its own user on its machine, through the discovery file). The log names the member
  of each connection, and each message carries the name as its ZMTP User-Id.
A ZAP handler thread decides; libzmq lets nothing else through. The socket insists on it
(``ZAP_ENFORCE_DOMAIN``: without it, CURVE lets any key in when the handler is gone), a handler
that fails denies, and a front door whose handler thread has died says so (`FrontDoor.check`):
its server exits rather than stall every handshake.

PLAIN proves the client, never the server: a process that took the port of a killed server
would get the pixels. So the front door answers ``prove`` itself, with `server_proof`, and
clients send no pixels before that checks out.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from stylebridge.core.errors import StyleBridgeError
from stylebridge.wire.messages import Error, Message, Proof, ProtocolError, Prove, request_kind
from stylebridge.wire.protocol import FRAME_BYTES, PLAIN_USER, plain_password, server_proof

from .credentials import token_keys
from .members import Members
from .protocol import Limits, pack, unpack_header

# what a front door hands a message to: the peer, the header and the frames (the header's
# first); a `ProtocolError` it raises becomes the error reply
Handler = Callable[[bytes, dict[str, Any], list[zmq.Frame]], None]

ZAP_DOMAIN = "stylebridge"
# how long a peer has to finish its handshake (libzmq's default is 30 s): a real client takes
# milliseconds, and each connection left half-way holds a file descriptor until then
HANDSHAKE_SECONDS = 3.0


def raise_fd_limit() -> tuple[int, int] | None:
    """The soft limit on open files raised to the hard one (POSIX; None elsewhere), so that a
    flood of idle connections runs into the handshake timeout before the server runs out of
    file descriptors (a desktop's soft limit is often 1024). Returns (before, after)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft, soft
    # an unlimited hard limit is not a soft one every kernel takes (Linux: nr_open; macOS:
    # OPEN_MAX): then the largest of these that it does
    unlimited = hard == resource.RLIM_INFINITY
    for want in (hard, 1 << 20, 1 << 16, 10240):
        if want == resource.RLIM_INFINITY or want <= soft or not (unlimited or want <= hard):
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            continue
        return soft, want
    return soft, soft


# the User-Id of a CURVE connection made with the server's own token (not a member's)
OWN_USER = "the server's own user"
# seconds between two log lines of refused keys: anyone who reaches the port can make one (a
# random key costs nothing), so each refusal's own line would let a flood grow the log
REFUSAL_LOG_INTERVAL = 10.0


class Sparse:
    """Prints refusals at most once every ``interval`` seconds; the next line it prints counts
    the refusals it left out."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self.next_at = float("-inf")
        self.left_out = 0

    def say(self, line: str) -> None:
        now = self.clock()
        if now < self.next_at:
            self.left_out += 1
            return
        if self.left_out:
            line += f" ({self.left_out} more refused since the last such line)"
        print(line, flush=True)
        self.left_out, self.next_at = 0, now + self.interval


class TokenAuthenticator(ThreadAuthenticator):
    """The ZAP handler of one front door: the token (PLAIN), or with CURVE the key the token
    derives and the ``members``' keys."""

    def __init__(self, ctx: zmq.Context, token: str, members: Members | None = None) -> None:
        super().__init__(ctx)
        self._password = plain_password(token).encode()
        self._own_key = token_keys(token)[0]
        self._members = members
        self._refusals = Sparse(REFUSAL_LOG_INTERVAL)

    def _authenticate_plain(self, domain: str, username: str, password: str) -> tuple[bool, bytes]:
        # constant time: pyzmq's own check compares with ==
        ok = username == PLAIN_USER and hmac.compare_digest(password.encode(), self._password)
        return ok, b"OK" if ok else b"wrong token"

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
        name = self.curve_user_id(client_key)
        if not name:
            key = z85.encode(client_key).decode()
            self._refusals.say(f"stylebridge: refused a CURVE key that is no member's: {key}")
            return False, b"client key not allowed"
        if name != OWN_USER:
            print(f"stylebridge: member {name} connected", flush=True)
        return True, b"OK"

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The member's name (each of their messages carries it as its User-Id), `OWN_USER`
        for the server's own token, "" for a key nobody was given."""
        key = z85.encode(client_public_key)
        if key == self._own_key:
            return OWN_USER
        return (self._members.name(key) if self._members else None) or ""

    def stop(self) -> None:
        """pyzmq's, except after the thread died: telling it to stop would wait forever."""
        if self.pipe and not self.is_alive():
            self.pipe.close(linger=0)
            self.pipe = None
        super().stop()

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        """pyzmq's handling, except that an error inside it denies (status 500) instead of
        ending the thread: a dead handler would leave every later handshake hanging."""
        try:
            await super().handle_zap_message(msg)
        except Exception as exc:
            print(f"stylebridge: refused a connection, its check failed: {exc!r}", flush=True)
            if len(msg) >= 2:
                self._send_zap_reply(msg[1], b"500", b"the check of the credentials failed")


class FrontDoor:
    """A bound-to-be ROUTER with its handshake's authenticator; `close` stops both.
    ``on_gone(peer)``: a peer that was sent to has disconnected."""

    def __init__(
        self,
        ctx: zmq.Context,
        limits: Limits,
        token: str,
        curve: tuple[bytes, bytes] | None = None,
        on_gone: Callable[[bytes], None] = lambda peer: None,
        members: Members | None = None,
    ) -> None:
        self.on_gone = on_gone
        self.token = token
        self.curve = curve is not None
        self.fd_limit = raise_fd_limit()  # before the first connection: see there
        self.max_frames = limits.max_frames()
        self.auth = TokenAuthenticator(ctx, token, members)
        self.auth.start()  # before the socket exists: no handshake can happen without it
        router = ctx.socket(zmq.ROUTER)
        router.zap_domain = ZAP_DOMAIN.encode()
        router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no handler, no handshake
        if curve:
            router.curve_server = True
            router.curve_publickey, router.curve_secretkey = curve
        else:
            router.plain_server = True
        router.setsockopt(zmq.LINGER, 0)
        # libzmq takes no larger frame, the handshake's commands included (a HELLO announced as
        # a gigabyte was held in memory before any credential was checked)
        router.setsockopt(zmq.MAXMSGSIZE, FRAME_BYTES)
        router.setsockopt(zmq.SNDHWM, 1000)  # a client that never reads loses messages
        # sending to a vanished peer raises EHOSTUNREACH instead of dropping silently: that is
        # how a killed client's jobs are found and cancelled
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        # a host UI thread may stall for a while between polls: only a minute of silence from a
        # peer (ZMTP heartbeats unanswered) drops its connection and so cancels its jobs
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 60000)
        router.setsockopt(zmq.HANDSHAKE_IVL, round(HANDSHAKE_SECONDS * 1000))
        self.router = router

    def check(self) -> None:
        """Raise `StyleBridgeError` if the handshake's handler thread has died: no client
        could get in any more (its server exits, non-zero, rather than stall them all)."""
        if not self.auth.is_alive():
            raise StyleBridgeError(
                "the thread that checks each connection's credentials has stopped, so no "
                "client could connect any more: stopping (see the log above for why)"
            )

    def member(self, frame: zmq.Frame) -> str | None:
        """The member who sent ``frame`` (a CURVE front door), else None."""
        if not self.curve:
            return None
        name = frame.get("User-Id")
        return name if name and name != OWN_USER else None

    def receive(self, handle: Handler) -> None:
        """Take one message and hand it to ``handle`` with its header decoded. A message that
        cannot be decoded, and one that ``handle`` refuses or fails on, is answered here with
        an ``error`` reply naming the request's id."""
        parts = self.router.recv_multipart(copy=False)
        peer = parts[0].bytes
        request_id = None
        try:
            if len(parts) < 2:
                raise ProtocolError("bad_message", "a message needs a header frame")
            if len(parts) - 1 > self.max_frames:
                raise ProtocolError("too_large", f"{len(parts) - 1} frames is too many")
            header = unpack_header(parts[1].bytes)
            request_id = header.get("id") if isinstance(header.get("id"), int | str) else None
            if header.get("type") == Prove.TYPE and request_kind(header):  # the version checked
                nonce = Prove.from_header(header, (), None).nonce  # type: ignore[arg-type]
                self.reply(peer, Proof(server_proof(self.token, nonce), id=request_id))
                return
            handle(peer, header, parts[1:])
        except ProtocolError as exc:
            self.reply(peer, exc.reply(request_id))
        except Exception as exc:
            self.reply(peer, Error("bad_message", f"{type(exc).__name__}: {exc}", id=request_id))

    def reply(self, peer: bytes, message: Message, blobs: list = ()) -> None:
        self.send([peer, *pack(message, blobs)])

    def send(self, frames: list) -> None:
        """Send without ever blocking: a slow peer loses the message, a gone one `on_gone`."""
        try:
            self.router.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # connected but not reading (high-water mark): drop, keep serving
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.on_gone(frames[0].bytes if isinstance(frames[0], zmq.Frame) else frames[0])

    def close(self) -> None:
        """Stop the ZAP thread (it owns sockets of the context, which must go before it)."""
        self.auth.stop()
        self.router.close(linger=0)
