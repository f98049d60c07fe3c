"""A ZMTP 3.1 DEALER over TCP with the NULL mechanism, in pure Python (no pyzmq needed).

Host applications (Krita, GIMP) embed a Python without pyzmq, so the plug-ins talk to the
server's ROUTER socket with this. It implements just what a DEALER client needs from
RFC 23/ZMTP and RFC 37/ZMTP (3.1 heartbeats): greeting, NULL handshake (READY), multipart
messages, PING/PONG.

The socket never blocks beyond the timeout a call is given: it is made for a UI thread that
calls ``poll(0)`` from a timer (or when `fileno()` turns readable). Everything is
non-blocking, including connect and host name resolution. There is no automatic reconnect:
on any failure a `ZmtpError` is raised and the caller makes a new socket (Lazy Pirate).
One socket is meant for one thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from .protocol import TransportError

__all__ = ["DealerSocket", "ZmtpError"]


# A peer that closes before the handshake ends: libzmq closes at once on a mechanism mismatch
# or a refused token, often before its own greeting has left.
_CLOSED_IN_HANDSHAKE = (
    " during the handshake: a stylebridge server of another protocol version"
    " (update the plug-in or the server), or not a stylebridge server"
)
# Why a security mechanism may not match, as a stylebridge user would need to hear it.
_MECHANISM_HINTS = {
    ("PLAIN", "NULL"): " (a newer stylebridge server: update the plug-in)",
    ("NULL", "PLAIN"): " (an older stylebridge server, before protocol 2: update the server)",
}


class ZmtpError(TransportError):
    """The connection failed, timed out, or the peer broke the protocol; the socket is dead."""


_MORE = 0x01
_LONG = 0x02
_COMMAND = 0x04


def _greeting(mechanism: bytes) -> bytes:
    return (
        b"\xff\x00\x00\x00\x00\x00\x00\x00\x00\x7f"  # signature; bit 0 of 0x7f: ZMTP >= 2.0
        + b"\x03\x01"  # version 3.1
        + mechanism.ljust(20, b"\x00")
        + b"\x00"  # as-server: no, we connect
        + b"\x00" * 31  # filler
    )


_Q = struct.Struct(">Q")

_RECV_CHUNK = 1 << 20
# Bytes moved per direction per wake-up; keeps a poll(0) short while 100 MB stream through.
_PASS_BUDGET = 16 << 20
# Smaller pieces are copied into one buffer so that many small messages need few send() calls;
# larger ones are sent straight from the caller's memory.
_COALESCE_BELOW = 64 << 10
# Commands are tiny (READY metadata, PING context); a huge one is an attack or a bug.
_MAX_COMMAND = 1 << 20
_WOULD_BLOCK = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 10035}  # 10035: Windows
# An application embedding Python may not ignore SIGPIPE as python itself does; writing to a
# connection the server dropped must give an error, not kill Krita. Linux: a send flag;
# macOS: a socket option (SO_NOSIGPIPE, not exported by the socket module).
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_SO_NOSIGPIPE = 0x1022 if sys.platform == "darwin" else None

# Connection states, in the order they are passed through.
_RESOLVING, _CONNECTING, _GREETING_WAIT, _HANDSHAKE, _OPEN, _DEAD = range(6)


def _parse_endpoint(endpoint: str) -> tuple[str, int]:
    prefix = "tcp://"
    if not endpoint.startswith(prefix):
        raise ValueError(f"endpoint must look like tcp://host:port, got {endpoint!r}")
    host, sep, port_text = endpoint[len(prefix) :].rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"endpoint must look like tcp://host:port, got {endpoint!r}")
    return host, int(port_text)


def _describe(err: int) -> str:
    if err in (errno.ECONNREFUSED, 10061):  # 10061: WSAECONNREFUSED
        return "connection refused"
    return f"{os.strerror(err)} (errno {err})"


def _command(name: bytes, data: bytes = b"") -> bytes:
    body = bytes((len(name),)) + name + data
    if len(body) <= 0xFF:
        return bytes((_COMMAND, len(body))) + body
    return bytes((_COMMAND | _LONG,)) + _Q.pack(len(body)) + body


def _metadata(props: dict[bytes, bytes]) -> bytes:
    return b"".join(
        bytes((len(name),)) + name + struct.pack(">I", len(value)) + value
        for name, value in props.items()
    )


def _parse_metadata(data: bytes) -> dict[str, bytes]:
    """READY properties as {lower-case name: value}; property names are case-insensitive."""
    props: dict[str, bytes] = {}
    i = 0
    while i < len(data):
        n = data[i]
        if i + 1 + n + 4 > len(data):
            raise ValueError("truncated property name")
        name = data[i + 1 : i + 1 + n].decode("latin-1").lower()
        i += 1 + n
        (size,) = struct.unpack_from(">I", data, i)
        i += 4
        if i + size > len(data):
            raise ValueError(f"truncated value of property {name!r}")
        props[name] = data[i : i + size]
        i += size
    return props


def _as_buffer(frame: Any) -> Any:
    """The frame as something send() can slice without copying, or a private copy.

    Immutable data is kept as is (a 100 MB frame is not copied); mutable buffers are copied so
    that later changes by the caller cannot alter what goes on the wire.
    """
    if isinstance(frame, bytes):
        return frame
    try:
        view = memoryview(frame)
    except TypeError:
        raise TypeError(f"frames must be bytes-like, not {type(frame).__name__!r}") from None
    if isinstance(view.obj, bytes) and view.c_contiguous:
        return view.cast("B")
    return view.tobytes()


class _Resolver:
    """getaddrinfo() on a daemon thread, so a slow DNS server cannot stall the UI thread."""

    def __init__(self, host: str, port: int, family: int) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: OSError | None = None
        args = (host, port, family)
        threading.Thread(target=self._run, args=args, name="zmtp-resolve", daemon=True).start()

    def _run(self, host: str, port: int, family: int) -> None:
        try:
            self.result = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        except OSError as exc:
            self.error = exc
        finally:
            self.done.set()


class DealerSocket:
    """One ZMTP connection behaving like a connected zmq DEALER socket.

    Args:
        endpoint: ``tcp://host:port``; an IPv6 address goes in brackets.
        identity: routing id the server's ROUTER sees (1-255 bytes, not starting with a zero
            byte, which libzmq reserves); None lets the ROUTER generate one.
        heartbeat_ivl: seconds between our PINGs once connected; None sends none.
        heartbeat_timeout: how long the peer may stay silent before the socket is declared dead.
            With heartbeat_ivl this counts from each PING (default: heartbeat_ivl, as in libzmq);
            without, from the last byte received. It also bounds connecting plus the handshake.
        max_message_bytes: the largest incoming message (sum of its frames) accepted; a larger
            one closes the connection with ZmtpError before its body is buffered.
        max_message_frames: the most frames one incoming message may have (empty frames count:
            each costs a list entry however small it is).
        plain: (username, password) for the PLAIN mechanism (RFC 24): the server checks them
            in the handshake, before it takes any message; None speaks NULL.

    Connection errors are reported by `poll`/`recv`/`send`, never by the constructor, which
    only raises ValueError for bad arguments.
    """

    def __init__(
        self,
        endpoint: str,
        identity: bytes | None = None,
        *,
        heartbeat_ivl: float | None = None,
        heartbeat_timeout: float | None = None,
        max_message_bytes: int = 512 * 1024 * 1024,
        max_message_frames: int = 64,
        plain: tuple[str, str] | None = None,
    ) -> None:
        host, port = _parse_endpoint(endpoint)
        if identity is not None:
            identity = bytes(identity)
            if not 0 < len(identity) < 256 or identity[0] == 0:
                raise ValueError("identity must be 1 to 255 bytes and not start with a zero byte")
        for name, value in (
            ("heartbeat_ivl", heartbeat_ivl),
            ("heartbeat_timeout", heartbeat_timeout),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None")
        if max_message_bytes < 0 or max_message_frames < 1:
            raise ValueError("max_message_bytes must not be negative, max_message_frames >= 1")
        if plain is not None:
            user, password = (part.encode("utf-8") for part in plain)
            if len(user) > 255 or len(password) > 255:
                raise ValueError("a PLAIN username and password are at most 255 bytes each")
            self._plain: tuple[bytes, bytes] | None = (user, password)
        else:
            self._plain = None
        self._mechanism = b"PLAIN" if plain is not None else b"NULL"
        self._endpoint = endpoint
        self._identity = identity
        self._hb_ivl = heartbeat_ivl
        self._hb_timeout = heartbeat_timeout if heartbeat_timeout is not None else heartbeat_ivl
        self._max_message = max_message_bytes
        self._max_frames = max_message_frames

        self._state = _RESOLVING
        self._error: str | None = None  # why the socket is dead; raised again on each call
        self._closed = False
        self._sock: socket.socket | None = None
        self._sel: selectors.BaseSelector | None = None
        self._events = 0  # what the selector currently watches for
        self._resolver: _Resolver | None = None

        self._out: deque[Any] = deque()  # memoryviews / bytes still to write, oldest first
        self._out_bytes = 0
        self._tail = bytearray()  # small pieces newer than everything in _out
        self._pending: list[list[Any]] = []  # messages sent before the handshake finished

        self._rbuf = bytearray()  # received bytes not yet parsed
        self._scratch = bytearray(_RECV_CHUNK)
        self._parts: list[bytes] = []  # frames of the message being received
        self._part_bytes = 0
        self._inbox: deque[list[bytes]] = deque()

        now = time.monotonic()
        self._last_recv = now
        self._next_ping = now
        self._ping_deadline: float | None = None  # armed by our PING, cleared by any input

        # libzmq, like us, uses IPv4 unless the address is explicitly IPv6: a server bound to
        # tcp://127.0.0.1 would refuse a "localhost" that resolved to ::1.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            infos = socket.getaddrinfo(
                host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            self._resolver = _Resolver(host, port, family)  # a name, not an address
            return
        with contextlib.suppress(ZmtpError):  # recorded; the first poll/send reports it
            self._connect(infos[0][0], infos[0][4])

    # ----------------------------------------------------------------- public API

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def identity(self) -> bytes | None:
        return self._identity

    @property
    def connected(self) -> bool:
        """True once both sides sent READY and until the connection fails or is closed."""
        return self._state == _OPEN

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending_bytes(self) -> int:
        """Outgoing bytes not yet handed to the OS (for progress display of large uploads)."""
        waiting = sum(len(p) for message in self._pending for p in message)
        return self._out_bytes + len(self._tail) + waiting

    def fileno(self) -> int:
        """The OS socket, for a host event loop to watch for readability; -1 when there is none.

        It changes once: from -1 while a host name is being resolved to the real socket.
        """
        return self._sock.fileno() if self._sock is not None else -1

    def send(self, frames: Sequence[Any]) -> None:
        """Queue one multipart message and write what the OS takes right now, without waiting.

        The rest goes out during later `poll`/`recv`/`send` calls, in order. Messages sent
        before the handshake completes are held until it does. Frames are bytes-like; bytes
        (and memoryviews of bytes) are sent without being copied.
        """
        self._check_alive()
        if isinstance(frames, (bytes, bytearray, memoryview)):
            raise TypeError("send() takes a list of frames, not a single bytes object")
        if len(frames) == 0:
            raise ValueError("a message needs at least one frame")
        pieces: list[Any] = []
        last = len(frames) - 1
        for i, frame in enumerate(frames):
            data = _as_buffer(frame)
            size = len(data)
            more = _MORE if i < last else 0
            if size <= 0xFF:
                pieces.append(bytes((more, size)))
            else:
                pieces.append(bytes((more | _LONG,)) + _Q.pack(size))
            pieces.append(data)
        if self._state == _OPEN:
            self._enqueue(pieces)
        else:
            self._pending.append(pieces)
        self._flush()

    def poll(self, timeout: float = 0.0) -> list[list[bytes]]:
        """Do pending I/O and return the complete messages received, oldest first.

        Waits at most `timeout` seconds (0 just does what is possible now) and returns as soon
        as at least one message is there. Raises ZmtpError once the connection is dead and
        every message received before that has been returned.
        """
        self._run(time.monotonic() + max(0.0, timeout), want=1)
        messages = list(self._inbox)
        self._inbox.clear()
        return messages

    def recv(self, timeout: float | None = None) -> list[bytes] | None:
        """Wait up to `timeout` seconds (None: no limit) for one message; None on timeout."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        self._run(deadline, want=1)
        return self._inbox.popleft() if self._inbox else None

    def close(self) -> None:
        """Drop the connection and any unsent data at once (linger 0). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._teardown()
        self._inbox.clear()

    def __enter__(self) -> DealerSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ("resolving", "connecting", "greeting", "handshake", "open", "dead")
        state = "closed" if self._closed else names[self._state]
        return f"<DealerSocket {self._endpoint} {state}>"

    # ----------------------------------------------------------------- event loop

    def _check_alive(self) -> None:
        if self._closed:
            raise ZmtpError(f"socket to {self._endpoint} is closed")
        if self._error is not None:
            raise ZmtpError(self._error)

    def _run(self, deadline: float | None, want: int) -> None:
        """Move bytes until `want` messages are in the inbox or the deadline passes."""
        if len(self._inbox) >= want:
            return
        self._check_alive()
        wait = 0.0  # first look at what is already there: it may answer a pending timeout
        try:
            while True:
                self._io(wait)
                if len(self._inbox) >= want:
                    return
                now = time.monotonic()
                self._timers(now)
                if deadline is not None and now >= deadline:
                    return
                wake = self._next_timer()
                if deadline is not None:
                    wake = deadline if wake is None else min(wake, deadline)
                wait = -1.0 if wake is None else max(0.0, wake - now)
        except ZmtpError:
            if not self._inbox:
                raise  # otherwise deliver what arrived first; the next call raises

    def _io(self, wait: float) -> None:
        """One wake-up: wait up to `wait` seconds (negative: no limit) for the socket, then
        move whatever it is ready for."""
        timeout = None if wait < 0 else wait
        if self._state == _RESOLVING:
            resolver = self._resolver
            assert resolver is not None
            if not resolver.done.wait(timeout):
                return
            self._resolver = None
            if resolver.error is not None or not resolver.result:
                raise self._die(f"cannot resolve {self._endpoint}: {resolver.error}")
            family, _, _, _, address = resolver.result[0]
            self._connect(family, address)
            timeout = 0.0
        sel, sock = self._sel, self._sock
        assert sel is not None and sock is not None
        events = selectors.EVENT_WRITE
        if self._state != _CONNECTING:
            events = selectors.EVENT_READ
            if self._out or self._tail:
                events |= selectors.EVENT_WRITE
        if events != self._events:
            sel.modify(sock, events)
            self._events = events
        ready = 0
        for _, mask in sel.select(timeout):
            ready |= mask
        if ready & selectors.EVENT_WRITE:
            if self._state == _CONNECTING:
                self._connected()
            self._flush()
        if ready & selectors.EVENT_READ:
            self._read()

    def _timers(self, now: float) -> None:
        if self._state == _OPEN and self._hb_ivl is not None:
            # A PING queued behind a large upload would only leave after it and then look
            # unanswered; while we are still writing, the peer hears from us anyway.
            if now >= self._next_ping and not (self._out or self._tail):
                self._next_ping = now + self._hb_ivl
                # TTL 0: we do not ask the server to drop us when our UI thread stalls.
                self._enqueue([_command(b"PING", b"\x00\x00")])
                self._flush()  # now: the deadline below assumes the PING has left
                if self._ping_deadline is None:
                    assert self._hb_timeout is not None
                    self._ping_deadline = now + self._hb_timeout
            if self._ping_deadline is not None and now >= self._ping_deadline:
                raise self._die(
                    f"connection to {self._endpoint} timed out: no answer to PING"
                    f" within {self._hb_timeout:g} s"
                )
        elif self._hb_timeout is not None and now - self._last_recv >= self._hb_timeout:
            what = "handshake incomplete" if self._state != _OPEN else "nothing received"
            raise self._die(
                f"connection to {self._endpoint} timed out: {what} after"
                f" {self._hb_timeout:g} s of silence"
            )

    def _next_timer(self) -> float | None:
        if self._state == _OPEN and self._hb_ivl is not None:
            wakes = [] if self._ping_deadline is None else [self._ping_deadline]
            if not (self._out or self._tail):  # else writability wakes us, not the PING timer
                wakes.append(self._next_ping)
            return min(wakes) if wakes else None
        if self._hb_timeout is not None:
            return self._last_recv + self._hb_timeout
        return None

    def _die(self, reason: str) -> ZmtpError:
        """Record why the socket is dead, release the OS socket, and return the error."""
        if self._error is None:
            self._error = reason
        self._state = _DEAD
        self._teardown()
        return ZmtpError(self._error)

    def _teardown(self) -> None:
        if self._sel is not None:
            self._sel.close()
            self._sel = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._resolver = None
        self._out.clear()
        self._out_bytes = 0
        self._tail = bytearray()
        self._pending.clear()
        self._rbuf = bytearray()
        self._parts = []

    # ----------------------------------------------------------------- connection

    def _connect(self, family: int, address: Any) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise self._die(f"cannot create a socket for {self._endpoint}: {exc}") from None
        self._sock = sock
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            # Requests are single writes; Nagle would only add latency (libzmq sets it too).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _SO_NOSIGPIPE is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_NOSIGPIPE, 1)
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_WRITE)
        self._events = selectors.EVENT_WRITE
        self._state = _CONNECTING
        try:
            err = sock.connect_ex(address)
        except OSError as exc:
            raise self._die(f"cannot connect to {self._endpoint}: {exc}") from None
        if err and err not in _WOULD_BLOCK:
            raise self._die(f"cannot connect to {self._endpoint}: {_describe(err)}")
        # Completion (or failure) shows up as writability, also on Windows, where selectors
        # folds the exception set into the write set.

    def _connected(self) -> None:
        assert self._sock is not None
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise self._die(f"cannot connect to {self._endpoint}: {_describe(err)}")
        self._state = _GREETING_WAIT
        self._enqueue([_greeting(self._mechanism)])

    # ----------------------------------------------------------------- writing

    def _enqueue(self, pieces: list[Any]) -> None:
        for piece in pieces:
            size = len(piece)
            if size < _COALESCE_BELOW:
                self._tail += piece
            else:
                self._seal_tail()
                self._out.append(piece if isinstance(piece, memoryview) else memoryview(piece))
                self._out_bytes += size

    def _seal_tail(self) -> None:
        if self._tail:
            self._out.append(memoryview(self._tail))  # never resized again: a fresh one follows
            self._out_bytes += len(self._tail)
            self._tail = bytearray()

    def _flush(self) -> None:
        """Write queued bytes until the OS buffer is full, the queue is empty, or one pass's
        budget is spent."""
        sock, out = self._sock, self._out
        if sock is None or self._state < _GREETING_WAIT:
            return
        moved = 0
        while moved < _PASS_BUDGET:
            if not out:
                if not self._tail:
                    break
                self._seal_tail()
            chunk = out[0]
            try:
                sent = sock.send(chunk, _SEND_FLAGS)
            except BlockingIOError:
                break
            except OSError as exc:
                raise self._die(f"connection to {self._endpoint} lost: {exc}") from None
            moved += sent
            self._out_bytes -= sent
            if sent == len(chunk):
                out.popleft()
            else:
                out[0] = chunk[sent:]
                break  # the OS buffer is full; another try now would only return EAGAIN

    # ----------------------------------------------------------------- reading

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        view = memoryview(self._scratch)
        moved = 0
        failure = None
        while moved < _PASS_BUDGET:
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                break
            except OSError as exc:
                failure = f"connection to {self._endpoint} lost: {exc}"
            else:
                if n:
                    self._rbuf += view[:n]
                    moved += n
                    continue
                failure = f"connection to {self._endpoint} closed by the peer"
            if self._state in (_GREETING_WAIT, _HANDSHAKE):
                failure += _CLOSED_IN_HANDSHAKE
            break
        if moved:
            # Any traffic proves the peer alive (libzmq resets its heartbeat timers alike).
            self._last_recv = time.monotonic()
            self._ping_deadline = None
            self._parse()  # before failing: messages that arrived complete are delivered
        if failure is not None:
            raise self._die(failure)
        if self._out or self._tail:
            self._flush()  # answers (READY, PONG, held messages) leave without waiting a turn

    def _parse(self) -> None:
        buf = self._rbuf
        pos = 0
        if self._state == _GREETING_WAIT:
            pos = self._parse_greeting(buf)
            if not pos:
                return
        end = len(buf)
        try:
            while end - pos >= 2:
                flags = buf[pos]
                if flags & 0xF8:
                    raise self._die(
                        f"protocol error from {self._endpoint}: reserved frame flags 0x{flags:02x}"
                    )
                if flags & _LONG:
                    if end - pos < 9:
                        break
                    (size,) = _Q.unpack_from(buf, pos + 1)
                    start = pos + 9
                else:
                    size = buf[pos + 1]
                    start = pos + 2
                # Sizes are checked before waiting for the body, so a hostile header cannot
                # make us buffer (or allocate) more than the limits.
                if flags & _COMMAND:
                    if size > _MAX_COMMAND or flags & _MORE:
                        raise self._die(f"protocol error from {self._endpoint}: bad command frame")
                elif self._state != _OPEN:
                    raise self._die(
                        f"protocol error from {self._endpoint}: message before the handshake"
                    )
                elif self._part_bytes + size > self._max_message:
                    raise self._die(
                        f"message from {self._endpoint} exceeds max_message_bytes"
                        f" ({self._max_message})"
                    )
                elif len(self._parts) >= self._max_frames:
                    raise self._die(
                        f"message from {self._endpoint} has more than {self._max_frames} frames"
                    )
                if end - start < size:
                    break
                with memoryview(buf) as view:
                    body = bytes(view[start : start + size])
                pos = start + size
                if flags & _COMMAND:
                    self._on_command(body)
                else:
                    self._parts.append(body)
                    self._part_bytes += size
                    if not flags & _MORE:
                        self._inbox.append(self._parts)
                        self._parts = []
                        self._part_bytes = 0
        finally:
            if self._state == _DEAD:
                pass
            elif pos == len(buf):
                self._rbuf = bytearray()  # a new one: the old may hold 100 MB of capacity
            elif pos:
                del buf[:pos]  # cheap: bytearray drops a prefix without moving the rest

    def _parse_greeting(self, buf: bytearray) -> int:
        """Check the peer's greeting as far as it has arrived; its length once complete, else 0."""
        # Checked piece by piece: a ZMTP 1.0/2.0 peer sends a shorter greeting and would leave
        # us waiting for 64 bytes forever.
        if (buf[:1] and buf[0] != 0xFF) or (len(buf) >= 10 and not buf[9] & 0x01):
            raise self._die(f"{self._endpoint} did not answer with a ZMTP greeting")
        if len(buf) >= 11 and buf[10] < 3:
            raise self._die(
                f"{self._endpoint} speaks an older ZMTP (version byte {buf[10]});"
                " this client needs ZMTP 3 or later"
            )
        if len(buf) < 64:
            return 0
        mechanism = bytes(buf[12:32]).rstrip(b"\x00")
        if mechanism != self._mechanism:
            name = mechanism.decode("ascii", "replace")
            ours = self._mechanism.decode()
            hint = _MECHANISM_HINTS.get((name, ours), "")
            raise self._die(
                f"{self._endpoint} wants security mechanism {name!r}; this client speaks {ours}"
                + hint
            )
        self._state = _HANDSHAKE
        if self._plain is not None:
            user, password = self._plain
            hello = bytes((len(user),)) + user + bytes((len(password),)) + password
            self._enqueue([_command(b"HELLO", hello)])
        else:
            self._enqueue([_command(b"READY", self._properties())])
        return 64

    def _properties(self) -> bytes:
        props = {b"Socket-Type": b"DEALER"}
        if self._identity is not None:
            props[b"Identity"] = self._identity
        return _metadata(props)

    def _on_command(self, body: bytes) -> None:
        if self._state == _HANDSHAKE and body[1:5] == b"RROR" and len(body) == 6 + body[5]:
            # libzmq 4.3.5 writes the ERROR of a refused handshake one byte short, its name
            # length and "E" merged (b"^RROR\x03400"): read it as the ERROR it is
            body = b"\x05ERROR" + body[5:]
        if not body or len(body) < 1 + body[0]:
            raise self._die(f"protocol error from {self._endpoint}: malformed command")
        name = body[1 : 1 + body[0]]
        data = body[1 + body[0] :]
        if self._state == _HANDSHAKE:
            if name == b"READY":
                self._on_ready(data)
            elif name == b"WELCOME" and self._plain is not None:
                self._enqueue([_command(b"INITIATE", self._properties())])
            elif name == b"ERROR":
                reason = data[1 : 1 + data[0]].decode("utf-8", "replace") if data else ""
                if self._plain is not None and reason in ("400", "wrong token"):
                    # libzmq sends the ZAP status code: 400 is "not these credentials"
                    reason = "it did not accept this client's token (not that server's token?)"
                elif reason == "500":  # the server's check itself failed
                    reason = "its check of this client's credentials failed (see its log)"
                raise self._die(f"{self._endpoint} rejected the handshake: {reason}")
            else:
                raise self._die(f"protocol error from {self._endpoint}: {name!r} before READY")
        elif name == b"PING":
            self._send_pong(data[2:18])  # after the 2-byte TTL, at most 16 bytes of context
        # PONG and unknown commands need nothing: receiving them already reset the timers.

    def _on_ready(self, data: bytes) -> None:
        try:
            props = _parse_metadata(data)
        except ValueError as exc:
            raise self._die(f"protocol error from {self._endpoint}: READY: {exc}") from None
        socket_type = props.get("socket-type", b"").decode("latin-1")
        if socket_type != "ROUTER":
            raise self._die(
                f"{self._endpoint} is a {socket_type or 'untyped'} socket; a DEALER needs a ROUTER"
            )
        self._state = _OPEN
        self._next_ping = time.monotonic() + (self._hb_ivl or 0.0)
        for message in self._pending:
            self._enqueue(message)
        self._pending.clear()

    def _send_pong(self, context: bytes) -> None:
        self._enqueue([_command(b"PONG", context)])
