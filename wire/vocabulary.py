"""What a client may ask for: the presets and the controls with their ranges, as the engine
declares them (core/settings.py). ``vocabulary.json`` beside this file is generated from there
(``make vocabulary``) and a test keeps the two equal, so the plug-ins build
their dialogs and check their options from the same declarations as the CLI and the server.
Standard library only.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocabulary.json")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


class Control:
    """One control: its type, default, range or choices (value -> label), and how a dialog
    labels it. ``check`` raises ValueError with a sentence naming the control."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.type: type = _TYPES[spec["type"]]
        self.default: Any = spec["default"]
        self.optional: bool = bool(spec.get("optional"))
        self.min: float | None = spec.get("min")
        self.max: float | None = spec.get("max")
        self.choices: dict[str, str] | None = spec.get("choices")
        self.help: str = spec.get("help") or ""
        self.label: str = spec.get("label") or self.name.replace("_", " ").capitalize()
        self.unit: str = spec.get("unit") or ""
        self.dialog: bool = bool(spec.get("dialog"))
        self.advanced: bool = bool(spec.get("advanced"))  # in the dialogs' "Advanced" group

    def __repr__(self) -> str:
        return f"Control({self.name!r})"

    @property
    def tooltip(self) -> str:
        """The help as a dialog shows it: a sentence (it says what the painter sees change)."""
        text = self.help.strip().rstrip(".")
        return text[:1].upper() + text[1:] + "." if text else ""

    @property
    def zero_means_preset(self) -> bool:
        """A number whose 0 stands for "the preset's" (or "no limit"): 0 is not a value the
        control itself takes."""
        return self.choices is None and (self.optional or (self.min or 0) > 0)

    @property
    def dialog_default(self) -> Any:
        """Where a dialog starts: 0 (the preset's own value) where 0 means that, so a dialog
        left alone runs the preset as defined; else the control's default."""
        return 0 if self.zero_means_preset else self.default

    def check(self, value: Any) -> Any:
        """``value`` if the server will take it (ints as ints), else ValueError."""
        if value is None and self.optional:
            return None
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(
                    f"{self.label} must be one of {', '.join(self.choices)}, got {value!r}."
                )
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.label} must be a number, got {value!r}.")
        if self.type is int and not float(value).is_integer():
            raise ValueError(f"{self.label} must be a whole number, got {value}.")
        low = -math.inf if self.min is None else self.min
        high = math.inf if self.max is None else self.max
        if not (math.isfinite(value) and low <= value <= high):
            unit = f" {self.unit}" if self.unit else ""
            raise ValueError(
                f"{self.label} must be between {low:g} and {high:g}{unit}, got {value:g}."
            )
        return self.type(value)


# The plug-ins send no strength: the result is made at full strength and the new layer's opacity
# is set to it, so the artist changes it later without running again (a layer at opacity s over
# its source is the mix the engine's strength makes).
LAYER_OPACITY = "strength"


def as_layer(controls: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The new layer's opacity (0..1) and the job's controls, from checked ``controls``."""
    opacity = controls.get(LAYER_OPACITY)
    job = {name: value for name, value in controls.items() if name != LAYER_OPACITY}
    return (1.0 if opacity is None else float(opacity)), job


class Preset:
    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.label: str = spec["label"]
        self.description: str = spec["description"]
        self.controls: dict[str, Any] = spec["controls"]  # its value of every control

    def __repr__(self) -> str:
        return f"Preset({self.name!r})"


class Vocabulary:
    """The presets (in order) and the controls a client may send, by name."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.presets: dict[str, Preset] = {
            name: Preset(name, spec) for name, spec in data["presets"].items()
        }
        self.default_preset: str = data["default_preset"]
        self.controls: dict[str, Control] = {c["name"]: Control(c) for c in data["controls"]}

    @classmethod
    def load(cls, path: str | None = None) -> Vocabulary:
        with open(path or FILE, encoding="utf-8") as f:
            return cls(json.load(f))

    def dialog_controls(self) -> list[Control]:
        """The controls a plug-in dialog shows, in the engine's order."""
        return [c for c in self.controls.values() if c.dialog]

    def check_preset(self, name: Any) -> str:
        if name not in self.presets:
            raise ValueError(f"Preset must be one of {', '.join(self.presets)}, got {name!r}.")
        return name

    def check(self, controls: dict[str, Any]) -> dict[str, Any]:
        """``controls`` checked one by one (None values dropped: the preset's)."""
        out = {}
        for name, value in controls.items():
            if value is None:
                continue
            if name not in self.controls:
                raise ValueError(f"Unknown control {name!r} (known: {', '.join(self.controls)}).")
            out[name] = self.controls[name].check(value)
        return out


_DEFAULT: Vocabulary | None = None


def default() -> Vocabulary:
    """The vocabulary this package was built with (vocabulary.json), loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Vocabulary.load()
    return _DEFAULT
