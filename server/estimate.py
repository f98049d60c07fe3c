"""How long a job will take on this server, before it is sent: a cost model per preset.

A job's work is read from its plan (core/plan.py): each stage's cost in working-size steps (the
upper stages' tiles of a large layer included) times the working size's megapixels, plus a
fixed share per optimiser step that small layers do not shrink (the network's and the line
search's own overhead; measured on 2 CPU cores: a step at 128 px cost 0.56 of one at 384 px,
where pixels alone would say 0.11). Each preset has its own rate, seconds per unit of that work
(its optimiser, precision and terms differ), measured on this machine:

- a first guess from a tiny probe job of that preset, run through the job board the first
  time a client asks for an estimate the model cannot give yet;
- then every job that ends moves the rate toward what it measured, by an exponential average
  weighed by the job's size (a tiny job barely moves it; a busier machine shows within a few
  jobs).

The rates are kept per device in the cache folder (``costs.json``), so a restarted server knows
them at once. Thread-safe: the socket thread asks and registers, the worker's thread reports.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylebridge.core.plan import plan_job
from stylebridge.core.request import JobRequest
from stylebridge.core.settings import PRESETS, Settings, make_settings

COSTS_FILE = "costs.json"
# A step's work that does not shrink with the picture, in megapixels of working size (fitted to
# fast at 128, 256 and 384 px on 2 CPU cores: per-step seconds 1.75, 2.5, 3.1 under load)
STEP_OVERHEAD_MP = 0.1
LEARNING_RATE = 0.5  # how far one job of the preset's usual size moves its rate
PROBE_SIDE = 192  # the probe: a small synthetic picture and style ...
PROBE_STEPS = 3  # ... a few steps of the preset
# basis of an estimate: what the rate came from
MEASURED, PROBED, MEASURING = "jobs", "probe", "measuring"


def work_units(settings: Settings, height: int, width: int) -> float:
    """The work of a job on a ``height`` x ``width`` content, in megapixel-steps."""
    plan = plan_job(settings, height, width)
    scale = plan.working_side / max(height, width)
    working_mp = round(height * scale) * round(width * scale) / 1e6
    return working_mp * sum(plan.costs) + STEP_OVERHEAD_MP * sum(plan.steps)


@dataclass
class _Pending:
    preset: str
    units: float
    timed: bool  # a time budget: its length says nothing of the rate


class CostModel:
    """Seconds per megapixel-step for each preset, on ``device``; ``path``: where they are
    kept between runs (None: not kept)."""

    def __init__(
        self, device: str, path: Path | None = None, presets: Mapping[str, Settings] = PRESETS
    ) -> None:
        self.device, self.path, self.presets = device, path, presets
        self._lock = threading.Lock()
        self._rates: dict[str, float] = {}
        self._basis: dict[str, str] = {}
        self._probing: set[str] = set()
        self._pending: dict[str, _Pending] = {}  # job id -> what it was expected to take
        self._load()

    # ------------------------------------------------------------------ asking
    def estimate(self, settings: Settings, height: int, width: int) -> tuple[float | None, str]:
        """Seconds the job would take and what that rests on; None (MEASURING) while the
        preset's rate is unknown."""
        work = work_units(settings, height, width)  # refuses a content too thin to see
        if settings.balance <= 0 or settings.strength <= 0:
            return 0.0, MEASURED  # nothing to optimise: the engine returns the content
        with self._lock:
            rate = self._rates.get(settings.preset)
            basis = self._basis.get(settings.preset, MEASURING)
        if rate is None:
            return None, MEASURING
        seconds = rate * work
        if settings.time_budget:
            seconds = min(seconds, settings.time_budget)
        return seconds, basis

    def needs_probe(self, preset: str) -> bool:
        """Whether ``preset`` has no rate yet and no probe on its way (it is then marked as
        probing: the caller submits `probe_request`)."""
        with self._lock:
            if preset in self._rates or preset in self._probing or preset not in self.presets:
                return False
            self._probing.add(preset)
            return True

    # ------------------------------------------------------------------ learning
    def expect(self, job_id: str, settings: Settings, height: int, width: int) -> None:
        """A job was queued: what it should take, to learn from when it ends."""
        if settings.preset not in self.presets or settings.balance <= 0 or settings.strength <= 0:
            return
        pending = _Pending(
            settings.preset, work_units(settings, height, width), bool(settings.time_budget)
        )
        with self._lock:
            self._pending[job_id] = pending

    def finished(self, job_id: str, elapsed: float | None, completed: bool) -> None:
        """A job ended (``completed``: ran to its end, not cancelled or failed)."""
        with self._lock:
            pending = self._pending.pop(job_id, None)
            if pending is None or not completed or pending.timed or not elapsed or elapsed <= 0:
                return
            measured = elapsed / pending.units
            preset = pending.preset
            if preset in self._probing:  # the probe: the first guess
                self._probing.discard(preset)
                self._rates[preset], self._basis[preset] = measured, PROBED
            else:
                usual = work_units(self.presets[preset], 288, 384)
                weight = LEARNING_RATE * min(1.0, pending.units / usual)
                old = self._rates.get(preset, measured)
                self._rates[preset] = old + weight * (measured - old)
                self._basis[preset] = MEASURED
            rates, basis = dict(self._rates), dict(self._basis)
        self._save(rates, basis)

    def forget(self, job_id: str) -> None:
        """A job ended without a result (an error): nothing to learn; a probe may run again."""
        with self._lock:
            pending = self._pending.pop(job_id, None)
            if pending is not None and pending.preset not in self._rates:
                self._probing.discard(pending.preset)

    # ------------------------------------------------------------------ the file
    def _load(self) -> None:
        if self.path is None:
            return
        try:
            kept = json.loads(self.path.read_text(encoding="utf-8")).get(self.device, {})
        except (OSError, ValueError, AttributeError):
            return
        for preset, entry in kept.items() if isinstance(kept, dict) else ():
            rate = entry.get("rate") if isinstance(entry, dict) else None
            if preset in self.presets and isinstance(rate, float) and 0 < rate < 1e6:
                self._rates[preset] = rate
                self._basis[preset] = entry.get("basis") if entry.get("basis") else MEASURED

    def _save(self, rates: dict[str, float], basis: dict[str, str]) -> None:
        if self.path is None:
            return
        try:
            try:
                every = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                every = {}
            if not isinstance(every, dict):
                every = {}
            every[self.device] = {p: {"rate": r, "basis": basis[p]} for p, r in rates.items()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(every, indent=1), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass  # an estimate is a nicety: a read-only cache only means no memory of it


def probe_request(preset: str, presets: Mapping[str, Settings] = PRESETS) -> JobRequest:
    """The probe job of ``preset``: a small synthetic picture and style, a few steps."""
    side = PROBE_SIDE
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    content = np.stack([x, y, (x + y) / 2], -1)
    style = np.stack([np.sin(9 * x) ** 2, np.cos(7 * y) ** 2, (x * y) % 1], -1)
    settings = make_settings(preset, presets=presets, steps=PROBE_STEPS)
    return JobRequest((255 * content).astype(np.uint8), [(255 * style).astype(np.uint8)], settings)
