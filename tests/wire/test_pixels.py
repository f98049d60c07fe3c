"""The hosts' rectangles: named fields in the hosts' order, kept apart from the engine's tiles."""

from stylebridge.core.tiles import TileBox
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
