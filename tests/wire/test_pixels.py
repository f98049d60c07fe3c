"""The hosts' rectangles (named fields in the hosts' order, kept apart from the engine's tiles)
and the float16 conversions of Krita's F16 documents, with numpy and without."""

import math
import struct

import pytest

from stylebridge.core.tiles import TileBox
from stylebridge.wire import pixels
from stylebridge.wire.pixels import Rect, expand_box, intersect_box


def test_rect_fields_are_the_hosts_order_and_differ_from_the_engines_tiles():
    assert Rect._fields == ("x", "y", "width", "height")
    assert TileBox._fields[:2] == ("top", "left")


def test_intersect_and_expand_return_named_rects_clipped_to_the_area():
    overlap = intersect_box(Rect(10, 20, 50, 40), Rect(0, 0, 40, 100))
    assert overlap == Rect(x=10, y=20, width=30, height=40)
    grown = expand_box(overlap, 16, 40, 100)
    assert (grown.x, grown.y, grown.width, grown.height) == (0, 4, 40, 72)
    assert intersect_box(Rect(0, 0, 5, 5), Rect(5, 5, 5, 5)) is None


@pytest.fixture(params=["numpy", "stdlib"])
def halves(request, monkeypatch):
    """The half conversions as a host runs them: with numpy, and without (Krita's Linux Python)."""
    if request.param == "stdlib":
        monkeypatch.setattr(pixels, "_np", None)
    return pixels


def test_halves_round_trip_every_float16_value_and_keep_values_above_one(halves):
    every = struct.pack("<65536H", *range(65536))
    finite = [v for v in struct.unpack("<65536e", every) if math.isfinite(v)]
    as_float = halves.half_to_float(struct.pack(f"<{len(finite)}e", *finite))
    assert struct.unpack(f"<{len(finite)}f", as_float) == tuple(finite)
    assert halves.float_to_half(as_float) == struct.pack(f"<{len(finite)}e", *finite)
    hdr = struct.pack("<3f", 4.5, -0.25, 1.0)  # HDR highlights and out-of-gamut values stay
    assert struct.unpack("<3e", halves.float_to_half(hdr)) == (4.5, -0.25, 1.0)


def test_floats_beyond_float16_become_its_largest_finite_value(halves):
    out = halves.float_to_half(struct.pack("<3f", 1e6, -1e6, 0.5))
    assert struct.unpack("<3e", out) == (pixels.HALF_MAX, -pixels.HALF_MAX, 0.5)
