"""Host-neutral pixel helpers the plug-ins share: selection boxes, crops, channel order, halves.

Standard library only and fast enough for 8000 px layers: every loop here runs inside C
(slice assignment, ``struct`` with a repeat count), never a Python loop over pixels.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .protocol import Image


class Rect(NamedTuple):
    """A host rectangle, in the hosts' own order (x, y, width, height); the engine's tiles use
    ``core.tiles.TileBox`` (top, left, height, width) instead, a different name on purpose."""

    x: int
    y: int
    width: int
    height: int


# Context kept around a selection: style statistics and content structure need some
# surroundings, and the optimisation then works on the box, not the whole layer.
MIN_MARGIN = 32
MARGIN_FRACTION = 0.125
_HALF_CHUNK = 1 << 20  # halves converted per struct call (bounds the temporary tuple)


def context_margin(width: int, height: int) -> int:
    """Margin in pixels around a selection box of this size."""
    return max(MIN_MARGIN, int(MARGIN_FRACTION * max(width, height)))


def expand_box(box: Rect, margin: int, width: int, height: int) -> Rect:
    """``box`` grown by ``margin`` on every side and clipped to a ``width`` x ``height`` area."""
    x, y, w, h = box
    left, top = max(0, x - margin), max(0, y - margin)
    right, bottom = min(width, x + w + margin), min(height, y + h + margin)
    if right <= left or bottom <= top:
        raise ValueError(f"box {box} does not overlap the {width}x{height} area")
    return Rect(left, top, right - left, bottom - top)


def intersect_box(a: Rect, b: Rect) -> Rect | None:
    """The overlap of two boxes, or None when they do not overlap."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if right <= left or bottom <= top:
        return None
    return Rect(left, top, right - left, bottom - top)


def swap_red_blue(data: bytes, itemsize: int) -> bytes:
    """BGRA <-> RGBA for 4-channel interleaved samples of ``itemsize`` bytes."""
    out = bytearray(data)
    pixel = 4 * itemsize
    for byte in range(itemsize):
        out[byte::pixel] = data[2 * itemsize + byte :: pixel]
        out[2 * itemsize + byte :: pixel] = data[byte::pixel]
    return bytes(out)


def half_to_float(data: bytes) -> bytes:
    """Little-endian float16 samples to float32 (Krita's F16 documents)."""
    count = len(data) // 2
    parts = []
    for start in range(0, count, _HALF_CHUNK):
        n = min(_HALF_CHUNK, count - start)
        values = struct.unpack_from(f"<{n}e", data, 2 * start)
        parts.append(struct.pack(f"<{n}f", *values))
    return b"".join(parts)


def float_to_half(data: bytes) -> bytes:
    """Little-endian float32 samples to float16, clamped to 0..1 first (no inf from overflow)."""
    count = len(data) // 4
    parts = []
    for start in range(0, count, _HALF_CHUNK):
        n = min(_HALF_CHUNK, count - start)
        values = struct.unpack_from(f"<{n}f", data, 4 * start)
        parts.append(struct.pack(f"<{n}e", *(min(1.0, max(0.0, v)) for v in values)))
    return b"".join(parts)


def is_blank(image: Image) -> bool:
    """True when every byte is zero (an empty selection, a transparent layer)."""
    return image.data.count(0) == len(image.data)
