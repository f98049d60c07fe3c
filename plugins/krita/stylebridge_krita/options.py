"""What the artist asked for, checked against the vocabulary, and how it maps to a job.

The presets and controls, their ranges and choices come from the wire package's vocabulary
(core/settings.py's declarations); nothing here repeats them. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .stylebridge_wire.vocabulary import Vocabulary, as_layer, default

PREVIEW_INTERVAL = 1.0  # s between preview frames: each one rewrites the whole preview layer
SOURCES = {"layer": "Active layer", "visible": "Visible image (new layer on top)"}


class OptionsError(ValueError):
    """An option out of range; the message names it."""


@dataclass
class Options:
    """The dialog's fields and `stylize_active_layer`'s keywords.

    ``controls`` are engine controls by name (None: the preset's); strength becomes the new
    layer's opacity instead (`vocabulary.as_layer`)."""

    styles: list[Any]  # built-in names or image files (str), or styles from the canvas
    weights: list[float] | None = None  # blend weights, one per style
    preset: str | None = None  # None: the vocabulary's default
    controls: dict[str, Any] = field(default_factory=dict)
    source: str = "layer"  # "layer" or "visible"

    def check(self, vocabulary: Vocabulary | None = None) -> Options:
        vocabulary = vocabulary or default()
        if not self.styles:
            raise OptionsError("Choose at least one style image.")
        if self.weights is not None:
            if len(self.weights) != len(self.styles):
                raise OptionsError(
                    f"{len(self.weights)} blend weights for {len(self.styles)} styles"
                )
            if any(not w >= 0 for w in self.weights) or not sum(self.weights) > 0:
                raise OptionsError("Blend weights must be >= 0 and not all 0.")
        if self.source not in SOURCES:
            raise OptionsError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        try:
            self.preset = vocabulary.check_preset(self.preset or vocabulary.default_preset)
            self.controls = vocabulary.check(self.controls)
        except ValueError as exc:
            raise OptionsError(str(exc)) from None
        return self

    def value(self, name: str, vocabulary: Vocabulary | None = None) -> Any:
        """A control's value as the job runs it: the one chosen, else the preset's."""
        if self.controls.get(name) is not None:
            return self.controls[name]
        vocabulary = vocabulary or default()
        preset = vocabulary.presets.get(self.preset or vocabulary.default_preset)
        return None if preset is None else preset.controls.get(name)

    def preset_label(self, vocabulary: Vocabulary | None = None) -> str:
        """The checked preset as the dialog lists it."""
        vocabulary = vocabulary or default()
        preset = vocabulary.presets.get(self.preset or vocabulary.default_preset)
        return preset.label if preset is not None else str(self.preset)

    @property
    def strength(self) -> float:
        """The result layer's opacity, 0..1."""
        return as_layer(self.controls)[0]

    def job_controls(self) -> dict[str, Any]:
        """Engine controls for `Client.submit`: all but the layer's opacity."""
        return as_layer(self.controls)[1]
