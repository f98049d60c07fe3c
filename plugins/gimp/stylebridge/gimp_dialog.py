"""The plug-in's dialog (a GimpUi edge): GIMP's procedure dialog for the arguments, grouped as
Style, Result and Advanced (an expander), the server line on top, and under the settings how
long the job would take here (the server's estimate for these layers and choices).

The estimate and the server line are polled by GLib timers: the dialog never waits on the
network. Imported only when the plug-in runs interactively.
"""

from __future__ import annotations

from typing import Any

import gi
import gimp_server_panel
import stylebridge_gimp as sg
from stylebridge_wire import server_process, vocabulary
from stylebridge_wire.estimate_watch import EstimateWatch
from stylebridge_wire.server_watch import POLL_S

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GLib, Gtk  # noqa: E402

VOCABULARY = vocabulary.default()
QUESTION_MS = 500  # how often the dialog looks whether the estimate's question has changed
AS_THE_PRESET = "as the preset"  # what a control's 0 shows where 0 means the preset's


def show(
    procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, boxes: list[Any]
) -> sg.ServerChoice | None:
    """Run the dialog for ``boxes`` (each layer's box to stylise: x, y, width, height); the
    server to use, or None when the painter cancels."""
    GimpUi.init(sg.PROCEDURE)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, sg.DIALOG_TITLE)
    saved = (config.get_property(sg.SERVER_COMMAND) or "").strip()
    endpoint = (config.get_property(sg.ENDPOINT) or "").strip()
    panel = gimp_server_panel.ServerPanel(server_process.saved_command(saved), endpoint)
    frames = sg.dialog_frames(VOCABULARY)
    for frame, title, arguments in frames:
        dialog.fill_box(f"{frame}-box", arguments)
        dialog.get_label(f"{frame}-title", title, False, False)
        if frame == "advanced":
            dialog.fill_expander(f"{frame}-frame", f"{frame}-title", False, f"{frame}-box")
        else:
            dialog.fill_frame(f"{frame}-frame", f"{frame}-title", False, f"{frame}-box")
    dialog.fill([f"{frame}-frame" for frame, _, _ in frames])
    for control in VOCABULARY.dialog_controls():
        if control.zero_means_preset:
            _show_zero_as(dialog, sg.argument_name(control), "no limit" if control.optional
                          else AS_THE_PRESET)  # fmt: skip
    area = dialog.get_content_area()
    area.pack_start(panel.widget, False, False, 0)
    area.reorder_child(panel.widget, 0)
    estimate = Estimate(panel, config, boxes)
    area.pack_start(estimate.label, False, False, 6)
    panel.widget.show_all()
    estimate.label.show()
    panel.check()
    try:
        if not dialog.run():
            return None
        command, endpoint, token = panel.values()
        # the installer's command is not saved: an upgrade's new record then takes effect
        config.set_property(sg.SERVER_COMMAND, server_process.setting_for(command))
        config.set_property(sg.ENDPOINT, endpoint)
        return sg.ServerChoice(command, endpoint, token)
    finally:
        estimate.close()
        panel.close()
        dialog.destroy()


def _show_zero_as(dialog: Any, name: str, text: str) -> None:
    """The spin button of argument ``name`` shows ``text`` instead of 0 (GTK reads the text
    back as no number and keeps 0)."""
    try:
        widget = dialog.get_widget(name, GimpUi.LabelSpin)
        spin = widget.get_spin_button()
    except (AttributeError, TypeError, GLib.Error):
        return  # another widget: the argument's help says what 0 means

    def output(button: Any) -> bool:
        if button.get_value() != 0:
            return False
        button.set_text(text)
        return True

    spin.connect("output", output)
    spin.set_numeric(False)
    spin.set_width_chars(max(spin.get_width_chars(), len(text)))  # else GTK cuts it short
    spin.update()


class Estimate:
    """The estimate's line: asks the server again whenever the painter's choices change."""

    def __init__(
        self, panel: gimp_server_panel.ServerPanel, config: Gimp.ProcedureConfig, boxes: list
    ) -> None:
        self.panel, self.config = panel, config
        self.sizes = [(box[2], box[3]) for box in boxes]
        self.label = Gtk.Label(label="", xalign=0.0)
        self.label.set_line_wrap(True)
        self.watch = EstimateWatch(panel.watch.client, self._redraw)
        self._ready = False
        self._poll: int | None = None
        self._question = GLib.timeout_add(QUESTION_MS, self._ask)
        self._ask()

    def _ask(self) -> bool:
        watch = self.panel.watch
        if watch.ready != self._ready:
            self._ready = watch.ready
            self.watch.restart()
        if watch.ready:
            try:
                args = read_choices(self.config)
            except sg.PluginError:
                return True
            what = "this layer" if len(self.sizes) == 1 else f"these {len(self.sizes)} layers"
            self.watch.want(self.sizes, args.preset, args.controls(VOCABULARY), what)
        return True  # GLib calls again

    def _redraw(self) -> None:
        self.label.set_text(self.watch.text)
        if self.watch.busy and self._poll is None:
            self._poll = GLib.timeout_add(round(POLL_S * 1000), self._tick)

    def _tick(self) -> bool:
        self.watch.tick()
        if self.watch.busy:
            return True
        self._poll = None
        return False

    def close(self) -> None:
        for source in (self._question, self._poll):
            if source is not None:
                GLib.source_remove(source)
        self._question = self._poll = None
        self.watch.close()


def read_choices(config: Gimp.ProcedureConfig) -> sg.ProcedureArgs:
    """The dialog's current preset and controls (the styles do not change the time)."""
    values = {
        c.name: config.get_property(sg.argument_name(c)) for c in VOCABULARY.dialog_controls()
    }
    return sg.ProcedureArgs(config.get_property("preset"), values).check(VOCABULARY)
