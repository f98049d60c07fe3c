"""The artist's path: menu action -> dialog says the server is down -> Start -> Apply -> Stop.

$SB_START=1: no server runs and the dialog's Start starts it, with the command of
$SB_SERVER_CMD (written to the settings) or else the one `stylebridge install` recorded; Stop
stops it at the end. Without it a server is already running (on the host, for a Krita whose
Python cannot run this one) and the dialog must find it ready. $SB_SHOTS (optional) receives
screenshots;
$SB_CONTENT (optional) is an image to open instead of the generated test picture.
"""

import os
import runpy

from krita import Krita

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))


def main():
    import stylebridge_krita

    app = Krita.instance()
    start = os.environ.get("SB_START") == "1"
    if os.environ.get("SB_SERVER_CMD"):
        app.writeSetting("stylebridge", "server_command", os.environ["SB_SERVER_CMD"])
    shots = os.environ.get("SB_SHOTS")
    content = os.environ.get("SB_CONTENT")
    if content:
        doc = app.openDocument(content)
        app.activeWindow().addView(doc)
        common["activate"](doc, doc.rootNode().childNodes()[0])
    else:
        doc, _ = common["new_document"](160, 120)
    before = common["names"](doc)

    if shots:  # a tidy picture: Krita on the left, the dialog beside it
        app.activeWindow().qwindow().setGeometry(0, 0, 1200, 1000)  # no window manager here
        common["pump_until"](lambda: True, 1)
    app.action("stylebridge_stylize").trigger()
    dialog = stylebridge_krita.extension.dialog
    common["pump_until"](dialog.isVisible, 10)
    if shots:
        screen = dialog.screen().geometry()
        dialog.move(screen.width() - dialog.width() - 10, 60)
    panel = dialog.server  # its check is polled by a timer: the answer comes while we pump
    common["pump_until"](lambda: "not running" in panel.state.text() or panel.ready, 10)
    down_text = panel.state.text()
    start_enabled = panel.start_button.isEnabled()
    started_in = None
    command = panel.command.text()
    if start:
        panel.start_button.click()
        started_in = common["pump_until"](lambda: "ready" in panel.state.text(), 150)
    dialog.fields["strength"].set(0.85)
    dialog.fields["balance"].set(0.7)
    dialog.fields["size"].set(int(os.environ.get("SB_SIZE", "96")))
    dialog.preset.setCurrentIndex(dialog.preset.findData("fast"))
    progress = []
    dialog.apply_button.click()
    dialog.run.progress.connect(progress.append)
    common["pump_until"](lambda: dialog.run.ended or len(progress) >= 3, 120)
    running_text = dialog.message.text()
    if shots:
        common["pump_until"](lambda: dialog.run.ended or dialog.run.job.latest_preview, 60)
        common["grab_screen"](os.path.join(shots, "krita-dialog.png"))
    common["pump_until"](lambda: dialog.run.ended, 300)
    if shots:
        common["pump_until"](lambda: True, 1)  # let the canvas repaint
        common["grab_screen"](os.path.join(shots, "krita-result.png"))
    ready_text = panel.state.text()
    if start:
        panel.stop_button.click()
        common["pump_until"](lambda: "stopped" in panel.state.text(), 30)
    result = {
        "before": before,
        "after": common["names"](doc),
        "down_text": down_text,
        "start_enabled": start_enabled,
        "started_in": started_in,
        "ready_text": ready_text,
        "command": command,
        "stopped_text": panel.state.text(),
        "log": panel.log.text(),
        "running_text": running_text,
        "progress_events": len(progress),
        "done_text": dialog.message.text(),
        "opacity": dialog.last_node.opacity() if dialog.last_node is not None else None,
        "fields": list(dialog.fields),
        "dialog_controls": [c.name for c in dialog.vocabulary.dialog_controls()],
        "balance_slider": type(dialog.fields["balance"].input).__name__ == "QSlider",
        "saved_strength": app.readSetting("stylebridge", "strength", ""),
        "saved_balance": app.readSetting("stylebridge", "balance", ""),
        "recent": app.readSetting("stylebridge", "recent_styles", ""),
    }
    dialog.close()
    return result
