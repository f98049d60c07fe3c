"""Malformed, truncated, oversized and type-confused messages for a real server, and the oracle.

The one way to build hostile traffic, shared by tests/server/test_fuzz.py (hypothesis draws) and
benchmarks/soak.py (a seeded random source, for ten thousand messages and more):

* ``build_case(draw, ctx, rid)``: a request as frames, made from a valid template by one to three
  mutations (a field deleted or replaced by a value of another type, an image claim that does not
  match its blob, truncated or garbled msgpack, an oversized or too deep header, too many frames
  or styles, ...), with the replies docs/protocol.md allows for it (``Expect``).
* ``expectation(frames, ctx)``: that oracle, written from the protocol document, not from
  server/protocol.py. Where several things are wrong at once it accepts an error about any of
  them (the order of checks is the server's business). The token is not in the message: it
  was checked in the handshake (a stale ``token`` field is one more field the server ignores).
* ``Session``: a pyzmq DEALER that sends one case at a time and checks the reply (and, for the
  rare valid ``submit``, the job's events and result) against the oracle.
* ``raw_case(draw, token)`` and ``run_raw_batch``: garbage at the TCP level, below ZeroMQ: all
  but the raw ping come without credentials, so the server's handshake must refuse them.

Every builder takes a ``Draw``: ``RandomDraw(seed)`` or ``HypothesisDraw(data)``.
"""

from __future__ import annotations

import copy
import math
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgpack
import numpy as np
import zmq

from stylebridge.core.errors import InputError
from stylebridge.core.settings import make_settings
from stylebridge.server.client import present_token
from stylebridge.wire import protocol as wire_protocol
from stylebridge.wire import vocabulary

T = TypeVar("T")

# --- what docs/protocol.md says ------------------------------------------------------------------
# The protocol's numbers (version, header limits, pixel types) and its vocabulary (presets and
# controls a client may send) are the wire package's: the client core every client shares, the
# plug-ins included (wire/, generated from core/settings.py). The rest
# of the oracle is written from docs/protocol.md, not from server/protocol.py.

VOCABULARY = vocabulary.default()
VERSION = wire_protocol.VERSION
# fmt: off
CODES = frozenset({
    "bad_message", "bad_version", "bad_token", "unknown_type", "bad_field", "too_large",
    "queue_full", "unknown_job", "engine_error", "shutting_down", "forbidden",
})
# fmt: on
REQUEST_TYPES = ("ping", "status", "submit", "cancel", "echo", "shutdown")
VALID_REPLY = {
    "ping": "pong",
    "status": "status",
    "echo": "echo",
    "submit": "accepted",
    "shutdown": "bye",
}
ITEMSIZE = dict(wire_protocol.DTYPES)
PRESETS = tuple(VOCABULARY.presets)
DEFAULT_PRESET = VOCABULARY.default_preset
CONTROLS = tuple(VOCABULARY.controls)
MAX_HEADER_BYTES = wire_protocol.MAX_HEADER_BYTES
# the header is level 1, every value inside a container one level more
MAX_DEPTH = wire_protocol.MAX_HEADER_DEPTH
MAX_ID_CHARS = 64
MAX_ASPECT = 64  # the engine refuses thinner layers (late: as the job's error)
ERROR_KEYS = {"v", "type", "id", "job", "code", "message", "field"}
ANY = "<any>"  # an error whose field is not checked


@dataclass(frozen=True)
class Context:
    token: str
    max_pixels: int = 8192 * 8192
    max_styles: int = 8

    @classmethod
    def from_status(cls, token: str, status: dict[str, Any]) -> Context:
        limits = status["limits"]
        return cls(token, limits["max_pixels"], limits["max_styles"])


# --- random sources ------------------------------------------------------------------------------


class Draw:
    """The choices a builder makes; subclasses take them from a seed or from hypothesis."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, options: Sequence[T]) -> T:
        return options[self.int(0, len(options) - 1)]

    def chance(self, p: float) -> bool:
        return self.int(0, 999) < p * 1000

    def bytes(self, n: int) -> bytes:
        raise NotImplementedError


class RandomDraw(Draw):
    def __init__(self, seed: int | str) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


class HypothesisDraw(Draw):
    """Draws from ``st.data()``: hypothesis steers them to edge cases and shrinks failures."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(self.st.sampled_from(options))

    def chance(self, p: float) -> bool:
        # hypothesis favours small integers (and shrinks towards them): count down from the top
        # so that "yes" keeps about its probability and shrinking goes towards "no"
        return self.int(0, 999) >= 1000 - p * 1000

    def bytes(self, n: int) -> bytes:
        if n > 512:  # hypothesis keeps examples small; long filler need not be drawn
            return pattern(n, self.int(0, 255))
        return self.data.draw(self.st.binary(min_size=n, max_size=n))


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic bytes."""
    block = bytes((i * 7 + seed) & 0xFF for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


# --- junk values ---------------------------------------------------------------------------------

# fmt: off
BOUNDARY_INTS = (
    0, 1, -1, 2, 3, 4, 5, 8, 9, 12, 63, 64, 65, 255, 256, 4096, 4097, 65535, 65536, 2**31 - 1,
    2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**31), -(2**63),
)
# fmt: on
# fmt: off
SPECIAL_FLOATS = (
    0.0, -0.0, 0.1, 0.19999, 0.2, 0.5, 1.0, 2.0, 1.5, -1.0, 1e-320, 1e308, -1e308, math.inf,
    -math.inf, math.nan,
)
# fmt: on
# fmt: off
STRINGS = (
    "", "x", "1", "0", "true", "null", "uint8", "uint16", "float32", "float64", "int8",
    "UINT8", "uint8 ", "ping", "status", "submit", "cancel", "echo", "PING", "fast", "paper",
    "quality", "none", "luminance", "noise", "device", "cuda", "../../etc/passwd", "%s%n",
    "\x00", "é", "字", "\U0001f4a5", "a" * 64, "a" * 65, "z" * 1000,
)
# fmt: on


def forbidden_value(draw: Draw) -> Any:
    """A value the protocol's msgpack subset does not have (ext, non-str keys, bin)."""
    kind = draw.int(0, 4)
    if kind == 0:
        return msgpack.ExtType(draw.int(0, 127), draw.bytes(draw.int(0, 8)))
    if kind == 1:
        return msgpack.Timestamp(draw.int(0, 2**32 - 1), 0)
    if kind == 2:
        return {draw.choice((1, -1, 0)): "x"}
    if kind == 3:
        return {(1, 2): "tuple key"} if draw.chance(0.5) else {None: 1}
    return draw.bytes(draw.int(1, 16))  # non-empty bin


def junk(draw: Draw, depth: int = 0) -> Any:
    """Any value a hostile client might put anywhere."""
    kind = draw.int(0, 12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return draw.chance(0.5)
    if kind in (2, 3):
        return draw.choice(BOUNDARY_INTS)
    if kind == 4:
        return draw.choice(SPECIAL_FLOATS)
    if kind in (5, 6):
        return draw.choice(STRINGS)
    if kind == 7:
        return b""  # an empty bin
    if kind == 8:
        return forbidden_value(draw) if draw.chance(0.5) else draw.int(-(2**63), 2**64 - 1)
    if kind in (9, 10):
        return [junk(draw, depth + 1) for _ in range(draw.int(0, 3))]
    if kind == 11:
        return {draw.choice(STRINGS): junk(draw, depth + 1) for _ in range(draw.int(0, 3))}
    return nest(draw.int(MAX_DEPTH - 3, MAX_DEPTH + 2), draw.chance(0.5))


def nest(levels: int, leaf: bool) -> Any:
    """``levels`` nested lists (with a 1 inside, or empty)."""
    value: Any = [1] if leaf else []
    for _ in range(levels - 1):
        value = [value]
    return value


def confuse(draw: Draw, value: Any) -> Any:
    """A value of another type than ``value``, or a boundary value of the same type."""
    if isinstance(value, bool):
        return draw.choice((int(value), str(value).lower(), None, [value], 1.0))
    if isinstance(value, int):
        near = (-value, 0, -1, value + 1, value - 1, 2**63, 2**64 - 1, -(2**63))
        other = (str(value), float(value), value + 0.5, bool(value), None, [value], {"v": value})
        return draw.choice((*other, *map(_fit, near), math.nan, math.inf, b""))
    if isinstance(value, float):
        whole = int(value) if math.isfinite(value) else 0
        return draw.choice((str(value), whole, True, None, [value], math.nan, math.inf))
    if isinstance(value, str):
        return draw.choice(
            (
                value.upper(),
                value + " ",
                value[:-1],
                "",
                value * 40,
                len(value),
                None,
                [value],
                {value: value},
                value.encode() or b"",
                True,
            )
        )
    if isinstance(value, list):
        return draw.choice(
            (None, {}, "list", value[:-1], [*value, *value], [value], len(value), value * 9)
        )
    if isinstance(value, dict):
        return draw.choice((None, [], "map", list(value.values()), [value], 0))
    return junk(draw)


def _fit(value: int) -> int:
    """An int msgpack can carry: -2**63 .. 2**64 - 1."""
    return min(max(value, -(2**63)), 2**64 - 1)


# --- valid templates -----------------------------------------------------------------------------

# A few fixed style images and content sizes: the server's style cache and its per-shape caches
# see a handful of keys however long we fuzz, and `warm_up` visits them all first, so memory
# measured after the fuzzing shows what the messages left behind, not a first use
STYLE_SHAPES = ((8, 8, 3, "uint8"), (12, 10, 1, "uint16"), (6, 9, 4, "float32"))
CONTENT_SHAPES = ((12, 16), (16, 12), (16, 16), (4, 4))


@dataclass
class Request:
    header: dict[str, Any]
    blobs: list[bytes]


def image_blob(height: int, width: int, channels: int, dtype: str, seed: int = 0) -> bytes:
    """Deterministic pixels (so styles hash alike): a pattern; float32 in 0..1."""
    n = height * width * channels
    if dtype == "float32":
        return ((np.arange(n, dtype=np.float32) * 0.37 + seed) % 1).astype("<f4").tobytes()
    return pattern(n * ITEMSIZE[dtype], seed)


def add_image(
    req: Request, h: int, w: int, c: int, dtype: str, seed: int = 0, share: bool = False
) -> dict[str, Any]:
    blob = image_blob(h, w, c, dtype, seed)
    if share and blob in req.blobs:
        frame = req.blobs.index(blob) + 1
    else:
        req.blobs.append(blob)
        frame = len(req.blobs)
    return {"width": w, "height": h, "channels": c, "dtype": dtype, "frame": frame}


def valid_request(draw: Draw, ctx: Context, kind: str, rid: Any) -> Request:
    req = Request({"v": VERSION, "type": kind, "id": rid}, [])
    h = req.header
    if kind == "echo":
        side = draw.choice((1, 2, 3, 7, 16, 24))
        other = draw.choice((1, 5, 16, 33))
        if draw.chance(0.1):  # exactly at the pixel limit
            side = math.isqrt(ctx.max_pixels)
            other = ctx.max_pixels // side
        chans, dtype = draw.int(1, 4), draw.choice(tuple(ITEMSIZE))
        if side * other * chans * ITEMSIZE[dtype] > 1 << 20:
            chans, dtype = 1, "uint8"
        h["image"] = add_image(req, side, other, chans, dtype, draw.int(0, 9))
    elif kind == "cancel":
        h["job"] = draw.choice(("0123456789ab", "nope", "", "a" * 12))
    elif kind == "shutdown":
        h["drain"] = "never"  # never a valid shutdown: the fuzzing would stop the server
    elif kind == "submit":
        height, width = draw.choice(CONTENT_SHAPES)
        chans, dtype = draw.int(1, 4), draw.choice(tuple(ITEMSIZE))
        h["content"] = add_image(req, height, width, chans, dtype, draw.int(0, 9))
        styles = []
        for _ in range(draw.int(1, 2)):
            sh, sw, sc, sd = draw.choice(STYLE_SHAPES)
            styles.append(add_image(req, sh, sw, sc, sd, share=True))
        h["styles"] = styles
        if draw.chance(0.3):
            h["style_weights"] = [draw.choice((0.5, 1, 2.0)) for _ in styles]
        h["preset"] = draw.choice(PRESETS)
        h["controls"] = {
            "size": draw.choice((32, 48)),
            "style_size": 32,
            "steps": draw.int(1, 2),
        }
        if draw.chance(0.3):
            h["controls"]["strength"] = draw.choice((0, 0.5, 1))
        if draw.chance(0.2):
            h["controls"]["seed"] = draw.int(0, 2**63 - 1)
        if draw.chance(0.2):
            h["mask"] = add_image(req, height, width, 1, draw.choice(tuple(ITEMSIZE)), 3)
        if draw.chance(0.1):
            h["preview"] = draw.choice((0.2, 1, 5.5))
    return req


# cheap values for controls that are valid but would cost real time or memory: the fuzzing is
# about the protocol, not about how long an 8192 px style image takes
CONTROL_CAPS = {
    "size": 48,
    "style_size": 48,
    "style_scale": 1.0,
    "steps": 3,
    "refine_steps": 2,
    "time_budget": 0.5,
}


def make_cheap(header: dict[str, Any]) -> None:
    """Clamp valid-but-costly control values to valid cheap ones (validity is unchanged)."""
    controls = header.get("controls")
    if not isinstance(controls, dict):
        return
    for name, cap in CONTROL_CAPS.items():
        value = controls.get(name)
        if _control_ok(name, value) and value > cap:
            controls[name] = cap
    if header.get("preset") == "paper" and "size" not in controls:
        controls["size"] = 32  # paper would upscale a tiny layer to 384 px


def cheap_job(header: dict[str, Any]) -> bool:
    """Whether a submit that passes validation runs in well under a second."""
    controls = header.get("controls", {})
    try:
        settings = make_settings(header.get("preset", DEFAULT_PRESET), **(controls or {}))
    except (InputError, TypeError):
        return True  # refused when the job starts
    budget = settings.time_budget
    return (
        (settings.steps <= CONTROL_CAPS["steps"] or (budget is not None and budget <= 0.5))
        and settings.style_size * settings.style_scale <= CONTROL_CAPS["style_size"]
        and (not settings.allow_upscale or settings.size <= CONTROL_CAPS["size"])
    )


def _control_ok(name: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        make_settings(DEFAULT_PRESET, **{name: value})
    except (InputError, TypeError, ValueError, OverflowError):
        return False
    return True


# --- mutations -----------------------------------------------------------------------------------


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place inside a header (keys and indices), containers included."""
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.append((*prefix, index))
            out.extend(paths(item, (*prefix, index)))
    return out


def _parent(header: dict, path: tuple) -> Any:
    node: Any = header
    for key in path[:-1]:
        node = node[key]
    return node


def mutate_field(draw: Draw, req: Request) -> str:
    """Delete, replace or type-confuse one field anywhere in the header, or add one."""
    places = paths(req.header)
    path = draw.choice(places)
    parent, key = _parent(req.header, path), path[-1]
    op = draw.int(0, 9)
    name = ".".join(map(str, path))
    if op == 0 and isinstance(parent, dict):
        del parent[key]
        return f"del {name}"
    if op == 1:
        parent[key] = junk(draw)
        return f"junk {name}"
    if op == 2 and isinstance(parent[key], dict | list):
        container = parent[key]
        if isinstance(container, dict):
            container[draw.choice(("extra", "width", "frame", "v", "", "token"))] = junk(draw)
        else:
            container.append(junk(draw) if draw.chance(0.5) else container[-1:] or 1)
        return f"grow {name}"
    parent[key] = confuse(draw, parent[key])
    return f"confuse {name}"


def mutate_image(draw: Draw, req: Request, ctx: Context) -> str:
    """An image claim that does not fit: sizes, channels, dtype, frame, blob, pixel limit."""
    specs = [p for p in paths(req.header) if _is_image(_parent(req.header, p)[p[-1]])]
    if not specs:
        return mutate_field(draw, req)
    path = draw.choice(specs)
    spec = _parent(req.header, path)[path[-1]]
    name = ".".join(map(str, path))
    op = draw.int(0, 9)
    if op == 0:
        spec[draw.choice(("width", "height"))] = draw.choice((0, -1, -(2**63), 2**64 - 1))
        return f"size<1 {name}"
    if op == 1:  # just over the pixel limit, with or without the pixels
        side = max(1, math.isqrt(ctx.max_pixels))
        spec["width"], spec["height"] = side, ctx.max_pixels // side + 1
        spec["channels"], spec["dtype"] = 1, "uint8"
        if draw.chance(0.5) and side * spec["height"] <= 1 << 22:
            req.blobs[spec["frame"] - 1 : spec["frame"]] = [bytes(side * spec["height"])]
        return f"over-pixels {name}"
    if op == 2:
        spec["channels"] = draw.choice((0, 5, -1, 255, 2**63 - 1))
        return f"channels {name}"
    if op == 3:
        spec["dtype"] = draw.choice(("float64", "int8", "uint32", "UINT8", "", "bool", "<u1"))
        return f"dtype {name}"
    if op == 4:
        spec["frame"] = draw.choice((0, -1, len(req.blobs) + 1, 99, 2**63 - 1))
        return f"frame {name}"
    blob_index = spec["frame"] - 1
    if not 0 <= blob_index < len(req.blobs):
        return f"noop {name}"
    blob = req.blobs[blob_index]
    if op == 5:
        cut = draw.int(0, max(0, len(blob) - 1))
        req.blobs[blob_index] = blob[:cut]
        return f"short-blob {name}"
    if op == 6:
        req.blobs[blob_index] = blob + draw.bytes(draw.int(1, 9))
        return f"long-blob {name}"
    if op == 7 and spec.get("dtype") == "float32" and len(blob) >= 4:
        bad = draw.choice((math.nan, math.inf, -math.inf))
        at = draw.int(0, len(blob) // 4 - 1) * 4
        req.blobs[blob_index] = blob[:at] + struct.pack("<f", bad) + blob[at + 4 :]
        return f"nonfinite {name}"
    if op == 8:  # same number of bytes, other shape: valid or not, the oracle knows
        spec["width"], spec["height"] = spec.get("height"), spec.get("width")
        return f"transpose {name}"
    spec["channels"], spec["dtype"] = draw.choice(((1, "uint16"), (2, "uint8"), (4, "float32")))
    return f"reinterpret {name}"


def _is_image(value: Any) -> bool:
    return isinstance(value, dict) and _is_int(value.get("frame"))


def mutate_structure(draw: Draw, req: Request) -> str:
    """Whole-message problems: frames, styles, depth."""
    h = req.header
    op = draw.int(0, 5)
    if op == 0:
        req.blobs.extend(b"" for _ in range(draw.int(1, 15)))
        return "extra frames"
    if op == 1 and req.blobs:
        req.blobs.pop(draw.int(0, len(req.blobs) - 1))
        return "drop frame"
    if op == 2 and isinstance(h.get("styles"), list) and h["styles"]:
        n = draw.choice((0, 7, 8, 9, 16, 300))
        h["styles"] = [copy.deepcopy(h["styles"][0]) for _ in range(n)]
        h.pop("style_weights", None)
        return f"{n} styles"
    if op == 3:
        h[draw.choice(("deep", "controls", "extra"))] = nest(
            draw.int(MAX_DEPTH - 3, MAX_DEPTH + 1), draw.chance(0.5)
        )
        return "deep"
    if op == 4:
        h["id"] = draw.choice(("i" * 64, "i" * 65, "", 2**64 - 1, -(2**63), True, 1.0, None))
        return "id"
    h["token"] = draw.choice((None, "", "x", 0, ["x"], b""))  # a version-1 field: ignored
    return "token"


def pad_to(header: dict[str, Any], size: int) -> dict[str, Any]:
    """The header with a filler field making its msgpack exactly ``size`` bytes (or just over)."""
    padded = dict(header, pad="")
    base = len(msgpack.packb(padded))
    n = max(0, size - base)
    for _ in range(4):  # str8 / str16 / str32 headers differ in length
        padded["pad"] = "p" * n
        got = len(msgpack.packb(padded))
        if got == size or n == 0:
            break
        n = max(0, n + size - got)
    return padded


def pack_header(draw: Draw, req: Request) -> tuple[bytes, str]:
    """msgpack of the header, sometimes broken at the byte level."""
    op = draw.int(0, 19)
    if op == 0:  # oversize, or exactly at the limit
        size = draw.choice(
            (MAX_HEADER_BYTES - 1, MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1, 70_000, 300_000)
        )
        return msgpack.packb(pad_to(req.header, size)), f"header {size} bytes"
    data = msgpack.packb(req.header)
    if op == 1:
        return data[: draw.int(0, len(data) - 1)], "truncated msgpack"
    if op == 2:
        return data + draw.bytes(draw.int(1, 8)), "trailing bytes"
    if op == 3:
        at = draw.int(0, len(data) - 1)
        return data[:at] + bytes([data[at] ^ (1 << draw.int(0, 7))]) + data[at + 1 :], "bit flip"
    if op == 4:
        return draw.bytes(draw.int(0, 64)), "random bytes"
    if op == 5:
        top = draw.choice(([req.header], 1, "map", None, [1, 2, 3], b"", True))
        return msgpack.packb(top), "not a map"
    if op == 6:  # a map, array or str claiming far more than the frame holds
        claims = (b"\xdf\xff\xff\xff\xff", b"\xdd\x7f\xff\xff\xff", b"\xdb\xff\xff\xff\xff")
        return draw.choice(claims), "huge length claim"
    return data, "ok"


# --- one case ------------------------------------------------------------------------------------


@dataclass
class Case:
    label: str  # what was done to it, for figures and failure reports
    frames: list[bytes]
    expect: Expect
    rid: int  # the id of the template; mutations may have changed or removed it

    def describe(self) -> str:
        head = self.frames[0][:300] if self.frames else b""
        return f"{self.label}: {len(self.frames)} frames, header {len(self.frames[0])} B {head!r}"


def build_case(draw: Draw, ctx: Context, rid: int) -> Case:
    """One request: a valid template of a random type, then up to three mutations."""
    kind = draw.choice(("ping", "status", "echo", "echo", "submit", "submit", "submit", "cancel"))
    kind = draw.choice((kind, kind, kind, "shutdown")) if draw.chance(0.1) else kind
    req = valid_request(draw, ctx, kind, rid)
    labels = [kind]
    valid_wanted = draw.chance(0.03)  # the occasional valid message
    mutations = 0 if valid_wanted else draw.choice((1, 1, 1, 2, 3))
    for _ in range(mutations):
        op = draw.int(0, 9)
        if op < 5:
            labels.append(mutate_field(draw, req))
        elif op < 8:
            labels.append(mutate_image(draw, req, ctx))
        else:
            labels.append(mutate_structure(draw, req))
    make_cheap(req.header)
    if req.header.get("type") == "shutdown" and "drain" in req.header:
        req.header["drain"] = "never"
    header_bytes, how = pack_header(draw, req) if mutations else (msgpack.packb(req.header), "ok")
    if how != "ok":
        labels.append(how)
    frames = [header_bytes, *req.blobs]
    expect = expectation(frames, ctx)
    if "bye" in expect.allowed:  # never stop the server we are fuzzing
        return build_case(draw, ctx, rid)
    if "accepted" in expect.allowed and not cheap_job(expect.request):
        return build_case(draw, ctx, rid)  # a byte-level mutation left a costly job
    return Case(" / ".join(labels), frames, expect, rid)


# --- the oracle ----------------------------------------------------------------------------------


@dataclass
class Expect:
    """What may come back: ``allowed`` maps a reply type (valid) or an error code to the fields
    the error may name (``ANY``: not checked). A ``submit`` that is accepted must end in one of
    ``late`` (``result``, or errors found only when the job starts)."""

    allowed: dict[str, set] = field(default_factory=dict)
    late: dict[str, set] = field(default_factory=dict)
    rids: tuple = (None,)  # the ids a reply may carry
    kind: str | None = None  # the request type, when it is known
    request: dict[str, Any] | None = None  # the decoded header
    frames: list[bytes] = field(default_factory=list)

    def allow(self, code: str, *fields: Any) -> None:
        self.allowed.setdefault(code, set()).update(fields or (None,))


class _Undecodable(Exception):
    pass


def _decode(data: bytes) -> Any:
    """The header as the protocol's msgpack subset: str keys, no ext; bin is refused too."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:
        raise _Undecodable(str(exc)) from None
    return value


def _subset_problems(value: Any) -> tuple[bool, bool]:
    """(outside the subset for sure, has bin: a server may refuse it in a header)."""
    stack, outside, has_bin = [value], False, False
    while stack:
        node = stack.pop()
        if isinstance(node, msgpack.ExtType | msgpack.Timestamp):
            outside = True
        elif isinstance(node, bytes):
            has_bin = has_bin or bool(node)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    if isinstance(key, bytes):
                        has_bin = True  # a bin key: msgpack's strict mode lets an empty one in
                    else:
                        outside = True
                stack.append(item)
    return outside, has_bin


def depth(value: Any) -> int:
    """Levels of values: the header is 1, each container adds one (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def expectation(frames: list[bytes], ctx: Context) -> Expect:
    exp = Expect(frames=frames)
    header_frame = frames[0]
    frame_level = []
    if len(frames) > ctx.max_styles + 3:  # header, content, styles, mask: no more frames needed
        frame_level.append("too_large")
    if len(header_frame) > MAX_HEADER_BYTES:  # docs list it under both codes
        frame_level += ["too_large", "bad_message"]
    try:
        header = _decode(header_frame)
    except _Undecodable:
        header = None
    outside, has_bin = (False, False) if header is None else _subset_problems(header)
    if header is None or outside or not isinstance(header, dict) or depth(header) > MAX_DEPTH:
        frame_level.append("bad_message")
    if frame_level:
        for code in frame_level:
            exp.allow(code, None, ANY)
        return exp
    exp.request = header
    rid = header.get("id")
    id_ok = (_is_int(rid) or isinstance(rid, str)) and len(str(rid)) <= MAX_ID_CHARS
    if id_ok:
        exp.rids = (rid,)
    elif isinstance(rid, str | int):  # a bool or a long string: echoing it back is fair too
        exp.rids = (None, rid)
    if has_bin:  # bin is in the subset, but no header field is a bin: refusing it is fair
        exp.allow("bad_message", None)
        exp.rids = (*exp.rids, None)
    hard: list[tuple[str, Any]] = []
    soft: list[tuple[str, Any]] = []  # None given for an optional field: absent, or wrong
    late: list[tuple[str, Any]] = []
    version = header.get("v")
    if not (_is_int(version) and version == VERSION):
        hard.append(("bad_version", "v"))
    if not id_ok:
        hard.append(("bad_field", "id"))
    kind = header.get("type")
    if not isinstance(kind, str):
        hard.append(("bad_field", "type"))
    elif kind not in REQUEST_TYPES:
        hard.append(("unknown_type", "type"))
    else:
        exp.kind = kind
        _check_request(kind, header, frames, ctx, hard, soft, late)
    for code, name in hard + soft:
        exp.allow(code, name)
    if not hard:
        if kind == "cancel":
            exp.allow("unknown_job", "job", None)  # the fuzzing never names a real job
        elif kind in VALID_REPLY:
            exp.allow(VALID_REPLY[kind])
            if kind == "submit":
                for code, name in late:
                    exp.allow(code, name)  # refusing it at once is better still
                    exp.late.setdefault(code, set()).add(name)
                if not late:
                    exp.late["result"] = {None}
    return exp


def _check_request(
    kind: str,
    h: dict[str, Any],
    frames: list[bytes],
    ctx: Context,
    hard: list,
    soft: list,
    late: list,
) -> None:
    if kind == "echo":
        _check_image(h, "image", "image", frames, ctx, hard)
    elif kind == "cancel":
        if not isinstance(h.get("job"), str):
            hard.append(("bad_field", "job"))
    elif kind == "shutdown":
        # checked before drain: the fuzzer never holds the admin key of the discovery file
        hard.append(("forbidden", "admin"))
    elif kind == "submit":
        _check_submit(h, frames, ctx, hard, soft, late)


def _check_image(
    parent: dict[str, Any],
    key: str,
    name: str,
    frames: list[bytes],
    ctx: Context,
    problems: list,
    channels: tuple[int, ...] = (1, 2, 3, 4),
) -> tuple[int, int] | None:
    """Problems of one image; returns its (height, width) when they are usable."""
    spec = parent.get(key)
    if not isinstance(spec, dict):
        problems.append(("bad_field", name))
        return None
    before = len(problems)
    for part in ("width", "height", "channels", "frame"):
        if not _is_int(spec.get(part)):
            problems.append(("bad_field", f"{name}.{part}"))
    if not isinstance(spec.get("dtype"), str):
        problems.append(("bad_field", f"{name}.dtype"))
    if len(problems) > before:
        return None
    width, height, chans, frame = (spec[p] for p in ("width", "height", "channels", "frame"))
    dtype = spec["dtype"]
    if width < 1:
        problems.append(("bad_field", f"{name}.width"))
    if height < 1:
        problems.append(("bad_field", f"{name}.height"))
    if len(problems) > before:
        return None
    if width * height > ctx.max_pixels:
        problems.append(("too_large", name))
        problems.append(("too_large", f"{name}.width"))
        problems.append(("too_large", f"{name}.height"))
        problems.append(("too_large", None))
    if chans not in channels:
        problems.append(("bad_field", f"{name}.channels"))
    if dtype not in ITEMSIZE:
        problems.append(("bad_field", f"{name}.dtype"))
    if not 1 <= frame < len(frames):
        problems.append(("bad_field", f"{name}.frame"))
    if len(problems) > before:
        return None
    blob = frames[frame]
    if len(blob) != width * height * chans * ITEMSIZE[dtype]:
        problems.append(("bad_field", name))
        problems.append(("bad_field", f"{name}.frame"))
        return None
    if dtype == "float32" and not np.isfinite(np.frombuffer(blob, "<f4")).all():
        problems.append(("bad_field", name))
        return None
    return height, width


def _check_submit(
    h: dict[str, Any], frames: list[bytes], ctx: Context, hard: list, soft: list, late: list
) -> None:
    content = _check_image(h, "content", "content", frames, ctx, hard)
    if content and max(content) > MAX_ASPECT * min(content):
        late.append(("bad_field", "content"))
    styles = h.get("styles")
    n_styles = None
    if not isinstance(styles, list) or not styles:
        hard.append(("bad_field", "styles"))
    elif len(styles) > ctx.max_styles:
        hard.append(("too_large", "styles"))
    else:
        n_styles = len(styles)
        for i in range(len(styles)):
            shape = _check_image(dict(enumerate(styles)), i, f"styles.{i}", frames, ctx, hard)
            if shape and max(shape) > MAX_ASPECT * min(shape):
                late.append(("bad_field", f"styles.{i}"))
    if "style_weights" in h:
        weights = h["style_weights"]
        problem = ("bad_field", "style_weights")
        if weights is None:
            soft.append(problem)
        elif not (
            isinstance(weights, list)
            and all(_is_number(w) and math.isfinite(w) and w >= 0 for w in weights)
            and sum(weights) > 0
        ) or (n_styles is not None and len(weights) != n_styles):
            hard.append(problem)
    preset = h.get("preset", DEFAULT_PRESET)
    if "preset" in h and preset is None:
        soft.append(("bad_field", "preset"))
        preset = DEFAULT_PRESET
    elif preset not in PRESETS or not isinstance(preset, str):
        hard.append(("bad_field", "preset"))
        preset = None
    controls = h.get("controls", {})
    if "controls" in h and controls is None:
        soft.append(("bad_field", "controls"))
        controls = {}
    if not isinstance(controls, dict):
        hard.append(("bad_field", "controls"))
    else:
        unknown = [k for k in controls if k not in CONTROLS]
        for name in unknown:
            hard.append(("bad_field", f"controls.{name}"))
            hard.append(("bad_field", f"controls.{str(name)[:30]}"))
        if not unknown and preset is not None:
            late.extend(_control_problems(preset, controls))
    if h.get("mask") is not None:
        shape = _check_image(h, "mask", "mask", frames, ctx, hard, channels=(1,))
        if shape and content and shape != content:
            hard.append(("bad_field", "mask"))
    elif "mask" in h:
        soft.append(("bad_field", "mask"))
    if "preview" in h:
        preview = h["preview"]
        if preview is None:
            soft.append(("bad_field", "preview"))
        elif not (_is_number(preview) and math.isfinite(preview) and preview >= 0.2):
            hard.append(("bad_field", "preview"))


def _control_problems(preset: str, controls: dict[str, Any]) -> list[tuple[str, Any]]:
    """Control values the engine refuses (docs: "any engine control by name")."""
    problems = []
    for name, value in controls.items():
        if value is None:
            continue  # None keeps the preset's value
        try:
            make_settings(preset, **{name: value})
        except InputError:
            problems.append(("bad_field", f"controls.{name}"))
    if not problems:
        try:
            make_settings(preset, **controls)
        except InputError as exc:
            problems.append(("bad_field", f"controls.{str(exc).split(':', 1)[0]}"))
    return problems


# --- sending and checking ------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str  # the first reply's type, or the error code
    problems: list[str]
    job_final: str | None = None  # for an accepted submit: how the job ended


class Session:
    """One pyzmq DEALER to the server; each case gets its reply checked before the next."""

    def __init__(self, endpoint: str, token: str, timeout: float = 15.0) -> None:
        self.endpoint, self.token, self.timeout = endpoint, token, timeout
        self.ctx = zmq.Context.instance()
        self.sock = self._connect()
        self.sent = 0
        self.replies = 0
        self.past_ids: set[Any] = set()  # ids of the cases already answered
        self._rid = 10**6
        self.counts: dict[str, int] = {}
        self.finals: dict[str, int] = {}
        self.ids = iter(range(10**9))

    def next_rid(self) -> int:
        """A fresh id for the next case (far from the small ints the mutations write)."""
        self._rid += 1
        return self._rid

    def _connect(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        present_token(sock, self.token, None)
        sock.connect(self.endpoint)
        return sock

    def close(self) -> None:
        self.sock.close(0)

    def recv(self, timeout: float) -> list[bytes] | None:
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        self.replies += 1
        return self.sock.recv_multipart()

    def request(self, header: dict[str, Any], blobs: Sequence[bytes] = ()) -> dict[str, Any]:
        """A well-formed request (status, ping) and its reply header."""
        rid = f"ctl-{next(self.ids)}"
        self.sock.send_multipart([msgpack.packb({"v": VERSION, "id": rid, **header}), *blobs])
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            frames = self.recv(deadline - time.monotonic())
            if frames is None:
                break
            reply = msgpack.unpackb(frames[0])
            if reply.get("id") == rid:
                return reply
        raise AssertionError(f"no reply to {header.get('type')} within {self.timeout} s")

    def run_job(
        self, header: dict[str, Any], blobs: Sequence[bytes], timeout: float = 120.0
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Submit a well-formed job and wait for its final message (result, error, cancelled)."""
        rid = f"job-{next(self.ids)}"
        head = {"v": VERSION, "type": "submit", "id": rid, **header}
        self.sock.send_multipart([msgpack.packb(head), *blobs])
        deadline = time.monotonic() + timeout
        while (frames := self.recv(max(0.0, deadline - time.monotonic()))) is not None:
            reply = msgpack.unpackb(frames[0])
            if reply.get("id") == rid and reply.get("type") in ("result", "error", "cancelled"):
                return reply, frames
        raise AssertionError(f"job {rid} did not end within {timeout} s")

    def check(self, case: Case) -> Outcome:
        self.sock.send_multipart(case.frames)
        self.sent += 1
        outcome = check_reply(self, case)
        self.past_ids.add(case.rid)
        self.counts[outcome.label] = self.counts.get(outcome.label, 0) + 1
        if outcome.job_final:
            self.finals[outcome.job_final] = self.finals.get(outcome.job_final, 0) + 1
        return outcome

    def leftovers(self, wait: float = 0.5) -> list[bytes]:
        """Messages nobody asked for (a second reply to some request, say)."""
        extra = []
        while (frames := self.recv(wait)) is not None:
            extra.append(frames[0][:200])
            wait = 0.1
        return extra


def _parse(frames: list[bytes]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        header = msgpack.unpackb(frames[0], raw=False)
    except Exception as exc:
        return None, f"reply is not msgpack: {exc}"
    if not isinstance(header, dict):
        return None, f"reply header is not a map: {header!r}"
    return header, None


def _field_ok(allowed: set, name: Any) -> bool:
    return ANY in allowed or name in allowed


def check_reply(session: Session, case: Case) -> Outcome:
    exp = case.expect
    problems: list[str] = []
    deadline = time.monotonic() + session.timeout
    while True:
        frames = session.recv(max(0.0, deadline - time.monotonic()))
        if frames is None:
            problems.append(f"no reply within {session.timeout} s: {case.describe()}")
            return Outcome("no reply", problems)
        reply, problem = _parse(frames)
        if reply is None:
            return Outcome("garbled", [problem or "?"])
        rid = reply.get("id")
        stale = not any(_same(rid, r) for r in exp.rids) and rid in session.past_ids
        if not (stale and isinstance(rid, int)):
            break
        problems.append(f"a message about an earlier request, already answered: {reply!r}")
    kind = reply.get("type")
    label = str(reply.get("code") if kind == "error" else kind)
    where = f"{case.describe()} -> {reply!r}"[:1500]
    if not any(_same(reply.get("id"), rid) for rid in exp.rids):
        problems.append(f"reply id {reply.get('id')!r}, expected one of {exp.rids!r}: {where}")
    if reply.get("v") != VERSION:
        problems.append(f"reply without v 1: {where}")
    if kind == "error":
        code, name = reply.get("code"), reply.get("field")
        if set(reply) != ERROR_KEYS:
            problems.append(f"error reply keys {sorted(reply)}: {where}")
        if code not in CODES:
            problems.append(f"undocumented code {code!r}: {where}")
        if not isinstance(reply.get("message"), str) or not reply.get("message"):
            problems.append(f"error without a message: {where}")
        if name is not None and not isinstance(name, str):
            problems.append(f"field is not a string: {where}")
        if reply.get("job") is not None:
            problems.append(f"an error before any job names a job: {where}")
        if code not in exp.allowed:
            problems.append(f"code {code!r}, expected one of {_show(exp.allowed)}: {where}")
        elif not _field_ok(exp.allowed[code], name):
            problems.append(
                f"{code} names field {name!r}, expected one of "
                f"{sorted(map(str, exp.allowed[code]))}: {where}"
            )
        return Outcome(label, problems)
    if kind not in exp.allowed:
        problems.append(f"reply {kind!r}, expected one of {_show(exp.allowed)}: {where}")
        if kind == "accepted" and exp.request is not None:  # follow it: keep in step
            final, _ = follow_job(session, exp, reply, where)
            return Outcome(label, problems, final)
        return Outcome(label, problems)
    if kind == "pong":
        if reply.get("protocol") != VERSION:
            problems.append(f"pong without protocol 1: {where}")
    elif kind == "status":
        rss = reply.get("memory", {}).get("rss")
        if not _is_int(rss) or rss <= 0:
            problems.append(f"status without memory.rss: {where}")
    elif kind == "echo":
        problems.extend(_check_echo(exp, reply, frames, where))
    elif kind == "accepted":
        final, more = follow_job(session, exp, reply, where)
        problems.extend(more)
        return Outcome(label, problems, final)
    return Outcome(label, problems)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _show(allowed: dict[str, set]) -> str:
    return "; ".join(f"{k} ({', '.join(sorted(map(str, v)))})" for k, v in sorted(allowed.items()))


def _check_echo(exp: Expect, reply: dict, frames: list[bytes], where: str) -> list[str]:
    sent = exp.request["image"]
    spec = reply.get("image") or {}
    want = {k: sent[k] for k in ("width", "height", "channels", "dtype")}
    if {k: spec.get(k) for k in want} != want or spec.get("frame") != 1 or len(frames) != 2:
        return [f"echo changed the image: {where}"]
    if frames[1] != exp.frames[sent["frame"]]:
        return [f"echo changed the pixels: {where}"]
    return []


def follow_job(
    session: Session, exp: Expect, accepted: dict[str, Any], where: str
) -> tuple[str, list[str]]:
    """An accepted submit: read its events up to the final message and check that one."""
    problems = []
    job, rid = accepted.get("job"), accepted.get("id")
    if not isinstance(job, str) or not _is_int(accepted.get("position")):
        problems.append(f"accepted without job or position: {accepted!r}")
    deadline = time.monotonic() + session.timeout
    cancel_id = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 and cancel_id is None:  # too slow for a fuzz job: cancel it
            cancel_id = f"cancel-{job}"
            session.sock.send_multipart(
                [
                    msgpack.packb(
                        {
                            "v": VERSION,
                            "type": "cancel",
                            "id": cancel_id,
                            "job": job,
                        }
                    )
                ]
            )
            deadline = time.monotonic() + session.timeout
            continue
        frames = session.recv(max(left, 0))
        if frames is None and cancel_id is None:
            continue  # too slow: cancel it (above)
        if frames is None:
            problems.append(f"job {job} never ended, even when cancelled: {where}")
            return "lost", problems
        header, problem = _parse(frames)
        if header is None:
            problems.append(problem or "?")
            continue
        kind = header.get("type")
        if header.get("id") == cancel_id and cancel_id is not None:
            continue  # cancelling / unknown_job (it may have just ended)
        if header.get("id") != rid or header.get("job") != job:
            problems.append(f"message for another request while job {job} ran: {header!r}")
            continue
        if kind in ("queued", "progress", "preview"):
            if kind == "preview" and exp.request.get("preview") is None:
                problems.append(f"preview without asking: {header!r}")
            continue
        final = header.get("code") if kind == "error" else kind
        if kind == "cancelled" and cancel_id is not None:
            return "cancelled", problems
        if final not in exp.late:
            problems.append(
                f"job ended {final!r}, expected {_show(exp.late)}: {where} / {header!r}"
            )
        elif kind == "error" and not _field_ok(exp.late[final], header.get("field")):
            problems.append(f"job error names {header.get('field')!r}: {where} / {header!r}")
        elif kind == "result":
            problems.extend(_check_result(exp.request, header, frames, where))
        return str(final), problems


def _check_result(request: dict, header: dict, frames: list[bytes], where: str) -> list[str]:
    content = request["content"]
    spec = header.get("image") or {}
    want = {k: content[k] for k in ("width", "height", "channels", "dtype")}
    got = {k: spec.get(k) for k in want}
    if request.get("mask") is not None and want["channels"] in (1, 3):
        # docs: "the result's alpha is the content's alpha times the mask", so a layer without
        # alpha gets one, though the same page says the channel layout comes back unchanged
        got["channels"] = want["channels"] if got["channels"] == want["channels"] + 1 else -1
    if got != want or len(frames) != 2:
        return [f"result image {spec!r} does not match the content {want!r}: {where}"]
    item = ITEMSIZE[want["dtype"]]
    if len(frames[1]) != want["width"] * want["height"] * spec["channels"] * item:
        return [f"result blob of {len(frames[1])} bytes: {where}"]
    return []


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
        plain_hello(token),
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


def rss_of(pid: int) -> int:
    """A process's resident set size now, bytes (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) * 1024


def flood_watched(endpoint: str, pid: int, total: int, password: str | None) -> dict[str, float]:
    """`unfinished_flood` while the RSS of process ``pid`` is sampled every 20 ms: adds its
    value before and its peak during the attack."""
    before, peak = rss_of(pid), [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_of(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = unfinished_flood(endpoint, total, password)
    finally:
        done.set()
        watcher.join()
    return {**result, "rss_before": before, "rss_peak": max(peak[0], before)}


def hold_connections(endpoint: str, n: int, draw: Draw) -> list[tuple[socket.socket, bool]]:
    """``n`` connections left half-way through the handshake, where a peer without the token
    stops: a greeting cut short, a whole greeting and then nothing, a HELLO cut short. Each
    stays open until `drop_connections` or the server's handshake timeout (10 s)."""
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


def drop_connections(held: list[tuple[socket.socket, bool]]) -> None:
    for sock, reset in held:
        close_raw(sock, reset)


# --- the valid job before and after ---------------------------------------------------------------


def reference_job() -> tuple[dict[str, Any], list[bytes]]:
    """The small valid job run before and after the fuzzing: 32 x 32 RGBA, 3 steps."""
    req = Request({}, [])
    content = add_image(req, 32, 32, 4, "uint8", seed=5)
    style = add_image(req, *STYLE_SHAPES[0])
    header = {
        "content": content,
        "styles": [style],
        "preset": "fast",
        "controls": {"size": 32, "style_size": 32, "steps": 3},
    }
    return header, req.blobs


def warm_up(session: Session) -> bytes:
    """Run the reference job (returns its pixels) and a job for each preset, content size and
    style image the fuzzing's valid submits use: first uses are not what we measure."""
    header, blobs = reference_job()
    reply, frames = session.run_job(header, blobs)
    assert reply["type"] == "result", reply
    for preset in PRESETS:
        for height, width in CONTENT_SHAPES:
            for size in (32, 48) if preset == "paper" else (48,):
                req = Request({}, [])
                content = add_image(req, height, width, 3, "uint8")
                styles = [add_image(req, *shape) for shape in STYLE_SHAPES]
                warm = {
                    "content": content,
                    "styles": styles,
                    "preset": preset,
                    "controls": {"size": size, "style_size": 32, "steps": 2},
                }
                done, _ = session.run_job(warm, req.blobs)
                assert done["type"] == "result", done
    return frames[1]


def reference_result_ok(session: Session, expected: bytes) -> tuple[bool, str]:
    """Run the reference job again: the same pixels must come back (the engine is seeded)."""
    header, blobs = reference_job()
    reply, frames = session.run_job(header, blobs)
    if reply.get("type") != "result":
        return False, f"the reference job ended with {reply!r}"
    if reply["image"] != {"width": 32, "height": 32, "channels": 4, "dtype": "uint8", "frame": 1}:
        return False, f"the reference result is {reply['image']!r}"
    got = np.frombuffer(frames[1], np.uint8).reshape(32, 32, 4)
    want = np.frombuffer(expected, np.uint8).reshape(32, 32, 4)
    if not np.array_equal(
        got[..., 3], np.frombuffer(blobs[0], np.uint8).reshape(32, 32, 4)[..., 3]
    ):
        return False, "the reference result lost its alpha"
    diff = int(np.abs(got.astype(int) - want).max())
    return diff <= 1, f"max difference to the result before the fuzzing: {diff}"


# --- memory --------------------------------------------------------------------------------------


def change(before: int, after: int) -> float:
    return (after - before) / before
