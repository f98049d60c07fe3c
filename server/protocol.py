"""The wire protocol (docs/protocol.md): message codec, validation and limits.

Pure functions over bytes and dicts, shared by the server and the Python client. Every check
raises ``ProtocolError`` with the error code of docs/protocol.md and the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from stylebridge.core.errors import InputError
from stylebridge.core.settings import (
    DEFAULT_PRESET,
    PRESETS,
    REMOTE,
    Settings,
    make_settings,
    shown,
)
from stylebridge.wire import protocol as wire_protocol
from stylebridge.wire.protocol import (
    MAX_HEADER_BYTES,
    MAX_HEADER_DEPTH,
    VERSION,
)

# the protocol's words are the wire package's (the client core): one definition for both sides
DTYPES = {name: np.dtype(name).newbyteorder("<") for name in wire_protocol.DTYPES}
REQUEST_TYPES = ("ping", "status", "submit", "cancel", "echo", "shutdown")
# what a client may set (the device belongs to the server): declared in core/settings.py
CONTROLS = shown(REMOTE)


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 1 << 30
    max_pixels: int = 8192 * 8192
    max_styles: int = 8
    max_queue: int = 32
    # bytes the server may need: the running job's estimated peak plus the pixels every queued
    # job holds (core/memory.py); None: no ceiling
    max_memory: int | None = None

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def client_share(self) -> int:
        """Jobs one client may have waiting: a quarter of the queue (at least one place) is
        kept for the others."""
        return max(1, self.max_queue - max(1, self.max_queue // 4))


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def reply(self, request_id: Any = None, job: str | None = None) -> dict[str, Any]:
        return error_header(self.code, self.message, self.field, request_id, job)


def error_header(
    code: str,
    message: str,
    field: str | None = None,
    request_id: Any = None,
    job: str | None = None,
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "type": "error",
        "id": request_id,
        "job": job,
        "code": code,
        "message": message,
        "field": field,
    }


# --- encoding -----------------------------------------------------------------------------------


def pack(header: dict[str, Any], blobs: list[bytes | memoryview] = ()) -> list[bytes | memoryview]:
    return [msgpack.packb(header, use_bin_type=True), *blobs]


def _depth(obj: Any) -> int:
    """Levels of values, the header being 1; iterative, so no nesting can exhaust the stack."""
    deepest, stack = 0, [(obj, 1)]
    while stack and deepest <= MAX_HEADER_DEPTH:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not part of the protocol")


def unpack_header(frame: bytes) -> dict[str, Any]:
    """Decode frame 0: a msgpack map of at most MAX_HEADER_BYTES and MAX_HEADER_DEPTH."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"header is {len(frame)} bytes, over {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_bin_len=0,
            max_ext_len=0,
            ext_hook=_no_ext,  # max_ext_len=0 still lets an empty ext through
        )
    except Exception as exc:
        raise ProtocolError("bad_message", f"header is not valid msgpack: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", "header must be a msgpack map")
    if _depth(header) > MAX_HEADER_DEPTH:
        raise ProtocolError("bad_message", f"header nests deeper than {MAX_HEADER_DEPTH} levels")
    return header


# --- field checks -------------------------------------------------------------------------------


def require(
    header: dict[str, Any], name: str, kinds: type | tuple[type, ...], where: str = ""
) -> Any:
    field = f"{where}{name}"
    if name not in header:
        raise ProtocolError("bad_field", f"{field}: missing", field)
    value = header[name]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ProtocolError("bad_field", f"{field}: expected {_names(kinds)}, got bool", field)
    if not isinstance(value, kinds):
        raise ProtocolError(
            "bad_field", f"{field}: expected {_names(kinds)}, got {type(value).__name__}", field
        )
    return value


def _names(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(k.__name__ for k in kinds)


def check_envelope(header: dict[str, Any]) -> tuple[str, Any]:
    """Version, id and type of a request (its sender's token was checked in the handshake)."""
    version = header.get("v")
    if type(version) is not int or version != VERSION:  # not True, not 1.0
        raise ProtocolError(
            "bad_version", f"v: {version!r} is not supported; this server speaks {VERSION}", "v"
        )
    request_id = header.get("id")
    if not (isinstance(request_id, int | str) and not isinstance(request_id, bool)) or (
        isinstance(request_id, str) and len(request_id) > 64
    ):
        raise ProtocolError("bad_field", "id: must be an int or a string of at most 64", "id")
    kind = require(header, "type", str)
    if kind not in REQUEST_TYPES:
        raise ProtocolError(
            "unknown_type", f"type: {kind[:40]!r} is not one of {', '.join(REQUEST_TYPES)}", "type"
        )
    return kind, request_id


def decode_image(
    spec: Any,
    frames: list[bytes],
    limits: Limits,
    field: str,
    channels: tuple[int, ...] = (1, 2, 3, 4),
) -> np.ndarray:
    """An image map plus its blob -> H x W x C array, every size checked before any allocation."""
    if not isinstance(spec, dict):
        raise ProtocolError("bad_field", f"{field}: expected an image map", field)
    where = f"{field}."
    width = require(spec, "width", int, where)
    height = require(spec, "height", int, where)
    chans = require(spec, "channels", int, where)
    dtype_name = require(spec, "dtype", str, where)
    frame = require(spec, "frame", int, where)
    for name, value in (("width", width), ("height", height)):
        if value < 1:
            raise ProtocolError("bad_field", f"{where}{name}: must be >= 1", f"{where}{name}")
    if width * height > limits.max_pixels:
        raise ProtocolError(
            "too_large",
            f"{field}: {width}x{height} px is over the limit of {limits.max_pixels} pixels",
            field,
        )
    if chans not in channels:
        raise ProtocolError(
            "bad_field", f"{where}channels: {chans} is not one of {channels}", f"{where}channels"
        )
    if dtype_name not in DTYPES:
        raise ProtocolError(
            "bad_field",
            f"{where}dtype: {dtype_name[:20]!r} is not one of {', '.join(DTYPES)}",
            f"{where}dtype",
        )
    if not 1 <= frame < len(frames):
        raise ProtocolError(
            "bad_field",
            f"{where}frame: {frame} but the message has frames 1..{len(frames) - 1}",
            f"{where}frame",
        )
    dtype = DTYPES[dtype_name]
    blob = frames[frame]
    expected = width * height * chans * dtype.itemsize
    if len(blob) != expected:
        raise ProtocolError(
            "bad_field",
            f"{field}: {width}x{height}x{chans} {dtype_name} needs "
            f"{expected} bytes, frame {frame} has {len(blob)}",
            field,
        )
    array = np.frombuffer(blob, dtype=dtype).reshape(height, width, chans)
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise ProtocolError("bad_field", f"{field}: float pixels must be finite", field)
    return array


def encode_image(array: np.ndarray, frame: int) -> tuple[dict[str, Any], memoryview]:
    """H x W x C array -> (image map, blob) for frame number ``frame``."""
    if array.ndim == 2:
        array = array[:, :, None]
    name = {
        np.dtype(np.uint8): "uint8",
        np.dtype(np.uint16): "uint16",
        np.dtype(np.float32): "float32",
    }[array.dtype]
    array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
    spec = {
        "width": array.shape[1],
        "height": array.shape[0],
        "channels": array.shape[2],
        "dtype": name,
        "frame": frame,
    }
    return spec, memoryview(array).cast("B")


# --- submit -------------------------------------------------------------------------------------


@dataclass
class SubmitRequest:
    content: np.ndarray
    styles: list[np.ndarray]
    style_weights: list[float] | None
    preset: str
    controls: dict[str, Any]
    mask: np.ndarray | None
    preview: float | None


def parse_submit(
    header: dict[str, Any],
    frames: list[bytes],
    limits: Limits,
    presets: Mapping[str, Settings] = PRESETS,
) -> SubmitRequest:
    """A submit request checked field by field; its controls by name here, by value in
    `submit_settings`, both against the vocabulary of ``presets`` (core/settings.py)."""
    content = decode_image(require(header, "content", dict), frames, limits, "content")
    styles_spec = require(header, "styles", list)
    if not 1 <= len(styles_spec) <= limits.max_styles:
        code = "too_large" if styles_spec else "bad_field"
        raise ProtocolError(
            code, f"styles: {len(styles_spec)} given, 1..{limits.max_styles} allowed", "styles"
        )
    styles = [decode_image(s, frames, limits, f"styles.{i}") for i, s in enumerate(styles_spec)]
    weights = header.get("style_weights")
    if weights is not None:
        ok = (
            isinstance(weights, list)
            and len(weights) == len(styles)
            and all(
                isinstance(w, int | float)
                and not isinstance(w, bool)
                and math.isfinite(w)
                and w >= 0
                for w in weights
            )
        )
        if not ok or sum(weights) <= 0:
            raise ProtocolError(
                "bad_field",
                "style_weights: one finite weight >= 0 per style, not all zero",
                "style_weights",
            )
    preset = header.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in presets:  # a list is no dict key
        raise ProtocolError(
            "bad_field",
            f"preset: {str(preset)[:20]!r} is not one of {', '.join(presets)}",
            "preset",
        )
    known = shown(REMOTE, type(presets[preset]))
    controls = header.get("controls", {})
    if not isinstance(controls, dict):
        raise ProtocolError("bad_field", "controls: expected a map", "controls")
    for name in controls:
        if name not in known:
            raise ProtocolError(
                "bad_field",
                f"controls.{str(name)[:30]}: unknown control (this server knows "
                f"{', '.join(known)})",
                f"controls.{str(name)[:30]}",
            )
    mask = None
    if header.get("mask") is not None:
        mask = decode_image(header["mask"], frames, limits, "mask", channels=(1,))
        if mask.shape[:2] != content.shape[:2]:
            raise ProtocolError(
                "bad_field", "mask: must have the content's width and height", "mask"
            )
    preview = header.get("preview")
    if preview is not None and (
        isinstance(preview, bool)
        or not isinstance(preview, int | float)
        or not math.isfinite(preview)
        or preview < 0.2
    ):
        raise ProtocolError("bad_field", "preview: seconds between frames, >= 0.2", "preview")
    return SubmitRequest(content, styles, weights, preset, dict(controls), mask, preview)


def submit_settings(request: SubmitRequest, presets: Mapping[str, Settings] = PRESETS) -> Settings:
    """The request's settings, every value checked: a bad one is ``bad_field`` naming it."""
    try:
        return make_settings(request.preset, presets=presets, **request.controls)
    except InputError as exc:
        base = presets.get(request.preset)
        known = CONTROLS if base is None else shown(REMOTE, type(base))
        raise ProtocolError("bad_field", str(exc), control_field(exc, known)) from None


def control_field(exc: InputError, controls: tuple[str, ...] = CONTROLS) -> str | None:
    """The protocol field an engine ``InputError`` ("name: what is wrong") is about;
    ``controls``: the names a client may send (those of the presets' vocabulary)."""
    name = str(exc).split(":", 1)[0]
    if name in controls:
        return f"controls.{name}"
    return name if name == "content" or name.startswith("styles.") else None
