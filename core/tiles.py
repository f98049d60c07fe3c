"""Full-resolution refinement in overlapping tiles: memory bounded by the tile, not the canvas.

Tiles are optimised one after another in raster order, each starting from the current full
image (so its overlap with earlier tiles already holds their result: the optimisation sees
that context) and written back with linear ramps across the overlaps (see `ramp`):
each border fades from the earlier tile's pixels into this one's, with no seam. Style
targets are the whole style image's Gram matrices (global), so every tile aims at the same
statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch


class TileBox(NamedTuple):
    """A tile of the canvas, rows first as tensors index it (the plug-ins' boxes are ``Rect``:
    x, y, width, height)."""

    top: int
    left: int
    height: int
    width: int


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: evenly spread, each overlapping the next by >= ``overlap``."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    stride = (length - tile) / (count - 1)
    return [round(i * stride) for i in range(count)]


def tile_boxes(height: int, width: int, tile: int, overlap: int) -> list[TileBox]:
    """Raster-ordered tiles of at most ``tile`` px a side covering a ``height`` x ``width`` area."""
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap {overlap} must be >= 0 and below the tile size {tile}")
    th, tw = min(tile, height), min(tile, width)
    return [
        TileBox(top, left, th, tw)
        for top in axis_starts(height, tile, overlap)
        for left in axis_starts(width, tile, overlap)
    ]


def ramp(box: TileBox, before: list[TileBox], after: list[TileBox]) -> torch.Tensor:
    """(1, 1, h, w) blend weights for writing ``box`` back over the current image.

    Across an overlap with a tile written ``before`` (top, left in raster order) the weight
    rises 0 -> 1; across one with a tile coming ``after`` (bottom, right) it falls 1 -> 0. So
    this tile fades in over its predecessor, and out into the not yet refined image, which
    leaves the next tile a seamless starting point. Measured (seam score, 1.0 = none): with no
    fade-out a hard edge stays in the next tile's start image and a few Adam steps keep it
    (1.22 at 4000x3000); ramps over half the overlap 1.063, over all of it 0.946 (800x1000).
    """
    top, left, h, w = box
    over_top = max((t + th - top for t, lft, th, tw in before if t < top and _cols(box, lft, tw)),
                   default=0)  # fmt: skip
    over_left = max((lft + tw - left for t, lft, th, tw in before if lft < left
                     and _rows(box, t, th)), default=0)  # fmt: skip
    under = max((top + h - t for t, lft, th, tw in after if t > top and _cols(box, lft, tw)),
                default=0)  # fmt: skip
    right = max((left + w - lft for t, lft, th, tw in after if lft > left and _rows(box, t, th)),
                default=0)  # fmt: skip
    wy = _edge(h, min(over_top, h // 2), min(under, h // 2))
    wx = _edge(w, min(over_left, w // 2), min(right, w // 2))
    return (wy[:, None] * wx[None, :])[None, None]


def _rows(box: TileBox, top: int, height: int) -> bool:
    return top < box[0] + box[2] and box[0] < top + height


def _cols(box: TileBox, left: int, width: int) -> bool:
    return left < box[1] + box[3] and box[1] < left + width


def _edge(length: int, rise: int, fall: int) -> torch.Tensor:
    """Ones, rising linearly over the first ``rise`` px and falling over the last ``fall``."""
    weights = torch.ones(length)
    if rise > 0:
        weights[:rise] = (torch.arange(rise, dtype=torch.float32) + 0.5) / rise
    if fall > 0:
        weights[length - fall :] *= (torch.arange(fall, 0, -1, dtype=torch.float32) - 0.5) / fall
    return weights


def refine_in_tiles(
    out: torch.Tensor,
    boxes: list[TileBox],
    optimise_tile: Callable[[torch.Tensor, TileBox, int], tuple[torch.Tensor, bool]],
) -> bool:
    """Optimise each box of ``out`` (1, C, H, W) in turn and blend it back, in place.

    ``optimise_tile(tile_pixels, box, index) -> (new_pixels, stopped)`` does the optimisation
    (the engine runs ``run_stage`` with the tile's content target). Returns whether a stop
    request ended it early; the tiles done by then are kept.
    """
    done: list[TileBox] = []
    for index, box in enumerate(boxes):
        top, left, h, w = box
        current = out[..., top : top + h, left : left + w]
        new, stopped = optimise_tile(current.clone(), box, index)
        weight = ramp(box, done, boxes[index + 1 :]).to(out)
        current.copy_(torch.lerp(current, new.to(out), weight))
        done.append(box)
        if stopped:
            return True
    return False


def seam_score(image: torch.Tensor, boxes: list[TileBox]) -> float:
    """Gradient energy across tile borders over the image's average (1.0: no visible seam).

    Measured where a seam could be: at each tile's left/top edge, the middle of its overlap
    with the previous tile, and that tile's right/bottom edge.
    """
    gray = image.float().mean(dim=-3)  # (..., H, W)
    dx = (gray[..., :, 1:] - gray[..., :, :-1]).abs()  # dx[..., x] spans columns x-1 | x
    dy = (gray[..., 1:, :] - gray[..., :-1, :]).abs()
    cols = {c for _, lft, _, _ in boxes if lft > 0 for c in _seam_lines(boxes, lft, 1)}
    rows = {r for t, _, _, _ in boxes if t > 0 for r in _seam_lines(boxes, t, 0)}
    border = [dx[..., :, c - 1].mean() for c in sorted(cols)] + [
        dy[..., r - 1, :].mean() for r in sorted(rows)
    ]
    if not border:
        return 1.0
    average = (dx.mean() + dy.mean()) / 2
    return float(torch.stack(border).mean() / average)


def _seam_lines(boxes: list[TileBox], start: int, axis: int) -> tuple[int, int, int]:
    """A tile's start, its overlap's middle and the previous tile's end along ``axis``."""
    ends = [b[axis] + b[axis + 2] for b in boxes if b[axis] < start < b[axis] + b[axis + 2]]
    end = max(ends, default=start)
    return start, (start + end) // 2, end
