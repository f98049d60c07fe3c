"""How much memory a job will need, before it runs: the server refuses what would pass its
ceiling (``serve --max-memory``) instead of dying half way through someone's canvas.

A model fitted to peak RSS measured on the CPU (docs/benchmarks.md): a fixed base (torch, the
model, the server), a cost per working pixel (activations and gradients of VGG16 up to relu5_3,
at the optimised size or the tile size), and a cost per canvas pixel (the layer, the result
and their buffers at full size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .plan import min_long_side, plan_job
from .settings import Settings

BASE_BYTES = 800 << 20  # an idle server with its model loaded: 0.77 GiB measured
BYTES_PER_WORK_PIXEL = {"bf16": 1700, "fp32": 2700}  # 1.15 / 1.83 GB at 0.70 Mpx, measured
BYTES_PER_CANVAS_PIXEL = 90  # 4000x3000 tiled: 1.05 GB beyond the model and one tile


def _pixels(long_side: int, height: int, width: int) -> int:
    return math.ceil(long_side * long_side * min(height, width) / max(height, width))


def estimate_peak_bytes(
    settings: Settings, height: int, width: int, styles: Sequence[tuple[int, int]] = ()
) -> int:
    """Peak bytes of one job on ``height`` x ``width`` px with styles of these (h, w)."""
    plan = plan_job(settings, height, width)
    work = _pixels(plan.working_side, height, width)
    for stage in plan.upper:  # one tile at a time
        work = max(work, max(t.height * t.width for t in stage.tiles))
    style_side = round(settings.style_size * settings.style_scale)
    for h, w in styles:
        # every stage resizes each style to style_side, up as well as down (Engine.stylize):
        # an 8 px style with style_size 1536 costs what a 1536 px one does
        side = max(style_side, min_long_side("style", h, w))
        work = max(work, _pixels(side, h, w))
    canvas = height * width + sum(h * w for h, w in styles)
    return (
        BASE_BYTES
        + BYTES_PER_WORK_PIXEL[settings.precision] * work
        + (BYTES_PER_CANVAS_PIXEL * canvas)
    )
