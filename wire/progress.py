"""Progress as both plug-ins show it: the step, the time left. Standard library only."""

from __future__ import annotations

from typing import Any


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fraction(event: dict[str, Any]) -> float:
    """How far a job is, 0..1, from a ``progress`` event (0 before the first)."""
    step, total = event.get("step"), event.get("total_steps")
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return min(1.0, max(0.0, step / total))
    return 0.0


def step_text(event: dict[str, Any]) -> str:
    """``step 12/60, 40 s left`` from a ``progress`` event (empty before the first)."""
    parts = []
    step, total = event.get("step"), event.get("total_steps")
    if isinstance(step, int) and isinstance(total, int) and total > 0:
        parts.append(f"step {step}/{total}")
    eta = event.get("eta")
    if isinstance(eta, (int, float)):
        parts.append(f"{format_seconds(eta)} left")
    return ", ".join(parts)
