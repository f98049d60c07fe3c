"""The Krita dialog under PyQt6 offscreen, its slots fed what a hostile server could make them
do: run by tests/plugins/test_krita_plugin.py in a subprocess, since PyQt6 aborts the whole
process (exit status 134) when an exception leaves a slot.

    python -m tests.support.krita_hostile_slots PYKRITA_FOLDER

Prints one JSON object: what the dialog shows afterwards.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from testing.plugins import load_krita


def main(folder: str) -> None:
    os.environ.update(STYLEBRIDGE_QT="6", QT_QPA_PLATFORM="offscreen")
    sbk = load_krita(Path(folder))
    qt = sbk.qt
    app = qt.QtWidgets.QApplication([])  # noqa: F841  (kept alive for the widgets)
    dialog = sbk.dialog.StyleDialog(lambda source: None, sbk.prefs.Prefs())
    wire_messages = sys.modules["stylebridge_krita.stylebridge_wire.messages"]

    class Events(qt.QtCore.QObject):
        progress = qt.pyqtSignal(object)

    events = Events()
    events.progress.connect(dialog._on_progress)
    # a number that got past the reading of replies: round(inf) raises inside the slot
    events.progress.emit(wire_messages.Progress("j", 1, 10, 1, 1, 64, 64, {}, 1.0, float("inf")))
    after_progress = dialog.message.text()
    # the server panel's timer: its tick raising is told in the panel, not fatal
    panel = dialog.server
    panel.watch.tick = lambda: 1 / 0
    timer = qt.QtCore.QTimer()
    timer.timeout.connect(qt.guarded(panel.watch.tick, panel.show_error))
    timer.timeout.emit()
    # server text with HTML in it is shown as written
    dialog.show_message("<b>bold</b> <img src='x'>", error=True)
    plain = qt.Qt.TextFormat.PlainText
    formats = [label.textFormat() == plain for label in (dialog.message, panel.state, panel.error)]
    print(
        json.dumps(
            {
                "after_progress": after_progress,
                "panel_error": panel.error.text(),
                "plain_labels": formats,
                "message": dialog.message.text(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
