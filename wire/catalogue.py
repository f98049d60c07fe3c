"""The style images both plug-ins offer: the built-in paintings shipped beside them (listed in
``styles/index.tsv``), image files, and the size they travel at. Standard library only."""

from __future__ import annotations

import os
from dataclasses import dataclass

MAX_STYLE_SIDE = 1024  # the server works at a few hundred px; no need to send more


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


def find_builtin(name: str, builtins: dict[str, Style]) -> Style | None:
    """A built-in by its key ("starry_night"), the key's first word ("starry"), its title or
    the start of its title ("The Scream"), or its path; None when none matches."""
    key = name.strip().lower()
    for stem, style in builtins.items():
        title = style.title.lower()
        if key and (
            key in (title, stem, stem.split("_")[0], style.path.lower()) or title.startswith(key)
        ):
            return style
    return None


def file_style(path: str) -> Style:
    """An image file as a style, titled after its name; ValueError when it does not exist."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ValueError(f"The style image {path!r} does not exist.")
    stem = os.path.splitext(os.path.basename(path))[0]
    return Style(path, stem.replace("_", " "))


def title(styles: list[Style]) -> str:
    """A result layer's name: the style's title (titles joined for a blend)."""
    return " + ".join(style.title for style in styles)


def layer_name(title: str, preset_label: str, amount: float | None) -> str:
    """A result layer's name: the style's title, the preset's short label ("Fast" of "Fast
    (about a minute on a CPU)"), the style amount, so that several tries tell themselves apart
    in the Layers panel."""
    preset = preset_label.split(" (")[0].split(":")[0]
    return f"{title} · {preset}" + ("" if amount is None else f" · style {amount:.1f}")


def fitted_size(width: int, height: int, max_side: int = MAX_STYLE_SIDE) -> tuple[int, int]:
    """A style image's size once its long side is at most ``max_side``."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    factor = max_side / long_side
    return max(1, round(width * factor)), max(1, round(height * factor))
