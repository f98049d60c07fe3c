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
# A tile's hold target, Adam state and blend cost about three quarters of one of its steps
# (measured on a 2-core CPU with 576 px tiles; without it the ETA before the tiles ran ~15%
# low). With it the ETA at 50-75% of a 4000x3000 job ended within 12% of the real end
# (docs/benchmarks.md, "Large canvas", 2026-12-07).
TILE_SETUP_STEPS = 0.75
# Layers above the working size climb to their own size in stages at most UPSCALE_RATIO apart;
# the finest takes refine_steps in each tile, each rung below UPPER_STEP_GROWTH times more (a
# rung below costs a third as much). An upper stage's step runs the network up to conv3_1 only
# (core/engine.py, TEXTURE_LAYERS): TEXTURE_STEP_COST of a working-size step's work per pixel.
UPSCALE_RATIO = 2.5
UPPER_STEP_GROWTH = 1.5
TEXTURE_STEP_COST = 0.37


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


def upper_sides(long_side: int, working_side: int) -> list[int]:
    """The long sides of the stages above the working size, up to the layer's own: a geometric
    ladder whose rungs are at most UPSCALE_RATIO apart, the last the layer's long side."""
    if long_side < REFINE_MIN_RATIO * working_side:
        return []
    count = math.ceil(math.log(long_side / working_side) / math.log(UPSCALE_RATIO) - 1e-9)
    ratio = (long_side / working_side) ** (1 / count)
    return [round(working_side * ratio**k) for k in range(1, count)] + [long_side]


@dataclass(frozen=True)
class UpperStage:
    """A stage above the working size: the picture at ``side`` px (long side), optimised for
    ``steps`` in each of its ``tiles`` (one tile when it fits tile_size)."""

    side: int
    height: int
    width: int
    steps: int
    tiles: list[TileBox]


def upper_stages(
    settings: Settings, height: int, width: int, working_side: int
) -> list[UpperStage]:
    """The stages that carry the working result up to a layer well above the working size, or
    [] when the working size already suffices (or the layer is too thin to tile)."""
    if settings.refine_steps <= 0 or min(height, width) < MIN_SIDE:
        return []
    sides = upper_sides(max(height, width), working_side)
    stages = []
    for k, side in enumerate(sides):
        h, w = (height, width) if side == sides[-1] else scaled_size(height, width, side)
        steps = upper_steps(settings.refine_steps, len(sides) - 1 - k)
        tiles = tile_boxes(h, w, settings.tile_size, settings.tile_overlap)
        stages.append(UpperStage(side, h, w, steps, tiles))
    return stages


def upper_steps(refine_steps: int, octaves_below: int) -> int:
    """Steps at a stage ``octaves_below`` rungs under the layer's own size: the finest stage
    takes ``refine_steps``, each rung below UPPER_STEP_GROWTH times more (it costs ~4x less)."""
    return round(refine_steps * UPPER_STEP_GROWTH**octaves_below)


@dataclass(frozen=True)
class JobPlan:
    sides: list[int]  # the working long side of each coarse-to-fine stage, the last the finest
    steps: list[int]  # optimiser steps of each stage
    costs: list[float]  # steps x pixels of each stage (relative to a finest-stage step), then
    # of each upper stage: the shares of a time budget, the ETA
    upper: list[UpperStage]  # the stages above the working size, [] when none

    @property
    def working_side(self) -> int:
        return self.sides[-1]

    @property
    def stage_steps(self) -> list[int]:
        """Steps of every stage progress reports count: the scales, then each upper stage (its
        steps in every tile)."""
        return self.steps + [u.steps * len(u.tiles) for u in self.upper]

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
    upper = upper_stages(settings, height, width, sides[-1])
    work_h, work_w = scaled_size(height, width, sides[-1])
    for stage in upper:
        tile_cost = sum(t.height * t.width for t in stage.tiles) / (work_h * work_w)
        costs.append((stage.steps * TEXTURE_STEP_COST + TILE_SETUP_STEPS) * tile_cost)
    return JobPlan(sides, steps, costs, upper)
