"""Host-neutral pixel helpers the plug-ins share: selection boxes, crops, channel order, halves.

Standard library only and fast enough for 8000 px layers: every loop here runs inside C
(slice assignment, ``struct`` with a repeat count), never a Python loop over pixels. The one
optional import is numpy, for halves (10-50x faster where the host's Python has it; the Debian
Pythons Krita and GIMP run in have none).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .protocol import Image

try:
    import numpy as _np
except ImportError:
    _np = None


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
HALF_MAX = 65504.0  # the largest finite float16


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
    """Little-endian float16 samples to float32 (Krita's F16 documents), every value kept."""
    if _np is not None:
        return _np.frombuffer(data, "<f2").astype("<f4").tobytes()
    return _repack(data, "e", "f")


def float_to_half(data: bytes) -> bytes:
    """Little-endian float32 samples to float16. Values beyond float16's range become
    +-HALF_MAX (not inf); everything else, above 1.0 and below 0 included, is kept."""
    if _np is not None:
        values = _np.frombuffer(data, "<f4")
        return _np.clip(values, -HALF_MAX, HALF_MAX).astype("<f2").tobytes()
    try:
        return _repack(data, "f", "e")
    except OverflowError:  # rare (float16 holds 65504): only then clamp, sample by sample
        count = len(data) // 4
        values = struct.unpack(f"<{count}f", data)
        return struct.pack(f"<{count}e", *(min(HALF_MAX, max(-HALF_MAX, v)) for v in values))


def _repack(data: bytes, source: str, target: str) -> bytes:
    """Samples of struct code ``source`` re-encoded as ``target``, a chunk per struct call."""
    size = struct.calcsize(source)
    count = len(data) // size
    parts = []
    for start in range(0, count, _HALF_CHUNK):
        n = min(_HALF_CHUNK, count - start)
        values = struct.unpack_from(f"<{n}{source}", data, size * start)
        parts.append(struct.pack(f"<{n}{target}", *values))
    return b"".join(parts)


def is_blank(image: Image) -> bool:
    """True when every byte is zero (an empty selection, a transparent layer)."""
    return image.data.count(0) == len(image.data)
