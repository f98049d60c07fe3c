"""Embedded public-domain images (see SOURCES.md): demo content and the built-in styles."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CONTENT = HERE / "chelsea.jpg"
BUILTIN_STYLES = {
    "starry_night": HERE / "starry_night.jpg",
    "the_scream": HERE / "the_scream.jpg",
    "shipwreck": HERE / "shipwreck.jpg",
    "woman_with_hat": HERE / "woman_with_hat_matisse.jpg",
}
DEFAULT_STYLE = BUILTIN_STYLES["starry_night"]
