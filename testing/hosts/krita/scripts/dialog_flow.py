"""The artist's path: menu action -> dialog says the server is down -> Start -> Apply -> Stop.

$SB_START=1: no server runs and the dialog's Start starts it, with the command of
$SB_SERVER_CMD (written to the settings as an argv) or else the one `stylebridge install`
recorded; Stop stops it at the end. $SB_START=apply: the same, but nothing is pressed before
Apply, which starts the server itself. Without it a server is already running (on the host, for
a Krita whose Python cannot run this one) and the dialog must find it ready.
$SB_EXTRAS=1 (issue 28): a reference document open beside the painting is the style, the
time estimate is read once the server is ready, and More style runs the job again.
$SB_SHOTS (optional) receives screenshots;
$SB_CONTENT (optional) is an image to open instead of the generated test picture.
"""

import contextlib
import json
import os
import runpy

from krita import Krita

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))


def main():
    import stylebridge_krita

    app = Krita.instance()
    start = os.environ.get("SB_START") == "1"
    via_apply = os.environ.get("SB_START") == "apply"
    extras = os.environ.get("SB_EXTRAS") == "1"
    if os.environ.get("SB_SERVER_CMD"):
        argv = os.environ["SB_SERVER_CMD"].split()
        app.writeSetting("stylebridge", "server_command", json.dumps(argv))
    if extras:  # a reference the painter keeps open beside the painting
        common["new_document"](80, 60, name="my reference")
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
    command = " ".join(panel.command())
    if start:
        panel.start_button.click()
        started_in = common["pump_until"](lambda: "ready" in panel.state.text(), 150)
    dialog.fields["strength"].set(0.85)
    dialog.fields["balance"].set(0.7)
    dialog.fields["size"].set(int(os.environ.get("SB_SIZE", "96")))
    dialog.preset.setCurrentIndex(dialog.preset.findData("fast"))
    canvas_styles = []
    if extras:
        canvas_styles = [s.title for s in dialog.canvas.styles()]
        reference = next(s for s in dialog.canvas.styles() if s.title == "my reference")
        while dialog.style_table.rowCount():
            dialog.style_table.removeRow(0)
        dialog.add_style(reference)

    def estimated():
        return dialog.estimate.text().startswith("About")

    if shots:  # the picture shows the estimate for these choices
        common["pump_until"](estimated, 60)
    state_before_apply = panel.state.text()
    progress = []
    dialog.apply_button.click()
    started_by_apply = common["pump_until"](lambda: dialog.run is not None, 150)  # via_apply
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
    estimate_text = more = None
    if extras:  # what it came to, in the report even when a wait runs out
        with contextlib.suppress(TimeoutError):
            common["pump_until"](estimated, 60)
        estimate_text = dialog.estimate.text()
        first = dialog.last_node
        more = {"enabled": dialog.more_button.isEnabled(), "first_run": dialog.message.text()}
    if extras and first is not None:
        dialog.more_button.click()
        try:
            common["pump_until"](lambda: dialog.run.ended and dialog.last_node is not first, 90)
        except TimeoutError:
            more["timed_out"] = True
        more.update(
            names=common["names"](doc),
            first_visible=first.visible(),
            last_visible=dialog.last_node.visible(),
            balance=dialog.fields["balance"].value(),
            message=dialog.message.text(),
        )
    if start or via_apply:
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
        "state_before_apply": state_before_apply,
        "started_by_apply": started_by_apply if via_apply else None,
        "canvas_styles": canvas_styles,
        "estimate_text": estimate_text,
        "more": more,
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
