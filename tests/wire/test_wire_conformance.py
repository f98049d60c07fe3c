"""Conformance of wire/ (stylebridge.wire), the client transport for
embedded Pythons.

* msgpack_lite against the real msgpack: same bytes out, same values in, and nothing but
  ValueError (and no large allocation) for hostile input.
* DealerSocket against a scripted raw-socket peer (testing/zmtp_server.py), for exact bytes
  and misbehaving servers.
* DealerSocket against a real pyzmq ROUTER, with the client in a subprocess
  (tests/support/wire_peer.py) where zmq and msgpack cannot be imported, as in Krita and GIMP.

STYLEBRIDGE_WIRE_PEER_PYTHON picks another interpreter for that subprocess (e.g. a Python 3.8,
the oldest the package supports); by default it is the one running the tests.
"""

from __future__ import annotations

import json
import math
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

zmq = pytest.importorskip("zmq")
msgpack = pytest.importorskip("msgpack")

from stylebridge.wire.msgpack_lite import packb, unpackb  # noqa: E402
from stylebridge.wire.zmtp import DealerSocket, ZmtpError  # noqa: E402
from testing.zmtp_server import (  # noqa: E402
    CLIENT_GREETING,
    SERVER_GREETING,
    ScriptedServer,
    command,
    frame,
    ready,
    recv_exact,
    recv_frame,
    server_handshake,
    wait_for_eof,
)
from tests.support import SUPPORT  # noqa: E402

PEER_SCRIPT = SUPPORT / "wire_peer.py"
PEER_PYTHON = os.environ.get("STYLEBRIDGE_WIRE_PEER_PYTHON") or sys.executable


# =============================================================================== msgpack_lite

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
KEYS = st.text(max_size=8) | INT64
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)


def nested(scalars: st.SearchStrategy[Any], sequences: bool) -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        lists = st.lists(children, max_size=20)
        if sequences:
            lists = lists | lists.map(tuple)
        return lists | st.dictionaries(KEYS, children, max_size=20)

    return st.recursive(scalars, extend, max_leaves=60)


# What packb accepts beyond what unpackb returns: tuples, bytearray, memoryview, NaN.
PACKABLE = nested(
    SCALARS
    | st.floats()
    | st.binary(max_size=40).map(bytearray)
    | st.binary(max_size=40).map(memoryview),
    sequences=True,
)
DECODED = nested(SCALARS, sequences=False)
HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


@HYPOTHESIS
@given(PACKABLE)
def test_packb_is_byte_identical_to_msgpack(value: Any) -> None:
    assert packb(value) == msgpack.packb(value, use_bin_type=True)


@HYPOTHESIS
@given(DECODED)
def test_unpackb_reads_what_msgpack_writes(value: Any) -> None:
    assert unpackb(msgpack.packb(value, use_bin_type=True)) == value
    assert unpackb(packb(value)) == value


BOUNDARY_INTS = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**64 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32768,
    -32769,
    -(2**31),
    -(2**31) - 1,
    -(2**63),
]
BOUNDARY_SIZES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]


@pytest.mark.parametrize("value", BOUNDARY_INTS)
def test_int_encodings_at_every_boundary(value: int) -> None:
    assert packb(value) == msgpack.packb(value)
    assert unpackb(packb(value)) == value


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_length_encodings_at_every_boundary(size: int) -> None:
    values = [
        "é" * (size // 2) + "a" * (size % 2),  # UTF-8 byte length is what counts
        b"b" * size,
        [None] * size,
        {i: i for i in range(size)},
    ]
    for value in values:
        data = packb(value)
        assert data == msgpack.packb(value, use_bin_type=True)
        assert unpackb(data) == reference_unpack(data) == value


def test_special_floats_and_float32() -> None:
    for value in (math.inf, -math.inf, -0.0, 5e-324, math.nan):
        assert packb(value) == msgpack.packb(value)
    assert math.isnan(unpackb(packb(math.nan)))
    assert math.copysign(1.0, unpackb(packb(-0.0))) == -1.0
    single = msgpack.packb(1.25, use_single_float=True)
    assert single[0] == 0xCA
    assert unpackb(single) == 1.25


def test_buffer_inputs_and_outputs() -> None:
    data = packb({"a": [1, b"xy"]})
    for buf in (data, bytearray(data), memoryview(data)):
        assert unpackb(buf) == {"a": [1, b"xy"]}
    assert type(unpackb(packb(bytearray(b"z")))) is bytes
    wide = memoryview(struct.pack("<3i", 1, 2, 3)).cast("i")  # 3 items, 12 bytes
    assert packb(wide) == msgpack.packb(wide) == b"\xc4\x0c" + bytes(wide)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ({1, 2}, "set"),
        (object(), "object"),
        (1j, "complex"),
        (Path("x"), "Path"),
        ({"k": {None: frozenset()}}, "frozenset"),
    ],
)
def test_unsupported_types_raise_type_error_naming_the_type(value: Any, name: str) -> None:
    with pytest.raises(TypeError, match=name):
        packb(value)


def test_pack_limits() -> None:
    with pytest.raises(OverflowError):  # msgpack raises the same
        packb(2**64)
    with pytest.raises(OverflowError):
        packb(-(2**63) - 1)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nesting"):
        packb(loop)


def nest(depth: int) -> bytes:
    return b"\x91" * depth + b"\x00"


MALFORMED = {
    "empty": (b"", "truncated"),
    "truncated uint32": (b"\xce\x00\x01", "truncated"),
    "truncated float64": (b"\xcb\x00", "truncated"),
    "truncated str": (b"\xa5abc", "only 3 byte"),
    "truncated array": (b"\x92\xcd\x00", "truncated"),
    "truncated map": (b"\x81\x01\xcd\x00", "truncated"),
    "array longer than the data": (b"\x93\x01\x02", "declares length 3 but only 2"),
    "bin32 claiming 4 GB": (b"\xc6\xff\xff\xff\xff" + b"x" * 16, "declares length 4294967295"),
    "str32 claiming 4 GB": (b"\xdb\xff\xff\xff\xff" + b"x" * 16, "declares length 4294967295"),
    "array32 of 4 G items": (b"\xdd\xff\xff\xff\xff" + b"\x00" * 16, "declares length"),
    "map32 of 4 G pairs": (b"\xdf\xff\xff\xff\xff" + b"\x00" * 16, "declares length"),
    "map16 needing 2 bytes per pair": (b"\xde\x00\x05" + b"\x00" * 9, "declares length 5"),
    "too deep": (nest(33), "max_depth=32"),
    "deep maps": (b"\x81\x00" * 33 + b"\x00", "max_depth=32"),
    "invalid UTF-8": (b"\xa2\xc3\x28", "invalid UTF-8"),
    "UTF-8 surrogate": (b"\xa3\xed\xa0\x80", "invalid UTF-8"),
    "trailing garbage": (b"\x01\x02", "1 trailing byte"),
    "trailing after map": (b"\x80\xc0\xc0", "2 trailing"),
    "fixext1": (b"\xd4\x01\x02", "ext type"),
    "ext8": (b"\xc7\x01\x05\x00", "ext type"),
    "timestamp": (b"\xd6\xff\x00\x00\x00\x01", "ext type"),
    "never used 0xc1": (b"\xc1", "invalid type byte 0xc1"),
    "list as map key": (b"\x81\x91\x01\x02", "unhashable list"),
    "map as map key": (b"\x81\x80\x02", "unhashable dict"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_raises_value_error(case: str) -> None:
    data, message = MALFORMED[case]
    with pytest.raises(ValueError, match=message):
        unpackb(data)


def test_hostile_lengths_allocate_nothing_big() -> None:
    tracemalloc.start()
    try:
        for data in (b"\xc6\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff"):
            with pytest.raises(ValueError):
                unpackb(data + b"\x00" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_depth_and_length_limits_are_adjustable() -> None:
    assert unpackb(nest(32)) == reference_unpack(nest(32))
    assert unpackb(nest(3), max_depth=3) == [[[0]]]
    with pytest.raises(ValueError, match="max_depth=2"):
        unpackb(nest(3), max_depth=2)
    with pytest.raises(ValueError, match="max_depth"):
        unpackb(nest(1), max_depth=0)
    assert unpackb(packb("abcd"), max_len=4) == "abcd"
    with pytest.raises(ValueError, match="max_len=3"):
        unpackb(packb("abcd"), max_len=3)
    with pytest.raises(ValueError, match="interpreter"):
        unpackb(nest(100_000), max_depth=10**6)
    with pytest.raises(TypeError):
        unpackb("text")  # type: ignore[arg-type]


def agrees_with_msgpack(data: bytes) -> None:
    """Our result must be msgpack's, and only the subset's limits may make ours fail."""
    try:
        ours = unpackb(data)
    except ValueError:
        ours = ValueError
    try:
        theirs = reference_unpack(data)
    except (ValueError, TypeError):  # msgpack: TypeError for unhashable keys
        theirs = ValueError
    if ours is ValueError:
        if theirs is not ValueError:
            # Acceptable only where msgpack goes beyond the subset (ext types) or our depth limit.
            with pytest.raises(ValueError, match=r"ext type|max_depth"):
                unpackb(data)
    else:
        assert theirs is not ValueError, data
        # Compared re-encoded: NaN != NaN, and 1 == 1.0 == True would hide type differences.
        assert packb(ours) == msgpack.packb(theirs, use_bin_type=True)


@HYPOTHESIS
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    agrees_with_msgpack(data)


@HYPOTHESIS
@given(DECODED, st.data())
def test_fuzz_damaged_encodings(value: Any, draw: st.DataObject) -> None:
    data = bytearray(packb(value))
    for _ in range(draw.draw(st.integers(1, 4))):
        action = draw.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw.draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= draw.draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw.draw(st.binary(min_size=1, max_size=5))
    agrees_with_msgpack(bytes(data))


# ======================================================================= ZMTP, scripted peer


@pytest.fixture
def scripted() -> Any:
    srv = ScriptedServer()
    yield srv
    srv.close()


def drive(
    dealer: DealerSocket, done: Callable[[list[list[bytes]]], bool], timeout: float = 10
) -> list[list[bytes]]:
    """Poll the dealer until done(messages so far) holds."""
    messages: list[list[bytes]] = []
    end = time.monotonic() + timeout
    while not done(messages):
        assert time.monotonic() < end, "timed out driving the dealer"
        messages.extend(dealer.poll(0.01))
    return messages


def expect_error(dealer: DealerSocket, timeout: float = 5) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(ZmtpError) as info:
        while time.monotonic() - start < timeout:
            dealer.poll(0.02)
    return str(info.value), time.monotonic() - start


def test_handshake_bytes_fragmented_greeting_and_frames(scripted: ScriptedServer) -> None:
    seen: dict[str, Any] = {}

    def script(conn: socket.socket) -> None:
        for i in range(64):  # one byte per segment: the client must reassemble
            conn.sendall(SERVER_GREETING[i : i + 1])
            time.sleep(0.001)
        seen["greeting"] = recv_exact(conn, 64)
        seen["ready"] = recv_frame(conn)
        ours = ready(Socket_Type=b"ROUTER", Extra=b"ignored")
        conn.sendall(ours[:5])
        time.sleep(0.02)
        conn.sendall(ours[5:])
        seen["early"] = [recv_frame(conn), recv_frame(conn), recv_frame(conn)]
        conn.sendall(frame(b"one", more=True) + frame(b"", more=True) + frame(b"two"))
        conn.sendall(command(b"PING", b"\x00\x0a" + b"ctx-1234"))
        seen["pong"] = recv_frame(conn)
        conn.sendall(frame(b"L" * 300) + frame(b"s", long=True))
        seen["late"] = recv_frame(conn)

    scripted.run(script)
    dealer = DealerSocket(scripted.endpoint, identity=b"abc")
    mutable = bytearray(b"early")
    dealer.send([mutable, b"y" * 300, memoryview(b"view")])  # queued before the handshake
    mutable[:] = b"XXXXX"  # must not reach the wire: the frame was copied
    assert not dealer.connected
    messages = drive(dealer, lambda got: "pong" in seen and len(got) >= 3)
    dealer.send([b"late"])
    drive(dealer, lambda got: scripted.done)
    scripted.finish()
    assert dealer.connected and dealer.pending_bytes == 0

    assert seen["greeting"] == CLIENT_GREETING
    flags, body = seen["ready"]
    assert flags == 0x04
    assert body == (
        b"\x05READY" + b"\x0bSocket-Type\x00\x00\x00\x06DEALER" + b"\x08Identity\x00\x00\x00\x03abc"
    )
    assert seen["early"] == [(0x01, b"early"), (0x03, b"y" * 300), (0x00, b"view")]
    assert seen["pong"] == (0x04, b"\x04PONGctx-1234")
    assert messages == [[b"one", b"", b"two"], [b"L" * 300], [b"s"]]
    assert seen["late"] == (0x00, b"late")
    dealer.close()


BAD_PEERS = {
    "other mechanism": (SERVER_GREETING[:12] + b"PLAIN".ljust(20, b"\0") + bytes(32), "'PLAIN'"),
    "ZMTP 2.0": (b"\xff" + bytes(8) + b"\x7f\x01\x05", "older ZMTP"),
    "ZMTP 1.0": (b"\x05\x01abcd", "did not answer with a ZMTP greeting"),
    "not ZMTP": (b"HTTP/1.1 400 Bad Request\r\n\r\n", "did not answer with a ZMTP greeting"),
    "DEALER peer": (SERVER_GREETING + ready(Socket_Type=b"DEALER"), "DEALER socket"),
    "untyped peer": (SERVER_GREETING + ready(), "untyped"),
    "ERROR command": (SERVER_GREETING + command(b"ERROR", b"\x07go away"), "go away"),
    "message first": (SERVER_GREETING + frame(b"hi"), "before the handshake"),
    "other command first": (SERVER_GREETING + command(b"PING", b"\0\0"), "before READY"),
    "bad READY": (SERVER_GREETING + command(b"READY", b"\x0bSocket-Type\0\0"), "READY"),
    "reserved flags": (SERVER_GREETING + b"\x10\x00", "reserved frame flags"),
    "command with MORE": (SERVER_GREETING + b"\x05\x00", "bad command frame"),
    "empty command": (SERVER_GREETING + b"\x04\x00", "malformed command"),
}


@pytest.mark.parametrize("case", list(BAD_PEERS))
def test_bad_peers_are_rejected(scripted: ScriptedServer, case: str) -> None:
    data, message = BAD_PEERS[case]

    def script(conn: socket.socket) -> None:
        conn.sendall(data)
        wait_for_eof(conn)  # the client must hang up, not wait for more

    scripted.run(script)
    dealer = DealerSocket(scripted.endpoint)
    error, _ = expect_error(dealer)
    assert message in error and scripted.endpoint in error
    scripted.finish()
    with pytest.raises(ZmtpError) as again:
        dealer.poll(0)
    assert str(again.value) == error  # stays dead, for the same reason


@pytest.mark.parametrize(
    ("frames", "limit", "fails"),
    [
        ([frame(b"", long=True)[:1] + struct.pack(">Q", 2**62)], 1000, True),
        ([frame(b"a" * 600, more=True), frame(b"b" * 600)], 1000, True),
        ([frame(b"a" * 500, more=True), frame(b"b" * 500)], 1000, False),
    ],
)
def test_max_message_bytes(
    scripted: ScriptedServer, frames: list[bytes], limit: int, fails: bool
) -> None:
    def script(conn: socket.socket) -> None:
        server_handshake(conn)
        conn.sendall(b"".join(frames))
        wait_for_eof(conn)

    scripted.run(script)
    dealer = DealerSocket(scripted.endpoint, max_message_bytes=limit)
    if fails:
        error, seconds = expect_error(dealer)
        assert "max_message_bytes" in error and seconds < 2
    else:
        assert dealer.recv(5) == [b"a" * 500, b"b" * 500]
        dealer.close()
    scripted.finish()


def test_messages_before_a_close_are_delivered_first(scripted: ScriptedServer) -> None:
    def script(conn: socket.socket) -> None:
        server_handshake(conn)
        conn.sendall(frame(b"last", more=True) + frame(b"words") + frame(b"cut", more=True))
        conn.close()

    scripted.run(script)
    dealer = DealerSocket(scripted.endpoint)
    assert dealer.recv(5) == [b"last", b"words"]
    error, _ = expect_error(dealer)
    assert "closed by the peer" in error
    scripted.finish()


def test_our_heartbeat_detects_a_silent_server(scripted: ScriptedServer) -> None:
    pings: list[tuple[int, bytes]] = []

    def script(conn: socket.socket) -> None:
        server_handshake(conn)
        pings.append(recv_frame(conn))  # and then never answer
        wait_for_eof(conn)

    scripted.run(script)
    dealer = DealerSocket(scripted.endpoint, heartbeat_ivl=0.1, heartbeat_timeout=0.3)
    error, seconds = expect_error(dealer)
    assert "timed out" in error and 0.3 < seconds < 2
    scripted.finish()
    assert pings == [(0x04, b"\x04PING\x00\x00")]  # TTL 0: the server need not time us out


def test_timeout_covers_a_server_that_never_greets(scripted: ScriptedServer) -> None:
    scripted.run(wait_for_eof)
    dealer = DealerSocket(scripted.endpoint, heartbeat_timeout=0.3)
    error, seconds = expect_error(dealer)
    assert "timed out" in error and "handshake" in error and seconds < 2
    scripted.finish()


def test_host_names_are_resolved(scripted: ScriptedServer) -> None:
    def script(conn: socket.socket) -> None:
        server_handshake(conn)
        assert recv_frame(conn) == (0x00, b"via name")
        conn.sendall(frame(b"ok"))
        wait_for_eof(conn)

    scripted.run(script)
    port = scripted.endpoint.rsplit(":", 1)[1]
    with DealerSocket(f"tcp://localhost:{port}") as dealer:
        dealer.send([b"via name"])
        assert dealer.recv(5) == [b"ok"]
        assert dealer.fileno() >= 0
    scripted.finish()


def test_arguments_and_close() -> None:
    for endpoint in ("127.0.0.1:5555", "tcp://127.0.0.1", "tcp://:5555", "tcp://h:0", "ipc://x"):
        with pytest.raises(ValueError, match="tcp://host:port"):
            DealerSocket(endpoint)
    for identity in (b"", b"\x00abc", b"x" * 256):
        with pytest.raises(ValueError, match="identity"):
            DealerSocket("tcp://127.0.0.1:5555", identity=identity)
    with pytest.raises(ValueError, match="heartbeat_ivl"):
        DealerSocket("tcp://127.0.0.1:5555", heartbeat_ivl=0)
    listener = socket.create_server(("127.0.0.1", 0))
    dealer = DealerSocket(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    with pytest.raises(ValueError, match="at least one frame"):
        dealer.send([])
    with pytest.raises(TypeError, match="list of frames"):
        dealer.send(b"frame")
    with pytest.raises(TypeError, match="str"):
        dealer.send(["text"])
    dealer.close()
    dealer.close()
    assert dealer.closed and dealer.fileno() == -1
    with pytest.raises(ZmtpError, match="closed"):
        dealer.poll(0)
    with pytest.raises(ZmtpError, match="closed"):
        dealer.send([b"x"])
    listener.close()


# ===================================================================== ZMTP, real pyzmq ROUTER


class Peer:
    """tests/support/wire_peer.py running one scenario in a subprocess without zmq and msgpack."""

    def __init__(self, scenario: str, endpoint: str, **options: Any) -> None:
        self.proc = subprocess.Popen(
            [PEER_PYTHON, str(PEER_SCRIPT), scenario, endpoint, json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _fail(self, why: str) -> None:
        self.kill()
        assert self.proc.stderr is not None
        pytest.fail(f"wire peer: {why}\n{self.proc.stderr.read()}")

    def event(self, timeout: float = 30) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"no output within {timeout} s")
        if line is None:
            self._fail("exited early")
        return json.loads(line)  # type: ignore[arg-type]

    def result(self, timeout: float = 30) -> dict[str, Any]:
        result = self.event(timeout)
        assert result.get("done"), result
        if self.proc.wait(timeout=10) != 0:
            self._fail(f"exit status {self.proc.returncode}")
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def zctx() -> Any:
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def make_router(ctx: Any, **options: int) -> tuple[Any, str]:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    for name, value in options.items():
        router.setsockopt(getattr(zmq, name), value)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    return router, f"tcp://127.0.0.1:{port}"


def router_recv(router: Any, timeout: float = 30, copy: bool = True) -> list[Any]:
    assert router.poll(int(timeout * 1000)), "the ROUTER received nothing"
    return router.recv_multipart(copy=copy)


@pytest.fixture
def run_peer() -> Any:
    peers: list[Peer] = []

    def start(scenario: str, endpoint: str, **options: Any) -> Peer:
        peers.append(Peer(scenario, endpoint, **options))
        return peers[-1]

    yield start
    for peer in peers:
        peer.kill()


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
REPLY = {"ok": True, "image": b"\x89PNG" + bytes(300), "size": [640, 480], "t": 0.25, "e": None}


@pytest.mark.parametrize("identity", ["peer-1", None])
def test_pyzmq_roundtrip_identity_and_msgpack(zctx: Any, run_peer: Any, identity: Any) -> None:
    router, endpoint = make_router(zctx)
    peer = run_peer("roundtrip", endpoint, identity=identity)
    first = router_recv(router)
    routing_id = first[0]
    if identity:
        assert routing_id == identity.encode()
    else:
        assert len(routing_id) == 5 and routing_id[0] == 0  # libzmq made one up
    assert first[1:] == [b"hello", b"", b"world"]
    second = router_recv(router)
    assert second[0] == routing_id
    assert reference_unpack(second[1]) == REQUEST
    router.send_multipart([routing_id, b"re", b"", b"ply"])
    router.send_multipart([routing_id, msgpack.packb(REPLY, use_bin_type=True)])
    result = peer.result()
    assert result["replies"][0] == [b"re".hex(), "", b"ply".hex()]
    assert result["decoded"] == repr(REPLY)


def pattern(n: int, seed: int) -> bytes:
    block = bytes((i * seed) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


def test_pyzmq_100_mb_each_way(zctx: Any, run_peer: Any) -> None:
    size = 100 * 1000 * 1000 + 7
    router, endpoint = make_router(zctx)
    peer = run_peer("big", endpoint, size=size)
    routing_id, upload = router_recv(router, copy=False)
    assert upload.bytes == pattern(size, 7)
    router.send_multipart([routing_id.bytes, pattern(size, 11)], copy=False)
    result = peer.result(timeout=60)
    assert result["ok"]
    assert result["seconds"] < 5, result  # about 1 s on 2 cores
    # Streaming 100 MB must not make poll(0.01) block: one pass is bounded.
    assert result["slowest_poll"] < 0.5, result


def test_pyzmq_many_small_messages_in_order(zctx: Any, run_peer: Any) -> None:
    count = 5000
    router, endpoint = make_router(zctx)
    peer = run_peer("many", endpoint, count=count)
    for i in range(count):
        message = router_recv(router)
        assert message[1:] == [b"%d" % i, b"x" * (i % 300)]
        router.send_multipart(message)
    result = peer.result()
    assert result == {"received": count, "in_order": True, "done": True}


ROUTER_HEARTBEATS = {"HEARTBEAT_IVL": 100, "HEARTBEAT_TIMEOUT": 300, "HEARTBEAT_TTL": 500}


@pytest.mark.parametrize("mute", [False, True])
def test_pyzmq_router_heartbeats(zctx: Any, run_peer: Any, mute: bool) -> None:
    router, endpoint = make_router(zctx, **ROUTER_HEARTBEATS)
    peer = run_peer("idle", endpoint, seconds=1.2, mute=mute)
    routing_id, _ = router_recv(router)
    router.send_multipart([routing_id, b"pong"])
    if mute:
        # Without our PONGs libzmq gives up after HEARTBEAT_TIMEOUT; we see it hang up.
        result = peer.result()
        assert "closed by the peer" in result["error"], result
        assert result["after"] < 1.2
        return
    # Idle for four times the router's timeout, kept alive by answering its PINGs.
    assert router_recv(router) == [routing_id, b"second"]
    router.send_multipart([routing_id, b"still here"])
    assert peer.result()["reply"] == [[b"still here".hex()]]


def test_pyzmq_answers_our_heartbeats(zctx: Any, run_peer: Any) -> None:
    router, endpoint = make_router(zctx)
    # Our timeout would fire within 0.3 s of a PING libzmq did not answer.
    peer = run_peer("idle", endpoint, seconds=1.2, heartbeat_ivl=0.1, heartbeat_timeout=0.3)
    routing_id, _ = router_recv(router)
    router.send_multipart([routing_id, b"pong"])
    assert router_recv(router) == [routing_id, b"second"]
    router.send_multipart([routing_id, b"still here"])
    assert peer.result()["reply"] == [[b"still here".hex()]]


def test_pyzmq_server_gone(zctx: Any, run_peer: Any) -> None:
    router, endpoint = make_router(zctx)
    peer = run_peer("gone", endpoint)
    routing_id, _ = router_recv(router)
    router.send_multipart([routing_id, b"pong"])
    assert peer.event() == {"event": "ready"}
    router.close(linger=0)
    result = peer.result()
    assert result["error"] and endpoint in result["error"], result
    assert result["after"] < 3, result


def test_pyzmq_write_to_a_broken_connection(zctx: Any, run_peer: Any) -> None:
    router, endpoint = make_router(zctx)
    peer = run_peer("broken_pipe", endpoint)
    routing_id, _ = router_recv(router)
    router.send_multipart([routing_id, b"pong"])
    result = peer.result()  # exits normally: no death by SIGPIPE
    assert result["error"] and "lost" in result["error"], result


def test_refused_connection_fails_fast(run_peer: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free now; nobody listens once closed
    endpoint = f"tcp://127.0.0.1:{port}"
    result = run_peer("refused", endpoint).result()
    assert "refused" in result["error"] and endpoint in result["error"], result
    assert result["after"] < 3, result


def test_poll_returns_after_its_timeout(zctx: Any, run_peer: Any) -> None:
    router, endpoint = make_router(zctx)
    peer = run_peer("poll_timing", endpoint)
    routing_id, _ = router_recv(router)
    router.send_multipart([routing_id, b"pong"])
    durations = peer.result()["durations"]
    assert all(0.04 <= d < 0.5 for d in durations), durations
