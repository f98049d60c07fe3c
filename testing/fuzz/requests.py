"""Hostile requests: a valid template of each request type, mutated one to three times (a
field deleted or of another type, an image claim that does not fit its blob, msgpack cut or
garbled, a header too large or too deep, too many frames or styles): `build_case`.
"""

from __future__ import annotations

import copy
import math
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from stylebridge.core.errors import InputError
from stylebridge.core.settings import make_settings

from .draws import Draw, confuse, junk, nest, pattern
from .oracle import Expect, expectation, is_int
from .words import DEFAULT_PRESET, ITEMSIZE, MAX_DEPTH, MAX_HEADER_BYTES, PRESETS, VERSION, Context

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
    elif kind == "estimate":
        h["height"], h["width"] = draw.choice((*CONTENT_SHAPES, (3000, 4000), (10, 2000)))
        h["preset"] = draw.choice(PRESETS)
        h["controls"] = {"size": draw.choice((32, 48, 5000))}
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
    return isinstance(value, dict) and is_int(value.get("frame"))


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
    kind = draw.choice(
        ("ping", "status", "echo", "echo", "submit", "submit", "submit", "cancel", "estimate")
    )
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
