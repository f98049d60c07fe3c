"""Runs inside GIMP 3 (python-fu-eval): times the plug-in's own pixel edge (`read_buffer` and the
GEGL write of `write_result`) on a large RGBA layer at 16-bit integer, perceptual and linear,
in GIMP's sRGB and in Display P3. For benchmarks/gimp_colour.py: $STYLEBRIDGE_TIMING names
{"size": [w, h], "p3": ICC path, "out": JSON path}; the plug-in is the one installed in
$GIMP3_DIRECTORY."""

import importlib.util
import json
import os
import struct
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

CASES = [("U16_NON_LINEAR", None), ("U16_LINEAR", None), ("U16_NON_LINEAR", "p3")]


def plugin_edge():
    path = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "stylebridge", "stylebridge.py")
    spec = importlib.util.spec_from_file_location("stylebridge_edge", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main():
    with open(os.environ["STYLEBRIDGE_TIMING"]) as f:
        spec = json.load(f)
    width, height = spec["size"]
    edge = plugin_edge()
    babl = edge.sg.RGB_LAYOUT.babl
    row = b"".join(struct.pack("<4f", x / width, 1 - x / width, 0.5, 1) for x in range(width))
    report = {}
    for precision, icc in CASES:
        image = Gimp.Image.new_with_precision(
            width, height, Gimp.ImageBaseType.RGB, getattr(Gimp.Precision, precision)
        )
        if icc:
            image.set_color_profile(
                Gimp.ColorProfile.new_from_file(Gio.File.new_for_path(spec[icc]))
            )
        layer = Gimp.Layer.new(
            image, "l", width, height, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
        )
        image.insert_layer(layer, None, 0)
        buffer = layer.get_buffer()
        rect = Gegl.Rectangle.new(0, 0, width, height)
        buffer.set(rect, babl, row * height)
        buffer.flush()
        start = time.perf_counter()
        data = edge.read_buffer(layer.get_buffer(), (0, 0, width, height), babl)
        read = time.perf_counter() - start
        start = time.perf_counter()
        out = layer.get_buffer()
        out.set(rect, babl, data)  # what write_result does
        out.flush()
        write = time.perf_counter() - start
        report[f"{precision} {icc or 'sRGB'}"] = {"out": read, "in": write}
        image.delete()
    with open(spec["out"], "w") as f:
        json.dump(report, f)


main()
