"""DealerSocket scenarios, run by tests/wire/test_wire_conformance.py in a subprocess.

The point of the subprocess is to prove that the wire package works where pyzmq and msgpack
do not exist (Krita's and GIMP's Pythons): both are made unimportable before the package is
imported. Usage::

    python wire_peer.py SCENARIO ENDPOINT [JSON_OPTIONS]

Results go to stdout as one JSON object per line; the last one has "done": true. Any
unexpected exception ends the process with a traceback on stderr and a non-zero status.
Kept runnable on Python 3.8, like the package itself.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from typing import Any

from wire_blocker import load_wire

# The test decodes this with the real msgpack and expects exactly this value.
REQUEST = {
    "op": "render",
    "n": 7,
    "neg": -129,
    "big": 2**40,
    "ratio": 1.5,
    "data": b"\x00\x01\xff",
    "tags": ["a", "\u00e9", None, True, False],
    "nested": {"k": [1, 2, {"z": b""}]},
    3: "int key",
}


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def pattern(n: int, seed: int) -> bytes:
    """n bytes that differ at every offset modulo 251, so shifted or mixed data shows."""
    block = bytes((i * seed) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


def hexed(messages: Any) -> list[list[str]]:
    return [[frame.hex() for frame in message] for message in messages]


def until_message(sock: Any, timeout: float) -> list[bytes]:
    message = sock.recv(timeout)
    if message is None:
        raise SystemExit(f"no reply within {timeout} s")
    return message


def roundtrip(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    identity = opts.get("identity")
    sock = wire.DealerSocket(endpoint, identity.encode() if identity else None)
    # Both are queued before the handshake has even started and must arrive in order.
    sock.send([b"hello", b"", b"world"])
    sock.send([wire.msgpack_lite.packb(REQUEST)])
    replies = [until_message(sock, 10), until_message(sock, 10)]
    emit(replies=hexed(replies), decoded=repr(wire.msgpack_lite.unpackb(replies[1][0])), done=True)
    sock.close()


def big(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    size = opts["size"]
    upload, expected = pattern(size, 7), pattern(size, 11)
    sock = wire.DealerSocket(endpoint)
    start = time.monotonic()
    sock.send([upload])
    slowest = 0.0
    reply = []
    deadline = start + 60
    while not reply and time.monotonic() < deadline:
        before = time.monotonic()
        reply = sock.poll(0.01)
        slowest = max(slowest, time.monotonic() - before)
    elapsed = time.monotonic() - start
    ok = len(reply) == 1 and len(reply[0]) == 1 and reply[0][0] == expected
    emit(ok=ok, seconds=elapsed, slowest_poll=slowest, done=True)
    sock.close()


def many(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    count = opts["count"]
    sock = wire.DealerSocket(endpoint)
    for i in range(count):
        sock.send([b"%d" % i, b"x" * (i % 300)])  # short and LONG frames mixed
    received: list[list[bytes]] = []
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        received.extend(sock.poll(0.1))
    in_order = [m[0] for m in received] == [b"%d" % i for i in range(count)]
    emit(received=len(received), in_order=in_order, done=True)
    sock.close()


def idle(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    sock = wire.DealerSocket(
        endpoint,
        heartbeat_ivl=opts.get("heartbeat_ivl"),
        heartbeat_timeout=opts.get("heartbeat_timeout"),
    )
    if opts.get("mute"):
        # Simulates a client that ignores PINGs: the router must then drop the connection,
        # which shows that our PONGs are what keep it alive in the other runs.
        sock._send_pong = lambda context: None
    sock.send([b"first"])
    until_message(sock, 10)
    start = time.monotonic()
    try:
        while time.monotonic() - start < opts["seconds"]:
            stray = sock.poll(0.05)
            if stray:
                raise SystemExit(f"unexpected message while idle: {stray}")
        sock.send([b"second"])
        reply = until_message(sock, 10)
    except wire.ZmtpError as exc:
        emit(error=str(exc), after=time.monotonic() - start, done=True)
        return
    emit(reply=hexed([reply]), done=True)
    sock.close()


def gone(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    sock = wire.DealerSocket(endpoint)
    sock.send([b"first"])
    until_message(sock, 10)
    emit(event="ready")  # the test closes its ROUTER now
    start = time.monotonic()
    error = None
    while error is None and time.monotonic() - start < 20:
        try:
            sock.poll(0.1)
        except wire.ZmtpError as exc:
            error = str(exc)
    emit(error=error, after=time.monotonic() - start, done=True)


def broken_pipe(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    # Hosts that embed Python may leave SIGPIPE at its default action, which kills the
    # process on a write to a broken connection; the socket must give ZmtpError instead.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sock = wire.DealerSocket(endpoint)
    sock.send([b"first"])
    until_message(sock, 10)
    sock._sock.shutdown(socket.SHUT_WR)  # the surest way to make the next write fail
    try:
        sock.send([b"x" * 1000])
    except wire.ZmtpError as exc:
        emit(error=str(exc), done=True)
        return
    emit(error=None, done=True)


def refused(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    start = time.monotonic()
    sock = wire.DealerSocket(endpoint)
    error = None
    while error is None and time.monotonic() - start < 20:
        try:
            sock.poll(0.5)
        except wire.ZmtpError as exc:
            error = str(exc)
    emit(error=error, after=time.monotonic() - start, done=True)


def poll_timing(wire: Any, endpoint: str, opts: dict[str, Any]) -> None:
    sock = wire.DealerSocket(endpoint)
    sock.send([b"first"])
    until_message(sock, 10)
    durations = []
    for _ in range(5):
        before = time.monotonic()
        got = sock.poll(0.05)
        durations.append(time.monotonic() - before)
        if got:
            raise SystemExit(f"unexpected message: {got}")
    emit(durations=durations, done=True)
    sock.close()


SCENARIOS = {
    "roundtrip": roundtrip,
    "big": big,
    "many": many,
    "idle": idle,
    "gone": gone,
    "broken_pipe": broken_pipe,
    "refused": refused,
    "poll_timing": poll_timing,
}


def main() -> None:
    scenario, endpoint = sys.argv[1], sys.argv[2]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    wire = load_wire()
    SCENARIOS[scenario](wire, endpoint, opts)


if __name__ == "__main__":
    main()
