"""Long work in slices, so that Krita never stalls on a large layer.

Reading a 12-megapixel layer, converting it between colour profiles (Krita's own LittleCMS, on
its UI thread) and writing the result back took 3 to 6 s in one piece. The plug-in now does
such work as a generator that yields between pieces: a band of rows at a time, sized by the
time the last band took (`Bands`). The job runner's timer runs pieces for at most `SLICE_S`,
then lets Krita's event loop run (`run_slice`); scripts and tests run them all at once
(`run_to_end`). Pure Python.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
Work = Generator[None, None, T]  # yields between pieces, returns its value

SLICE_S = 0.04  # pieces run back to back for at most this long before the event loop runs
BAND_S = 0.05  # what one band's work should take
FIRST_BAND_PIXELS = 1 << 16  # the first band, before any band was timed
MOST_BAND_PIXELS = 1 << 22  # a band's largest size: bounds the copies a band makes


class Bands:
    """The rows of a ``height`` x ``width`` area in bands of ``(top, rows)``; after each
    band's work the caller reports its time (`took`), and the next band is sized to take
    about BAND_S: small where Krita converts colours, large where it only copies.

    ``step``: bands are whole multiples of it (but the last). Krita converts whole 64 x 64
    tiles, so a 1-row band costs as much as a 64-row one (measured on a 4000 px wide layer:
    93 ms and 146 ms); without whole tile rows a slow conversion shrank the bands to one row
    each and a 12-megapixel layer took 300 s to read instead of 7."""

    def __init__(
        self, height: int, width: int, most_rows: int | None = None, step: int = 1
    ) -> None:
        self.height, self.width, self.step = height, width, max(1, step)
        self.most = max(1, min(most_rows or height, MOST_BAND_PIXELS // max(1, width)))
        self.rows = self._clamp(FIRST_BAND_PIXELS // max(1, width))

    def _clamp(self, rows: int) -> int:
        rows = max(self.step, rows - rows % self.step)
        return max(1, min(self.most, rows))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        top = 0
        while top < self.height:
            rows = min(self.rows, self.height - top)
            yield top, rows
            top += rows

    def took(self, seconds: float, rows: int) -> None:
        """The band of ``rows`` took ``seconds``: size the next one."""
        self.rows = self._clamp(round(rows * BAND_S / max(seconds, 1e-4)))


def run_slice(work: Work[T], budget: float = SLICE_S) -> tuple[bool, T | None]:
    """Run pieces of ``work`` for at most ``budget`` s: (True, its value) once it has ended,
    else (False, None)."""
    deadline = time.monotonic() + budget
    while True:
        try:
            next(work)
        except StopIteration as end:
            return True, end.value
        if time.monotonic() >= deadline:
            return False, None


def run_to_end(work: Work[T]) -> T:
    """Every piece of ``work`` at once (scripts, tests, small images); its value."""
    while True:
        try:
            next(work)
        except StopIteration as end:
            return end.value


def timed(bands: Bands, rows: int, started: float) -> None:
    """Report a band's time since ``started`` (``time.monotonic``) to ``bands``."""
    bands.took(time.monotonic() - started, rows)
