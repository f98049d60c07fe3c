"""The vocabulary: every control the engine takes, the named presets, and their validation.

Each control is declared once, as a field of ``Settings`` with its range, its help and where it
shows (`control`). Everything else reads it from here: validation (`validate`), the CLI's
arguments (server/cli.py), the protocol's list of what a client may set (server/protocol.py),
and the plug-ins' dialogs through `vocabulary()`, whose JSON copy the stdlib-only wire package
carries (wire/vocabulary.json: `make vocabulary` writes it, a test keeps it equal). A bad value
raises ``InputError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

# Where a control shows: the library always has it; a client may send it (the protocol, and so
# the CLI through a server); the CLI has a flag; the plug-ins' dialogs show it, and ADVANCED puts
# it in their "Advanced" group (what a painter rarely needs).
LIBRARY, REMOTE, CLI, DIALOG, ADVANCED = "library", "remote", "cli", "dialog", "advanced"
EVERYWHERE = (REMOTE, CLI, DIALOG)
IN_ADVANCED = (*EVERYWHERE, ADVANCED)


def control(
    help: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: dict[str, str] | None = None,
    shows: tuple[str, ...] = (REMOTE, CLI),
    label: str | None = None,
    unit: str = "",
    flag: str | None = None,
) -> dict[str, Any]:
    """A field's metadata: ``lo``..``hi`` (numbers) or ``choices`` (value -> label), the help
    text (what the painter sees change), ``shows`` (REMOTE, CLI, DIALOG, ADVANCED), a dialog
    ``label`` and ``unit``, a CLI ``flag``."""
    return {
        "help": help,
        "lo": lo,
        "hi": hi,
        "choices": choices,
        "shows": shows,
        "label": label,
        "unit": unit,
        "flag": flag,
    }


MAX_SIZE = 8192
# An image's pixels (67.1 MP), files read and requests taken alike, unless --max-pixels raises it
DEFAULT_MAX_PIXELS = 8192 * 8192
MAX_STEPS = 100_000
MAX_TIME_BUDGET = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    # --- what an artist sets
    # Subject against style, in the objective: it scales the content side (core/losses.py:
    # balance_factor); 0.5 leaves every weight as written, so the paper preset at 0.5 is the
    # paper's objective exactly.
    balance: float = field(
        default=0.5,
        metadata=control(
            "how much of the painting goes into the picture: lower keeps more of its shapes and "
            "detail, higher repaints it in the painting's strokes and textures (0 gives the "
            "original back)",
            lo=0,
            hi=1,
            shows=EVERYWHERE,
            label="Style amount",
        ),
    )
    style_scale: float = field(
        default=1.0,
        metadata=control(
            "how large the painting's strokes and patterns come out: 2 paints them twice as "
            "large, 0.5 half as large",
            lo=0.1,
            hi=8.0,
            shows=EVERYWHERE,
            label="Brush size",
            unit="×",
        ),
    )
    preserve_colors: str = field(
        default="none",
        metadata=control(
            "whose colours the result has: the painting's, or the picture's own (its light and "
            "dark only, or its colours matched as a whole)",
            choices={
                "none": "Take the painting's colours",
                "luminance": "Keep the image's colours (luminance only)",
                "histogram": "Keep the image's colours (match statistics)",
            },
            shows=EVERYWHERE,
            label="Colours",
        ),
    )
    size: int = field(
        default=512,
        metadata=control(
            "the long side, in px, the painting is laid out at: higher keeps more of the "
            "picture's detail under smaller strokes and takes longer (the result always has "
            "the picture's own size)",
            lo=32,
            hi=MAX_SIZE,
            shows=EVERYWHERE,
            label="Detail (px)",
            unit="px",
        ),
    )
    strength: float = field(
        default=1.0,
        metadata=control(
            "how strongly the result shows over the original (1: the stylisation alone, 0: the "
            "original); in Krita and GIMP it is the new layer's opacity, changed later in the "
            "Layers panel without running again",
            lo=0,
            hi=1,
            shows=EVERYWHERE,
            label="Layer opacity",
        ),
    )
    time_budget: float | None = field(
        default=None,
        metadata=control(
            "stop after this many seconds and keep the best result so far: a shorter limit "
            "leaves the strokes rougher",
            lo=0.1,
            hi=MAX_TIME_BUDGET,
            shows=IN_ADVANCED,
            label="Time limit",
            unit="s",
            flag="--time",
        ),
    )
    steps: int = field(
        default=200,
        metadata=control(
            "how many times the picture is refined: more steps take longer and settle the "
            "strokes further",
            lo=1,
            hi=MAX_STEPS,
            shows=IN_ADVANCED,
            label="Steps",
        ),
    )
    seed: int = field(
        default=0,
        metadata=control(
            "the random start of a noise or mix start (another seed, another result; "
            "deterministic on CPU); the presets start from the picture, where it changes nothing",
            lo=0,
            hi=2**63 - 1,
            shows=IN_ADVANCED,
            label="Seed",
        ),
    )
    init: str = field(
        default="content",
        metadata=control(
            "the start",
            choices={
                "content": "the content",
                "noise": "noise",
                "mix": "half content, half noise",
                "recolour": "the content's luma in the styles' colour statistics",
            },
        ),
    )
    device: str = field(
        default="auto",
        metadata=control(
            "auto: CUDA, then MPS, then CPU",
            choices={"auto": "auto", "cpu": "CPU", "cuda": "CUDA", "mps": "MPS"},
            shows=(CLI,),  # a server's device is its own
        ),
    )
    # --- the objective (the paper's unless changed)
    content_weight: float = field(
        default=1.0, metadata=control("weight of the relu5_3 content term", lo=0, hi=1e12)
    )
    style_weight: float = field(
        default=1e6, metadata=control("weight of the Gram style term", lo=0, hi=1e15)
    )
    # the content's colours in 4 px blocks of the working size (luma held, chroma loosely;
    # core/losses.py:structure_loss); 0: the paper's objective, which has no such term
    structure_weight: float = field(
        default=0.0,
        metadata=control("weight of the structure term (0: none, as in the paper)", lo=0, hi=1e15),
    )
    # the content's relu3_3 features: its edges and fine shapes, which relu5_3 and the block means
    # leave free (faces); scaled with the content side by balance (core/losses.py)
    detail_weight: float = field(
        default=0.0,
        metadata=control(
            "weight of the relu3_3 detail term (0: none, as in the paper)", lo=0, hi=1e12
        ),
    )
    tv_weight: float = field(
        default=0.0, metadata=control("total-variation smoothing", lo=0, hi=1e12)
    )
    style_size: int = field(
        default=256,
        metadata=control("style image long side in px, before style_scale", lo=32, hi=MAX_SIZE),
    )
    # --- how the objective is minimised (what makes a preset fast): the library's own
    space: str = field(
        default="pixel",
        metadata=control(
            "what the optimiser moves",
            choices={"normalized": "the normalised tensor (paper)", "pixel": "pixels in [0, 1]"},
            shows=(),
        ),
    )
    optimizer: str = field(
        default="adam",
        metadata=control("optimiser", choices={"adam": "Adam", "lbfgs": "L-BFGS"}, shows=()),
    )
    lr: float = field(default=0.05, metadata=control("learning rate", lo=1e-6, hi=10.0, shows=()))
    precision: str = field(
        default="bf16",
        metadata=control(
            "network precision; Grams and losses stay float32",
            choices={"fp32": "float32", "bf16": "bfloat16 autocast"},
            shows=(),
        ),
    )
    scales: tuple[float, ...] = field(
        default=(1.0,),
        metadata=control("coarse-to-fine fractions of size, rising to 1.0", shows=()),
    )
    allow_upscale: bool = field(
        default=False,
        metadata=control("small images are worked at size (the paper does)", shows=()),
    )
    # --- layers larger than size: full-resolution refinement in overlapping tiles (tiles.py)
    refine_steps: int = field(
        default=0,
        metadata=control(
            "layers well above size: steps per full-resolution tile (0: upsample only)",
            lo=0,
            hi=MAX_STEPS,
        ),
    )
    # the largest side one optimisation sees: bounds memory, not the canvas. 576: the cheapest
    # per pixel on 2 CPU cores (5.4 s per MP-step; 512: 5.5 plus a third more tiles; 640: 6.0)
    tile_size: int = field(
        default=576, metadata=control("largest tile side: bounds memory (px)", lo=64, hi=MAX_SIZE)
    )
    tile_overlap: int = field(
        default=64,
        metadata=control("px blended between neighbouring tiles (at most tile_size / 2)", lo=0),
    )
    preset: str = field(default="custom", compare=False)


@dataclass(frozen=True)
class Preset:
    label: str  # as the dialogs show it
    description: str  # how it minimises the objective
    settings: Settings


# The picture first: the paper's terms plus the structure term (the content's colours in 4 px
# blocks of the working size: luma held, chroma loosely) and the detail term (the content's
# relu3_3), started from the content recoloured to the styles, minimised by L-BFGS. On the sheet
# pairs (docs/quality.md, "The objective"): L-BFGS puts the painting's texture where it lowers
# the style term most and leaves faces almost photographic, where Adam's equal steps for every
# pixel painted stripes across them; one scale (a coarse stage costs the face more than it buys).
_FAST = Settings(
    size=384,
    steps=64,
    init="recolour",
    structure_weight=1e5,
    detail_weight=20.0,
    space="pixel",
    optimizer="lbfgs",
    lr=1.0,
    precision="bf16",
    refine_steps=3,
    preset="fast",
)

PRESET_TABLE: dict[str, Preset] = {
    "fast": Preset(
        "Fast (about a minute on a CPU)",
        "the paper's terms plus structure and detail terms, from the content recoloured to the "
        "style, by L-BFGS",
        _FAST,
    ),
    "quality": Preset(
        "Quality (a few minutes)",
        "fast's objective nearer its optimum: three times the steps, up to 512 px",
        dataclasses.replace(_FAST, size=512, steps=192, refine_steps=12, preset="quality"),
    ),
    "paper": Preset(
        "Reference (slow): the original paper",
        "the founding paper exactly: Adam lr 0.01 on the normalised image, 1000 steps, fp32",
        # Adam lr 0.01 on the normalised tensor, 1000 steps, content 384 px, fp32: the yardstick
        Settings(
            size=384,
            steps=1000,
            space="normalized",
            optimizer="adam",
            lr=0.01,
            precision="fp32",
            allow_upscale=True,
            preset="paper",
        ),
    ),
}
PRESETS: dict[str, Settings] = {name: p.settings for name, p in PRESET_TABLE.items()}
DEFAULT_PRESET = "fast"
FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "preset"}
CONTROL_NAMES = tuple(FIELDS)


def shown(where: str, settings_cls: type = Settings) -> tuple[str, ...]:
    """The controls that show ``where`` (REMOTE, CLI, DIALOG), in declaration order."""
    return tuple(
        f.name
        for f in dataclasses.fields(settings_cls)
        if f.metadata and where in f.metadata["shows"]
    )


def _check(f: dataclasses.Field, value: Any, kind: type, hi: float | None = None) -> Any:
    """One value against its field's declaration; coerced (ints stay ints), or InputError."""
    name, meta = f.name, f.metadata
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise InputError(f"{name}: {value!r} is not one of {', '.join(meta['choices'])}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name}: expected a number, got {type(value).__name__}")
    if kind is int and not float(value).is_integer():
        raise InputError(f"{name}: expected a whole number, got {value}")
    lo, hi = meta["lo"], meta["hi"] if hi is None else hi
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"{name}: {value} is outside {lo:g}..{hi:g}")
    return kind(value)


def base_type(hint: Any) -> type:
    """int, float, str, bool or tuple of a resolved annotation (``float | None`` -> float)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return typing.get_origin(args[0]) or args[0] if args else typing.get_origin(hint) or hint


@functools.cache
def field_types(settings_cls: type) -> dict[str, type]:
    """Each field's base type, resolved once per class."""
    return {name: base_type(hint) for name, hint in typing.get_type_hints(settings_cls).items()}


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
    changes: dict[str, Any] = {"scales": tuple(float(v) for v in scales)}
    types = field_types(type(s))
    for f in dataclasses.fields(s):
        meta = f.metadata
        value = getattr(s, f.name)
        if not meta or (meta["lo"] is None and not meta["choices"]) or value is None:
            continue
        hi = changes["tile_size"] // 2 if f.name == "tile_overlap" else None
        changes[f.name] = _check(f, value, types[f.name], hi)
    style_side = changes["style_size"] * changes["style_scale"]
    if style_side > MAX_SIZE:  # the side each style is resized to, up as well as down
        raise InputError(
            f"style_scale: style_size {s.style_size} x style_scale {s.style_scale} = "
            f"{style_side:.0f} px, over {MAX_SIZE}"
        )
    if not isinstance(s.allow_upscale, bool):
        raise InputError(f"allow_upscale: expected true or false, got {s.allow_upscale!r}")
    return dataclasses.replace(s, **changes)


def make_settings(
    preset: str = DEFAULT_PRESET, *, presets: Mapping[str, Settings] = PRESETS, **overrides: Any
) -> Settings:
    """A preset with some controls changed; ``None`` values mean 'keep the preset's'."""
    if preset not in presets:
        raise InputError(f"preset: {preset!r} is not one of {', '.join(presets)}")
    base = presets[preset]
    names = [f.name for f in dataclasses.fields(base) if f.name != "preset"]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise InputError(f"{unknown[0]}: unknown control (known: {', '.join(names)})")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "scales" in changes and isinstance(changes["scales"], list):
        changes["scales"] = tuple(changes["scales"])
    return validate(dataclasses.replace(base, **changes))


# --------------------------------------------------------------------------------------------
# The vocabulary as data, for everything that cannot import this module (the plug-ins)


def vocabulary(
    settings_cls: type = Settings, presets: dict[str, Preset] | None = None
) -> dict[str, Any]:
    """The controls a client may send and the presets, as JSON-able data: what the wire
    package's vocabulary.json holds (``stylebridge_wire.vocabulary.Vocabulary`` reads it)."""
    presets = PRESET_TABLE if presets is None else presets
    hints = typing.get_type_hints(settings_cls)
    types = field_types(settings_cls)
    controls = []
    for f in dataclasses.fields(settings_cls):
        meta = f.metadata
        if not meta or REMOTE not in meta["shows"]:
            continue
        controls.append(
            {
                "name": f.name,
                "type": types[f.name].__name__,
                "default": f.default,
                "optional": type(None) in typing.get_args(hints[f.name]),
                "min": meta["lo"],
                "max": meta["hi"],
                "choices": meta["choices"],
                "help": meta["help"],
                "label": meta["label"],
                "unit": meta["unit"],
                "dialog": DIALOG in meta["shows"],
                "advanced": ADVANCED in meta["shows"],
            }
        )
    names = {c["name"] for c in controls}
    return {
        "default_preset": DEFAULT_PRESET if DEFAULT_PRESET in presets else next(iter(presets)),
        "presets": {
            name: {
                "label": p.label,
                "description": p.description,
                "controls": {k: getattr(p.settings, k) for k in sorted(names)},
            }
            for name, p in presets.items()
        },
        "controls": controls,
    }


def vocabulary_json(data: dict[str, Any] | None = None) -> str:
    return json.dumps(vocabulary() if data is None else data, indent=1) + "\n"
