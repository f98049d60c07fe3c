"""A fake of GIMP 3's ``gi.repository`` (Gimp, Gegl, Gio, GLib, GObject): enough for the
plug-in's edge (plugins/gimp/stylebridge/stylebridge.py) to register its arguments, read its
config and run on images, without GIMP. The real thing runs in tests/e2e/gimp.

`modules(progress)` returns ``{"gi": ..., "gi.repository": ...}`` for ``sys.modules``; GIMP's
progress calls are appended to ``progress``. `Procedure` records the arguments registered on
it and makes a `Config` of their defaults, as GIMP does.
"""

from __future__ import annotations

import struct
import types
from typing import Any

ns = types.SimpleNamespace


class GError(Exception):
    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Buffer:
    """A GeglBuffer filled with one value: float formats give ``fill``, 8-bit RGB gives 128."""

    def __init__(self, fill: float, channels: int, log: list) -> None:
        self.fill, self.channels, self.log = fill, channels, log

    def get(self, rect, scale, fmt, abyss):
        _, _, w, h = rect
        channels = 1 if fmt == "Y float" else 3 if fmt == "R'G'B' u8" else self.channels
        if fmt == "R'G'B' u8":
            return bytes([128]) * (w * h * 3)
        return struct.pack(f"<{w * h * channels}f", *([self.fill] * (w * h * channels)))

    def set(self, rect, fmt, data):
        self.log.append(("set", rect, fmt, len(data)))

    def flush(self):
        pass


class Parasite:
    """Gimp.Parasite: a name, flags and bytes (handed over as a list of ints, as GI does)."""

    def __init__(self, name: str, flags: int, data: list[int]) -> None:
        self.name, self.flags, self.data = name, flags, bytes(data)

    @classmethod
    def new(cls, name, flags, data) -> Parasite:
        assert all(isinstance(b, int) for b in data), "GI hands bytes over as a list of ints"
        return cls(name, flags, data)

    def get_data(self) -> list[int]:
        return list(self.data)


_tattoos = iter(range(1, 10**9))


class Layer:
    def __init__(
        self, image, name, width, height, offsets=(0, 0), kind="layer", opacity=100.0
    ) -> None:
        self.image, self.name, self.size, self.offsets, self.kind = (
            image,
            name,
            (width, height),
            offsets,
            kind,
        )
        self.opacity = opacity
        self.buffer = Buffer(0.5, 4, image.log)
        self.tattoo = next(_tattoos)
        self.parasites: dict[str, Parasite] = {}
        self.visible = True

    def get_tattoo(self):
        return self.tattoo

    def attach_parasite(self, parasite):
        self.parasites[parasite.name] = parasite

    def get_parasite(self, name):
        return self.parasites.get(name)

    def set_visible(self, visible):
        self.visible = visible

    def get_name(self):
        return self.name

    def get_width(self):
        return self.size[0]

    def get_height(self):
        return self.size[1]

    def get_offsets(self):
        return True, *self.offsets

    def set_offsets(self, x, y):
        self.offsets = (x, y)

    def get_opacity(self):
        return self.opacity

    def get_image(self):
        return self.image

    def get_parent(self):
        return None

    def get_buffer(self):
        return self.buffer

    def is_layer(self):
        return self.kind in ("layer", "group")

    def is_group(self):
        return self.kind == "group"

    def fill(self, kind):
        self.image.log.append(("fill", self.name, kind))

    def update(self, *box):
        pass


class Image:
    """A GimpImage: its layers (top first), selection bounds, and a log of what changed it."""

    def __init__(self, selection=None, base="rgb") -> None:
        self.log: list = []
        self.selection = selection
        self.base = base
        self.layers: list[Layer] = []
        self.selected: list[Layer] = []
        self.fail_insert = False
        self.id = next(_tattoos)
        self.name = "Untitled"
        self.file: str | None = None
        _images[self.id] = self

    def add(self, name, width, height, offsets=(0, 0), kind="layer") -> Layer:
        layer = Layer(self, name, width, height, offsets, kind)
        self.layers.append(layer)
        return layer

    def get_base_type(self):
        return self.base

    def get_layer_by_tattoo(self, tattoo):
        return next((layer for layer in self.layers if layer.tattoo == tattoo), None)

    def get_id(self):
        return self.id

    def is_valid(self):
        return self.id in _images

    def get_name(self):
        return self.name

    def get_file(self):
        return None if self.file is None else ns(get_path=lambda: self.file)

    def get_width(self):
        return max(layer.size[0] for layer in self.layers)

    def get_height(self):
        return max(layer.size[1] for layer in self.layers)

    def duplicate(self):
        """A copy to read a style from: what Gimp.file_load gives, read the same way."""
        self.log.append(("duplicate",))
        return StyleImage(self.get_width(), self.get_height())

    def get_selection(self):
        return ns(get_buffer=lambda: Buffer(1.0, 1, self.log))

    def get_item_position(self, item):
        return self.layers.index(item)

    def insert_layer(self, layer, parent, position):
        if self.fail_insert:
            raise GError("insert failed")
        self.log.append(("insert", layer.name, position))
        self.layers.insert(position, layer)

    def set_selected_layers(self, layers):
        self.selected = list(layers)

    def undo_group_start(self):
        self.log.append("undo_group_start")

    def undo_group_end(self):
        self.log.append("undo_group_end")


_images: dict[int, Image] = {}


class StyleImage:
    """What Gimp.file_load gives for a style file (2048 x 1024), or a duplicate of an image."""

    def __init__(self, width: int = 2048, height: int = 1024) -> None:
        self.size = (width, height)

    def get_width(self):
        return self.size[0]

    def get_height(self):
        return self.size[1]

    def scale(self, w, h):
        self.size = (w, h)

    def flatten(self):
        return ns(get_buffer=lambda: Buffer(0, 3, []))

    def delete(self):
        pass


class Choice:
    """Gimp.Choice: the nicks (values) and labels, in order."""

    def __init__(self) -> None:
        self.nicks: list[str] = []
        self.labels: list[str] = []

    @classmethod
    def new(cls) -> Choice:
        return cls()

    def add(self, nick, number, label, help_text):
        assert number == len(self.nicks), "choice numbers count up from 0"
        self.nicks.append(nick)
        self.labels.append(label)


class Argument:
    def __init__(self, kind: str, name: str, label: str, help: str, **spec: Any) -> None:
        self.kind, self.name, self.label, self.help = kind, name, label, help
        self.spec = spec
        self.default = spec.get("default")


class Config:
    """A GimpProcedureConfig: a value per argument."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = dict(values)

    def get_property(self, name):
        return self.values[name]

    def set_property(self, name, value):
        if name not in self.values:
            raise KeyError(f"the procedure has no argument {name!r}")
        self.values[name] = value


class Procedure:
    """A GimpProcedure: records ``add_*_argument`` calls; `config` holds their defaults."""

    def __init__(self) -> None:
        self.arguments: dict[str, Argument] = {}

    def _add(self, kind: str, name: str, label: str, help: str, **spec: Any) -> None:
        assert name not in self.arguments, f"argument {name!r} registered twice"
        self.arguments[name] = Argument(kind, name, label, help, **spec)

    def add_image_argument(self, name, label, help, none_ok, flags):
        self._add("image", name, label, help, none_ok=none_ok, default=None)

    def add_file_argument(self, name, label, help, action, none_ok, default, flags):
        self._add("file", name, label, help, action=action, none_ok=none_ok, default=default)

    def add_choice_argument(self, name, label, help, choice, default, flags):
        assert default in choice.nicks, f"{name}: default {default!r} is not a choice"
        self._add("choice", name, label, help, choice=choice, default=default)

    def add_boolean_argument(self, name, label, help, default, flags):
        assert isinstance(default, bool), f"{name}: default {default!r} is not a bool"
        self._add("boolean", name, label, help, default=default)

    def add_string_argument(self, name, label, help, default, flags):
        self._add("string", name, label, help, default=default)

    def add_string_aux_argument(self, name, label, help, default, flags):
        self._add("string-aux", name, label, help, default=default)

    def add_double_argument(self, name, label, help, low, high, default, flags):
        assert low <= default <= high, f"{name}: default {default} outside {low}..{high}"
        self._add("double", name, label, help, low=low, high=high, default=default)

    def add_int_argument(self, name, label, help, low, high, default, flags):
        assert all(isinstance(v, int) for v in (low, high, default)), f"{name}: not ints"
        assert low <= default <= high, f"{name}: default {default} outside {low}..{high}"
        self._add("int", name, label, help, low=low, high=high, default=default)

    def config(self, **values: Any) -> Config:
        """The defaults of every argument, ``values`` (dashes spelled as underscores) over them."""
        config = Config({name: arg.default for name, arg in self.arguments.items()})
        for name, value in values.items():
            config.set_property(name.replace("_", "-"), value)
        return config

    def new_return_values(self, status, error):
        return status, error.message


def modules(progress: list) -> dict[str, types.ModuleType]:
    """``gi`` and ``gi.repository`` with the fake Gimp, Gegl, Gio, GLib and GObject; GIMP's
    messages (Gimp.message) go to ``progress`` too, as ("message", text)."""
    gimp = ns(
        Parasite=Parasite,
        PARASITE_PERSISTENT=1,
        Image=ns(get_by_id=lambda image_id: _images.get(image_id)),
        message=lambda text: progress.append(("message", text)),
        PlugIn=object,
        Choice=Choice,
        FileChooserAction=ns(OPEN="open"),
        PDBStatusType=ns(
            SUCCESS="success",
            CALLING_ERROR="calling-error",
            EXECUTION_ERROR="execution-error",
            CANCEL="cancel",
        ),
        RunMode=ns(INTERACTIVE="interactive", NONINTERACTIVE="noninteractive"),
        ImageBaseType=ns(RGB="rgb", GRAY="gray", INDEXED="indexed"),
        ImageType=ns(RGBA_IMAGE="rgba", GRAYA_IMAGE="graya"),
        LayerMode=ns(NORMAL="normal"),
        FillType=ns(TRANSPARENT="transparent"),
        Selection=ns(
            is_empty=lambda image: image.selection is None,
            bounds=lambda image: (True, True, *image.selection),
        ),
        Layer=ns(
            new=lambda image, name, w, h, kind, opacity, mode: Layer(
                image, name, w, h, opacity=opacity
            )
        ),
        file_load=lambda mode, file: StyleImage(),
        progress_init=lambda text: progress.append(("init", text)),
        progress_set_text=lambda text: progress.append(("text", text)),
        progress_update=lambda fraction: progress.append(("update", fraction)),
        progress_end=lambda: progress.append(("end",)),
        displays_flush=lambda: None,
    )
    repository = types.ModuleType("gi.repository")
    repository.Gimp = gimp
    repository.Gegl = ns(Rectangle=ns(new=lambda *box: box), AbyssPolicy=ns(NONE="none"))
    repository.Gio = ns(File=ns(new_for_path=lambda path: path))
    repository.GLib = ns(Error=GError)
    repository.GObject = ns(ParamFlags=ns(READWRITE=3))
    gi = types.ModuleType("gi")
    gi.require_version = lambda name, version: None
    gi.repository = repository
    return {"gi": gi, "gi.repository": repository}
