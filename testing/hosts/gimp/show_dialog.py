"""Runs inside GIMP 3's GUI (python-fu-eval batch): opens $STYLEBRIDGE_GIMP_IMAGE in a display
and calls plug-in-stylebridge interactively, so its dialog shows (scripts/gimp-screenshot.sh).
Writes $STYLEBRIDGE_GIMP_DIALOG_OUT/dialog-done.json with the run's status and the layers once
the dialog is closed.
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

OUT = os.environ["STYLEBRIDGE_GIMP_DIALOG_OUT"]


def main():
    image = Gimp.file_load(
        Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.environ["STYLEBRIDGE_GIMP_IMAGE"])
    )
    Gimp.Display.new(image)
    Gimp.displays_flush()
    proc = Gimp.get_pdb().lookup_procedure("plug-in-stylebridge")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", image.get_selected_drawables())
    for name, value in json.loads(os.environ.get("STYLEBRIDGE_GIMP_DIALOG_ARGS", "{}")).items():
        config.set_property(name, value)
    result = proc.run(config)
    error = result.index(1) if result.length() > 1 else None
    done = {
        "status": result.index(0).value_nick,
        "error": error,
        "layers": [layer.get_name() for layer in image.get_layers()],
    }
    with open(os.path.join(OUT, "dialog-done.json"), "w") as f:
        json.dump(done, f)
    image.clean_all()


main()
