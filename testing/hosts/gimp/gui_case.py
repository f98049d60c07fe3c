"""Runs inside GIMP 3's GUI under Xvfb (python-fu-eval batch): the undo and cancel scenario of
test_gimp_e2e.py. The test presses Ctrl+Z and clicks GIMP's Cancel button with xdotool while
this script waits for it; the two talk through files in $STYLEBRIDGE_GIMP_GUI:

1. image A (two layers, shown in a display): plug-in-stylebridge on both layers at once, then
   a-ran.json; the test presses Ctrl+Z once and writes a-undone; then a-after.json.
2. image B: b-started, then a long plug-in run that the test cancels from GIMP's progress
   (the statusbar's Cancel button); then b-after.json with the run's status.
3. image C: an interactive run: the dialog shows, the test clicks OK; c-after.json. Then a
   with-last-vals run on image D that names other arguments; d-after.json shows which
   values it used.
"""

import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

OUT = os.environ["STYLEBRIDGE_GIMP_GUI"]


def path(name):
    return os.path.join(OUT, name)


def write(name, value):
    with open(path(name) + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path(name) + ".tmp", path(name))


def wait(name, timeout=120):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path(name)) and time.monotonic() < deadline:
        time.sleep(0.1)


def image_with_layers(count):
    image = Gimp.Image.new(96, 64, Gimp.ImageBaseType.RGB)
    layers = []
    for n in range(count):
        layer = Gimp.Layer.new(
            image, f"layer {n}", 96, 64, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL
        )
        image.insert_layer(layer, None, 0)
        layer.fill(Gimp.FillType.WHITE)
        image.select_ellipse(Gimp.ChannelOps.REPLACE, 10 + 20 * n, 8, 40, 40)
        Gimp.context_set_foreground(Gegl.Color.new("#2050c0" if n else "#c04020"))
        layer.edit_fill(Gimp.FillType.FOREGROUND)
        layers.append(layer)
    Gimp.Selection.none(image)
    image.clean_all()
    return image, layers


def stylise(image, layers, run_mode=Gimp.RunMode.NONINTERACTIVE, **args):
    proc = Gimp.get_pdb().lookup_procedure("plug-in-stylebridge")
    config = proc.create_config()
    config.set_property("run-mode", run_mode)
    config.set_property("image", image)
    config.set_core_object_array("drawables", layers)
    for name, value in args.items():
        config.set_property(name, value)
    result = proc.run(config)
    error = result.index(1) if result.length() > 1 else None
    return result.index(0).value_nick, error


def names(image):
    return [layer.get_name() for layer in image.get_layers()]


def main():
    image, layers = image_with_layers(2)
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    status, error = stylise(image, layers, size=64, steps=4)
    write("a-ran.json", {"status": status, "error": error, "layers": names(image)})
    wait("a-undone")
    write("a-after.json", {"layers": names(image)})
    display.delete()

    image_b, layers_b = image_with_layers(1)
    Gimp.Display.new(image_b)
    Gimp.displays_flush()
    write("b-started", True)
    status, error = stylise(image_b, layers_b, size=96, steps=50000)
    write("b-after.json", {"status": status, "error": error, "layers": names(image_b)})

    image_c, layers_c = image_with_layers(1)
    args = {"builtin-style": "shipwreck", "size": 64, "steps": 4}
    status, error = stylise(image_c, layers_c, Gimp.RunMode.INTERACTIVE, **args)
    write("c-after.json", {"status": status, "error": error, "layers": names(image_c)})
    image_d, layers_d = image_with_layers(1)
    args = {"builtin-style": "the_scream", "size": 0, "steps": 0}
    status, error = stylise(image_d, layers_d, Gimp.RunMode.WITH_LAST_VALS, **args)
    write("d-after.json", {"status": status, "error": error, "layers": names(image_d)})
    for each in Gimp.get_images():
        each.clean_all()


main()
