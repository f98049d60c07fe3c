"""The GIMP dialog's server panel: a GTK view of the shared `ServerWatch` (Krita's dialog has a
Qt one). An expander whose title is the server's state; inside, the command that starts this
machine's server (with a file picker), a studio server's endpoint and token, Start / Stop /
Open log / Refresh, the log's path and the last error in words.

A GLib timer calls the watch's `tick` while it waits for something, so the dialog never
blocks on the network. The token is never saved: it is used for this run only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gi
from stylebridge_wire import server_process
from stylebridge_wire.server_watch import POLL_S, ServerWatch

gi.require_version("Gtk", "3.0")
from gi.repository import Gio, GLib, Gtk  # noqa: E402


class ServerPanel:
    """``widget``: what the dialog packs. ``start(command)``: how a server is started."""

    def __init__(
        self, command: str, endpoint: str, start: Callable[[str], Any] = server_process.start
    ) -> None:
        self.watch = ServerWatch(server_process.GIMP_FLATPAK, self._redraw, start)
        self._timer: int | None = None
        self.widget = Gtk.Expander()
        self.widget.set_use_markup(False)
        grid = Gtk.Grid(row_spacing=4, column_spacing=6, margin_start=12, margin_top=4)
        self.widget.add(grid)

        self.command = _entry(command, "The command Start runs (recorded by `stylebridge install`)")
        browse = Gtk.Button(label="…")
        browse.connect("clicked", lambda _b: self._browse_command())
        self.endpoint = _entry(endpoint, "A studio server, e.g. tcp://gpu-box:47474")
        self.endpoint.set_placeholder_text("this machine's server (its discovery file)")
        self.endpoint.connect("changed", lambda _e: self._redraw())
        self.token = _entry("", "With an endpoint: the server's token (never saved)")
        self.token.set_visibility(False)
        self.token.set_placeholder_text("with an endpoint: the server's token")
        self.error = _label("")
        self.log = _label(str(server_process.log_path()))
        self.log.set_selectable(True)

        buttons = Gtk.Box(spacing=6)
        self.start_button = Gtk.Button(label="Start")
        self.stop_button = Gtk.Button(label="Stop")
        self.log_button = Gtk.Button(label="Open log")
        self.refresh_button = Gtk.Button(label="Refresh")
        for button, action in (
            (self.start_button, self.start_server),
            (self.stop_button, self.stop_server),
            (self.log_button, self.open_log),
            (self.refresh_button, self.check),
        ):
            button.connect("clicked", lambda _b, act=action: act())
            buttons.pack_start(button, False, False, 0)

        for row, (title, *widgets) in enumerate(
            (
                ("Command", self.command, browse),
                ("Endpoint", self.endpoint),
                ("Token", self.token),
                ("Log", self.log),
                ("", self.error),
                ("", buttons),
            )
        ):
            grid.attach(_label(title), 0, row, 1, 1)
            for column, widget in enumerate(widgets, start=1):
                grid.attach(widget, column, row, 2 if len(widgets) == 1 else 1, 1)
        self._redraw()

    # ------------------------------------------------------------------ actions
    def values(self) -> tuple[str, str, str]:
        """The command, the endpoint and the token, as typed."""
        return (self.command.get_text().strip(), self.endpoint.get_text().strip(),
                self.token.get_text().strip())  # fmt: skip

    def check(self) -> None:
        self._take_fields()
        self.watch.check()

    def start_server(self) -> None:
        self.watch.start(self.command.get_text())

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
        self.widget.set_label(watch.state)
        # a server that is not there is when the painter needs the panel
        if not watch.ready and watch.error and not self.widget.get_expanded():
            self.widget.set_expanded(True)
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

    def _browse_command(self) -> None:
        chooser = Gtk.FileChooserDialog(
            title="The stylebridge program", action=Gtk.FileChooserAction.OPEN
        )
        chooser.add_buttons("_Cancel", Gtk.ResponseType.CANCEL, "_Open", Gtk.ResponseType.ACCEPT)
        try:
            if chooser.run() == Gtk.ResponseType.ACCEPT and chooser.get_filename():
                self.command.set_text(server_process.command_for(chooser.get_filename()))
        finally:
            chooser.destroy()


def _entry(text: str, tooltip: str) -> Gtk.Entry:
    entry = Gtk.Entry(text=text, hexpand=True)
    entry.set_tooltip_text(tooltip)
    return entry


def _label(text: str) -> Gtk.Label:
    label = Gtk.Label(label=text, xalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    return label
