"""Runs in a GIMP root's own Python and GTK, under an Xvfb: the GIMP dialog's server panel
(gimp_server_panel.py from the installed plug-in folder) in a window, its buttons clicked as a
painter would: Refresh with no server, Start with $SB_PANEL_COMMAND, then Stop.

Writes $SB_PANEL_OUT/panel.json: what the panel showed after each click.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.environ["SB_PANEL_PLUGIN"])  # as GIMP runs the plug-in: its own folder

import gi

gi.require_version("Gtk", "3.0")
import gimp_server_panel  # noqa: E402
from gi.repository import GLib, Gtk  # noqa: E402


def pump_until(done, timeout):
    """Run GTK's main loop (the panel's GLib timer ticks there) until ``done``."""
    context, deadline = GLib.MainContext.default(), time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        context.iteration(False)
        time.sleep(0.01)
    return done()


def seen(panel):
    return {
        "title": panel.state.get_text(),
        "expanded": panel.details.get_expanded(),
        "error": panel.error.get_text(),
        "log": panel.log.get_text(),
        "start": panel.start_button.get_sensitive(),
        "stop": panel.stop_button.get_sensitive(),
    }


def main():
    panel = gimp_server_panel.ServerPanel(["stylebridge", "serve"], "")
    window = Gtk.Window(title="stylebridge panel")
    window.add(panel.widget)
    window.show_all()
    shown = {}
    panel.refresh_button.clicked()
    pump_until(lambda: not panel.watch.busy, 10)
    shown["down"] = seen(panel)
    panel.program.set_text(os.environ["SB_PANEL_COMMAND"].split()[0])  # under Connection...
    panel.start_button.clicked()
    shown["starting"] = seen(panel)
    shown["came_up"] = pump_until(lambda: panel.watch.ready, 150)
    shown["ready"] = seen(panel)
    panel.stop_button.clicked()
    pump_until(lambda: "stopped" in panel.state.get_text(), 30)
    shown["stopped"] = seen(panel)
    panel.close()
    window.destroy()
    with open(os.path.join(os.environ["SB_PANEL_OUT"], "panel.json"), "w") as out:
        json.dump(shown, out)


main()
