"""What a job will do, worked out before it starts: pure arithmetic, no tensors.

`plan_job` turns the settings and the content's size into the stages (the working long side
and the steps of each coarse-to-fine scale), their costs (for time budgets and the ETA) and the
full-resolution refinement tiles. The engine runs the plan; the server's memory model and the
tests read it without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError
from .images import MIN_SIDE
from .settings import Settings
from .tiles import TileBox, tile_boxes

MAX_ASPECT = 64  # a thinner layer or style would need a huge working size to show VGG 32 px
REFINE_MIN_RATIO = 1.25  # a layer this much larger than the working size gets refined
# A tile's content target, Adam state and blend cost about three quarters of one of its steps
# (measured on a 2-core CPU, 576 px tiles at a 384 px working size): without it in the tile
# stage's cost, the ETA before the tiles start ran ~15% low.
TILE_SETUP_STEPS = 0.75


def scaled_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) with the same aspect ratio and max(height, width) == ``long_side``."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def min_long_side(name: str, height: int, width: int) -> int:
    """The long side at which the short side is MIN_SIDE: VGG's pooling needs that much."""
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise InputError(
            f"{name}: {width}x{height} px is too thin to stylise (at most {MAX_ASPECT}:1)"
        )
    return math.ceil(MIN_SIDE * max(height, width) / min(height, width))


def stage_sides(long_side: int, scales: Sequence[float], floor: int = MIN_SIDE) -> list[int]:
    """Working long side of each coarse-to-fine stage, skipping ones VGG cannot see well
    (``floor``: the least long side at which the short side is still MIN_SIDE)."""
    sides = [round(long_side * s) for s in scales]
    return [s for s in sides[:-1] if s >= max(2 * MIN_SIDE, floor)] + [sides[-1]]


def split_steps(total: int, stages: int) -> list[int]:
    base, extra = divmod(total, stages)
    return [base + (1 if i >= stages - extra else 0) for i in range(stages)]


def refinement_tiles(
    settings: Settings, height: int, width: int, working_side: int
) -> list[TileBox]:
    """The tiles of full-resolution refinement, or [] when the working size already suffices."""
    if (
        settings.refine_steps <= 0
        or max(height, width) < REFINE_MIN_RATIO * working_side
        or min(height, width) < MIN_SIDE  # a tile must be as wide as VGG needs
    ):
        return []
    return tile_boxes(height, width, settings.tile_size, settings.tile_overlap)


@dataclass(frozen=True)
class JobPlan:
    sides: list[int]  # the working long side of each coarse-to-fine stage, the last the finest
    steps: list[int]  # optimiser steps of each stage
    costs: list[float]  # steps x pixels of each stage (relative to a finest-stage step), and
    # of the tiles as one more stage when there are any: the shares of a time budget, the ETA
    tiles: list[TileBox]  # full-resolution refinement tiles, [] when none
    tile_steps: int  # optimiser steps per tile

    @property
    def working_side(self) -> int:
        return self.sides[-1]

    @property
    def stage_steps(self) -> list[int]:
        """Steps of every stage progress reports count: the scales, then the tiles as one."""
        return self.steps + ([self.tile_steps * len(self.tiles)] if self.tiles else [])

    def stage_cost(self, side: int) -> float:
        """The cost of one step at ``side`` relative to one at the working size."""
        return (side / self.working_side) ** 2


def plan_job(settings: Settings, height: int, width: int) -> JobPlan:
    """The plan for content of ``height`` x ``width`` px (a small or thin layer is worked on
    larger and its result resized back)."""
    floor = min_long_side("content", height, width)
    long_side = settings.size if settings.allow_upscale else min(settings.size, max(height, width))
    sides = stage_sides(max(long_side, floor), settings.scales, floor)
    steps = split_steps(settings.steps, len(sides))
    costs = [n * (side / sides[-1]) ** 2 for n, side in zip(steps, sides, strict=True)]
    tiles = refinement_tiles(settings, height, width, sides[-1])
    if tiles:
        work_h, work_w = scaled_size(height, width, sides[-1])
        tile_cost = tiles[0].height * tiles[0].width / (work_h * work_w)
        costs.append((settings.refine_steps + TILE_SETUP_STEPS) * len(tiles) * tile_cost)
    return JobPlan(sides, steps, costs, tiles, settings.refine_steps)
