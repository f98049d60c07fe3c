"""The optimisation loop for one scale: minimise the objective from an initial image.

Plain function over tensors: no files, no threads. It reports every step through a callback,
checks a stop flag every step, honours a deadline, and keeps the best image it has evaluated.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .devices import autocast_dtype
from .losses import Targets, balance_factor, objective, structure_loss, tv_loss
from .settings import Settings
from .vgg import VGGFeatures, denormalize, normalize


@dataclass
class StepReport:
    step: int  # 1-based within this stage
    losses: dict[str, float]  # content, style, structure, tv (unweighted); total (weighted)
    image: Callable[[], torch.Tensor]  # the current image in [0, 1], computed only if asked


@dataclass
class StageResult:
    image: torch.Tensor  # best image evaluated, (1, 3, H, W) in [0, 1]
    losses: dict[str, float]
    steps: int
    stopped: bool  # the stop callback asked for it


class _Parametrisation:
    """What the optimiser moves: the normalised tensor (paper) or pixels boxed in [0, 1]."""

    def __init__(self, pixels: torch.Tensor, space: str) -> None:
        self.space = space
        start = normalize(pixels) if space == "normalized" else pixels
        self.param = start.detach().clone().requires_grad_(True)

    def network_input(self) -> torch.Tensor:
        return self.param if self.space == "normalized" else normalize(self.param)

    def unclamped_pixels(self) -> torch.Tensor:
        """The image in pixel units, differentiable (the pixel-space terms are taken on it)."""
        return denormalize(self.param) if self.space == "normalized" else self.param

    def pixels(self) -> torch.Tensor:
        return self.unclamped_pixels().detach().clamp(0, 1)

    @torch.no_grad()
    def project(self) -> None:
        if self.space == "pixel":
            self.param.clamp_(0, 1)


def _closure(
    opt: torch.optim.Optimizer,
    evaluate: Callable[[], tuple[torch.Tensor, dict[str, float]]],
    state: _Parametrisation,
    first: dict[str, object],
) -> torch.Tensor:
    opt.zero_grad(set_to_none=True)
    total, parts = evaluate()
    total.backward()
    if not first:  # L-BFGS line searches call again at trial points: keep the first
        first.update(losses=parts, image=state.pixels())
    return total


def run_stage(
    model: VGGFeatures,
    init: torch.Tensor,
    targets: Targets,
    settings: Settings,
    steps: int,
    *,
    deadline: float | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    score_end: bool = True,
) -> StageResult:
    """Run up to ``steps`` optimiser steps (or until ``deadline``, a ``time.monotonic`` value).

    ``score_end=False`` returns the end point unscored instead of the best image evaluated: a
    tile takes a few small steps from a good start, and the scoring pass costs 0.4 s a tile.
    """
    state = _Parametrisation(init, settings.space)
    device = init.device
    amp = autocast_dtype(device, settings.precision)
    content_side = balance_factor(settings.balance)  # the engine never runs at balance 0
    cw, sw, tw = settings.content_weight * content_side, settings.style_weight, settings.tv_weight
    hold = settings.structure_weight * content_side if targets.structure is not None else 0.0

    def evaluate() -> tuple[torch.Tensor, dict[str, float]]:
        ctx = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            total, parts = objective(model, state.network_input(), targets, cw, sw)
        if hold or tw:  # the pixel-space terms, in float32
            pixels = state.unclamped_pixels()
            if hold:
                structure = structure_loss(pixels, targets.structure, targets.pool)
                total = total + hold * structure
                parts["structure"] = structure.item()
            if tw:
                tv = tv_loss(pixels)
                total = total + tw * tv
                parts["tv"] = tv.item()
        parts["total"] = total.item()
        return total, parts

    if settings.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([state.param], lr=settings.lr)
    else:
        opt = torch.optim.LBFGS(
            [state.param],
            lr=settings.lr,
            max_iter=1,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

    best_image, best_losses = state.pixels(), {"total": float("inf")}
    done = 0
    stopped = False
    for step in range(1, steps + 1):
        if should_stop and should_stop():
            stopped = True
            break
        if deadline is not None and time.monotonic() >= deadline and done > 0:
            break
        first: dict[str, object] = {}  # losses and image at the iterate this step starts from
        opt.step(functools.partial(_closure, opt, evaluate, state, first))
        state.project()
        done = step
        losses: dict[str, float] = first["losses"]  # type: ignore[assignment]
        if losses["total"] < best_losses["total"]:
            best_losses, best_image = losses, first["image"]  # type: ignore[assignment]
        if on_step:
            on_step(StepReport(step, losses, state.pixels))

    if not score_end and done:  # the losses known nearest the end point: its last step's
        return StageResult(state.pixels(), losses, done, stopped)
    if not stopped and done:
        # the last update was never scored: score it so a finished run returns its end point
        with torch.no_grad():
            _, final = evaluate()
        if final["total"] < best_losses["total"]:
            best_losses, best_image = final, state.pixels()
    return StageResult(best_image, best_losses, done, stopped)
