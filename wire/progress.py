"""Progress as both plug-ins show it: the step, the time left. Standard library only."""

from __future__ import annotations

from .messages import Progress


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


def about(seconds: float) -> str:
    """A time estimate as a painter reads it: ``40 s``, ``2 min 30 s``, ``12 min``, ``1 h 05
    min``, rounded to what an estimate can promise (5 s under a minute, 10 s under 10 minutes,
    else whole minutes)."""
    grain = 5 if seconds < 60 else 10 if seconds < 600 else 60
    rounded = max(grain, grain * round(seconds / grain))
    if 60 <= rounded < 3600 and rounded % 60 == 0:
        return f"{rounded // 60} min"
    return format_seconds(rounded)


def step_text(event: Progress | None) -> str:
    """``step 12/60, 40 s left`` from a progress event (empty before the first)."""
    if event is None:
        return ""
    parts = []
    if event.step is not None and event.total_steps is not None and event.total_steps > 0:
        parts.append(f"step {event.step}/{event.total_steps}")
    if event.eta is not None:
        parts.append(f"{format_seconds(event.eta)} left")
    return ", ".join(parts)
