"""The plug-in's preferences: the artist's last choices and the server command, kept in Krita's
own settings file (kritarc), or in a dict in tests."""

from __future__ import annotations

from typing import Any

GROUP = "stylebridge"


class Prefs:
    """String settings by key; ``backend`` None keeps them in memory (tests, scripting)."""

    def __init__(self, backend: Any = None) -> None:
        self._backend = backend  # krita.Krita.instance(): readSetting / writeSetting
        self._memory: dict[str, str] = {}

    @classmethod
    def krita(cls) -> Prefs:
        from krita import Krita

        return cls(Krita.instance())

    def get(self, key: str, default: str = "") -> str:
        if self._backend is None:
            return self._memory.get(key, default)
        return self._backend.readSetting(GROUP, key, default)

    def set(self, key: str, value: str) -> None:
        if self._backend is None:
            self._memory[key] = value
        else:
            self._backend.writeSetting(GROUP, key, value)

    def recent_styles(self) -> list[str]:
        return [p for p in self.get("recent_styles").split("\n") if p]

    def remember_styles(self, paths: list[str], keep: int) -> None:
        recent = list(dict.fromkeys([*paths, *self.recent_styles()]))[:keep]
        self.set("recent_styles", "\n".join(recent))
