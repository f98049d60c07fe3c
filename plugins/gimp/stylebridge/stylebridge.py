#!/usr/bin/env python3
"""stylebridge for GIMP 3: neural style transfer in Filters > Artistic, and in the PDB.

Procedure ``plug-in-stylebridge`` (an image procedure on the selected drawables). Each drawable
is read through GEGL as float, sent with the style image(s) and the selection to the warm
stylebridge server, and its result becomes a new layer right above it (same offsets, named
after the style, transparent outside the selection). All result layers are added at the end
in one undo group, so an error or a missing server leaves the image untouched.

This file is the thin edge that talks to Gimp, Gegl and GimpUi; the logic lives in
``stylebridge_gimp`` and the server protocol in the vendored ``stylebridge_wire``, both next
to this file. Cancelling from GIMP's progress bar makes GIMP kill this process; the server then
cancels the job of the vanished connection.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the vendored bridge and the logic module live next to this file

import gi  # noqa: E402
import stylebridge_gimp as sg  # noqa: E402
from stylebridge_wire import (  # noqa: E402
    Client,
    ClientError,
    Image,
    catalogue,
    server_process,
    vocabulary,
)
from stylebridge_wire.messages import Progress  # noqa: E402
from stylebridge_wire.pixels import is_blank  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

RW = GObject.ParamFlags.READWRITE
STYLES_DIR = os.path.join(HERE, "styles")
VOCABULARY = vocabulary.default()  # the engine's presets and controls (core/settings.py)


# ============================================================================ registration


def _choice(items: dict[str, str]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for number, (nick, label) in enumerate(items.items()):
        choice.add(nick, number, label, "")
    return choice


def _builtin_choice() -> tuple[Gimp.Choice, str]:
    builtins = catalogue.builtin_styles(STYLES_DIR)
    items = {key: style.title for key, style in builtins.items()}
    if not items:  # a broken install: the argument still exists, the run explains
        items = {sg.DEFAULT_BUILTIN: "The Starry Night (not installed)"}
    default = sg.DEFAULT_BUILTIN if sg.DEFAULT_BUILTIN in items else next(iter(items))
    return _choice(items), default


def add_arguments(procedure: Gimp.Procedure, vocab: vocabulary.Vocabulary = VOCABULARY) -> None:
    """The styles, then the preset and every dialog control of the vocabulary, then whether
    to start a server that is not running."""
    procedure.add_file_argument(
        "style-file",
        "Style _image",
        "A painting or photo whose style to transfer (any image GIMP opens); "
        "none: the built-in painting below",
        Gimp.FileChooserAction.OPEN,
        True,
        None,
        RW,
    )
    builtins, default = _builtin_choice()
    procedure.add_choice_argument(
        "builtin-style",
        "_Built-in painting",
        "The painting used when no style image is given",
        builtins,
        default,
        RW,
    )
    procedure.add_string_argument(
        "more-styles",
        "_More style images",
        f"Further style image paths to blend in, one per line or separated by {os.pathsep!r}",
        "",
        RW,
    )
    presets = {name: p.label for name, p in vocab.presets.items()}
    procedure.add_choice_argument(
        "preset",
        "_Quality preset",
        "How hard the optimiser works",
        _choice(presets),
        vocab.default_preset,
        RW,
    )
    for control in vocab.dialog_controls():
        name = sg.argument_name(control)
        if control.choices is not None:
            procedure.add_choice_argument(
                name, control.label, control.help, _choice(control.choices), control.default, RW
            )
            continue
        low, high = sg.argument_range(control)
        label = control.label + (" (0: preset)" if control.zero_means_preset else "")
        add = procedure.add_double_argument if control.type is float else procedure.add_int_argument
        add(name, label, control.help, low, high, control.dialog_default, RW)
    # last: scripts that pass the arguments by position keep working
    procedure.add_boolean_argument(
        sg.START_SERVER,
        "S_tart the server if none is running",
        "Start this machine's stylebridge server with the command `stylebridge install` "
        "recorded, and wait for it (else fail at once)",
        True,
        RW,
    )
    # the server panel's settings: saved with the last values, never passed by position
    procedure.add_string_aux_argument(
        sg.SERVER_COMMAND,
        "Server command",
        "The command that starts this machine's server (empty: the one `stylebridge install` "
        "recorded)",
        "",
        RW,
    )
    procedure.add_string_aux_argument(
        sg.ENDPOINT,
        "Server endpoint",
        "A studio server's endpoint, e.g. tcp://gpu-box:47474 (empty: this machine's server)",
        "",
        RW,
    )


class StyleBridge(Gimp.PlugIn):
    def do_set_i18n(self, name: str) -> tuple[bool, str | None, str | None]:
        return False, None, None

    def do_query_procedures(self) -> list[str]:
        return [sg.PROCEDURE]

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        procedure.set_menu_label(sg.MENU_LABEL)
        procedure.add_menu_path(sg.MENU_PATH)
        procedure.set_documentation(
            "Repaint layers in the style of a painting (neural style transfer)",
            "Sends each selected layer, the style image(s) and the selection to the stylebridge "
            "server (start it with: stylebridge serve) and adds each result as a new layer "
            "directly above its layer, named after the style and transparent outside the "
            "selection; the new layers end up selected. All of it is one undo step. Fails "
            "with a message, leaving the image untouched, when the server is not running.",
            name,
        )
        procedure.set_attribution("stylebridge", "MIT licence", "2025")
        add_arguments(procedure)
        return procedure


# ===================================================================================== run


def run(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    data: Any,
) -> Gimp.ValueArray:
    server = server_choice(config)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        server = show_dialog(procedure, config)
        if server is None:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        styles, args = read_config(config)
        targets = [Target.of(image, d) for d in check_drawables(image, drawables)]
        results = stylize(targets, styles, args, config.get_property(sg.START_SERVER), server)
        add_result_layers(image, results, catalogue.title(styles), args.opacity())
    except Exception as exc:  # every failure becomes a message, never a traceback
        calling = isinstance(exc, sg.PluginError) and exc.calling
        status = Gimp.PDBStatusType.CALLING_ERROR if calling else Gimp.PDBStatusType.EXECUTION_ERROR
        return procedure.new_return_values(status, GLib.Error(sg.describe_error(exc)))
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def read_config(config: Gimp.ProcedureConfig) -> tuple[list[catalogue.Style], sg.ProcedureArgs]:
    file = config.get_property("style-file")
    styles = sg.resolve_styles(
        file.get_path() if file is not None else None,
        config.get_property("more-styles"),
        config.get_property("builtin-style"),
        catalogue.builtin_styles(STYLES_DIR),
    )
    values = {
        c.name: config.get_property(sg.argument_name(c)) for c in VOCABULARY.dialog_controls()
    }
    return styles, sg.ProcedureArgs(config.get_property("preset"), values).check(VOCABULARY)


def server_choice(config: Gimp.ProcedureConfig, token: str = "") -> sg.ServerChoice:
    """The saved server settings (the dialog's panel sets them) and the panel's token."""
    return sg.ServerChoice(
        (config.get_property(sg.SERVER_COMMAND) or "").strip(),
        (config.get_property(sg.ENDPOINT) or "").strip(),
        token.strip(),
    )


def check_drawables(image: Gimp.Image, drawables: list[Gimp.Drawable]) -> list[Gimp.Drawable]:
    """The drawables, if every one is a pixel layer of a supported image; else a clear error
    before anything is sent."""
    if image is None or not drawables:
        raise sg.PluginError("Select at least one layer to stylise.", calling=True)
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise sg.PluginError(
            "Indexed images are not supported; convert the image to RGB first "
            "(Image > Mode > RGB).",
            calling=True,
        )
    for drawable in drawables:
        name = drawable.get_name()
        if not drawable.is_layer():
            raise sg.PluginError(
                f"{name!r} is a channel or a layer mask; select the layer itself.", calling=True
            )
        if drawable.is_group():
            raise sg.PluginError(
                f"{name!r} is a layer group; select the layers inside it.", calling=True
            )
    return drawables


# ================================================================================== pixels


@dataclass
class Target:
    """One drawable to stylise: where it is, the box to send, its layout."""

    drawable: Gimp.Drawable
    name: str
    size: tuple[int, int]
    offsets: tuple[int, int]
    area: sg.WorkArea
    layout: sg.Layout

    @classmethod
    def of(cls, image: Gimp.Image, drawable: Gimp.Drawable) -> Target:
        name = drawable.get_name()
        size = (drawable.get_width(), drawable.get_height())
        _, ox, oy = drawable.get_offsets()
        selection = None
        if not Gimp.Selection.is_empty(image):
            _, _, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
            selection = (x1, y1, x2, y2)
        area = sg.work_area(size, (ox, oy), selection, f"the layer {name!r}")
        layout = sg.layout_for(image.get_base_type() == Gimp.ImageBaseType.GRAY)
        return cls(drawable, name, size, (ox, oy), area, layout)

    def content(self) -> Image:
        _, _, w, h = self.area.box
        data = read_buffer(self.drawable.get_buffer(), self.area.box, self.layout.babl)
        image = Image(w, h, self.layout.channels, self.layout.dtype, data)
        if is_blank(image):
            raise sg.PluginError(f"The layer {self.name!r} is empty where it would be stylised.")
        return image

    def mask(self, image: Gimp.Image) -> Image | None:
        if not self.area.masked:
            return None
        box = self.area.image_box(self.offsets)
        data = read_buffer(image.get_selection().get_buffer(), box, sg.MASK_FORMAT)
        mask = Image(box[2], box[3], 1, "float32", data)
        if is_blank(mask):
            raise sg.PluginError(f"The selection is empty over the layer {self.name!r}.")
        return mask


def read_buffer(buffer: Gegl.Buffer, box: tuple[int, int, int, int], babl: str) -> bytes:
    """Pixels of ``box`` in ``babl`` format; outside the buffer (a layer beyond the canvas
    against the selection) reads as zero."""
    rect = Gegl.Rectangle.new(*box)
    return bytes(buffer.get(rect, 1.0, babl, Gegl.AbyssPolicy.NONE))


def load_style(style: catalogue.Style) -> Image:
    """A style image through GIMP's own loaders, at most MAX_STYLE_SIDE px, as 8-bit RGB."""
    try:
        loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(style.path))
    except GLib.Error as exc:
        raise sg.PluginError(f"Cannot open the style image {style.path!r}: {exc.message}") from None
    if loaded is None:
        raise sg.PluginError(f"Cannot open the style image {style.path!r}.")
    try:
        width, height = catalogue.fitted_size(loaded.get_width(), loaded.get_height())
        if (width, height) != (loaded.get_width(), loaded.get_height()):
            loaded.scale(width, height)
        layer = loaded.flatten()
        data = read_buffer(layer.get_buffer(), (0, 0, width, height), sg.STYLE_FORMAT)
        return Image(width, height, 3, "uint8", data)
    finally:
        loaded.delete()


# ================================================================================= server


def stylize(
    targets: list[Target],
    styles: list[catalogue.Style],
    args: sg.ProcedureArgs,
    start_server: bool,
    server: sg.ServerChoice,
) -> list[tuple[Target, Image]]:
    """Every target's result, one job at a time, before the image is touched."""
    title = catalogue.title(styles)
    Gimp.progress_init(sg.progress_text(None, 0, len(targets), title))
    # a server that answers (started here if need be), before anything is read; a studio's
    # endpoint is somebody else's to start
    client = sg.connect(
        server.client_maker(Client),
        server_process.start if start_server and server.local else None,
        server.start_command(),
        on_wait=Gimp.progress_set_text,
    )
    try:
        style_images = [load_style(style) for style in styles]
        image = targets[0].drawable.get_image()
        results = []
        for index, target in enumerate(targets):
            progress = ProgressBar(index, len(targets), title)
            content, mask = target.content(), target.mask(image)
            job = client.submit(
                content,
                style_images,
                preset=args.preset,
                mask=mask,
                **args.controls(VOCABULARY),
            )
            results.append((target, checked(target, wait(job, progress))))
        return results
    finally:
        client.close()


class ProgressBar:
    """GIMP's progress bar for job ``index`` of ``count``, updated a few times a second."""

    def __init__(self, index: int, count: int, title: str) -> None:
        self.index, self.count, self.title = index, count, title
        self._shown: tuple[str, float] | None = None
        self._last = 0.0

    def show(self, event: Progress | None, position: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        text = sg.progress_text(event, self.index, self.count, self.title, position)
        fraction = sg.progress_fraction(event, self.index, self.count)
        if (text, fraction) != self._shown:
            self._shown = (text, fraction)
            Gimp.progress_set_text(text)
            Gimp.progress_update(fraction)


def wait(job: Any, progress: ProgressBar) -> Image:
    """Poll ``job`` (at least every POLL_INTERVAL s, so heartbeats are answered) to its end."""
    while not job.poll(sg.POLL_INTERVAL):
        progress.show(job.progress, job.position)
    if job.error is not None:
        raise job.error
    if job.cancelled or job.result is None:
        raise ClientError("the server cancelled the job (was it stopped?)")
    return job.result


# ================================================================================= results


def add_result_layers(
    image: Gimp.Image, results: list[tuple[Target, Image]], name: str, opacity: float = 100.0
) -> None:
    """One new layer per result, right above its drawable, at ``opacity`` (the strength), all
    in one undo group."""
    with_alpha = (
        Gimp.ImageType.GRAYA_IMAGE
        if image.get_base_type() == Gimp.ImageBaseType.GRAY
        else Gimp.ImageType.RGBA_IMAGE
    )
    layers = []
    image.undo_group_start()
    try:
        for target, result in results:
            layer = Gimp.Layer.new(
                image, name, *target.size, with_alpha, opacity, Gimp.LayerMode.NORMAL
            )
            layer.set_offsets(*target.offsets)
            layer.fill(Gimp.FillType.TRANSPARENT)
            write_result(layer, target, result)
            drawable = target.drawable
            image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
            layers.append(layer)
        image.set_selected_layers(layers)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()


def checked(target: Target, result: Image) -> Image:
    """``result`` if it fits ``target``'s box and layout, before anything is written: GEGL
    would take bytes of another size or dtype without a word."""
    _, _, w, h = target.area.box
    layout = target.layout
    got = (result.width, result.height, result.channels, result.dtype)
    if got != (w, h, layout.channels, layout.dtype):
        raise ClientError(
            f"the server answered {result.width}x{result.height}x{result.channels} "
            f"{result.dtype}, expected {w}x{h}x{layout.channels} {layout.dtype}"
        )
    return result


def write_result(layer: Gimp.Layer, target: Target, result: Image) -> None:
    x, y, w, h = target.area.box
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(x, y, w, h), target.layout.babl, result.data)
    buffer.flush()
    layer.update(x, y, w, h)


# ================================================================================== dialog


def show_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig) -> sg.ServerChoice | None:
    """GIMP's procedure dialog for the arguments, with the server panel on top; the server
    to use, or None when the user cancels."""
    gi.require_version("GimpUi", "3.0")
    import gimp_server_panel
    from gi.repository import GimpUi

    GimpUi.init(sg.PROCEDURE)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, sg.DIALOG_TITLE)
    saved = server_choice(config)
    panel = gimp_server_panel.ServerPanel(saved.start_command(), saved.endpoint)
    frames = sg.dialog_frames(VOCABULARY)
    for frame, title, arguments in frames:
        dialog.fill_box(f"{frame}-box", arguments)
        dialog.get_label(f"{frame}-title", title, False, False)
        dialog.fill_frame(f"{frame}-frame", f"{frame}-title", False, f"{frame}-box")
    dialog.fill([f"{frame}-frame" for frame, _, _ in frames])
    area = dialog.get_content_area()
    area.pack_start(panel.widget, False, False, 0)
    area.reorder_child(panel.widget, 0)
    panel.widget.show_all()
    panel.check()
    try:
        if not dialog.run():
            return None
        command, endpoint, token = panel.values()
        # the detected command is not saved: an upgrade's new record then takes effect
        recorded = command == server_process.default_command()
        config.set_property(sg.SERVER_COMMAND, "" if recorded else command)
        config.set_property(sg.ENDPOINT, endpoint)
        return server_choice(config, token)
    finally:
        panel.close()
        dialog.destroy()


if __name__ == "__main__":
    Gimp.main(StyleBridge.__gtype__, sys.argv)
