"""The messages (wire/messages.py): every one survives the trip through both codecs, the
standard-library msgpack the plug-ins carry and the real msgpack the server uses, byte for byte;
requests are read strictly, replies as a client must (what it does not know, it ignores)."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from stylebridge.wire import messages as m
from stylebridge.wire.msgpack_lite import packb, unpackb
from stylebridge.wire.protocol import VERSION

RGB = m.ImageSpec(2, 1, 3, "uint8", 1)
GRAY = m.ImageSpec(2, 1, 1, "float32", 2)
FRAMES = [b"header", bytes(6), bytes(8)]
# how the server reads requests: its limits and vocabulary
BOUNDS = m.Bounds(100, 2, {"fast": ("strength", "size"), "paper": ()}, "fast")

STATUS = {
    "version": "0.1.0",
    "protocol": VERSION,
    "endpoint": "tcp://127.0.0.1:1",
    "pid": 42,
    "memory": {"rss": 1, "cuda_allocated": None},
    "uptime": 1.5,
    "limits": {"max_pixels": 100},
    "draining": False,
    "worker_alive": True,
    "device": "cpu",
    "model_loaded": True,
    "weights": "cache",
    "style_cache": {"entries": 0, "bytes": 0},
}

EXAMPLES: list[m.Message] = [
    m.Ping(id=1),
    m.StatusQuery(id="s"),
    m.Submit(RGB, [RGB], id=3),
    m.Submit(
        RGB,
        [RGB, RGB],
        preset="paper",
        controls={},
        style_weights=[1.0, 0.5],
        mask=m.ImageSpec(2, 1, 1, "float32", 2),
        preview=0.5,
        id=4,
    ),
    m.Cancel("j1", id=5),
    m.Echo(GRAY, id=6),
    m.Shutdown("key", 0, id=7),
    m.Shutdown(None, id=8),
    m.EstimateQuery(10, 8, id=9),
    m.EstimateQuery(10, 8, preset="fast", controls={"size": 256}, id=10),
    m.Prove("0f" * 32, id=11),
    m.Pong("0.1.0", VERSION, ["fast"], ["strength"], id=1),
    m.Status(**STATUS, queue=["j2"], running="j1", id="s"),
    m.Status(
        **{**STATUS, "weights": None},
        queue=[],
        running=None,
        running_jobs=["j1", "j3"],
        cluster="local",
        actors=[{"name": "actor-0", "alive": True}],
        id=2,
    ),
    m.Accepted("j1", 0, id=3),
    m.Queued("j1", 2, id=3),
    m.Queued("j1", 1, retry=1, id=3),
    m.Progress("j1", 3, 60, 1, 1, 384, 288, {"total": 1.5}, 2.0, None, id=3),
    m.Preview("j1", 3, RGB, id=3),
    m.Result("j1", RGB, 60, False, 9.5, {"total": 1.0}, {"strength": 1.0}, id=3),
    m.Result("j1", None, 0, True, id=3),
    m.Cancelling("j1", id=5),
    m.Echoed(GRAY, id=6),
    m.Bye(1, id=7),
    m.Estimate(41.5, "jobs", id=9),
    m.Estimate(None, "measuring", id=10),
    m.Proof("ab" * 32, id=11),
    m.Error("bad_field", "size: 10 is outside 32..8192", "controls.size", "j1", id=3),
    m.Error("bad_message", "not msgpack"),
]


def test_every_message_has_an_example():
    """A new message class needs one here, so that it is round-tripped too."""
    shown = {type(e) for e in EXAMPLES}
    assert set(m.REQUESTS.values()) | set(m.REPLIES.values()) <= shown


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: f"{type(e).__name__}-{e.id}")
def test_both_codecs_write_the_same_bytes_and_read_the_same_message(message):
    header = message.to_header()
    assert list(header)[:3] == ["v", "type", "id"] and header["v"] == VERSION
    frame = packb(header)
    assert frame == msgpack.packb(header, use_bin_type=True)
    for decoded in (unpackb(frame), msgpack.unpackb(frame, raw=False)):
        assert decoded == header
        # the same type word can be a request and a reply ("status", "echo"): the class says
        if type(message) in m.REQUESTS.values():
            back = m.read_request(decoded, FRAMES, BOUNDS)
        else:
            back = m.read_reply(decoded, FRAMES)
        if isinstance(message, (m.Submit, m.EstimateQuery)) and message.preset is None:
            message = dataclasses.replace(message, preset=BOUNDS.default_preset)
        assert back == message


def test_a_field_left_at_none_is_left_out_where_the_protocol_says_absent():
    header = m.Submit(RGB, [RGB], id=1).to_header()
    assert list(header) == ["v", "type", "id", "content", "styles", "controls"]
    assert m.Result("j", None, 0, True, id=1).to_header()["image"] is None  # nil, as documented
    assert m.Error("c", "x").to_header()["field"] is None


def test_replies_are_read_as_the_protocol_asks_of_clients():
    # unknown types and fields are ignored; a field of another type reads as None
    assert m.read_reply({"type": "brand_new", "id": 1}) is None
    progress = m.read_reply(
        {"type": "progress", "id": 1, "job": "j", "step": "3", "total_steps": 9, "eta": True,
         "elapsed": 2, "new_field": [1]},
    )  # fmt: skip
    assert isinstance(progress, m.Progress)
    assert (progress.step, progress.total_steps, progress.eta, progress.elapsed) == (
        None,
        9,
        None,
        2,
    )
    assert progress.fraction() == 0.0
    assert dataclasses.replace(progress, step=3).fraction() == pytest.approx(1 / 3)
    # an image that does not fit its frame is refused, naming where it was
    with pytest.raises(m.ProtocolError) as bad:
        m.read_reply({"type": "result", "id": 1, "image": RGB.to_header()}, [b"h", b"short"])
    assert bad.value.field == "result.image"
    error = m.read_reply({"type": "error", "id": 1, "code": 7})
    assert error.exception().code == "unknown"


def test_no_number_from_the_server_is_infinite_or_nan():
    """Issue 27, item 8: ``eta: inf`` made ``round()`` raise inside a Qt slot (Krita 6 then
    aborts); every float of a reply, nested ones too, reads as None unless it is finite."""
    inf, nan = float("inf"), float("nan")
    progress = m.read_reply(
        {"type": "progress", "id": 1, "job": "j", "step": 1, "total_steps": 9, "eta": inf,
         "elapsed": nan, "losses": {"total": -inf, "style": 0.5}},
    )  # fmt: skip
    assert (progress.eta, progress.elapsed) == (None, None)
    assert progress.losses == {"total": None, "style": 0.5}
    status = m.read_reply({**STATUS, "type": "status", "id": 1, "uptime": nan,
                           "actors": [{"busy": None, "load": inf}]})  # fmt: skip
    assert status.uptime is None and status.actors == [{"busy": None, "load": None}]
    result = m.read_reply({"type": "result", "id": 1, "job": "j", "steps": 3, "image": None,
                           "elapsed": inf, "controls": {"strength": nan}})  # fmt: skip
    assert result.elapsed is None and result.controls == {"strength": None}


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        ({"v": 1, "type": "ping", "id": 1}, "bad_version", "v"),
        ({"v": VERSION, "type": "ping", "id": True}, "bad_field", "id"),
        ({"v": VERSION, "type": "ping", "id": "x" * 65}, "bad_field", "id"),
        ({"v": VERSION, "type": "pong", "id": 1}, "unknown_type", "type"),
    ],
)
def test_the_envelope_of_a_request(header, code, field):
    with pytest.raises(m.ProtocolError) as refused:
        m.request_kind(header)
    assert (refused.value.code, refused.value.field) == (code, field)


def submit(**fields) -> dict:
    return {**m.Submit(RGB, [RGB], id=1).to_header(), **fields}


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        (submit(content={**RGB.to_header(), "width": 0}), "bad_field", "content.width"),
        (submit(content=m.ImageSpec(20, 20, 3, "uint8", 1).to_header()), "too_large", "content"),
        (submit(styles=[]), "bad_field", "styles"),
        (submit(styles=[RGB.to_header()] * 3), "too_large", "styles"),
        (submit(styles=[{**RGB.to_header(), "dtype": "int8"}]), "bad_field", "styles.0.dtype"),
        (submit(styles=[{**RGB.to_header(), "frame": 3}]), "bad_field", "styles.0.frame"),
        (submit(style_weights=[0.0]), "bad_field", "style_weights"),
        (submit(preset="nope"), "bad_field", "preset"),
        (submit(controls={"brushiness": 1}), "bad_field", "controls.brushiness"),
        (submit(preset="paper", controls={"size": 64}), "bad_field", "controls.size"),
        (submit(mask=RGB.to_header()), "bad_field", "mask.channels"),
        (submit(preview=0.1), "bad_field", "preview"),
    ],
)
def test_a_submit_is_checked_field_by_field(header, code, field):
    with pytest.raises(m.ProtocolError) as refused:
        m.read_request(header, FRAMES, BOUNDS)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_a_submit_without_a_preset_gets_the_servers_default():
    assert m.read_request(submit(), FRAMES, BOUNDS).preset == "fast"


def estimate(**fields) -> dict:
    return {**m.EstimateQuery(10, 8, id=1).to_header(), **fields}


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        (estimate(width=0), "bad_field", "width"),
        (estimate(height="8"), "bad_field", "height"),
        (estimate(width=20, height=20), "too_large", "content"),
        (estimate(preset="nope"), "bad_field", "preset"),
        (estimate(controls={"brushiness": 1}), "bad_field", "controls.brushiness"),
    ],
)
def test_an_estimate_is_checked_like_a_submit_without_pixels(header, code, field):
    with pytest.raises(m.ProtocolError) as refused:
        m.read_request(header, FRAMES, BOUNDS)
    assert (refused.value.code, refused.value.field) == (code, field)
