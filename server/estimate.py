"""How long a job will take on this server, before it is sent: a cost model per preset.

A job's work is read from its plan (core/plan.py), in two parts with a rate each:

- the working-size stages: each stage's cost in steps times the working size's megapixels,
  plus a fixed share per optimiser step that small layers do not shrink (the network's and the
  line search's own overhead) and a job's setup (its targets, the first pass's warm-up), counted
  as JOB_SETUP_STEPS more working steps;
- the upper stages of a large layer: their tiles' Adam texture steps (the plan's costs, which
  count them in working steps, times the working size's megapixels).

Each preset has its own two rates, seconds per unit of each part (its optimiser, precision and
terms differ), measured on this machine:

- a first guess from a probe job of that preset at its working size, run through the job board
  the first time a client asks for an estimate the model cannot give yet; the upper rate's
  first guess is the working rate times UPPER_RATE_RATIO;
- then every job that ends moves each rate toward what it measured, by an exponential average
  weighed by the job's size (a tiny job barely moves it; a busier machine shows within a few
  jobs) and by the part's share of the time the job was expected to take (a job without upper
  stages teaches the working rate only; a large layer mostly the upper one).

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
from typing import TypeGuard

import numpy as np

from stylebridge.core.plan import plan_job
from stylebridge.core.request import JobRequest
from stylebridge.core.settings import PRESETS, Settings, make_settings

COSTS_FILE = "costs.json"
# A step's work that does not shrink with the picture, in megapixels of working size (fitted to
# fast at 128, 256 and 384 px on 2 CPU cores: per-step seconds 1.75, 2.5, 3.1 under load)
STEP_OVERHEAD_MP = 0.1
# A job's setup before its steps (content and detail targets, recolour, style Grams, the first
# pass's warm-up), in working-size steps: fast at 384x288 on 2 idle CPU cores reached its first
# step 1.30 to 1.62 s after the start, where a step took 0.49 s (2026-12-07)
JOB_SETUP_STEPS = 2.0
# An upper stage's seconds per unit over the working stages': fast on 2 idle CPU cores, its
# working stage 2.4 s a unit, its upper stages 4.0 to 5.0 (640x480: 4.1 to 5.0 s for 1.03
# units; 1600x1200: 14.9 s for 2.96, 25.0 s for 5.55; 2026-12-07). The plan counts them in
# working steps, whose time carries their overhead too, and the units count them by the working
# megapixels alone: at 384x288, (0.11 + STEP_OVERHEAD_MP) / 0.11 = 1.9, as measured
UPPER_RATE_RATIO = 1.9
LEARNING_RATE = 0.5  # how far one job of the preset's usual size moves its rates
USUAL_SIZE = (288, 384)  # a layer of the preset's usual size: (height, width)
PROBE_STEPS = 3  # the probe: a synthetic picture and style at the preset's working size
# basis of an estimate: what the rate came from
MEASURED, PROBED, MEASURING = "jobs", "probe", "measuring"


@dataclass(frozen=True)
class Work:
    """A job's work in megapixel-steps: at the working size, and in the upper stages."""

    working: float
    upper: float

    @property
    def total(self) -> float:
        return self.working + self.upper


@dataclass(frozen=True)
class Rates:
    """Seconds per unit of each part of a job's work."""

    working: float
    upper: float

    def seconds(self, work: Work) -> float:
        return self.working * work.working + self.upper * work.upper


def work_units(settings: Settings, height: int, width: int) -> Work:
    """The work of a job on a ``height`` x ``width`` content."""
    plan = plan_job(settings, height, width)
    scale = plan.working_side / max(height, width)
    working_mp = round(height * scale) * round(width * scale) / 1e6
    stages = len(plan.steps)  # the costs of the working stages, then of the upper ones
    return Work(
        working_mp * (sum(plan.costs[:stages]) + JOB_SETUP_STEPS)
        + STEP_OVERHEAD_MP * (sum(plan.steps) + JOB_SETUP_STEPS),
        working_mp * sum(plan.costs[stages:]),
    )


def learn(rates: Rates, work: Work, elapsed: float, weight: float) -> Rates:
    """``rates`` moved toward a job's ``elapsed`` seconds for ``work``: the job's ratio of
    measured to expected time, shared between the parts by their shares of the expected time
    (``weight``: how far a part that was all of it would move)."""
    expected = rates.seconds(work)
    error = elapsed / expected - 1
    working_share = rates.working * work.working / expected
    return Rates(
        rates.working * (1 + weight * working_share * error),
        rates.upper * (1 + weight * (1 - working_share) * error),
    )


@dataclass
class _Pending:
    preset: str
    work: Work
    timed: bool  # a time budget: its length says nothing of the rate


class CostModel:
    """The rates of each preset, on ``device``; ``path``: where they are kept between runs
    (None: not kept)."""

    def __init__(
        self, device: str, path: Path | None = None, presets: Mapping[str, Settings] = PRESETS
    ) -> None:
        self.device, self.path, self.presets = device, path, presets
        self._lock = threading.Lock()
        self._rates: dict[str, Rates] = {}
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
        seconds = rate.seconds(work)
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
            preset, work = pending.preset, pending.work
            if preset not in self._rates:  # the first guess: the probe (or a job before it)
                rate = elapsed / (work.working + UPPER_RATE_RATIO * work.upper)
                self._rates[preset] = Rates(rate, UPPER_RATE_RATIO * rate)
                self._basis[preset] = PROBED if preset in self._probing else MEASURED
                self._probing.discard(preset)
            else:
                usual = work_units(self.presets[preset], *USUAL_SIZE).total
                weight = LEARNING_RATE * min(1.0, work.total / usual)
                self._rates[preset] = learn(self._rates[preset], work, elapsed, weight)
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
            if not isinstance(entry, dict) or preset not in self.presets:
                continue
            rate, upper = entry.get("rate"), entry.get("upper")
            if not _kept_rate(rate):
                continue
            if not _kept_rate(upper):  # a file from before the upper rate
                upper = UPPER_RATE_RATIO * rate
            self._rates[preset] = Rates(rate, upper)
            self._basis[preset] = entry.get("basis") if entry.get("basis") else MEASURED

    def _save(self, rates: dict[str, Rates], basis: dict[str, str]) -> None:
        if self.path is None:
            return
        try:
            try:
                every = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                every = {}
            if not isinstance(every, dict):
                every = {}
            every[self.device] = {
                p: {"rate": r.working, "upper": r.upper, "basis": basis[p]}
                for p, r in rates.items()
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(every, indent=1), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass  # an estimate is a nicety: a read-only cache only means no memory of it


def _kept_rate(rate: object) -> TypeGuard[float]:
    return isinstance(rate, float) and 0 < rate < 1e6


def probe_request(preset: str, presets: Mapping[str, Settings] = PRESETS) -> JobRequest:
    """The probe job of ``preset``: a synthetic picture (4:3) and style at the preset's working
    size, a few steps. A smaller one misjudged the rate: its steps' own overhead is a larger
    share of them, and that share changes with the machine's load (fast on 2 CPU cores: a
    192 px step took 0.31 of a 384x288 px one idle, a 128 px one 0.56 of a 384 px one under
    load; its first guess was 31 % high at 640x480, 2026-12-07)."""
    width = presets[preset].size
    height = width * 3 // 4
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / width
    content = np.stack([x, y, (x + y) / 2], -1)
    style = np.stack([np.sin(9 * x) ** 2, np.cos(7 * y) ** 2, (x * y) % 1], -1)
    settings = make_settings(preset, presets=presets, steps=PROBE_STEPS)
    return JobRequest((255 * content).astype(np.uint8), [(255 * style).astype(np.uint8)], settings)
