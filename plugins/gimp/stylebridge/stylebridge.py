#!/usr/bin/env python3
"""stylebridge for GIMP 3: neural style transfer in Filters > Artistic, and in the PDB.

Procedure ``plug-in-stylebridge`` (an image procedure on the selected drawables). Each drawable
is read through GEGL as float, sent with the style image(s) and the selection to the warm
stylebridge server, and its result becomes a new layer right above it (same offsets, named
after the style, the preset and the style amount, transparent outside the selection). All
result layers are added at the end in one undo group, so an error or a missing server leaves
the image untouched. Each result layer keeps its job (a parasite), so that More Style and Less
Style (``plug-in-stylebridge-more-style``, ``-less-style``) run it again from its source layer
with the style amount moved, the earlier result kept, hidden, to compare.

This file is the thin edge that talks to Gimp and Gegl; the dialog is gimp_dialog.py, the
logic ``stylebridge_gimp`` and the server protocol the vendored ``stylebridge_wire``, all next
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
    procedure.add_image_argument(
        sg.STYLE_IMAGE,
        "Style from an _open image",
        "A picture open in GIMP whose style to transfer (the whole image as you see it); "
        "it takes the place of the style file and the built-in painting",
        True,
        RW,
    )
    builtins, default = _builtin_choice()
    procedure.add_choice_argument(
        sg.BUILTIN_STYLE,
        "_Built-in painting",
        "The painting used when no style image or file is given",
        builtins,
        default,
        RW,
    )
    for n in range(1, sg.STYLE_SLOTS + 1):
        file_name, weight_name = sg.style_slot(n)
        first = n == 1
        procedure.add_file_argument(
            file_name,
            "Style _file" if first else f"Style file {n}",
            "A painting or photo whose style to transfer (any image GIMP opens); none: the "
            "built-in painting"
            if first
            else "Another style to blend in, at its weight",
            Gimp.FileChooserAction.OPEN,
            True,
            None,
            RW,
        )
        procedure.add_double_argument(
            weight_name,
            "Weight" if first else f"Weight {n}",
            "How much of this style goes into the blend, against the others",
            0.0,
            10.0,
            1.0,
            RW,
        )
    presets = {name: p.label for name, p in vocab.presets.items()}
    procedure.add_choice_argument(
        "preset",
        "_Quality",
        "How long the optimiser works: Fast for trying things, Quality for the final picture, "
        "Reference for the original paper's recipe (slow)",
        _choice(presets),
        vocab.default_preset,
        RW,
    )
    for control in vocab.dialog_controls():
        name = sg.argument_name(control)
        label, blurb = sg.argument_label(control), sg.argument_help(control)
        if control.choices is not None:
            procedure.add_choice_argument(
                name, label, blurb, _choice(control.choices), control.default, RW
            )
            continue
        low, high = sg.argument_range(control)
        add = procedure.add_double_argument if control.type is float else procedure.add_int_argument
        add(name, label, blurb, low, high, control.dialog_default, RW)
    # last: scripts that pass the arguments by position keep working
    procedure.add_boolean_argument(
        sg.START_SERVER,
        "S_tart the server if none is running",
        "Start this machine's stylebridge server with the program `stylebridge install` "
        "recorded, and wait for it (else fail at once)",
        True,
        RW,
    )
    # the server panel's settings: saved with the last values, never passed by position
    procedure.add_string_aux_argument(
        sg.SERVER_COMMAND,
        "Server program",
        "The command that starts this machine's server, as a JSON list of its arguments "
        "(empty: the one `stylebridge install` recorded)",
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
        return [sg.PROCEDURE, *sg.RETRIES]

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        retry = sg.RETRIES.get(name)
        procedure = Gimp.ImageProcedure.new(
            self, name, Gimp.PDBProcType.PLUGIN, run if retry is None else run_retry, None
        )
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        procedure.set_menu_label(sg.MENU_LABEL if retry is None else retry[0])
        procedure.add_menu_path(sg.MENU_PATH)  # after the label: GIMP ignores it before
        procedure.set_attribution("stylebridge", "MIT licence", "2025")
        if retry is not None:
            step = retry[1]
            more = "more" if step > 0 else "less"
            procedure.set_documentation(
                f"Style transfer again with {more} style",
                "Runs the job of the selected result layer (a layer Style Transfer made) again "
                f"from its source layer, the style amount moved by {abs(step):g}; the new "
                "layer goes above it, which stays, hidden, to compare.",
                name,
            )
            return procedure
        procedure.set_documentation(
            "Repaint layers in the style of a painting (neural style transfer)",
            "Sends each selected layer, the style image(s) and the selection to the stylebridge "
            "server (started with the program `stylebridge install` recorded when none runs) "
            "and adds each result as a new layer directly above its layer, named after the "
            "style, the preset and the style amount and transparent outside the selection; the "
            "new layers end up selected. All of it is one undo step. Fails with a message, "
            "leaving the image untouched, when no server can be had.",
            name,
        )
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
    try:
        targets = [Target.of(image, d) for d in check_drawables(image, drawables)]
    except Exception as exc:
        return failed(procedure, exc, server)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        import gimp_dialog

        server = gimp_dialog.show(procedure, config, [t.area.box for t in targets])
        if server is None:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        picks, args = read_config(config)
        images = [load_pick(pick, config) for pick in picks]
        results = stylize(targets, images, picks, args, config.get_property(sg.START_SERVER),
                          server)  # fmt: skip
        name = args.layer_name(catalogue.title(picks), VOCABULARY)
        styles = [job(pick, config) for pick in picks]
        records = [sg.job_record(styles, args, t.drawable.get_tattoo()) for t, _, _ in results]
        add_result_layers(image, results, name, args.opacity(), records)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            say_notes(results)
    except Exception as exc:  # every failure becomes a message, never a traceback
        return failed(procedure, exc, server)
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def failed(procedure: Gimp.Procedure, exc: BaseException, server: sg.ServerChoice) -> Any:
    calling = isinstance(exc, sg.PluginError) and exc.calling
    status = Gimp.PDBStatusType.CALLING_ERROR if calling else Gimp.PDBStatusType.EXECUTION_ERROR
    return procedure.new_return_values(status, GLib.Error(sg.describe_error(exc, server.endpoint)))


def run_retry(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    data: Any,
) -> Gimp.ValueArray:
    """More Style / Less Style: each selected result layer's job again from its source layer,
    the style amount moved; the new layer goes above it, and it is hidden."""
    _, step = sg.RETRIES[procedure.get_name()]
    server = sg.ServerChoice()
    try:
        if not drawables:
            raise sg.PluginError("Select a layer that Style Transfer made.", calling=True)
        for previous in drawables:
            parasite = previous.get_parasite(sg.JOB_PARASITE)
            text = bytes(parasite.get_data()).decode() if parasite is not None else None
            retry = sg.Retry.of(text, step, VOCABULARY)
            source = image.get_layer_by_tattoo(retry.source)
            if source is None:
                raise sg.PluginError(
                    "The layer this result was made from is gone: run Style Transfer on it again.",
                    calling=True,
                )
            picks = [pick_of(entry) for entry in retry.styles]
            images = [load_pick(pick, None, entry) for pick, entry in zip(picks, retry.styles)]
            target = Target.of(image, source)
            results = stylize([target], images, picks, retry.args, True, server)
            name = retry.args.layer_name(catalogue.title(picks), VOCABULARY)
            record = sg.job_record(retry.styles, retry.args, retry.source)
            add_result_layers(image, results, name, retry.args.opacity(), [record], previous)
    except Exception as exc:
        return failed(procedure, exc, server)
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def read_config(config: Gimp.ProcedureConfig) -> tuple[list[sg.StylePick], sg.ProcedureArgs]:
    slots = []
    for n in range(1, sg.STYLE_SLOTS + 1):
        file_name, weight_name = sg.style_slot(n)
        file = config.get_property(file_name)
        slots.append((file.get_path() if file is not None else None,
                      config.get_property(weight_name)))  # fmt: skip
    style_image = config.get_property(sg.STYLE_IMAGE)
    picks = sg.resolve_styles(
        slots,
        config.get_property(sg.BUILTIN_STYLE),
        catalogue.builtin_styles(STYLES_DIR),
        None if style_image is None else image_title(style_image),
    )
    values = {
        c.name: config.get_property(sg.argument_name(c)) for c in VOCABULARY.dialog_controls()
    }
    return picks, sg.ProcedureArgs(config.get_property("preset"), values).check(VOCABULARY)


def image_title(image: Gimp.Image) -> str:
    """An open image as a style's title: its file's name without extension, else GIMP's."""
    name = ""
    # GIMP 3.0 gives a loaded image no get_file() in a script; its imported file it keeps
    for getter in ("get_file", "get_imported_file", "get_xcf_file"):
        file = getattr(image, getter, lambda: None)()
        if file is not None and file.get_path():
            name = os.path.basename(file.get_path())
            break
    return os.path.splitext(name)[0].replace("_", " ") or image.get_name()


def job(pick: sg.StylePick, config: Gimp.ProcedureConfig) -> dict[str, Any]:
    """How a result layer's record names one of its styles (`sg.job_record`)."""
    if pick.style is None:
        return {"image": config.get_property(sg.STYLE_IMAGE).get_id(), "weight": pick.weight}
    builtins = catalogue.builtin_styles(STYLES_DIR)
    key = next((k for k, s in builtins.items() if s.path == pick.style.path), None)
    where = {"builtin": key} if key else {"file": pick.style.path}
    return {**where, "weight": pick.weight}


def pick_of(entry: dict[str, Any]) -> sg.StylePick:
    """A record's style again (an open image is read from the image it names)."""
    weight = float(entry.get("weight", 1.0))
    if "image" in entry:
        return sg.StylePick(None, weight, "open image")
    if "builtin" in entry:
        builtins = catalogue.builtin_styles(STYLES_DIR)
        style = builtins.get(entry["builtin"])
        if style is None:
            raise sg.PluginError(f"The built-in painting {entry['builtin']!r} is not installed.")
        return sg.StylePick(style, weight, style.title)
    return sg.resolve_styles([(entry.get("file"), weight)], "", {})[0]


def load_pick(
    pick: sg.StylePick, config: Gimp.ProcedureConfig | None, entry: dict[str, Any] | None = None
) -> Image:
    """A style's pixels: its file through GIMP's loaders, or the open image as it is seen."""
    if pick.style is not None:
        return load_style(pick.style)
    if config is not None:
        return load_image(config.get_property(sg.STYLE_IMAGE))
    image = Gimp.Image.get_by_id(int(entry["image"])) if entry else None
    if image is None or not image.is_valid():
        raise sg.PluginError(
            "The open image this result took its style from is closed: open it again, or run "
            "Style Transfer with another style."
        )
    return load_image(image)


def server_choice(config: Gimp.ProcedureConfig, token: str = "") -> sg.ServerChoice:
    """The saved server settings (the dialog's panel sets them) and the panel's token."""
    saved = (config.get_property(sg.SERVER_COMMAND) or "").strip()
    return sg.ServerChoice(
        server_process.saved_command(saved) if saved else None,
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
        return flattened(loaded)
    finally:
        loaded.delete()


def load_image(image: Gimp.Image) -> Image:
    """An open image as a style: the whole of it as seen, read from a copy (never changed)."""
    copy = image.duplicate()
    try:
        return flattened(copy)
    finally:
        copy.delete()


def flattened(image: Gimp.Image) -> Image:
    """``image`` (a throwaway: it is scaled and flattened) as 8-bit RGB, MAX_STYLE_SIDE px."""
    width, height = catalogue.fitted_size(image.get_width(), image.get_height())
    if (width, height) != (image.get_width(), image.get_height()):
        image.scale(width, height)
    layer = image.flatten()
    data = read_buffer(layer.get_buffer(), (0, 0, width, height), sg.STYLE_FORMAT)
    return Image(width, height, 3, "uint8", data)


# ================================================================================= server


def stylize(
    targets: list[Target],
    style_images: list[Image],
    picks: list[sg.StylePick],
    args: sg.ProcedureArgs,
    start_server: bool,
    server: sg.ServerChoice,
) -> list[tuple[Target, Image, list[str]]]:
    """Every target's result and its notes, one job at a time, before the image is touched."""
    title = catalogue.title(picks)
    Gimp.progress_init(sg.progress_text(None, 0, len(targets), title))
    # a server that answers (started here if need be), before anything is read; a studio's
    # endpoint is somebody else's to start
    client = sg.connect(
        server.client_maker(Client),
        server_process.start if start_server and server.local else None,
        server.start_command(),
        on_wait=Gimp.progress_set_text,
    )
    weights = [p.weight for p in picks] if len(picks) > 1 else None
    try:
        image = targets[0].drawable.get_image()
        results = []
        for index, target in enumerate(targets):
            progress = ProgressBar(index, len(targets), title)
            content, mask = target.content(), target.mask(image)
            job = client.submit(
                content,
                style_images,
                preset=args.preset,
                style_weights=weights,
                mask=mask,
                **args.controls(VOCABULARY),
            )
            result = checked(target, wait(job, progress))
            notes = [n for n in (job.info.notes or []) if isinstance(n, str)] if job.info else []
            results.append((target, result, notes))
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
    image: Gimp.Image,
    results: list[tuple[Target, Image, list[str]]],
    name: str,
    opacity: float,
    records: list[str],
    previous: Gimp.Layer | None = None,
) -> None:
    """One new layer per result, right above its drawable (a retry's: above the ``previous``
    result, which is hidden), at ``opacity`` (the strength), each with its job (its record, a
    JSON text) for More Style and Less Style; all in one undo group."""
    with_alpha = (
        Gimp.ImageType.GRAYA_IMAGE
        if image.get_base_type() == Gimp.ImageBaseType.GRAY
        else Gimp.ImageType.RGBA_IMAGE
    )
    layers = []
    image.undo_group_start()
    try:
        for (target, result, _notes), record in zip(results, records):
            layer = Gimp.Layer.new(
                image, name, *target.size, with_alpha, opacity, Gimp.LayerMode.NORMAL
            )
            layer.set_offsets(*target.offsets)
            layer.fill(Gimp.FillType.TRANSPARENT)
            write_result(layer, target, result)
            below = target.drawable if previous is None else previous
            image.insert_layer(layer, below.get_parent(), image.get_item_position(below))
            layer.attach_parasite(
                Gimp.Parasite.new(sg.JOB_PARASITE, Gimp.PARASITE_PERSISTENT, list(record.encode()))
            )
            layers.append(layer)
        if previous is not None:
            previous.set_visible(False)  # kept, to compare
        image.set_selected_layers(layers)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()


def say_notes(results: list[tuple[Target, Image, list[str]]]) -> None:
    """What a painter should know of the results (a style shown far larger than its pixels),
    in GIMP's messages."""
    notes = list(dict.fromkeys(n for _, _, notes in results for n in notes))
    if notes:
        Gimp.message("\n".join(notes))


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


if __name__ == "__main__":
    Gimp.main(StyleBridge.__gtype__, sys.argv)
