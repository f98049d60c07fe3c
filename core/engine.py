"""The engine: a warm VGG16 and one job's run of it, plan -> stages -> refine -> finish.

``Engine`` holds the model on its device (the server keeps one alive); ``stylize`` turns a
content ``Layer`` and style ``Layer``s into a stylised ``Layer`` of the content's size and mode.
The plan is pure arithmetic (core/plan.py); each coarse-to-fine stage and each refinement tile
is one ``run_stage`` (core/optimize.py) towards its targets (core/losses.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .color import match_color_statistics, recolour, transfer_luminance
from .devices import pick_device
from .errors import InputError
from .images import Layer
from .losses import (
    Targets,
    blend_grams,
    content_targets,
    structure_pool,
    structure_target,
    style_grams,
)
from .optimize import StepReport, run_stage
from .plan import JobPlan, min_long_side, plan_job
from .progress import Progress, ProgressTracker
from .resize import guided_upsample, resize_long_side, resize_to
from .settings import Settings
from .tiles import TileBox, refine_in_tiles
from .vgg import STYLE_LAYERS, VGGFeatures, normalize
from .weights import resolve_weights

# Layers well above the working size climb to their own size in upper stages (core/plan.py).
# Each starts from the stage below resized up with the content's finer luma detail added back
# (`guided_upsample`: the photo's own detail, which no working-size result holds), then paints
# texture into it: the Grams of TEXTURE_LAYERS of the painting seen at TEXTURE_STYLE_SIDE (the
# size of a 1:1 view: what a crop of the canvas should look like), while every block of
# TEXTURE_HOLD_POOL px keeps the start's mean colour (the picture seen whole stays the working
# result), by Adam at TEXTURE_LR. The network runs only up to conv3_1: 37% of a full pass.
# Measured in docs/quality.md, "Large layers"; the old tiles (the working result smoothed,
# then the full objective at the canvas size) left a blur crossed by stripes at 1:1.
TEXTURE_LAYERS = STYLE_LAYERS[:3]  # conv1_1, conv2_1, conv3_1
TEXTURE_STYLE_SIDE = 512
TEXTURE_HOLD = 1e6
TEXTURE_HOLD_POOL = 2
TEXTURE_LR = 0.015
# A style whose own pixels a layer shows this many times larger gets a note: its strokes are
# blown up, and a larger copy of the painting would give finer ones
STYLE_ENLARGED_NOTE = 4.0


@dataclass
class Result:
    layer: Layer
    steps: int
    elapsed: float
    losses: dict[str, float]  # of the returned image at the last stage's working size
    cancelled: bool
    settings: Settings
    notes: list[str] = dataclasses.field(default_factory=list)  # a sentence each, for a painter


def initial_image(
    content: torch.Tensor,
    init: str,
    seed: int,
    styles: Sequence[torch.Tensor] = (),
    weights: Sequence[float] = (),
) -> torch.Tensor:
    """The first stage's start (``styles`` and their blend ``weights``: for ``recolour``)."""
    if init == "content":
        return content.clone()
    if init == "recolour":
        return recolour(content, [s[0] for s in styles], list(weights))
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=gen).to(content)
    return noise if init == "noise" else 0.5 * (content + noise)


@dataclass
class _Job:
    """One job's state, handed from stage to stage."""

    settings: Settings
    plan: JobPlan
    full: torch.Tensor  # the content, (1, 3, H, W) on the engine's device
    styles: Sequence[Layer]
    weights: list[float]  # blend weights, one per style
    prints: list[str | None]  # the styles' fingerprints (Gram cache keys), hashed once a job
    tracker: ProgressTracker
    start: float
    deadline: float | None  # time.monotonic() value, under a time budget
    should_stop: Callable[[], bool] | None
    match: torch.Tensor | None = None  # histogram colours: what the styles are matched to

    def stage_deadline(self, index: int) -> float | None:
        """A time budget shared by the stages in proportion to their costs."""
        if self.deadline is None:
            return None
        costs = self.plan.costs
        return self.start + self.settings.time_budget * sum(costs[: index + 1]) / sum(costs)


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
        return torch.from_numpy(layer.rgb).unsqueeze(0).to(self.device, torch.float32)

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
        preview_side: int | None = None,
    ) -> Result:
        """Stylise ``content``; ``on_progress`` gets every step, with a preview frame of at most
        ``preview_side`` px every ``preview_interval`` s (0: every step) when one is asked for."""
        start = time.monotonic()
        weights = _blend_weights(styles, style_weights)
        if settings.strength <= 0 or settings.balance <= 0:  # nothing to optimise: the content
            return Result(content, 0, 0.0, {}, False, settings)
        if settings.device != "auto" and pick_device(settings.device) != self.device:
            raise InputError(f"device: this engine runs on {self.device}, not {settings.device}")
        torch.manual_seed(settings.seed)

        full = self.pixels(content)
        plan = plan_job(settings, *full.shape[-2:])  # refuses a content too thin to see
        for i, style in enumerate(styles):
            min_long_side(f"styles.{i}", *style.rgb.shape[-2:])
        deadline = start + settings.time_budget if settings.time_budget else None
        tracker = ProgressTracker(
            start, plan.costs, plan.stage_steps, deadline, on_progress, preview_interval,
            preview_side,
        )  # fmt: skip
        # hashed once per job, not once per stage: a style image may be many megapixels
        prints = [style_fingerprint(s) if self.style_cache is not None else None for s in styles]
        job = _Job(
            settings, plan, full, styles, weights, prints, tracker, start, deadline, should_stop
        )
        image, losses, stopped = self._stages(job)
        if plan.upper and not stopped:
            image, stopped = self._upscale(job, image)
        layer = self._finish(job, content, image)
        notes = enlarged_styles(settings, plan, full.shape[-2:], styles)
        return Result(
            layer, tracker.done, time.monotonic() - start, losses, stopped, settings, notes
        )

    # --- one job ---------------------------------------------------------------------------

    def _stages(self, job: _Job) -> tuple[torch.Tensor, dict[str, float], bool]:
        """The coarse-to-fine stages: the last image, its losses, and whether a stop ended it."""
        s, plan = job.settings, job.plan
        image: torch.Tensor | None = None
        losses: dict[str, float] = {}
        for index, (side, steps) in enumerate(zip(plan.sides, plan.steps, strict=True)):
            work = resize_long_side(job.full, side)
            if image is None:
                image = self._start(job, work)
            else:
                image = resize_to(image, tuple(work.shape[-2:]))
            job.match = work if s.preserve_colors == "histogram" else None
            style_side = round(s.style_size * s.style_scale * side / plan.working_side)
            targets = self._targets(
                job, work, self._grams(job, [style_side] * len(job.styles)),
                structure_pool(side, plan.working_side),
            )  # fmt: skip
            deadline = job.stage_deadline(index)
            if deadline is not None:
                steps = 10**9  # under a budget, time decides; steps do not
            job.tracker.begin_stage(index, plan.stage_cost(side), work.shape[-1], work.shape[-2])
            stage = run_stage(
                self.model, image, targets, s, steps,
                deadline=deadline, on_step=job.tracker.step, should_stop=job.should_stop,
            )  # fmt: skip
            image, losses = stage.image, stage.losses
            job.tracker.done += stage.steps
            if stage.stopped:
                return image, losses, True
        assert image is not None
        return image, losses, False

    def _upscale(self, job: _Job, image: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The working-size result ``image`` carried up to the layer's size, one upper stage at
        a time, each painted tile by tile, in place."""
        plan, tracker = job.plan, job.tracker
        texture = dataclasses.replace(
            job.settings, optimizer="adam", lr=TEXTURE_LR, content_weight=0.0, detail_weight=0.0,
            structure_weight=TEXTURE_HOLD, tv_weight=0.0, balance=0.5,
        )  # fmt: skip
        # the painting's fine texture as it is: a small style is never resized up for it
        grams = self._grams(
            job, [min(TEXTURE_STYLE_SIDE, max(st.rgb.shape[-2:])) for st in job.styles]
        )
        grams = [grams[STYLE_LAYERS.index(i)] for i in TEXTURE_LAYERS]
        for k, stage in enumerate(plan.upper):
            size = (stage.height, stage.width)
            out = guided_upsample(image, resize_to(job.full, size))
            index = len(plan.steps) + k
            first = stage.tiles[0]
            per_step = plan.costs[index] / max(1, plan.stage_steps[index])
            tracker.begin_stage(index, per_step, first.width, first.height)
            done: list[int] = []  # steps of each finished tile
            stage_deadline = job.stage_deadline(index)

            def paint(
                tile: torch.Tensor, box: TileBox, i: int, out=out, done=done, stage=stage,
                stage_deadline=stage_deadline,
            ) -> tuple[torch.Tensor, bool]:  # fmt: skip
                hold = structure_target(tile, TEXTURE_HOLD_POOL)
                targets = Targets(None, grams, hold, TEXTURE_HOLD_POOL, None, TEXTURE_LAYERS)
                offset = sum(done)  # the stage's step count so far: progress and ETA within it

                def on_step(report: StepReport) -> None:
                    tracker.step(StepReport(offset + report.step, report.losses, lambda: out))

                steps, deadline = stage.steps, None
                if stage_deadline is not None:  # the stage's time left, shared by its tiles
                    now = time.monotonic()
                    deadline = now + max(0.0, stage_deadline - now) / (len(stage.tiles) - i)
                    steps = 10**9
                result = run_stage(
                    self.model, tile, targets, texture, steps,
                    deadline=deadline, on_step=on_step, should_stop=job.should_stop,
                    score_end=False,
                )  # fmt: skip
                done.append(result.steps)
                return result.image, result.stopped

            stopped = refine_in_tiles(out, stage.tiles, paint)
            tracker.done += sum(done)
            image = out
            if stopped:
                return image, True
        return image, False

    def _finish(self, job: _Job, content: Layer, image: torch.Tensor) -> Layer:
        """The result at the content's size, colours kept if asked, faded by strength."""
        s, full = job.settings, job.full
        rgb = resize_to(image, tuple(full.shape[-2:]))
        if s.preserve_colors == "luminance":
            rgb = transfer_luminance(rgb, full)
        if s.strength < 1:
            # Strength fades the stylisation into the content (balance trades them in the
            # objective); the plug-ins set it as the layer's opacity instead.
            rgb = torch.lerp(full, rgb, s.strength)
        rgb = rgb[0].float().cpu()
        if content.grayscale:
            rgb = rgb.mean(0, keepdim=True).expand(3, -1, -1)
        # The engine saw the content clipped to [0, 1]; with_rgb keeps its excess (HDR
        # highlights, colours outside sRGB), which a float output adds back over the result.
        return content.with_rgb(np.ascontiguousarray(rgb.numpy()))

    def _start(self, job: _Job, work: torch.Tensor) -> torch.Tensor:
        s = job.settings
        # recolour hands the painting's colours over from the start; not when colours are kept
        init = "content" if s.init == "recolour" and s.preserve_colors != "none" else s.init
        pixels = [self.pixels(style) for style in job.styles] if init == "recolour" else []
        return initial_image(work, init, s.seed, pixels, job.weights)

    def _grams(self, job: _Job, sides: list[int]) -> list[torch.Tensor]:
        """The styles' Gram targets blended by weight, each style at its long side in ``sides``."""
        return blend_grams(
            [
                self.style_targets(style, side, job.match, fingerprint)
                for style, side, fingerprint in zip(job.styles, sides, job.prints, strict=True)
            ],
            job.weights,
        )

    def _targets(
        self, job: _Job, content: torch.Tensor, grams: list[torch.Tensor], pool: int
    ) -> Targets:
        """What one stage or tile aims at: ``content`` (1, 3, h, w) in [0, 1] and the Grams."""
        structure = structure_target(content, pool) if job.settings.structure_weight else None
        relu5_3, relu3_3 = content_targets(
            self.model, normalize(content), detail=bool(job.settings.detail_weight)
        )
        return Targets(relu5_3, grams, structure, pool, relu3_3)


def _blend_weights(styles: Sequence[Layer], weights: Sequence[float] | None) -> list[float]:
    if not styles:
        raise InputError("styles: at least one style image is needed")
    weights = list(weights) if weights is not None else [1.0] * len(styles)
    if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError("style_weights: one non-negative weight per style, not all zero")
    return weights


def enlarged_styles(
    settings: Settings, plan: JobPlan, size: tuple[int, int], styles: Sequence[Layer]
) -> list[str]:
    """A note for each style whose pixels the result shows at least STYLE_ENLARGED_NOTE times
    larger: its strokes are the working size's, resized up with the layer."""
    notes = []
    for i, style in enumerate(styles):
        h, w = style.rgb.shape[-2:]
        seen = settings.style_size * settings.style_scale * max(size) / plan.working_side
        factor = seen / max(h, w)
        if factor >= STYLE_ENLARGED_NOTE:
            notes.append(
                f"styles.{i}: the {w}x{h} px style is shown at {factor:.0f}x its own pixels on "
                f"this {size[1]}x{size[0]} px layer: a larger copy of the painting gives finer "
                "strokes"
            )
    return notes


def style_fingerprint(layer: Layer) -> str:
    """Content hash of a style image's pixels: the cache key part that names the image."""
    digest = hashlib.blake2b(layer.rgb.tobytes(), digest_size=16)
    digest.update(str(tuple(layer.rgb.shape)).encode())
    return digest.hexdigest()
