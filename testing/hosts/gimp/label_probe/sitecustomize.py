"""Read what a GIMP plug-in's dialog shows, without a hook in the plug-in: this folder goes on
the PYTHONPATH of a GIMP under test (harness.label_env), so every Python GIMP starts imports
this first. Once that Python has imported GTK, a timer on GTK's own main loop writes the texts
of its windows' mapped labels to $SB_LABELS_OUT/labels-PID.json four times a second.
GIMP's batch interpreter never shows a window, so only the plug-in's dialog writes a file.
"""

import json
import os
import sys
import threading
import time

OUT = os.environ.get("SB_LABELS_OUT")
PERIOD_MS = 250


def texts(widget, found):
    from gi.repository import Gtk

    if isinstance(widget, Gtk.Label) and widget.get_mapped():
        found.append(widget.get_text())
    if isinstance(widget, Gtk.Container):
        widget.forall(texts, found)
    return found


def dump():
    from gi.repository import Gtk

    found = []
    for window in Gtk.Window.list_toplevels():
        texts(window, found)
    if found:
        path = os.path.join(OUT, f"labels-{os.getpid()}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(found, out)
        os.replace(path + ".tmp", path)
    return True  # GLib calls again


def wait_for_gtk():
    while "gi.repository.Gtk" not in sys.modules:
        time.sleep(0.1)
    from gi.repository import GLib

    GLib.timeout_add(PERIOD_MS, dump)  # GLib's timers may be added from any thread


if OUT:
    threading.Thread(target=wait_for_gtk, daemon=True).start()
