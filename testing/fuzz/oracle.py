"""The replies docs/protocol.md allows for a request (`expectation`), written from the document,
not from server/protocol.py. Where several things are wrong at once an error about any of them
is accepted (the order of checks is the server's business).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from stylebridge.core.errors import InputError
from stylebridge.core.settings import make_settings

from .words import (
    ANY,
    CONTROLS,
    DEFAULT_PRESET,
    ITEMSIZE,
    MAX_ASPECT,
    MAX_DEPTH,
    MAX_HEADER_BYTES,
    MAX_ID_CHARS,
    PRESETS,
    REQUEST_TYPES,
    VALID_REPLY,
    VERSION,
    Context,
    depth,
)

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


def is_int(value: Any) -> bool:
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
    id_ok = (is_int(rid) or isinstance(rid, str)) and len(str(rid)) <= MAX_ID_CHARS
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
    if not (is_int(version) and version == VERSION):
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
    elif kind == "estimate":
        _check_estimate(h, ctx, hard, soft)


def _check_estimate(h: dict[str, Any], ctx: Context, hard: list, soft: list) -> None:
    """A layer's size, a preset and controls: answered at once, so every problem is found
    before the answer (none is late)."""
    sides = {}
    for name in ("width", "height"):
        side = h.get(name)
        if not is_int(side) or side < 1:
            hard.append(("bad_field", name))
        else:
            sides[name] = side
    if len(sides) == 2 and sides["width"] * sides["height"] > ctx.max_pixels:
        hard.append(("too_large", "content"))
    late: list = []
    _check_preset_and_controls(h, hard, soft, late)
    hard.extend(late)  # the values are checked before the answer
    if len(sides) == 2 and max(sides.values()) > MAX_ASPECT * min(sides.values()):
        hard.append(("bad_field", "content"))


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
        if not is_int(spec.get(part)):
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
    _check_preset_and_controls(h, hard, soft, late)
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


def _check_preset_and_controls(h: dict[str, Any], hard: list, soft: list, late: list) -> None:
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
