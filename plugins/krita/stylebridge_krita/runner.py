"""One style-transfer job, driven from Qt's event loop so that Krita stays responsive.

A `QTimer` polls the non-blocking client every `TICK_MS`; nothing here waits on the network.
The dialog and `stylize_active_layer` both use `StyleRun`: the same path for both.
"""

from __future__ import annotations

import time
from typing import Any

from . import styles as style_files
from .host import Capture, ResultLayer
from .options import PREVIEW_INTERVAL, Options
from .qt import QtCore, pyqtSignal, slot
from .stylebridge_wire import Client, ClientError, Image

TICK_MS = 50
CANCEL_GRACE = 10.0  # s to wait for the server's "cancelled" before closing the connection


def describe(exc: BaseException) -> str:
    """A one-line message for the artist (server errors name the field at fault)."""
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:]


def style_title(names: list[str]) -> str:
    return " + ".join(style_files.resolve(n).title for n in names)


class StyleRun(QtCore.QObject):
    """Submit ``capture`` with ``options``; show previews; put the result in as one layer.

    Signals: ``progress(event dict)``, ``finished(node)``, ``cancelled()``, ``failed(message)``;
    exactly one of the last three, once.
    """

    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    cancelled = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, capture: Capture, options: Options, client: Client) -> None:
        super().__init__()
        self.capture = capture
        self.options = options.check()
        self.client = client
        self.layer: ResultLayer | None = None
        self.job: Any = None
        self.ended = False
        self._cancel_deadline: float | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        """Send the job and add the preview layer; errors end the run with ``failed``."""
        try:
            loaded: list[Image] = [
                style_files.load(style_files.resolve(n)) for n in self.options.styles
            ]
            self.job = self.client.submit(
                self.capture.content,
                loaded,
                preset=self.options.preset,
                style_weights=self.options.weights,
                mask=self.capture.mask,
                preview=PREVIEW_INTERVAL,
                on_progress=self.progress.emit,
                on_preview=self._on_preview,
                **self.options.job_controls(),
            )
            self.layer = ResultLayer(
                self.capture, style_title(self.options.styles), self.options.strength
            )
        except (ClientError, ValueError, OSError) as exc:
            self._end(self.failed, describe(exc))
            return
        self._timer.start()

    @slot
    def cancel(self) -> None:
        """Stop the server job and remove the preview at once; the reply is awaited quietly."""
        if self.ended:
            return
        if self.job is not None:
            self.job.cancel()
        self._cancel_deadline = time.monotonic() + CANCEL_GRACE
        self._end(self.cancelled)

    def report_error(self, text: str) -> None:
        """An exception inside a slot ends the run with ``failed`` (see qt.slot)."""
        self._end(self.failed, text)

    def _on_preview(self, frame: Image, _event: dict[str, Any]) -> None:
        if self.layer is not None and not self.ended:
            self.layer.show_preview(frame)

    @slot
    def _tick(self) -> None:
        if self._cancel_deadline is not None:  # cancelled: drain until the server confirms
            self._drain()
            return
        try:
            if self.layer is not None and not self.layer.alive():
                self.job.cancel()
                self._cancel_deadline = time.monotonic() + CANCEL_GRACE
                self._end(self.failed, "The preview layer was removed, so the job was cancelled.")
                return
            if not self.job.poll(0):
                return
        except ClientError as exc:
            self._end(self.failed, describe(exc))
            return
        except Exception as exc:  # a host error inside a preview: never a traceback to the artist
            self._end(self.failed, describe(exc))
            return
        job = self.job
        if job.error is not None:
            self._end(self.failed, describe(job.error))
        elif job.cancelled:
            self._end(self.cancelled)
        else:
            try:
                node = self.layer.finish(job.result)
            except (ValueError, ClientError) as exc:
                self._end(self.failed, describe(exc))
                return
            self.layer = None  # it is the result now: _end must not discard it
            self._end(self.finished, node)

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
            self._timer.start()  # keep draining the cancel reply
        signal.emit(*args)
