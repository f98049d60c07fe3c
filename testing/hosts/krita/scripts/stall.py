"""No freeze: a whole job on a 12-megapixel linear-light 16-bit layer, through the real plug-in
and a real server, while a 10 ms heartbeat timer records the longest time Krita's event loop
went without running it, and in which phase of the job (the run's status line) that was;
the gaps of Krita's own refresh of the canvas (host.refresh) are told apart.

The layer's profile is not sRGB, so Krita converts it to float sRGB on the way out and back on
the way in: the slowest path the plug-in has. A short time budget keeps the server's part brief;
the plug-in's part (read, convert, send 192 MB, receive, convert, write) is the whole layer's.
"""

import os
import runpy
import struct
import time

from krita import Krita

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))

LINEAR = "sRGB-elle-V2-g10.icc"
HEARTBEAT_MS = 10
REFRESH = "Krita's refresh"  # the phase of host.refresh: Krita recomposing the image


def ramps(width, height):
    """Opaque 16-bit BGRA ramps: one row built in Python, repeated."""
    row = []
    for x in range(width):
        v = round(65535 * x / (width - 1))
        row += [32768, 65535 - v, v, 65535]
    return struct.pack(f"<{len(row)}H", *row) * height


class Heartbeat:
    """The longest gap between a timer's ticks, and the job phase it fell in."""

    def __init__(self, QtCore):
        self.phase = "starting"
        self.longest, self.longest_phase, self.ticks = 0.0, "", 0
        self.longest_other, self.longest_other_phase = 0.0, ""  # outside Krita's refresh
        self.refreshed = False  # the next gap is host.refresh's
        self.gaps = []  # (gap, phase, when) over 100 ms, for the report
        self._last = self.started = time.monotonic()
        self.timer = QtCore.QTimer()
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self):
        now = time.monotonic()
        gap, self._last = now - self._last, now
        self.ticks += 1
        phase, self.refreshed = (REFRESH if self.refreshed else self.phase), False
        if gap > 0.1:
            self.gaps.append((round(gap, 3), phase, round(now - self.started, 2)))
        if gap > self.longest:
            self.longest, self.longest_phase = gap, phase
        if phase != REFRESH and gap > self.longest_other:
            self.longest_other, self.longest_other_phase = gap, phase

    def reset(self):
        self._last = self.started = time.monotonic()


def watch(beat, started):
    """Name the job's phases for the heartbeat and time Krita's refreshes, by wrapping the
    plug-in's own functions (its status line says the rest). Returns (phases, refreshes,
    raw errors), filled as the job runs."""
    import stylebridge_krita.host as host
    import stylebridge_krita.runner as runner

    phases, refreshes, raw = [], [], []

    def phase(text):
        beat.phase = text
        if not phases or phases[-1][1] != text:
            phases.append((round(time.monotonic() - started, 2), text))

    shown, written, refresh = (
        host.ResultLayer.preview_steps,
        host.ResultLayer.finish_steps,
        host.refresh,
    )

    def preview_steps(layer, frame):
        phase("a preview frame")
        yield from shown(layer, frame)
        phase("the server works")

    def finish_steps(layer, result):
        phase("writing the bands")
        return (yield from written(layer, result))

    def timed_refresh(document):
        beat.refreshed = True
        took = refresh(document)
        refreshes.append(round(took, 3))
        return took

    described = runner.describe
    runner.describe = lambda exc, *a: (raw.append(repr(exc)), described(exc, *a))[1]
    host.ResultLayer.preview_steps, host.ResultLayer.finish_steps = preview_steps, finish_steps
    host.refresh = timed_refresh
    return phase, phases, refreshes, raw


def main():
    from stylebridge_krita.api import active_document_and_node
    from stylebridge_krita.host import capture_steps
    from stylebridge_krita.options import Options
    from stylebridge_krita.qt import QtCore
    from stylebridge_krita.runner import StyleRun
    from stylebridge_krita.stylebridge_wire import Client

    width, height = (int(v) for v in os.environ.get("KRITA_STALL_SIZE", "4000x3000").split("x"))
    app = Krita.instance()
    doc = app.createDocument(width, height, "stall", "RGBA", "U16", LINEAR, 72.0)
    app.activeWindow().addView(doc)
    layer = doc.rootNode().childNodes()[0]
    layer.setPixelData(ramps(width, height), 0, 0, width, height)
    doc.refreshProjection()
    doc.waitForDone()
    common["activate"](doc, layer)

    beat = Heartbeat(QtCore)
    outcome = {}
    loop = QtCore.QEventLoop()
    started = time.monotonic()
    phase, phases, refreshes, raw = watch(beat, started)
    beat.reset()
    # what stylize_active_layer does, with the status line watched from the start
    options = Options(["starry_night"], None, "fast", {"time_budget": 1.0}, "layer").check()
    doc, node = active_document_and_node()
    run = StyleRun(capture_steps(doc, node, options.source), options, Client())
    run.status.connect(phase)
    run.progress.connect(lambda _p: phase("the server works"))
    run.finished.connect(lambda node: (outcome.update(node=node.name()), loop.quit()))
    run.failed.connect(lambda message: (outcome.update(error=message), loop.quit()))
    run.cancelled.connect(lambda: (outcome.update(error="cancelled"), loop.quit()))
    run.start()
    call = time.monotonic() - started  # start runs the job's first piece
    QtCore.QTimer.singleShot(600_000, loop.quit)
    if not run.ended:
        loop.exec()
    beat.timer.stop()
    return {
        "size": [width, height],
        "outcome": outcome,
        "raw_error": raw,
        "seconds": time.monotonic() - started,
        "first_call": call,
        "longest_gap": beat.longest,
        "longest_phase": beat.longest_phase,
        "longest_other": beat.longest_other,
        "longest_other_phase": beat.longest_other_phase,
        "refreshes": refreshes,
        "ticks": beat.ticks,
        "other_gaps": [g for g in beat.gaps if g[1] != REFRESH][:20],
        "phases": phases,
        "layers": common["names"](doc),
    }
