"""The engine: a warm VGG16 plus the coarse-to-fine driver around ``run_stage``.

``Engine`` holds the model on its device (the server keeps one alive); ``stylize`` turns a
content ``Layer`` and style ``Layer``s into a stylised ``Layer`` of the content's size and mode.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import match_color_statistics, transfer_luminance
from .devices import pick_device
from .errors import InputError
from .images import MIN_SIDE, Layer
from .losses import Targets, blend_grams, content_target, style_grams
from .optimize import StepReport, run_stage
from .settings import Settings
from .tiles import Box, refine_in_tiles, tile_boxes
from .vgg import VGGFeatures, normalize
from .weights import resolve_weights

PREVIEW_SIDE = 256


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
    preview: torch.Tensor | None = None  # (3, h, w) in [0, 1], at most PREVIEW_SIDE, on request


@dataclass
class Result:
    layer: Layer
    steps: int
    elapsed: float
    losses: dict[str, float]  # of the returned image at the last stage's working size
    cancelled: bool
    settings: Settings


def resize_long_side(pixels: torch.Tensor, long_side: int) -> torch.Tensor:
    """(N, C, H, W) -> same aspect ratio with max(H, W) == long_side (never distorts)."""
    h, w = pixels.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size == (h, w):
        return pixels
    out = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=scale < 1)
    return out.clamp(0, 1)


def resize_to(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(pixels.shape[-2:]) == size:
        return pixels
    antialias = size[0] < pixels.shape[-2]
    out = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    return out.clamp(0, 1)


MAX_ASPECT = 64  # a thinner layer or style would need a huge working size to show VGG 32 px


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


def initial_image(content: torch.Tensor, init: str, seed: int) -> torch.Tensor:
    if init == "content":
        return content.clone()
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=gen).to(content)
    return noise if init == "noise" else 0.5 * (content + noise)


# A tile's content target, Adam state and blend cost about three quarters of one of its steps
# (measured on a 2-core CPU, 576 px tiles at a 384 px working size): without it in the tile
# stage's cost, the ETA before the tiles start ran ~15% low.
TILE_SETUP_STEPS = 0.75
ETA_MIN_STEPS = 3  # one timed step is mostly warm-up: the first ETA waits for more


class _Tracker:
    """Turns per-step reports into ``Progress``: global step, ETA from measured step times."""

    def __init__(
        self,
        start: float,
        costs: list[float],
        steps: list[int],
        deadline: float | None,
        on_progress: Callable[[Progress], None] | None,
        preview_interval: float | None,
    ) -> None:
        self.start, self.costs, self.steps, self.deadline = start, costs, steps, deadline
        self.on_progress, self.preview_interval = on_progress, preview_interval
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
            preview = resize_long_side(image, min(PREVIEW_SIDE, max(image.shape[-2:])))[0].cpu()
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


class Engine:
    def __init__(
        self,
        device: str = "auto",
        weights_path: str | None = None,
        style_cache: MutableMapping[tuple, list[torch.Tensor]] | None = None,
    ) -> None:
        self.device = pick_device(device)
        weights = resolve_weights(weights_path)
        self.weights_source = weights.source
        self.model = VGGFeatures(weights.state_dict).to(self.device)
        self.style_cache = style_cache

    def pixels(self, layer: Layer) -> torch.Tensor:
        """A layer's RGB as a (1, 3, H, W) float32 batch on this engine's device."""
        return layer.rgb.unsqueeze(0).to(self.device, torch.float32)

    def style_targets(
        self,
        style: Layer,
        long_side: int,
        match_to: torch.Tensor | None,
        fingerprint: str | None = None,
    ) -> list:
        """Gram targets of one style image at a working size (cached when a cache is given;
        ``fingerprint`` is the image's ``style_fingerprint``, computed once per job)."""
        key = None
        if self.style_cache is not None and match_to is None:
            key = (fingerprint or style_fingerprint(style), long_side, str(self.device))
            if key in self.style_cache:
                return self.style_cache[key]
        pixels = self.pixels(style)
        if match_to is not None:
            pixels = match_color_statistics(pixels[0], match_to[0]).unsqueeze(0)
        side = max(min_long_side("style", *pixels.shape[-2:]), long_side)
        grams = style_grams(self.model, normalize(resize_long_side(pixels, side)))
        if key is not None:
            self.style_cache[key] = grams
        return grams

    def stylize(
        self,
        content: Layer,
        styles: Sequence[Layer],
        settings: Settings,
        *,
        style_weights: Sequence[float] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        preview_interval: float | None = None,
    ) -> Result:
        start = time.monotonic()
        if not styles:
            raise InputError("styles: at least one style image is needed")
        weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
        if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise InputError("style_weights: one non-negative weight per style, not all zero")
        if settings.strength <= 0:  # nothing to optimise: the content itself
            return Result(content, 0, 0.0, {}, False, settings)
        if settings.device != "auto" and pick_device(settings.device) != self.device:
            raise InputError(f"device: this engine runs on {self.device}, not {settings.device}")
        torch.manual_seed(settings.seed)

        full = self.pixels(content)
        h, w = full.shape[-2:]
        floor = min_long_side("content", h, w)
        for i, style in enumerate(styles):
            min_long_side(f"styles.{i}", *style.rgb.shape[-2:])
        long_side = settings.size if settings.allow_upscale else min(settings.size, max(h, w))
        # a small or thin layer is worked on larger and its result resized back
        sides = stage_sides(max(long_side, floor), settings.scales, floor)
        steps = split_steps(settings.steps, len(sides))
        # per-stage cost ~ steps x pixels: used for time budgets and the ETA
        costs = [n * (side / sides[-1]) ** 2 for n, side in zip(steps, sides, strict=True)]
        boxes = refinement_tiles(settings, h, w, sides[-1])
        plan = list(steps)  # the tracker's stages: the scales, then the tiles as one stage
        if boxes:
            work_h, work_w = resize_long_side(full[..., :1, :, :], sides[-1]).shape[-2:]
            tile_cost = boxes[0][2] * boxes[0][3] / (work_h * work_w)
            plan.append(settings.refine_steps * len(boxes))
            costs.append((settings.refine_steps + TILE_SETUP_STEPS) * len(boxes) * tile_cost)
        deadline = start + settings.time_budget if settings.time_budget else None

        # hashed once per job, not once per stage: a style image may be many megapixels
        prints = [style_fingerprint(s) if self.style_cache is not None else None for s in styles]
        tracker = _Tracker(start, costs, plan, deadline, on_progress, preview_interval)
        image = None
        stopped = False
        result_losses: dict[str, float] = {}
        for index, (side, n) in enumerate(zip(sides, steps, strict=True)):
            work = resize_long_side(full, side)
            if image is None:
                image = initial_image(work, settings.init, settings.seed)
            else:
                image = resize_to(image, tuple(work.shape[-2:]))
            match = work if settings.preserve_colors == "histogram" else None
            style_side = round(settings.style_size * settings.style_scale * side / sides[-1])
            per_style = [
                self.style_targets(s, style_side, match, fp)
                for s, fp in zip(styles, prints, strict=True)
            ]
            targets = Targets(
                content_target(self.model, normalize(work)), blend_grams(per_style, weights)
            )
            stage_deadline = None
            if deadline is not None:
                stage_deadline = start + settings.time_budget * sum(costs[: index + 1]) / sum(costs)
                n = 10**9  # under a budget, time decides; steps do not
            tracker.begin_stage(index, (side / sides[-1]) ** 2, work.shape[-1], work.shape[-2])
            stage = run_stage(
                self.model,
                image,
                targets,
                settings,
                n,
                deadline=stage_deadline,
                on_step=tracker.step,
                should_stop=should_stop,
            )
            image, result_losses = stage.image, stage.losses
            tracker.done += stage.steps
            if stage.stopped:
                stopped = True
                break

        assert image is not None
        if boxes and not stopped:
            image, stopped = self._refine(
                full, resize_to(image, (h, w)), boxes, styles, prints, weights, match,
                settings, sides[-1], tracker, deadline, should_stop,
            )  # fmt: skip
        rgb = resize_to(image, (h, w))
        if settings.preserve_colors == "luminance":
            rgb = transfer_luminance(rgb, full)
        if settings.strength < 1:
            # Strength fades the stylisation into the content. Measured: scaling the style
            # weight instead barely changes what Adam does (its steps ignore the loss scale).
            rgb = torch.lerp(full, rgb, settings.strength)
        rgb = rgb[0].float().cpu()
        if content.grayscale:
            rgb = rgb.mean(0, keepdim=True).expand(3, -1, -1).contiguous()
        out = content.with_rgb(rgb)
        elapsed = time.monotonic() - start
        return Result(out, tracker.done, elapsed, result_losses, stopped, settings)

    def _refine(
        self,
        full: torch.Tensor,
        out: torch.Tensor,
        boxes: list[Box],
        styles: Sequence[Layer],
        prints: list[str | None],
        weights: list[float],
        match: torch.Tensor | None,
        settings: Settings,
        working_side: int,
        tracker: _Tracker,
        deadline: float | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[torch.Tensor, bool]:
        """Optimise the upsampled result ``out`` at full resolution, tile by tile, in place."""
        h, w = full.shape[-2:]
        # strokes keep their size relative to the picture: the style is seen as much larger,
        # but never beyond its own pixels (upsampling a style adds no statistics)
        scale = settings.style_size * settings.style_scale / working_side
        grams = blend_grams(
            [
                self.style_targets(
                    s, min(round(scale * max(h, w)), max(s.rgb.shape[-2:])), match, p
                )
                for s, p in zip(styles, prints, strict=True)
            ],
            weights,
        )
        first = boxes[0]
        tracker.begin_stage(len(tracker.steps) - 1, tracker.costs[-1] / tracker.steps[-1],
                            first[3], first[2])  # fmt: skip
        per_tile = settings.refine_steps
        done: list[int] = []  # steps of each finished tile

        def optimise_tile(tile: torch.Tensor, box: Box, index: int) -> tuple[torch.Tensor, bool]:
            top, left, bh, bw = box
            content = full[..., top : top + bh, left : left + bw]
            targets = Targets(content_target(self.model, normalize(content)), grams)
            offset = sum(done)  # the stage's step count so far: progress and ETA within it

            def on_step(report: StepReport) -> None:
                tracker.step(StepReport(offset + report.step, report.losses, lambda: out))

            n, tile_deadline = per_tile, None
            if deadline is not None:  # the time left, shared by the tiles left
                now = time.monotonic()
                tile_deadline = now + max(0.0, deadline - now) / (len(boxes) - index)
                n = 10**9
            stage = run_stage(
                self.model, tile, targets, settings, n,
                deadline=tile_deadline, on_step=on_step, should_stop=should_stop,
                score_end=False,
            )  # fmt: skip
            done.append(stage.steps)
            return stage.image, stage.stopped

        stopped = refine_in_tiles(out, boxes, optimise_tile)
        tracker.done += sum(done)
        return out, stopped


REFINE_MIN_RATIO = 1.25  # a layer this much larger than the working size gets refined


def refinement_tiles(settings: Settings, height: int, width: int, working_side: int) -> list[Box]:
    """The tiles of full-resolution refinement, or [] when the working size already suffices."""
    if (
        settings.refine_steps <= 0
        or max(height, width) < REFINE_MIN_RATIO * working_side
        or min(height, width) < MIN_SIDE  # a tile must be as wide as VGG needs
    ):
        return []
    return tile_boxes(height, width, settings.tile_size, settings.tile_overlap)


def style_fingerprint(layer: Layer) -> str:
    """Content hash of a style image's pixels: the cache key part that names the image."""
    digest = hashlib.blake2b(layer.rgb.numpy().tobytes(), digest_size=16)
    digest.update(str(tuple(layer.rgb.shape)).encode())
    return digest.hexdigest()
