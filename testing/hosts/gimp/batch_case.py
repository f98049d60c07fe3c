"""Runs inside GIMP 3 (gimp-console, python-fu-eval): build images, call plug-in-stylebridge
through the PDB as any batch script would, and dump what came out for test_gimp_e2e.py.

    gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval \
        -b 'import runpy; runpy.run_path("testing/hosts/gimp/batch_case.py", run_name="__main__")'

``$STYLEBRIDGE_GIMP_CASES`` names a JSON file: {"out": folder, "cases": [case, ...]}. A case:
    name, width, height, base ("rgb"/"gray"), precision (Gimp.Precision name, e.g. U8_NON_LINEAR),
    profile: an ICC file assigned to the image before its layers are written (optional),
    layers: [{name, width, height, offsets, pixels (raw float32 file, R'G'B'A or Y'A)}],
    selected: indexes of the layers handed to the procedure,
    select: {"ellipse": [x, y, w, h], "feather": px} or null,
    args: procedure arguments by name ("style-file", "style-file-2", ... are paths;
    "style-image" a file GIMP opens first, as a painter's open reference), run_mode: a
    Gimp.RunMode name, then: a procedure run next on the layers the first call left selected
    (e.g. plug-in-stylebridge-more-style).
For each case it writes OUT/NAME/report.json (status, error, layers, selected layers, undo
state) and raw float32 dumps: layer-N.raw for each layer in stack order (top first, the
layout's format, the layer's own size), composite.raw (the flattened image, canvas size) and
selection.raw ("Y float", canvas size). A case with "colour": true also gets, for each layer,
layer-N.lab ("CIE Lab alpha float": babl converts from the image's profile) and layer-N.own
(the layer's own format: its precision, in its profile, no conversion), and for each
selected layer engine-N.raw: what the installed plug-in's own edge reads for the server
(`Target.content`), read before the call.
"""

import importlib.util
import json
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402


def fmt_of(base: str) -> str:
    return "Y'A float" if base == "gray" else "R'G'B'A float"


def dump(buffer, width, height, babl, path):
    data = buffer.get(Gegl.Rectangle.new(0, 0, width, height), 1.0, babl, Gegl.AbyssPolicy.NONE)
    with open(path, "wb") as f:
        f.write(bytes(data))


def plugin_edge():
    """The plug-in's stylebridge.py as installed in the profile GIMP runs."""
    path = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "stylebridge", "stylebridge.py")
    spec = importlib.util.spec_from_file_location("stylebridge_edge", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build(case):
    base = case["base"]
    image = Gimp.Image.new_with_precision(
        case["width"],
        case["height"],
        Gimp.ImageBaseType.GRAY if base == "gray" else Gimp.ImageBaseType.RGB,
        getattr(Gimp.Precision, case["precision"]),
    )
    if case.get("profile"):  # assigned, not converted: the layers are written into it below
        profile = Gimp.ColorProfile.new_from_file(Gio.File.new_for_path(case["profile"]))
        if not image.set_color_profile(profile):
            raise RuntimeError(f"GIMP refused the profile {case['profile']}")
    kind = Gimp.ImageType.GRAYA_IMAGE if base == "gray" else Gimp.ImageType.RGBA_IMAGE
    layers = []
    for spec in case["layers"]:
        layer = Gimp.Layer.new(
            image, spec["name"], spec["width"], spec["height"], kind, 100.0, Gimp.LayerMode.NORMAL
        )
        image.insert_layer(layer, None, 0)
        layer.set_offsets(*spec["offsets"])
        with open(spec["pixels"], "rb") as f:
            pixels = f.read()
        buffer = layer.get_buffer()
        rect = Gegl.Rectangle.new(0, 0, spec["width"], spec["height"])
        buffer.set(rect, fmt_of(base), pixels)
        buffer.flush()
        layers.append(layer)
    select = case.get("select")
    if select:
        image.select_ellipse(Gimp.ChannelOps.REPLACE, *select["ellipse"])
        if select.get("feather"):
            Gimp.Selection.feather(image, select["feather"])
    image.clean_all()
    return image, layers


def call(image, drawables, case, procedure="plug-in-stylebridge"):
    pdb = Gimp.get_pdb()
    proc = pdb.lookup_procedure(procedure)
    if proc is None:
        return "MISSING", f"{procedure} is not registered"
    config = proc.create_config()
    config.set_property("run-mode", getattr(Gimp.RunMode, case.get("run_mode", "NONINTERACTIVE")))
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for name, value in (case.get("args", {}) if procedure == "plug-in-stylebridge" else {}).items():
        if name == "style-image":  # the painter's reference, open in GIMP
            value = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(value))
        if name.startswith("style-file"):  # style-file, style-file-2, ...
            value = Gio.File.new_for_path(value) if value else None
        config.set_property(name, value)
    result = proc.run(config)
    status = result.index(0)
    error = None
    if status != Gimp.PDBStatusType.SUCCESS and result.length() > 1:
        error = result.index(1)
    return status.value_nick, error


def report(image, case, status, error, folder):
    base = case["base"]
    layers = []
    for n, layer in enumerate(image.get_layers()):
        _, ox, oy = layer.get_offsets()
        width, height = layer.get_width(), layer.get_height()
        layers.append(
            {
                "name": layer.get_name(),
                "offsets": [ox, oy],
                "width": width,
                "height": height,
                "bpp": layer.get_bpp(),
                "has_alpha": layer.has_alpha(),
                "opacity": layer.get_opacity(),
                "visible": layer.get_visible(),
                "position": image.get_item_position(layer),
            }
        )
        dump(
            layer.get_buffer(), width, height, fmt_of(base), os.path.join(folder, f"layer-{n}.raw")
        )
        if case.get("colour"):
            lab = os.path.join(folder, f"layer-{n}.lab")
            dump(layer.get_buffer(), width, height, "CIE Lab alpha float", lab)
            own = os.path.join(folder, f"layer-{n}.own")
            dump(layer.get_buffer(), width, height, None, own)  # None: the buffer's own format
    width, height = image.get_width(), image.get_height()
    selection = image.get_selection().get_buffer()
    dump(selection, width, height, "Y float", os.path.join(folder, "selection.raw"))
    flat = image.duplicate()
    merged = flat.flatten()
    dump(merged.get_buffer(), width, height, fmt_of(base), os.path.join(folder, "composite.raw"))
    flat.delete()
    info = {
        "status": status,
        "error": error,
        "layers": layers,
        "selected": [layer.get_name() for layer in image.get_selected_layers()],
        "undo_enabled": image.undo_is_enabled(),
        "dirty": image.is_dirty(),
        "precision": image.get_precision().value_nick,
        "profile": image.get_effective_color_profile().get_label(),
    }
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump(info, f, indent=1)


def main():
    with open(os.environ["STYLEBRIDGE_GIMP_CASES"]) as f:
        spec = json.load(f)
    for case in spec["cases"]:
        folder = os.path.join(spec["out"], case["name"])
        os.makedirs(folder, exist_ok=True)
        image, layers = build(case)
        drawables = [layers[i] for i in case["selected"]]
        if case.get("colour"):
            edge = plugin_edge()
            for n, drawable in enumerate(drawables):
                sent = edge.Target.of(image, drawable).content()
                with open(os.path.join(folder, f"engine-{n}.raw"), "wb") as f:
                    f.write(sent.data)
        status, error = call(image, drawables, case)
        if case.get("then") and status == "success":
            status, error = call(image, image.get_selected_layers(), case, case["then"])
        report(image, case, status, error, folder)
        image.delete()


if __name__ == "__main__":
    main()
