"""What the artist asked for, checked, and mapped to the server's controls. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRESETS = ("fast", "quality", "paper")
PRESERVE_COLORS = ("none", "luminance", "histogram")
PREVIEW_INTERVAL = 1.0  # s between preview frames: each one rewrites the whole preview layer


class OptionsError(ValueError):
    """An option out of range; the message names it."""


@dataclass
class Options:
    """The dialog's fields and `stylize_active_layer`'s keywords."""

    styles: list[str]  # built-in names or image files
    weights: list[float] | None = None  # blend weights, one per style
    strength: float = 1.0
    preserve_colors: str = "none"
    preset: str = "fast"
    size: int | None = None  # working long side, px; None: the preset's
    time_budget: float | None = None  # seconds; None: the preset's step count
    seed: int | None = None
    source: str = "layer"  # "layer" or "visible"
    extra: dict[str, Any] = field(default_factory=dict)  # any other engine control

    def check(self) -> Options:
        if not self.styles:
            raise OptionsError("Choose at least one style image.")
        if self.weights is not None:
            if len(self.weights) != len(self.styles):
                raise OptionsError(
                    f"{len(self.weights)} blend weights for {len(self.styles)} styles"
                )
            if any(not w >= 0 for w in self.weights) or not sum(self.weights) > 0:
                raise OptionsError("Blend weights must be >= 0 and not all 0.")
        if not 0.0 <= self.strength <= 1.0:
            raise OptionsError(f"strength must be between 0 and 1, got {self.strength}")
        if self.preserve_colors not in PRESERVE_COLORS:
            raise OptionsError(
                f"preserve_colors must be one of {', '.join(PRESERVE_COLORS)}, "
                f"got {self.preserve_colors!r}"
            )
        if self.preset not in PRESETS:
            raise OptionsError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.size is not None and not 32 <= self.size <= 8192:
            raise OptionsError(f"size must be between 32 and 8192 px, got {self.size}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise OptionsError(f"time budget must be positive, got {self.time_budget}")
        if self.source not in ("layer", "visible"):
            raise OptionsError(f"source must be 'layer' or 'visible', got {self.source!r}")
        return self

    def controls(self) -> dict[str, Any]:
        """Engine controls for `PluginClient.submit` (None values are left out there)."""
        return {
            **self.extra,
            "strength": self.strength,
            "preserve_colors": self.preserve_colors,
            "size": self.size,
            "time_budget": self.time_budget,
            "seed": self.seed,
        }
