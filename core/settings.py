"""Every control the engine takes, the named presets, and their validation.

The same ``Settings`` travel through the library, the CLI, the server protocol and the plug-ins,
so validation lives here once: a bad value raises ``InputError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

PRESERVE_COLORS = ("none", "luminance", "histogram")
INITS = ("content", "noise", "mix")
SPACES = ("normalized", "pixel")
OPTIMIZERS = ("adam", "lbfgs")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Settings:
    # what an artist sets
    strength: float = 1.0  # 0 = the content unchanged, 1 = the full stylisation (see engine)
    preserve_colors: str = "none"  # none | luminance (transfer luminance only) | histogram
    size: int = 512  # working long side of the content, px
    style_scale: float = 1.0  # >1 bigger strokes: the style image is seen larger
    steps: int = 200
    time_budget: float | None = None  # seconds; the best image within it is returned
    seed: int = 0
    init: str = "content"  # content | noise | mix
    device: str = "auto"
    # the objective (the paper's unless changed)
    content_weight: float = 1.0
    style_weight: float = 1e6
    tv_weight: float = 0.0
    style_size: int = 256  # long side of each style image before style_scale, px
    # how the objective is minimised (what makes a preset fast)
    space: str = "pixel"  # normalized: optimise the normalised tensor (paper); pixel: [0,1] box
    optimizer: str = "adam"
    lr: float = 0.05
    precision: str = "bf16"  # network precision; Grams and losses stay float32
    scales: tuple[float, ...] = (1.0,)  # coarse-to-fine fractions of size, ending at 1.0
    allow_upscale: bool = False  # paper resizes small images up to `size`; the others do not
    # layers larger than `size`: full-resolution refinement in overlapping tiles (core/tiles.py)
    refine_steps: int = 0  # optimiser steps per tile; 0: the working-size result is upsampled
    # the largest side one optimisation sees: bounds memory, not the canvas. 576: the cheapest
    # per pixel on 2 CPU cores (5.4 s per MP-step; 512: 5.5 plus a third more tiles; 640: 6.0)
    tile_size: int = 576
    tile_overlap: int = 64  # px shared by neighbouring tiles, blended across
    preset: str = field(default="custom", compare=False)


PRESETS: dict[str, Settings] = {
    # The founding paper, exactly: Adam lr 0.01 on the normalised tensor, 1000 steps, fp32.
    "paper": Settings(
        size=384,
        steps=1000,
        space="normalized",
        optimizer="adam",
        lr=0.01,
        precision="fp32",
        allow_upscale=True,
        preset="paper",
    ),
    # The same objective reached far sooner. lr: the largest that keeps the subject (SSIM at
    # 1/4 size >= 0.6 on every pair measured); lr 0.1 scored lower but dissolved it
    # (docs/quality.md).
    "fast": Settings(
        size=384,
        steps=150,
        space="pixel",
        optimizer="adam",
        lr=0.03,
        precision="bf16",
        scales=(0.5, 1.0),
        # 4000x3000 on 2 CPU cores: 5 steps a tile took 543-666 s on the same CPU model, too
        # close to the 10-minute target (docs/benchmarks.md)
        refine_steps=4,
        preset="fast",
    ),
    # More time, for the lowest loss that still keeps the subject: starting at 1/4 size lost it
    # at any lr measured (docs/quality.md), so the coarse stage is 1/2.
    "quality": Settings(
        size=512,
        steps=600,
        space="pixel",
        optimizer="adam",
        lr=0.02,
        precision="bf16",
        scales=(0.5, 1.0),
        refine_steps=24,
        preset="quality",
    ),
}
DEFAULT_PRESET = "fast"


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InputError(f"{name}: {value!r} is not one of {', '.join(options)}")
    return value


def _number(name: str, value: Any, lo: float, hi: float, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name}: expected a number, got {type(value).__name__}")
    if kind is int and not float(value).is_integer():
        raise InputError(f"{name}: expected a whole number, got {value}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"{name}: {value} is outside {lo:g}..{hi:g}")
    return kind(value)


MAX_SIZE = 8192
MAX_STEPS = 100_000


def validate(s: Settings) -> Settings:
    """Return ``s`` with numbers coerced, or raise InputError naming the first bad field."""
    scales = s.scales
    if (
        not isinstance(scales, (tuple, list))
        or not scales
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in scales)
        or any(not 0 < v <= 1 for v in scales)
        or list(scales) != sorted(scales)
        or scales[-1] != 1
    ):
        raise InputError(f"scales: {scales!r} must rise from above 0 to exactly 1.0")
    tile = _number("tile_size", s.tile_size, 64, MAX_SIZE, int)
    style_side = _number("style_size", s.style_size, 32, MAX_SIZE, int) * _number(
        "style_scale", s.style_scale, 0.1, 8.0
    )
    if style_side > MAX_SIZE:  # the side each style is resized to, up as well as down
        raise InputError(
            f"style_scale: style_size {s.style_size} x style_scale {s.style_scale} = "
            f"{style_side:.0f} px, over {MAX_SIZE}"
        )
    budget = s.time_budget
    if budget is not None:
        budget = _number("time_budget", budget, 0.1, 7 * 24 * 3600.0)
    return dataclasses.replace(
        s,
        strength=_number("strength", s.strength, 0.0, 1.0),
        preserve_colors=_choice("preserve_colors", s.preserve_colors, PRESERVE_COLORS),
        size=_number("size", s.size, 32, MAX_SIZE, int),
        style_scale=_number("style_scale", s.style_scale, 0.1, 8.0),
        steps=_number("steps", s.steps, 1, MAX_STEPS, int),
        time_budget=budget,
        seed=_number("seed", s.seed, 0, 2**63 - 1, int),
        init=_choice("init", s.init, INITS),
        device=_choice("device", s.device, DEVICES),
        content_weight=_number("content_weight", s.content_weight, 0.0, 1e12),
        style_weight=_number("style_weight", s.style_weight, 0.0, 1e15),
        tv_weight=_number("tv_weight", s.tv_weight, 0.0, 1e12),
        style_size=_number("style_size", s.style_size, 32, MAX_SIZE, int),
        space=_choice("space", s.space, SPACES),
        optimizer=_choice("optimizer", s.optimizer, OPTIMIZERS),
        lr=_number("lr", s.lr, 1e-6, 10.0),
        precision=_choice("precision", s.precision, PRECISIONS),
        scales=tuple(float(v) for v in scales),
        refine_steps=_number("refine_steps", s.refine_steps, 0, MAX_STEPS, int),
        tile_size=tile,
        tile_overlap=_number("tile_overlap", s.tile_overlap, 0, tile // 2, int),
    )


CONTROL_NAMES = tuple(f.name for f in dataclasses.fields(Settings) if f.name != "preset")


def make_settings(preset: str = DEFAULT_PRESET, **overrides: Any) -> Settings:
    """A preset with some controls changed; ``None`` values mean 'keep the preset's'."""
    if preset not in PRESETS:
        raise InputError(f"preset: {preset!r} is not one of {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - set(CONTROL_NAMES))
    if unknown:
        raise InputError(f"{unknown[0]}: unknown control (known: {', '.join(CONTROL_NAMES)})")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "scales" in changes and isinstance(changes["scales"], list):
        changes["scales"] = tuple(changes["scales"])
    return validate(dataclasses.replace(PRESETS[preset], **changes))
