"""The server's side of the protocol (docs/protocol.md): the msgpack codec, the server's limits,
and what the messages of wire/messages.py become here: numpy arrays and checked settings.

The messages themselves, their fields and their checks, are the wire package's. What is left
needs numpy or the engine's vocabulary: pixels as arrays (finite floats), a submit's controls
checked by value (core/settings.py). Every check raises ``ProtocolError`` with the error code
of docs/protocol.md and the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from stylebridge.core.errors import InputError
from stylebridge.core.request import JobRequest
from stylebridge.core.settings import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_PRESET,
    PRESETS,
    REMOTE,
    Settings,
    make_settings,
    shown,
)
from stylebridge.wire import protocol as wire_protocol
from stylebridge.wire.messages import (
    CHANNELS,
    PREVIEW_SIDE,
    Bounds,
    EstimateQuery,
    ImageSpec,
    Message,
    ProtocolError,
    Submit,
    chunks,
    frames_for,
)
from stylebridge.wire.protocol import MAX_HEADER_BYTES, MAX_HEADER_DEPTH

# the protocol's pixel types as numpy reads them (little-endian)
DTYPES = {name: np.dtype(name).newbyteorder("<") for name in wire_protocol.DTYPES}
# what a client may set (the device belongs to the server): declared in core/settings.py
CONTROLS = shown(REMOTE)


@dataclass(frozen=True)
class Limits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_styles: int = 8
    max_queue: int = 32
    # bytes the server may need: the running job's estimated peak plus the pixels every queued
    # job holds (core/memory.py); None: no ceiling
    max_memory: int | None = None

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def max_frames(self) -> int:
        """Frames a request may have: its header, then a content, the styles and a mask, each
        in as many frames as an image of ``max_pixels`` at 4 channels of float32 takes."""
        largest = self.max_pixels * max(CHANNELS) * max(wire_protocol.DTYPES.values())
        return 1 + (self.max_styles + 2) * frames_for(largest)

    def client_share(self) -> int:
        """Jobs one client may have waiting: a quarter of the queue (at least one place) is
        kept for the others."""
        return max(1, self.max_queue - max(1, self.max_queue // 4))

    def bounds(self, presets: Mapping[str, Settings] = PRESETS) -> Bounds:
        """What a request may hold: these limits and the vocabulary of ``presets``."""
        return Bounds(
            self.max_pixels,
            self.max_styles,
            {name: shown(REMOTE, type(settings)) for name, settings in presets.items()},
            DEFAULT_PRESET if DEFAULT_PRESET in presets else next(iter(presets)),
        )


# --- encoding -----------------------------------------------------------------------------------


def pack(message: Message, blobs: Sequence[bytes | memoryview] = ()) -> list[bytes | memoryview]:
    return [msgpack.packb(message.to_header(), use_bin_type=True), *blobs]


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


# --- pixels -------------------------------------------------------------------------------------


def decode_image(
    spec: ImageSpec,
    frames: Sequence[Any],
    field: str,
    joined: dict[tuple[int, int], np.ndarray] | None = None,
) -> np.ndarray:
    """A checked image map's pixels as an H x W x C array: a view of its frame, or the frames
    it was sent in joined into one array of its own (`owns_pixels`). ``joined`` keeps those
    by their frames, so images sent once and named several times are joined once."""
    dtype, parts = DTYPES[spec.dtype], [frames[i] for i in spec.frames]
    if len(parts) == 1:
        array = np.frombuffer(parts[0], dtype=dtype)
    else:
        joined = {} if joined is None else joined
        key = (spec.frame, spec.nbytes)
        if key not in joined:
            joined[key] = np.concatenate([np.frombuffer(part, np.uint8) for part in parts])
        array = joined[key].view(dtype)
    array = array.reshape(spec.height, spec.width, spec.channels)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ProtocolError("bad_field", f"{field}: float pixels must be finite", field)
    return array


def owns_pixels(array: np.ndarray) -> bool:
    """Whether ``array``'s memory is numpy's own, not a message frame's (which lives only as
    long as its message)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.base is None


def encode_image(array: np.ndarray, frame: int) -> tuple[ImageSpec, list[memoryview]]:
    """H x W x C array -> (image map, blobs) sent from frame number ``frame`` on: one blob, or
    several of FRAME_BYTES (views of the array, not copies)."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype.name not in DTYPES:
        raise ValueError(f"{array.dtype} is not one of the protocol's {', '.join(DTYPES)}")
    array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
    height, width, channels = array.shape
    spec = ImageSpec(width, height, channels, array.dtype.name, frame)
    return spec, chunks(array)


# --- submit -------------------------------------------------------------------------------------


def submit_settings(
    submit: Submit | EstimateQuery, presets: Mapping[str, Settings] = PRESETS
) -> Settings:
    """The settings a submit (or an estimate) asks for, every value checked: a bad one is
    ``bad_field`` naming it."""
    try:
        return make_settings(submit.preset, presets=presets, **submit.controls)
    except InputError as exc:
        base = presets.get(submit.preset)
        known = CONTROLS if base is None else shown(REMOTE, type(base))
        raise ProtocolError("bad_field", str(exc), control_field(exc, known)) from None


def job_request(
    submit: Submit, frames: Sequence[Any], presets: Mapping[str, Settings] = PRESETS
) -> JobRequest:
    """The job a submit asks for: its pixels as arrays (views of ``frames``), then its settings,
    each value checked. Pixels first, as the server has always checked them: a submit with a
    bad image is refused for the image, whatever its controls hold (the fuzzing's oracle
    counts a control's value among the problems found after the message's own)."""
    joined: dict[tuple[int, int], np.ndarray] = {}
    content = decode_image(submit.content, frames, "content", joined)
    styles = [decode_image(s, frames, f"styles.{i}", joined) for i, s in enumerate(submit.styles)]
    mask = None if submit.mask is None else decode_image(submit.mask, frames, "mask", joined)
    settings = submit_settings(submit, presets)
    return JobRequest(
        content, styles, settings, submit.style_weights, mask, submit.preview, PREVIEW_SIDE
    )


def control_field(exc: InputError, controls: tuple[str, ...] = CONTROLS) -> str | None:
    """The protocol field an engine ``InputError`` ("name: what is wrong") is about;
    ``controls``: the names a client may send (those of the presets' vocabulary)."""
    name = str(exc).split(":", 1)[0]
    if name in controls:
        return f"controls.{name}"
    return name if name == "content" or name.startswith("styles.") else None
