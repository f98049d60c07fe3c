"""Garbage at the TCP level, below ZeroMQ: raw greetings, frames and commands, all but the raw
ping without credentials, so the server's handshake must refuse them; floods of unfinished
messages and held connections, and the server's memory meanwhile.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from stylebridge.wire import protocol as wire_protocol

from .draws import Draw
from .words import VERSION

# --- raw bytes on the TCP socket -----------------------------------------------------------------


def greeting(mechanism: bytes = b"NULL", major: int = 3, minor: int = 1, server: int = 0) -> bytes:
    return (
        (
            b"\xff"
            + b"\x00" * 8
            + b"\x7f"
            + bytes((major, minor))
            + mechanism.ljust(20, b"\x00")[:20]
        )
        + bytes((server,))
        + b"\x00" * 31
    )


def zmtp_frame(
    body: bytes, more: bool = False, command: bool = False, size: int | None = None
) -> bytes:
    """A ZMTP 3 frame; ``size`` claims another length than the body has."""
    size = len(body) if size is None else size
    flags = (1 if more else 0) | (4 if command else 0)
    if size > 255:
        return bytes((flags | 2,)) + struct.pack(">Q", size) + body
    return bytes((flags, size)) + body


def zmtp_command(name: bytes, data: bytes = b"", size: int | None = None) -> bytes:
    body = bytes((len(name),)) + name + data
    return zmtp_frame(body, command=True, size=size)


def metadata(socket_type: bytes = b"DEALER", extra: bytes = b"") -> bytes:
    return b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type + extra


def ready(socket_type: bytes = b"DEALER", extra: bytes = b"") -> bytes:
    return zmtp_command(b"READY", metadata(socket_type, extra))


HANDSHAKE = greeting() + ready()


def message(frames: Sequence[bytes]) -> bytes:
    return b"".join(zmtp_frame(f, more=i < len(frames) - 1) for i, f in enumerate(frames))


@dataclass
class RawCase:
    """Bytes for one TCP connection, sent chunk by chunk: after each chunk the server gets a
    moment to answer (libzmq drops a peer whose greeting, READY and first message all arrive
    in one segment before its own greeting went out, so the deeper cases wait for it)."""

    label: str
    chunks: list[bytes]
    reset: bool = False  # close with a TCP reset instead of a FIN
    want_pong: bool = False  # a valid ping at the end: a pong must come back


# fmt: off
RAW_KINDS = (
    "random", "greeting+random", "truncated greeting", "other mechanism", "other version",
    "bad ready", "huge frame claim", "huge command claim", "unfinished message",
    "zmtp 1.0 style", "handshake+random", "commands", "pipelined", "raw ping",
)
# fmt: on


def raw_case(draw: Draw, token: str) -> RawCase:
    """Bytes a broken or hostile peer sends over TCP (below ZeroMQ: the server's libzmq)."""
    kind = draw.choice(RAW_KINDS)
    reset = draw.chance(0.5)
    hello = greeting()
    if kind == "random":
        return RawCase(kind, [draw.bytes(draw.int(1, 300))], reset)
    if kind == "greeting+random":
        return RawCase(kind, [hello, draw.bytes(draw.int(1, 300))], reset)
    if kind == "truncated greeting":
        return RawCase(kind, [hello[: draw.int(1, 63)]], reset)
    if kind == "other mechanism":
        mech = draw.choice((b"PLAIN", b"CURVE", b"GSSAPI", b"BOGUS", b"\xff" * 20, b"", b"null"))
        tail = zmtp_command(draw.choice((b"HELLO", b"READY", b"INITIATE")), draw.bytes(80))
        return RawCase(f"{kind} {mech[:8]!r}", [greeting(mech), tail], reset)
    if kind == "other version":
        major, minor = draw.choice(((0, 0), (1, 0), (2, 0), (3, 0), (3, 2), (4, 0), (255, 255)))
        version = greeting(major=major, minor=minor)
        return RawCase(f"{kind} {major}.{minor}", [version, ready()], reset)
    if kind == "bad ready":
        variant = draw.int(0, 5)
        if variant == 0:
            body = ready(draw.choice((b"PUB", b"SUB", b"PUSH", b"ROUTER", b"PAIR", b"XYZ", b"")))
        elif variant == 1:
            body = zmtp_command(b"READY", b"\x0bSocket-Type\xff\xff\xff\xffDEALER")  # value claim
        elif variant == 2:
            body = zmtp_command(b"READY", b"\xffSocket-Type")  # name claim beyond the body
        elif variant == 3:
            body = zmtp_command(b"READY")  # no socket type at all
        elif variant == 4:
            body = zmtp_command(b"ERROR", b"\x05oops!")
        else:
            body = zmtp_frame(b"not a command")
        return RawCase(f"{kind} {variant}", [hello, body], reset)
    if kind == "huge frame claim":  # 1 GiB + 1 is just over the server's MAXMSGSIZE
        size = draw.choice((2**30 + 1, 2**31, 2**62, 2**63, 2**64 - 1, 2**32 + 5))
        claim = zmtp_frame(draw.bytes(16), size=size)
        return RawCase(f"{kind} {size}", [hello, ready() + claim], reset)
    if kind == "huge command claim":
        size = draw.choice((2**20 + 1, 2**31, 2**62, 2**64 - 1))
        claim = zmtp_command(b"PING", b"\x00\x10", size)
        return RawCase(f"{kind} {size}", [hello, ready() + claim], reset)
    if kind == "unfinished message":
        body = msgpack.packb({"v": VERSION, "type": "ping", "id": 1})
        parts = [zmtp_frame(body, more=True)]
        parts += [zmtp_frame(b"x" * draw.int(0, 40), more=True)] * draw.int(0, 5)
        return RawCase(kind, [hello, ready() + b"".join(parts)], reset)
    if kind == "zmtp 1.0 style":  # length-prefixed identity, then frames, as ZMTP 1.0 had them
        return RawCase(kind, [b"\x01\x00" + b"\x05\x00hello" + draw.bytes(draw.int(0, 100))], reset)
    if kind == "handshake+random":
        return RawCase(kind, [hello, ready() + draw.bytes(draw.int(1, 300))], reset)
    if kind == "commands":
        cmds = [
            zmtp_command(b"PING", b"\xff\xff" + draw.bytes(draw.int(0, 16))),
            zmtp_command(b"PONG", draw.bytes(4)),
            zmtp_command(b"SUBSCRIBE", b"x"),
            zmtp_command(draw.bytes(5)),
            zmtp_command(b"READY", b""),
        ]
        return RawCase(kind, [hello, ready() + b"".join(cmds[: draw.int(1, 5)])], reset)
    if kind == "pipelined":  # a valid ping, but all in one write
        ping = msgpack.packb({"v": VERSION, "type": "ping", "id": "raw"})
        return RawCase(kind, [HANDSHAKE + message([ping])], reset)
    return raw_case_ping(token)


def raw_case_ping(token: str) -> RawCase:
    """A valid ping written byte by byte: the PLAIN greeting, HELLO with the token, then (after
    the server's WELCOME) INITIATE and one message."""
    ping = msgpack.packb({"v": VERSION, "type": "ping", "id": "raw"})
    chunks = [
        greeting(b"PLAIN"),
        plain_hello(wire_protocol.plain_password(token)),
        zmtp_command(b"INITIATE", metadata()) + message([ping]),
    ]
    return RawCase("raw ping", chunks, False, want_pong=True)


def _host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def open_raw(endpoint: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(_host_port(endpoint), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def close_raw(sock: socket.socket, reset: bool) -> None:
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _drain(socks: list[socket.socket], closed: set, wait: float) -> None:
    """Read what the server sent on each socket for ``wait`` seconds; note the closed ones."""
    sel = selectors.DefaultSelector()
    for sock in socks:
        if sock not in closed:
            sel.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + wait
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed.add(key.fileobj)
                sel.unregister(key.fileobj)
    sel.close()


def run_raw_batch(endpoint: str, cases: list[RawCase], settle: float = 0.2) -> dict[str, int]:
    """Open one connection per case at once, send each its chunks (the server answering in
    between), then drop them all. Returns how the server treated them."""
    stats = {"connections": 0, "closed by server": 0, "left open": 0, "raw pings answered": 0}
    sockets: list[tuple[socket.socket, RawCase]] = []
    for case in cases:
        if case.want_pong:
            raw_ping(endpoint, case)
            stats["raw pings answered"] += 1
            stats["connections"] += 1
            continue
        sock = open_raw(endpoint)
        sock.setblocking(False)
        sockets.append((sock, case))
        stats["connections"] += 1
    closed: set = set()
    socks = [sock for sock, _ in sockets]
    for step in range(max((len(c.chunks) for _, c in sockets), default=0)):
        for sock, case in sockets:
            if step < len(case.chunks) and sock not in closed:
                try:
                    _send_all(sock, case.chunks[step])
                except OSError:  # the server dropped it already
                    closed.add(sock)
        _drain(socks, closed, settle / 2)
    _drain(socks, closed, settle)
    for sock, case in sockets:
        stats["closed by server" if sock in closed else "left open"] += 1
        close_raw(sock, case.reset)
    return stats


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + 2
    while view and time.monotonic() < deadline:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[sent:]


def raw_ping(endpoint: str, case: RawCase, timeout: float = 10.0) -> dict[str, Any]:
    """A valid ping in hand-written ZMTP 3.1: the server must answer pong."""
    sock = open_raw(endpoint, timeout)
    try:
        reader = _Reader(sock, time.monotonic() + timeout)
        sock.sendall(case.chunks[0])
        theirs = reader.take(64)
        if theirs[:1] != b"\xff" or theirs[9] & 1 != 1 or theirs[10] != 3:
            raise AssertionError(f"not a ZMTP 3 greeting: {theirs!r}")
        for i, chunk in enumerate(case.chunks[1:], 2):
            sock.sendall(chunk)
            if i < len(case.chunks):  # the server answers each handshake step (WELCOME)
                flags, _ = reader.frame()
                assert flags & 4, "a handshake command was expected"
        while True:
            flags, body = reader.frame()
            if flags & 4:
                continue  # READY, PING: commands
            parts = [body]
            while flags & 1:
                flags, body = reader.frame()
                parts.append(body)
            reply = msgpack.unpackb(parts[0])
            if reply.get("type") != "pong" or reply.get("id") != "raw":
                raise AssertionError(f"raw ping answered {reply!r}")
            return reply
    finally:
        close_raw(sock, case.reset)


class _Reader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buf = sock, deadline, b""

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the server closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        flags = self.take(1)[0]
        size = struct.unpack(">Q", self.take(8))[0] if flags & 2 else self.take(1)[0]
        return flags, self.take(size)


def plain_hello(password: str, user: str = wire_protocol.PLAIN_USER) -> bytes:
    """ZMTP PLAIN's HELLO command (RFC 24): the username and password, each length-prefixed."""
    u, pw = user.encode(), password.encode()
    return zmtp_command(b"HELLO", bytes((len(u),)) + u + bytes((len(pw),)) + pw)


def unfinished_flood(
    endpoint: str, total: int, password: str | None = None, frame: int = 8 << 20
) -> dict[str, float]:
    """The attack of a peer without credentials: it goes as far into the handshake as it can
    (NULL, or PLAIN with a wrong ``password``), then streams ``frame``-byte frames that all carry
    the MORE flag, up to ``total`` bytes, never the last one. Returns how many bytes the server
    took before it closed the connection or stopped reading, and when."""
    sock = open_raw(endpoint, timeout=5)
    start = time.monotonic()
    sent = 0
    body = bytes(frame)
    try:
        if password is None:
            sock.sendall(greeting() + ready())
        else:
            sock.sendall(greeting(b"PLAIN") + plain_hello(password))
            sock.sendall(zmtp_command(b"INITIATE", metadata()))
        while sent < total:
            sock.sendall(zmtp_frame(b"", more=True, size=frame))
            sock.sendall(body)
            sent += frame
        how = "all sent"
    except TimeoutError:
        how = "not read"  # the server stopped reading: nothing more is buffered
    except OSError:
        how = "closed"
    finally:
        close_raw(sock, reset=True)
    return {"sent": sent, "seconds": time.monotonic() - start, "ended": how}


def hello_flood(endpoint: str, total: int, announced: int = 1 << 30) -> dict[str, float]:
    """The handshake's own flood (issue 27, item 1): a PLAIN greeting, then one HELLO command
    announced as ``announced`` bytes, of which up to ``total`` are sent, 8 MiB at a time. A
    server that takes so large a command holds it in memory until its handshake timeout.
    Returns what `unfinished_flood` does."""
    sock = open_raw(endpoint, timeout=5)
    start = time.monotonic()
    sent = 0
    body = bytes(8 << 20)
    try:
        sock.sendall(greeting(b"PLAIN"))
        sock.sendall(bytes((4 | 2,)) + struct.pack(">Q", announced) + b"\x05HELLO")
        while sent < total:
            sock.sendall(body)
            sent += len(body)
        how = "all sent"
    except TimeoutError:
        how = "not read"
    except OSError:
        how = "closed"
    finally:
        close_raw(sock, reset=True)
    return {"sent": sent, "seconds": time.monotonic() - start, "ended": how}


def rss_of(pid: int) -> int:
    """A process's resident set size now, bytes (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) * 1024


def flood_watched(
    endpoint: str,
    pid: int,
    total: int,
    password: str | None,
    flood: Callable[..., dict[str, float]] | None = None,
) -> dict[str, float]:
    """`unfinished_flood` (or ``flood(endpoint, total)``) while the RSS of process ``pid`` is
    sampled every 20 ms: adds its value before and its peak during the attack."""
    before, peak = rss_of(pid), [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_of(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        if flood is None:
            result = unfinished_flood(endpoint, total, password)
        else:
            result = flood(endpoint, total)
    finally:
        done.set()
        watcher.join()
    return {**result, "rss_before": before, "rss_peak": max(peak[0], before)}


def hold_connections(endpoint: str, n: int, draw: Draw) -> list[tuple[socket.socket, bool]]:
    """``n`` connections left half-way through the handshake, where a peer without the token
    stops: a greeting cut short, a whole greeting and then nothing, a HELLO cut short. Each
    stays open until `drop_connections` or the server's handshake timeout (3 s)."""
    held = []
    for _ in range(n):
        sock = open_raw(endpoint)
        stage = draw.int(0, 3)
        if stage == 0:
            sock.sendall(greeting(b"PLAIN")[: draw.int(1, 63)])
        elif stage == 3:
            sock.sendall(b"\xff" + draw.bytes(draw.int(0, 8)))
        else:
            sock.sendall(greeting(b"PLAIN"))
            _Reader(sock, time.monotonic() + 5).take(64)
            if stage == 2:  # a HELLO that claims more than it sends
                sock.sendall(plain_hello("x" * 40)[: draw.int(1, 40)])
        held.append((sock, draw.chance(0.5)))
    return held


class IdleFlood:
    """Issue 27, item 2: ``n`` TCP connections that never greet, each reopened as soon as the
    server drops it (its handshake timeout), until `stop`. A server whose soft limit on open
    files is about ``n`` then has none left for a real client."""

    def __init__(self, endpoint: str, n: int) -> None:
        self.endpoint, self.n = endpoint, n
        self.opened = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> IdleFlood:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _open(self, sel: selectors.BaseSelector) -> None:
        try:
            sock = socket.create_connection(_host_port(self.endpoint), timeout=2)
        except OSError:
            self.failed += 1
            return
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                while len(sel.get_map()) < self.n and not self._stop.is_set():
                    self._open(sel)
                for key, _ in sel.select(0.05):
                    try:
                        gone = not key.fileobj.recv(4096)
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
        finally:
            for key in list(sel.get_map().values()):
                close_raw(key.fileobj, reset=True)
            sel.close()


def drop_connections(held: list[tuple[socket.socket, bool]]) -> None:
    for sock, reset in held:
        close_raw(sock, reset)


# --- memory --------------------------------------------------------------------------------------


def change(before: int, after: int) -> float:
    return (after - before) / before
