"""The optimisation loop for one scale: minimise the objective from an initial image.

Plain function over tensors: no files, no threads. It reports every step through a callback,
checks a stop flag every step, honours a deadline, and keeps the best image it has evaluated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .devices import autocast_dtype
from .losses import Targets, Weights, balance_factor, objective
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


class _Closure:
    """The optimiser's closure: zero the gradient, evaluate, backpropagate. It keeps the losses
    and the image of the first point a step evaluates (the iterate the step starts from).

    With ``memo`` it answers the points a line search evaluated from memory: torch's L-BFGS
    starts every ``step()`` by evaluating again the point its previous line search ended on
    (the last one tried, or a better one before it), which would cost a network pass a step.
    """

    MEMO_POINTS = 4  # a strong-Wolfe search ends on one of its last few trials

    def __init__(
        self,
        evaluate: Callable[[], tuple[torch.Tensor, dict[str, float]]],
        state: _Parametrisation,
        memo: bool,
    ) -> None:
        self.evaluate, self.state, self.memo = evaluate, state, memo
        self.first: dict[str, object] = {}
        # (point, total, gradient, parts) of the latest evaluations, the newest last
        self.known: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]] = []

    def _recall(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict] | None:
        point = self.state.param.detach()
        return next((k for k in reversed(self.known) if torch.equal(point, k[0])), None)

    def known_losses(self) -> dict[str, float] | None:
        """The losses at the current point if it was evaluated lately."""
        known = self._recall()
        return known[3] if known is not None else None

    def __call__(self) -> torch.Tensor:
        param = self.state.param
        if (known := self._recall()) is not None:
            _, total, grad, parts = known
            param.grad = grad.clone()
        else:
            param.grad = None
            total, parts = self.evaluate()
            total.backward()
            total = total.detach()
            if self.memo:
                self.known.append((param.detach().clone(), total, param.grad.clone(), parts))
                del self.known[: -self.MEMO_POINTS]
        if not self.first:  # a line search calls again at trial points: keep the first
            self.first.update(losses=parts, image=self.state.pixels())
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
    weights = stage_weights(settings, targets)

    def evaluate() -> tuple[torch.Tensor, dict[str, float]]:
        ctx = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            total, terms = objective(
                model, state.network_input(), targets, weights, state.unclamped_pixels()
            )
        # every term read back at once: one device synchronisation an evaluation
        values = torch.stack([total.detach(), *(t.detach().float() for t in terms.values())])
        parts = dict(zip(["total", *terms], values.tolist(), strict=True))
        return total, parts

    lbfgs = settings.optimizer == "lbfgs"
    if lbfgs:
        opt: torch.optim.Optimizer = _lbfgs(state.param, settings.lr)
    else:
        opt = torch.optim.Adam([state.param], lr=settings.lr)
    closure = _Closure(evaluate, state, memo=lbfgs)

    best_image, best_losses = state.pixels(), {"total": float("inf")}
    done = 0
    stopped = False
    for step in range(1, steps + 1):
        if should_stop and should_stop():
            stopped = True
            break
        if deadline is not None and time.monotonic() >= deadline and done > 0:
            break
        closure.first = {}  # losses and image at the iterate this step starts from
        before = state.param.detach().clone() if lbfgs else None
        opt.step(closure)
        if lbfgs:
            if torch.equal(before, state.param.detach()):
                # no descent direction (the curvature pairs no longer fit the objective, or
                # the line search found no lower point): start L-BFGS afresh from here
                opt = _lbfgs(state.param, settings.lr)
        else:
            state.project()  # L-BFGS is left unboxed: a clamp breaks its curvature pairs
        done = step
        losses: dict[str, float] = closure.first["losses"]  # type: ignore[assignment]
        if losses["total"] < best_losses["total"]:
            best_losses, best_image = losses, closure.first["image"]  # type: ignore[assignment]
        if on_step:
            on_step(StepReport(step, losses, state.pixels))

    if not score_end and done:  # the losses known nearest the end point: its last step's
        return StageResult(state.pixels(), losses, done, stopped)
    if not stopped and done:
        # the last update was never scored: score it so a finished run returns its end point
        final = closure.known_losses()
        if final is None:
            with torch.no_grad():
                _, final = evaluate()
        if final["total"] < best_losses["total"]:
            best_losses, best_image = final, state.pixels()
    return StageResult(best_image, best_losses, done, stopped)


LBFGS_HISTORY = 20


def stage_weights(settings: Settings, targets: Targets) -> Weights:
    """The objective's weights: the content side (content, detail, structure) scaled by
    ``balance`` (never run at 0: the engine returns the content)."""
    content_side = balance_factor(settings.balance)
    return Weights(
        content=settings.content_weight * content_side,
        style=settings.style_weight,
        detail=settings.detail_weight * content_side if targets.detail is not None else 0.0,
        structure=settings.structure_weight * content_side
        if targets.structure is not None
        else 0.0,
        tv=settings.tv_weight,
    )


def _lbfgs(param: torch.Tensor, lr: float) -> torch.optim.LBFGS:
    """One L-BFGS iteration per ``step()`` (progress, stop and deadline are checked between),
    strong-Wolfe line search; the tolerances are off: the step count ends a stage."""
    return torch.optim.LBFGS(
        [param],
        lr=lr,
        max_iter=1,
        history_size=LBFGS_HISTORY,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
