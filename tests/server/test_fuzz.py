"""Fuzzing a real server process over real sockets (issue 8: reliability and security).

* ~1,500 hypothesis-built requests (testing/fuzz/: type confusion in every field,
  image claims that do not fit their frames, truncated and garbled msgpack, oversized and too
  deep headers, too many frames or styles, wrong or missing tokens): each gets exactly one
  well-formed reply that docs/protocol.md allows, or, for the occasional valid submit, a job
  that ends with a correct result.
* Raw garbage on the TCP socket, below ZeroMQ: random bytes, broken greetings, other mechanisms
  and versions, frames claiming 2**62 bytes, connections held half-way or reset.
* Afterwards the reference job gives the same pixels as before and the server's RSS (status
  reply, memory.rss) is within 10% of what it was after the warm-up.

`make soak` (benchmarks/soak.py) runs the same generators for 10,000+ messages.
"""

from __future__ import annotations

import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylebridge.wire.protocol import VERSION
from testing import fuzz as fm
from testing.servers import start_server

FUZZ_EXAMPLES = 1500
RAW_CONNECTIONS = 400
HELD_CONNECTIONS = 100
MAX_PIXELS = 4096  # small, so messages just under and just over the limit carry real pixels
RSS_TOLERANCE = 0.10
SERVER_ARGS = ("--max-pixels", str(MAX_PIXELS))


@pytest.fixture(scope="module")
def session(server):
    sess = fm.Session(server.endpoint, server.token, timeout=30)
    yield sess
    sess.close()


@pytest.fixture(scope="module")
def ctx(server, session) -> fm.Context:
    return fm.Context.from_status(server.token, session.request({"type": "status"}))


@pytest.fixture(scope="module")
def baseline(session) -> dict:
    """The reference job's pixels and the RSS after the warm-up, before any fuzzing."""
    pixels = fm.warm_up(session)
    rss = session.request({"type": "status"})["memory"]["rss"]
    return {"pixels": pixels, "rss": rss}


def assert_alive(server, session) -> None:
    assert server.proc.poll() is None, server.log.read_text()[-3000:]
    assert session.request({"type": "ping"})["type"] == "pong"


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same messages on every run; `make soak` draws fresh ones
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_every_hostile_message_gets_one_documented_reply(server, session, ctx, baseline, data):
    case = fm.build_case(fm.HypothesisDraw(data), ctx, session.next_rid())
    outcome = session.check(case)
    assert not outcome.problems, "\n".join(outcome.problems)
    assert server.proc.poll() is None, server.log.read_text()[-3000:]


def test_the_fuzzing_left_no_stray_replies_and_covered_every_outcome(server, session):
    if session.sent < FUZZ_EXAMPLES:
        pytest.skip("checks what the hypothesis test above did: run the module")
    assert session.leftovers() == []
    assert_alive(server, session)
    assert session.sent >= FUZZ_EXAMPLES
    # hypothesis reached the valid paths too, not only the refusals
    seen = set(session.counts)
    assert {"pong", "status", "echo", "accepted", "unknown_job"} <= seen, session.counts
    assert {"bad_message", "bad_version", "unknown_type", "bad_field"} <= seen
    assert "too_large" in seen and session.finals.get("result", 0) >= 1, session.finals


# --- the boundaries, one by one ----------------------------------------------------------------


def ask(session, header: dict, *blobs: bytes, raw: bytes | None = None) -> dict:
    frames = [raw if raw is not None else msgpack.packb(header), *blobs]
    session.sock.send_multipart(frames)
    reply = session.recv(session.timeout)
    assert reply is not None, f"no reply to {header!r}"[:300]
    return msgpack.unpackb(reply[0])


def base(server, kind: str = "ping", **fields) -> dict:
    return {"v": VERSION, "type": kind, "id": 7, **fields}


def image(width: int, height: int, channels: int = 1, dtype: str = "uint8", frame: int = 1):
    return {"width": width, "height": height, "channels": channels, "dtype": dtype, "frame": frame}


def test_header_size_and_depth_limits(server, session):
    at_limit = fm.pad_to(base(server), fm.MAX_HEADER_BYTES)
    assert len(msgpack.packb(at_limit)) == fm.MAX_HEADER_BYTES
    assert ask(session, at_limit)["type"] == "pong"
    over = fm.pad_to(base(server), fm.MAX_HEADER_BYTES + 1)
    assert ask(session, over)["code"] == "too_large"
    # 8 levels (the header is level 1) pass, 9 do not
    assert ask(session, base(server, extra=fm.nest(6, leaf=True)))["type"] == "pong"
    assert ask(session, base(server, extra=fm.nest(7, leaf=False)))["type"] == "pong"
    assert ask(session, base(server, extra=fm.nest(7, leaf=True)))["code"] == "bad_message"
    # far deeper than any stack: still one plain bad_message (msgpack itself stops at 1024)
    for levels in (900, 1023, 5000):
        reply = ask(session, {}, raw=b"\x81\xa1x" + b"\x91" * levels + b"\x01")
        assert reply["code"] == "bad_message", reply
    assert_alive(server, session)


def test_frame_and_pixel_limits(server, session):
    echo = base(server, "echo", image=image(64, 64))
    assert ask(session, echo, bytes(64 * 64))["type"] == "echo"  # exactly max_pixels
    over = base(server, "echo", image=image(64, 65))
    reply = ask(session, over, bytes(64 * 65))
    assert reply["code"] == "too_large" and reply["field"] == "image", reply
    huge = base(server, "echo", image=image(2**32, 2**32, 4, "float32"))
    assert ask(session, huge, b"")["code"] == "too_large"
    # header + content + 8 styles + mask = 11 frames is the most a request can need
    assert ask(session, echo, bytes(64 * 64), *[b""] * 9)["type"] == "echo"
    reply = ask(session, echo, bytes(64 * 64), *[b""] * 10)
    assert reply["code"] == "too_large", reply
    assert_alive(server, session)


@pytest.mark.parametrize(
    "version", [float(VERSION), True, str(VERSION), VERSION - 1, VERSION + 1, None]
)
def test_version_must_be_the_integer_version(server, session, version):
    """docs: `v` is an int. A float 1.0 compared equal to 1 in Python and slipped through."""
    reply = ask(session, base(server, v=version))
    assert reply["type"] == "error" and reply["code"] == "bad_version", reply
    assert reply["field"] == "v"


@pytest.mark.parametrize(
    "ext", [msgpack.ExtType(65, b""), msgpack.ExtType(1, b"x"), msgpack.Timestamp(0)]
)
def test_no_ext_type_gets_through_not_even_an_empty_one(server, session, ext):
    """docs: "No ext types". msgpack's max_ext_len=0 still lets a zero-length ext through."""
    reply = ask(session, base(server, extra=ext))
    assert reply["type"] == "error" and reply["code"] == "bad_message", reply


@pytest.mark.parametrize("where", ["width", "height"])
def test_a_size_below_one_is_named_by_its_own_field(server, session, where):
    spec = image(4, 4)
    spec[where] = 0
    reply = ask(session, base(server, "echo", image=spec), bytes(16))
    assert reply["code"] == "bad_field" and reply["field"] == f"image.{where}", reply


def test_bad_control_values_are_refused_at_submit_not_after_queueing(server, session):
    """A submit whose controls the engine refuses must get one bad_field reply, not `accepted`
    (a queue place, maybe minutes of waiting) and then the error when the job starts."""
    submit = base(
        server,
        "submit",
        content=image(16, 16),
        styles=[image(16, 16)],
        controls={"steps": "many"},
    )
    reply = ask(session, submit, bytes(256))
    if reply["type"] == "accepted":  # keep the session in step before failing
        session.recv(session.timeout)
    assert reply["type"] == "error", f"first reply {reply!r}"
    assert reply["code"] == "bad_field" and reply["field"] == "controls.steps", reply


def test_a_tiny_style_cannot_slip_under_the_memory_ceiling(tmp_path):
    """A well-formed request inside every limit: an 8 px style with style_size 512. The engine
    resizes every style to style_size (up as well as down), so this costs what a 512 px style
    costs, but the ceiling's estimate (core/memory.py) counted 8 px: with --max-memory 1.5 and
    style_size 1536 it said 807 MiB and the server then peaked at 3,179 MiB."""
    srv = start_server(tmp_path / "rt", "--max-memory", "0.9")  # GiB; the base alone is 0.78
    try:
        sess = fm.Session(srv.endpoint, srv.token, timeout=60)
        req = fm.Request({}, [])
        content = fm.add_image(req, 64, 64, 3, "uint8")
        tiny, big = fm.add_image(req, 8, 8, 3, "uint8"), fm.add_image(req, 512, 512, 3, "uint8")
        controls = {"size": 64, "style_size": 512, "steps": 1}
        for style in (big, tiny):  # the big one is refused: so must the tiny one be
            header = {"content": content, "styles": [style], "controls": controls}
            reply, _ = sess.run_job(header, req.blobs, timeout=120)
            assert reply["type"] == "error" and reply["code"] == "too_large", reply
        sess.close()
    finally:
        srv.stop()


# --- below ZeroMQ ------------------------------------------------------------------------------


def test_raw_garbage_on_the_tcp_socket(server, session, baseline):
    draw = fm.RandomDraw("raw-garbage")
    stats: dict[str, int] = {}
    sent = 0
    while sent < RAW_CONNECTIONS:
        cases = [fm.raw_case(draw, server.token) for _ in range(50)]
        for key, value in fm.run_raw_batch(server.endpoint, cases).items():
            stats[key] = stats.get(key, 0) + value
        sent += len(cases)
        assert server.proc.poll() is None, server.log.read_text()[-3000:]
    assert stats["connections"] == sent and stats.get("raw pings answered", 0) >= 1, stats
    # many peers stuck half-way: the server goes on answering everyone else
    held = fm.hold_connections(server.endpoint, HELD_CONNECTIONS, draw)
    try:
        start = time.monotonic()
        assert session.request({"type": "ping"})["type"] == "pong"
        assert time.monotonic() - start < 10
        pong = fm.raw_ping(server.endpoint, fm.raw_case_ping(server.token))
        assert pong["type"] == "pong"
    finally:
        fm.drop_connections(held)
    assert_alive(server, session)


def test_afterwards_the_valid_job_is_right_and_memory_is_back(server, session, baseline):
    ok, why = fm.reference_result_ok(session, baseline["pixels"])
    assert ok, why
    status = session.request({"type": "status"})
    assert status["queue"] == [] and status["running"] is None
    rss = status["memory"]["rss"]
    change = fm.change(baseline["rss"], rss)
    assert abs(change) <= RSS_TOLERANCE, (
        f"RSS {baseline['rss'] / 2**20:.0f} MiB after the warm-up, {rss / 2**20:.0f} MiB after "
        f"the fuzzing ({change:+.1%})"
    )
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-3000:]
