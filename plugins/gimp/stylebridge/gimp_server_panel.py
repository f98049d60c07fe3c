"""The GIMP dialog's server line: a GTK view of the shared `ServerWatch` (Krita's dialog has a
Qt one). One line with the server's state and device, Start and Stop; behind a
"Connection..." expander, the program Start runs (with a file picker), a studio server's
endpoint and token, the log with Open log, and Refresh. The last error shows under the line.

A GLib timer calls the watch's `tick` while it waits for something, so the dialog never
blocks on the network. The token is never saved: it is used for this run only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gi
from stylebridge_wire import server_process
from stylebridge_wire.painter_errors import CONNECTION, GIMP
from stylebridge_wire.server_watch import POLL_S, ServerWatch

gi.require_version("Gtk", "3.0")
from gi.repository import Gio, GLib, Gtk  # noqa: E402


class ServerPanel:
    """``widget``: what the dialog packs. ``command``: the argv Start runs; ``start(command)``:
    how a server is started."""

    def __init__(
        self,
        command: list[str],
        endpoint: str,
        start: Callable[[list[str]], Any] = server_process.start,
    ) -> None:
        self.watch = ServerWatch(server_process.GIMP_FLATPAK, self._redraw, start, GIMP)
        self._command = list(command)
        self._timer: int | None = None
        self.widget = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4, margin_bottom=6)

        line = Gtk.Box(spacing=6)
        self.state = _label("")
        self.state.set_hexpand(True)
        self.start_button = Gtk.Button(label="Start")
        self.stop_button = Gtk.Button(label="Stop")
        line.pack_start(self.state, True, True, 0)
        line.pack_start(self.start_button, False, False, 0)
        line.pack_start(self.stop_button, False, False, 0)
        self.widget.pack_start(line, False, False, 0)
        self.error = _label("")
        self.widget.pack_start(self.error, False, False, 0)

        self.details = Gtk.Expander(label=CONNECTION)
        self.details.set_use_markup(False)
        grid = Gtk.Grid(row_spacing=4, column_spacing=6, margin_start=12, margin_top=4)
        self.details.add(grid)
        self.program = _entry(self._command[0], "The stylebridge program Start runs "
                              "(`stylebridge install` records it)")  # fmt: skip
        self.program.connect("changed", lambda _e: self._program_edited())
        browse = Gtk.Button(label="…")
        browse.connect("clicked", lambda _b: self._browse_program())
        self.endpoint = _entry(endpoint, "A studio server, e.g. tcp://gpu-box:47474")
        self.endpoint.set_placeholder_text("this machine's server")
        self.endpoint.connect("changed", lambda _e: self._redraw())
        self.token = _entry("", "With an endpoint: the server's token (never saved)")
        self.token.set_visibility(False)
        self.token.set_placeholder_text("with an endpoint: the server's token")
        self.log = _label(str(server_process.log_path()))
        self.log.set_selectable(True)
        buttons = Gtk.Box(spacing=6)
        self.log_button = Gtk.Button(label="Open log")
        self.refresh_button = Gtk.Button(label="Refresh")
        buttons.pack_start(self.log_button, False, False, 0)
        buttons.pack_start(self.refresh_button, False, False, 0)
        for button, action in (
            (self.start_button, self.start_server),
            (self.stop_button, self.stop_server),
            (self.log_button, self.open_log),
            (self.refresh_button, self.check),
        ):
            button.connect("clicked", lambda _b, act=action: act())
        for row, (title, *widgets) in enumerate(
            (
                ("Server program", self.program, browse),
                ("Endpoint", self.endpoint),
                ("Token", self.token),
                ("Log", self.log),
                ("", buttons),
            )
        ):
            grid.attach(_label(title), 0, row, 1, 1)
            for column, widget in enumerate(widgets, start=1):
                grid.attach(widget, column, row, 2 if len(widgets) == 1 else 1, 1)
        self.widget.pack_start(self.details, False, False, 0)
        self._redraw()

    # ------------------------------------------------------------------ actions
    def values(self) -> tuple[list[str], str, str]:
        """The command (an argv), the endpoint and the token, as chosen."""
        return (list(self._command), self.endpoint.get_text().strip(),
                self.token.get_text().strip())  # fmt: skip

    def check(self) -> None:
        self._take_fields()
        self.watch.check()

    def start_server(self) -> None:
        self.watch.start(list(self._command))

    def stop_server(self) -> None:
        self._take_fields()
        self.watch.stop()

    def open_log(self) -> None:
        if self.watch.missing_log() is not None:
            return
        try:
            uri = GLib.filename_to_uri(str(server_process.log_path()), None)
            Gio.AppInfo.launch_default_for_uri(uri, None)
        except GLib.Error as exc:
            self.watch.error = f"Cannot open the log: {exc.message}"
            self._redraw()

    def close(self) -> None:
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        self.watch.close()

    # ------------------------------------------------------------------ the watch's view
    def _take_fields(self) -> None:
        _, self.watch.endpoint, self.watch.token = self.values()

    def _redraw(self) -> None:
        watch = self.watch
        watch.endpoint = self.endpoint.get_text().strip()
        self.state.set_text(watch.state)
        self.error.set_text(watch.error)
        self.error.set_visible(bool(watch.error))
        self.start_button.set_sensitive(watch.can_start)
        self.stop_button.set_sensitive(watch.can_stop)
        if watch.busy and self._timer is None:
            self._timer = GLib.timeout_add(round(POLL_S * 1000), self._tick)

    def _tick(self) -> bool:
        self.watch.tick()
        if self.watch.busy:
            return True  # GLib calls again
        self._timer = None
        return False

    def _program_edited(self) -> None:
        self._command = [self.program.get_text().strip(), *self._command[1:]]

    def _browse_program(self) -> None:
        chooser = Gtk.FileChooserDialog(
            title="The stylebridge program", action=Gtk.FileChooserAction.OPEN
        )
        chooser.add_buttons("_Cancel", Gtk.ResponseType.CANCEL, "_Open", Gtk.ResponseType.ACCEPT)
        try:
            if chooser.run() == Gtk.ResponseType.ACCEPT and chooser.get_filename():
                self._command = server_process.command_for(chooser.get_filename())
                self.program.set_text(self._command[0])
        finally:
            chooser.destroy()


def _entry(text: str, tooltip: str) -> Gtk.Entry:
    entry = Gtk.Entry(text=text, hexpand=True)
    entry.set_tooltip_text(tooltip)
    return entry


def _label(text: str) -> Gtk.Label:
    """A label of plain text (set_text never reads markup), wrapped."""
    label = Gtk.Label(label=text, xalign=0.0)
    label.set_use_markup(False)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    return label
