"""The GIMP plug-in's logic without GIMP: arguments, styles, pixel layouts, boxes, progress text.

`stylebridge.py` is the thin edge that talks to Gimp, Gegl and GimpUi; everything here is plain
Python (standard library and the vendored bridge), so the tests run it without GIMP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from stylebridge_wire.client import ClientError, ServerError, ServerUnavailable
from stylebridge_wire.pixels import Box, context_margin, expand_box, intersect_box

PROCEDURE = "plug-in-stylebridge"
MENU_PATH = "<Image>/Filters/Artistic"
MENU_LABEL = "Style _Transfer (Neural)..."
DIALOG_TITLE = "Style Transfer (Neural)"

# (id, label) pairs for the choice arguments; the ids are what the server takes.
PRESETS = (
    ("fast", "Fast"),
    ("quality", "Quality (coarse to fine)"),
    ("paper", "Paper (Gatys et al., slow)"),
)
PRESERVE_COLORS = (
    ("none", "Off: take the painting's colours"),
    ("luminance", "Luminance: keep the layer's colours"),
    ("histogram", "Histogram: match the layer's colours"),
)
DEFAULT_BUILTIN = "starry_night"
MAX_STYLE_SIDE = 1024  # the server works at a few hundred px; no need to send more
MAX_SIZE = 8192
MAX_STEPS = 100_000
MAX_TIME_BUDGET = 24 * 3600.0
POLL_INTERVAL = 0.25  # s; the server's heartbeats want a poll at least every second


class PluginError(Exception):
    """A problem the user can fix; the message says what and how. ``calling`` marks bad
    arguments (GIMP's CALLING_ERROR) rather than a failure while running (EXECUTION_ERROR)."""

    def __init__(self, message: str, *, calling: bool = False) -> None:
        super().__init__(message)
        self.calling = calling


# ================================================================================== styles


@dataclass(frozen=True)
class Style:
    path: str
    title: str


def builtin_styles(folder: str) -> dict[str, Style]:
    """The paintings listed in ``folder/index.tsv`` ("file<TAB>title" lines), by file stem."""
    styles: dict[str, Style] = {}
    try:
        with open(os.path.join(folder, "index.tsv"), encoding="utf-8") as index:
            lines = index.read().splitlines()
    except OSError:
        return styles
    for line in lines:
        file, sep, title = line.partition("\t")
        if sep and file.strip():
            file = file.strip()
            key = os.path.splitext(file)[0]
            styles[key] = Style(os.path.join(folder, file), title.strip() or key)
    return styles


def split_paths(text: str | None) -> list[str]:
    """Style paths from one string: one per line, or separated by the system's path
    separator (":" on Linux and macOS, ";" on Windows)."""
    if not text:
        return []
    paths = []
    for line in text.splitlines():
        paths.extend(part.strip() for part in line.split(os.pathsep))
    return [p for p in paths if p]


def resolve_styles(
    style_file: str | None, more: str | None, builtin: str, builtins: dict[str, Style]
) -> list[Style]:
    """The style images to use: the style file and the extra paths when any are given,
    else the chosen built-in painting."""
    paths = ([style_file] if style_file else []) + split_paths(more)
    if not paths:
        key = builtin or DEFAULT_BUILTIN
        if key not in builtins:
            known = ", ".join(builtins) or "none are installed"
            raise PluginError(
                f"Unknown built-in painting {key!r} (known: {known}); choose a style file.",
                calling=True,
            )
        return [builtins[key]]
    styles = []
    for path in paths:
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            raise PluginError(f"The style image {path!r} does not exist.", calling=True)
        stem = os.path.splitext(os.path.basename(path))[0]
        styles.append(Style(path, stem.replace("_", " ")))
    return styles


def layer_name(styles: list[Style]) -> str:
    """The result layer's name: the style's title (titles joined for a blend)."""
    return " + ".join(style.title for style in styles)


def style_scale(width: int, height: int, max_side: int = MAX_STYLE_SIDE) -> tuple[int, int]:
    """A style image's size once its long side is at most ``max_side``."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    factor = max_side / long_side
    return max(1, round(width * factor)), max(1, round(height * factor))


# ================================================================================ controls


@dataclass(frozen=True)
class Settings:
    """The procedure's arguments past the styles, as the PDB hands them over."""

    strength: float = 1.0
    preserve_colors: str = "none"
    preset: str = "fast"
    size: int = 0  # working long side in px; 0: the preset's
    time_budget: float = 0.0  # seconds; 0: no budget, the preset's steps
    seed: int = 0
    steps: int = 0  # 0: the preset's

    def check(self) -> Settings:
        def bad(message: str) -> PluginError:
            return PluginError(message, calling=True)

        if not 0.0 <= self.strength <= 1.0:
            raise bad(f"Strength must be between 0 and 1, got {self.strength:g}.")
        if self.preserve_colors not in dict(PRESERVE_COLORS):
            names = ", ".join(dict(PRESERVE_COLORS))
            raise bad(f"Colour preservation must be one of {names}, got {self.preserve_colors!r}.")
        if self.preset not in dict(PRESETS):
            names = ", ".join(dict(PRESETS))
            raise bad(f"Quality preset must be one of {names}, got {self.preset!r}.")
        if self.size != 0 and not 32 <= self.size <= MAX_SIZE:
            raise bad(f"Size must be 0 (the preset's) or 32..{MAX_SIZE} px, got {self.size}.")
        if not 0.0 <= self.time_budget <= MAX_TIME_BUDGET:
            raise bad(f"Time budget must be 0 (none) or up to 24 h, got {self.time_budget:g} s.")
        if self.seed < 0:
            raise bad(f"Seed must be 0 or more, got {self.seed}.")
        if not 0 <= self.steps <= MAX_STEPS:
            raise bad(f"Steps must be 0 (the preset's) or up to {MAX_STEPS}, got {self.steps}.")
        return self

    def controls(self) -> dict[str, Any]:
        """Engine controls for `PluginClient.submit`; zeros mean "the preset's" and are left
        out. A budget below the server's 0.1 s minimum is raised to it."""
        controls: dict[str, Any] = {
            "strength": float(self.strength),
            "preserve_colors": self.preserve_colors,
            "seed": int(self.seed),
        }
        if self.size:
            controls["size"] = int(self.size)
        if self.steps:
            controls["steps"] = int(self.steps)
        if self.time_budget > 0:
            controls["time_budget"] = max(0.1, float(self.time_budget))
        return controls


# ================================================================================== pixels


@dataclass(frozen=True)
class Layout:
    """How a drawable travels: the babl format it is read and written in, and its channels.

    Always float and always the perceptual (sRGB-curve) variant with alpha, whatever the
    image's precision: the network was trained on such values, GEGL converts from and to the
    layer's own format losslessly, and the result layer keeps the image's precision.
    """

    babl: str
    channels: int
    dtype: str = "float32"


RGB_LAYOUT = Layout("R'G'B'A float", 4)
GRAY_LAYOUT = Layout("Y'A float", 2)
MASK_FORMAT = "Y float"  # selection coverage: a fraction, not a colour, so no curve
STYLE_FORMAT = "R'G'B' u8"


def layout_for(is_gray: bool) -> Layout:
    return GRAY_LAYOUT if is_gray else RGB_LAYOUT


@dataclass(frozen=True)
class WorkArea:
    """What to send for one drawable. ``box`` is in the drawable's own pixels; ``masked``:
    a selection limits the effect (the mask is read for the same box)."""

    box: Box
    masked: bool

    def image_box(self, offsets: tuple[int, int]) -> Box:
        """The box in image (canvas) coordinates, where the selection lives."""
        x, y, w, h = self.box
        return x + offsets[0], y + offsets[1], w, h


def work_area(
    size: tuple[int, int],
    offsets: tuple[int, int],
    selection: tuple[int, int, int, int] | None,
    name: str = "the layer",
) -> WorkArea:
    """The box to stylise for a drawable of ``size`` at ``offsets``.

    ``selection``: the selection's bounds (x1, y1, x2, y2) in image coordinates, None when
    nothing is selected. With a selection the optimisation works on its bounds on the
    drawable plus a margin of context (clipped to the drawable); without one, on all of it.
    """
    width, height = size
    whole: Box = (0, 0, width, height)
    if selection is None:
        return WorkArea(whole, False)
    x1, y1, x2, y2 = selection
    local: Box = (x1 - offsets[0], y1 - offsets[1], x2 - x1, y2 - y1)
    selected = intersect_box(local, whole)
    if selected is None:
        raise PluginError(f"The selection does not touch {name}; select a part of it or none.")
    margin = context_margin(selected[2], selected[3])
    return WorkArea(expand_box(selected, margin, width, height), True)


# ================================================================================ progress


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_fraction(event: dict[str, Any], index: int, count: int) -> float:
    """Overall progress 0..1 for job ``index`` (0-based) of ``count`` at this event."""
    step, total = event.get("step"), event.get("total_steps")
    within = 0.0
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        within = min(1.0, max(0.0, step / total))
    return min(1.0, (index + within) / max(1, count))


def progress_text(
    event: dict[str, Any] | None, index: int, count: int, title: str, position: int | None = None
) -> str:
    """The progress bar's text: the style, which layer of how many, then the step and the ETA
    (or the place in the server's queue)."""
    parts = [f"Style transfer: {title}"]
    if count > 1:
        parts.append(f"layer {index + 1} of {count}")
    if position:
        parts.append("queued behind " + ("1 job" if position == 1 else f"{position} jobs"))
    elif not event:
        parts.append("waiting for the server")
    else:
        step, total = event.get("step"), event.get("total_steps")
        if isinstance(step, int) and isinstance(total, int) and total > 0:
            parts.append(f"step {step}/{total}")
        eta = event.get("eta")
        if isinstance(eta, (int, float)):
            parts.append(f"{format_seconds(eta)} left")
    return " · ".join(parts)


# ================================================================================== errors


def describe_error(exc: BaseException) -> str:
    """A message for GIMP's error dialog or a batch script's log; never a traceback."""
    if isinstance(exc, PluginError):
        return str(exc)
    if isinstance(exc, ServerUnavailable):
        text = str(exc).rstrip(".")
        hint = "" if "stylebridge serve" in text else " Start it with: stylebridge serve."
        return f"The stylebridge server is not available: {text}.{hint} The image was not changed."
    if isinstance(exc, ServerError):
        where = f" (field {exc.field})" if exc.field else ""
        return (
            f"The stylebridge server failed the job: {exc.message}{where} [{exc.code}]. "
            "The image was not changed."
        )
    if isinstance(exc, ClientError):
        return f"Talking to the stylebridge server failed: {exc}. The image was not changed."
    return f"Style transfer failed: {type(exc).__name__}: {exc}. The image was not changed."
