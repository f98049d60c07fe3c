"""Progress of a job: which step of how many, the ETA from measured step times, preview frames.

The engine reports every optimiser step through a `ProgressTracker`, which turns it into a
`Progress` for the caller (the CLI's bar, the server's progress and preview messages).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .optimize import StepReport
from .resize import resize_long_side

ETA_MIN_STEPS = 3  # one timed step is mostly warm-up: the first ETA waits for more


@dataclass
class Progress:
    step: int  # steps done over all stages
    total_steps: int  # planned steps over all stages (an estimate under a time budget)
    stage: int  # 1-based
    stages: int
    width: int  # working size of this stage
    height: int
    losses: dict[str, float]
    elapsed: float  # seconds since the job started
    eta: float | None  # seconds left, None until ETA_MIN_STEPS steps have been timed
    preview: np.ndarray | None = None  # h x w x 3 uint8, at most preview_side, on request


def preview_frame(image: torch.Tensor) -> np.ndarray:
    """(3, h, w) in [0, 1] as the 8-bit h x w x 3 frame a client shows."""
    frame = (image.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(frame.cpu().numpy())


class ProgressTracker:
    """Turns per-step reports into ``Progress``: global step, ETA from measured step times."""

    def __init__(
        self,
        start: float,
        costs: list[float],
        steps: list[int],
        deadline: float | None,
        on_progress: Callable[[Progress], None] | None,
        preview_interval: float | None,
        preview_side: int | None = None,
    ) -> None:
        self.start, self.costs, self.steps, self.deadline = start, costs, steps, deadline
        self.on_progress, self.preview_interval = on_progress, preview_interval
        self.preview_side = preview_side
        self.done = 0  # steps finished in earlier stages
        self.unit_seconds: list[float] = []  # step time / stage cost, measured
        self.last_preview = -float("inf")

    def begin_stage(self, index: int, cost: float, width: int, height: int) -> None:
        self.index, self.cost, self.width, self.height = index, cost, width, height
        self.tick = time.monotonic()

    def step(self, report: StepReport) -> None:
        now = time.monotonic()
        self.unit_seconds.append((now - self.tick) / self.cost)
        self.tick = now
        if self.on_progress is None:
            return
        # Mean of the recent steps less the slowest: a tile's first step carries its content
        # target (a median leaves that out and ran ~15% low), while the first step at a new
        # shape pays once for kernel selection (counted, it put the first ETA ~45% high).
        recent = self.unit_seconds[-20:]
        per_unit = (sum(recent) - max(recent)) / (len(recent) - 1) if len(recent) > 1 else recent[0]
        if self.deadline is not None:
            eta = max(0.0, self.deadline - now)
            total = self.done + report.step + round(eta / (per_unit * self.cost))
        elif len(self.unit_seconds) < ETA_MIN_STEPS:
            eta, total = None, sum(self.steps)
        else:
            left = (
                sum(self.costs[self.index + 1 :])
                + (self.steps[self.index] - report.step) * self.cost
            )
            eta = max(0.0, left * per_unit)
            total = sum(self.steps)
        preview = None
        if self.preview_interval is not None and now - self.last_preview >= self.preview_interval:
            self.last_preview = now
            image = report.image()
            side = max(image.shape[-2:])
            if self.preview_side is not None:
                side = min(self.preview_side, side)
            preview = preview_frame(resize_long_side(image, side)[0])
        self.on_progress(
            Progress(
                step=self.done + report.step,
                total_steps=total,
                stage=self.index + 1,
                stages=len(self.steps),
                width=self.width,
                height=self.height,
                losses=report.losses,
                elapsed=now - self.start,
                eta=eta,
                preview=preview,
            )
        )
