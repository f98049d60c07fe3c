"""One style-transfer job, driven from Qt's event loop so that Krita stays responsive.

The whole job is one generator (`StyleRun._steps`): read the layer band by band, load the
styles, submit, poll the server (previews written band by band), write the result band by band.
A `QTimer` runs it a slice at a time (slices.py): back to back while there is work to do, every
`TICK_MS` while it waits on the server. Nothing here waits on the network. The dialog and
`stylize_active_layer` both use `StyleRun`: the same path for both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Sequence
from typing import Any

from . import styles as style_files
from .host import Capture, ResultLayer
from .options import PREVIEW_INTERVAL, Options
from .qt import QtCore, pyqtSignal, slot
from .slices import SLICE_S, Work
from .stylebridge_wire import Client, ClientError, Image, catalogue
from .stylebridge_wire.painter_errors import KRITA, painter_text

TICK_MS = 50
CANCEL_GRACE = 10.0  # s to wait for the server's "cancelled" before closing the connection
IDLE = object()  # what the job's generator yields while it waits on the server
REFRESH_SHARE = 0.1  # of a job's time, at most, Krita spends frozen showing preview frames
STYLE_AMOUNT = "balance"  # the control a result layer's name and More / Less style are about


def describe(exc: BaseException, endpoint: str = "") -> str:
    """A one-line message for the painter (painter_errors.py says the server's and the
    connection's; the plug-in's own errors are written for painters already)."""
    return painter_text(exc, KRITA, endpoint)


def layer_name(options: Options, styles: Sequence[Any]) -> str:
    """The result layer's name: the style, the preset, the style amount (catalogue.py)."""
    title = " + ".join(style_files.short_title_of(s) for s in styles)
    return catalogue.layer_name(title, options.preset_label(), options.value(STYLE_AMOUNT))


class StyleRun(QtCore.QObject):
    """Capture, submit with ``options``, show previews, put the result in as one layer.

    ``capture``: the capture's work (`host.capture_steps`) or a capture already made (a rerun);
    ``styles``: the style images already loaded (a rerun), else they are loaded from the
    options. Signals: ``status(text)`` (what it is doing, before the server's progress),
    ``progress(Progress)``, ``finished(node)``, ``cancelled()``, ``failed(message)``; exactly
    one of the last three, once.
    """

    status = pyqtSignal(str)
    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    cancelled = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(
        self,
        capture: Work[Capture] | Capture,
        options: Options,
        client: Client,
        styles: list[Image] | None = None,
    ) -> None:
        super().__init__()
        self.options = options.check()
        self.client = client
        self.capture: Capture | None = capture if isinstance(capture, Capture) else None
        self._capture_work = None if isinstance(capture, Capture) else capture
        self.style_images = styles
        self.title = layer_name(self.options, self.options.styles)
        self.layer: ResultLayer | None = None
        self.job: Any = None
        self.notes: list[str] = []
        self.ended = False
        self._frame: Image | None = None  # the newest preview frame not yet shown
        self._next_preview = 0.0  # time.monotonic() before which no frame is shown
        self._cancel_deadline: float | None = None
        self._work: Generator[Any, None, Any] | None = None
        self._ticking = False
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        """Begin: the first piece runs now (a layer that cannot be stylised fails at once),
        the rest from the timer."""
        self._work = self._steps()
        self._timer.start()
        self._tick(0.0)

    @slot
    def cancel(self) -> None:
        """Stop the server job and remove the preview at once; the reply is awaited quietly."""
        if self.ended:
            return
        if self.job is not None:
            self.job.cancel()
        self._cancel_deadline = time.monotonic() + CANCEL_GRACE
        self._end(self.cancelled)

    # ------------------------------------------------------------------ the job, in slices
    def _steps(self) -> Generator[Any, None, Any]:
        if self.capture is None:
            self.status.emit("Reading the layer...")
            assert self._capture_work is not None
            self.capture = yield from self._capture_work
        cap = self.capture
        if self.style_images is None:
            images = []
            for style in self.options.styles:
                images.append(style_files.load_any(style))
                yield
            self.style_images = images
        self.status.emit("Sending the layer to the server...")
        yield
        self.job = self.client.submit(
            cap.content,
            self.style_images,
            preset=self.options.preset,
            style_weights=self.options.weights,
            mask=cap.mask,
            preview=PREVIEW_INTERVAL,
            on_progress=self.progress.emit,
            on_preview=self._on_preview,
            **self.options.job_controls(),
        )
        self.layer = ResultLayer(cap, self.title, self.options.strength)
        yield
        while not self.job.poll(0):
            if not self.layer.alive():
                self.job.cancel()
                self._cancel_deadline = time.monotonic() + CANCEL_GRACE
                raise RunEnded("The preview layer was removed, so the job was cancelled.")
            if self._frame is not None and time.monotonic() >= self._next_preview:
                frame, self._frame = self._frame, None
                yield from self.layer.preview_steps(frame)
                # Krita's refresh freezes it (host.refresh): on a large layer, frames are
                # shown so far apart that it stays frozen at most REFRESH_SHARE of the time
                cost = self.layer.refresh_cost
                self._next_preview = time.monotonic() + cost / REFRESH_SHARE - cost
            yield IDLE
        job = self.job
        if job.error is not None:
            raise job.error
        if job.cancelled:
            raise RunCancelled()
        self.notes = [n for n in (job.info.notes or []) if isinstance(n, str)] if job.info else []
        self.status.emit("Writing the result...")
        layer = self.layer
        node = yield from layer.finish_steps(job.result)
        self.layer = None  # it is the result now: _end must not discard it
        return node

    def _on_preview(self, frame: Image, _event: Any) -> None:
        self._frame = frame  # shown by the job's steps, the newest one only

    def report_error(self, text: str) -> None:
        """An exception inside a slot ends the run with ``failed`` (see qt.slot)."""
        self._end(self.failed, text)

    @slot
    def _tick(self, budget: float = SLICE_S) -> None:
        # a Krita call inside a step may run the event loop (waitForDone does), and with it
        # this timer: the step already running is not entered again
        if self._ticking:
            return
        self._ticking = True
        try:
            self._tick_once(budget)
        finally:
            self._ticking = False

    def _tick_once(self, budget: float) -> None:
        """Run pieces of the job for ``budget`` s (at least one piece)."""
        if self._cancel_deadline is not None and self.ended:  # drain until the server confirms
            self._drain()
            return
        if self._work is None or self.ended:
            return
        deadline = time.monotonic() + budget
        while True:
            try:
                said = next(self._work)
            except StopIteration as end:
                self._end(self.finished, end.value)
                return
            except RunCancelled:
                self._end(self.cancelled)
                return
            except RunEnded as exc:
                self._end(self.failed, str(exc))
                return
            except Exception as exc:  # every failure a message: never a traceback to the artist
                self._end(self.failed, describe(exc, getattr(self.client, "endpoint", "")))
                return
            if self.ended:  # a slot it signalled cancelled the run meanwhile
                return
            if said is IDLE:
                self._timer.setInterval(TICK_MS)
                return
            if time.monotonic() >= deadline:
                self._timer.setInterval(0)
                return

    def _drain(self) -> None:
        try:
            done = self.job is None or self.job.poll(0)
        except ClientError:
            done = True
        if done or time.monotonic() > (self._cancel_deadline or 0):
            self._timer.stop()
            self.client.close()

    def _end(self, signal: Any, *args: Any) -> None:
        if self.ended:
            return
        self.ended = True
        work, self._work = self._work, None
        if work is not None:
            # its converters' scratch documents close (their finally blocks); ended from inside
            # its own step (a signal's slot), it stops there instead
            with contextlib.suppress(ValueError):
                work.close()
        layer, self.layer = self.layer, None
        if layer is not None:
            try:
                layer.discard()
            except Exception as exc:  # never leave the run half-ended over a host hiccup
                args = (describe(exc),) if signal is self.failed else args
        if self._cancel_deadline is None:
            self._timer.stop()
            self.client.close()
        else:
            self._timer.setInterval(TICK_MS)
            self._timer.start()  # keep draining the cancel reply
        signal.emit(*args)


class RunCancelled(Exception):
    """The server ended the job as cancelled."""


class RunEnded(Exception):
    """The run ends early; the message says why."""
