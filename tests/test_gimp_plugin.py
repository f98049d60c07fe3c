"""The GIMP plug-in without GIMP: its logic module, and its GIMP edge against a small fake of
the Gimp/Gegl API (the real thing runs in tests/test_gimp_e2e.py).

The edge is loaded from a folder laid out by plugins/dist.py, as users install it, so the
vendored bridge and the built-in styles are where the plug-in looks for them.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import struct
import sys
import types
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugins" / "gimp" / "stylebridge"
for folder in (REPO / "plugins" / "common", REPO / "plugins"):  # stylebridge_wire, dist.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def _load(name: str, path: Path) -> types.ModuleType:
    """Import a file by path: the plug-in's folder also holds a stylebridge.py, so it must not
    go on sys.path (it would shadow the stylebridge package for every later import)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


import dist  # noqa: E402
from stylebridge_wire import Image, ServerError, ServerUnavailable  # noqa: E402

sg = sys.modules.get("stylebridge_gimp") or _load(
    "stylebridge_gimp", PLUGIN / "stylebridge_gimp.py"
)

from .server_helpers import free_port  # noqa: E402

# ================================================================================= styles


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The plug-in folder as the zip installs it."""
    return dist.assemble_gimp(tmp_path_factory.mktemp("gimp-plug-ins")) / "stylebridge"


def test_builtin_styles_come_from_the_installed_index(installed):
    styles = sg.builtin_styles(str(installed / "styles"))
    assert sg.DEFAULT_BUILTIN in styles
    assert styles["starry_night"].title == "The Starry Night (van Gogh)"
    assert set(styles) == {Path(f).stem for f in dist.STYLE_FILES.values()}
    assert all(os.path.isfile(style.path) for style in styles.values())


def test_builtin_styles_of_a_folder_without_index_is_empty(tmp_path):
    assert sg.builtin_styles(str(tmp_path)) == {}


def test_split_paths_takes_lines_and_the_path_separator():
    text = f"/a/one.png\n\n  /b/two.jpg {os.pathsep}/c/three.tif\n"
    assert sg.split_paths(text) == ["/a/one.png", "/b/two.jpg", "/c/three.tif"]
    assert sg.split_paths("") == [] and sg.split_paths(None) == []


def test_resolve_styles_defaults_to_the_chosen_builtin(installed):
    builtins = sg.builtin_styles(str(installed / "styles"))
    assert sg.resolve_styles(None, "", "", builtins) == [builtins["starry_night"]]
    assert sg.resolve_styles(None, "", "the_scream", builtins) == [builtins["the_scream"]]
    with pytest.raises(sg.PluginError, match="Unknown built-in painting 'mona_lisa'") as err:
        sg.resolve_styles(None, "", "mona_lisa", builtins)
    assert err.value.calling


def test_resolve_styles_files_win_over_the_builtin(installed, tmp_path):
    builtins = sg.builtin_styles(str(installed / "styles"))
    first, second = tmp_path / "my_brush_work.png", tmp_path / "second.jpg"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    styles = sg.resolve_styles(str(first), str(second), "the_scream", builtins)
    assert [s.path for s in styles] == [str(first), str(second)]
    assert sg.layer_name(styles) == "my brush work + second"
    with pytest.raises(sg.PluginError, match="does not exist") as err:
        sg.resolve_styles(None, str(tmp_path / "gone.png"), "", builtins)
    assert err.value.calling and "gone.png" in str(err.value)


def test_style_scale_keeps_small_images_and_shrinks_big_ones():
    assert sg.style_scale(800, 600) == (800, 600)
    assert sg.style_scale(4000, 3000) == (1024, 768)
    assert sg.style_scale(3000, 10) == (1024, 3)


# =============================================================================== settings


def test_settings_map_to_controls_leaving_zeros_to_the_preset():
    controls = sg.Settings(strength=0.5, preserve_colors="luminance", seed=7).check().controls()
    assert controls == {"strength": 0.5, "preserve_colors": "luminance", "seed": 7}
    full = sg.Settings(size=256, steps=40, time_budget=0.01).check().controls()
    assert (full["size"], full["steps"], full["time_budget"]) == (256, 40, 0.1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"strength": 1.5}, "Strength"),
        ({"preserve_colors": "sepia"}, "Colour preservation"),
        ({"preset": "turbo"}, "Quality preset"),
        ({"size": 20}, "Size"),
        ({"size": 9000}, "Size"),
        ({"time_budget": -1.0}, "Time budget"),
        ({"seed": -1}, "Seed"),
        ({"steps": 100_001}, "Steps"),
    ],
)
def test_bad_settings_are_calling_errors_naming_the_field(change, words):
    with pytest.raises(sg.PluginError, match=words) as err:
        sg.Settings(**change).check()
    assert err.value.calling


# ================================================================================ pixels


def test_layouts_are_float_and_perceptual_with_alpha():
    assert sg.layout_for(False) == sg.Layout("R'G'B'A float", 4)
    assert sg.layout_for(True) == sg.Layout("Y'A float", 2)
    assert sg.MASK_FORMAT == "Y float"  # coverage, not a colour: no curve


def test_work_area_without_selection_is_the_whole_drawable():
    area = sg.work_area((300, 200), (40, 30), None)
    assert area == sg.WorkArea((0, 0, 300, 200), False)


def test_work_area_is_the_selection_on_the_drawable_plus_a_margin():
    # selection (100, 80)-(140, 120) in the image; the drawable sits at (40, 30)
    area = sg.work_area((300, 200), (40, 30), (100, 80, 140, 120))
    margin = 32  # context_margin of a 40 px box: the minimum
    assert area.masked
    assert area.box == (60 - margin, 50 - margin, 40 + 2 * margin, 40 + 2 * margin)
    assert area.image_box((40, 30)) == (60 - margin + 40, 50 - margin + 30, 104, 104)


def test_work_area_margin_is_clipped_to_the_drawable():
    area = sg.work_area((100, 100), (0, 0), (0, 90, 10, 100))
    assert area.box == (0, 58, 42, 42)


def test_work_area_selection_off_the_drawable_is_an_error():
    with pytest.raises(sg.PluginError, match="does not touch the layer 'x'"):
        sg.work_area((50, 50), (200, 200), (0, 0, 100, 100), "the layer 'x'")


# ============================================================================== progress


def test_progress_fraction_spans_all_drawables():
    event = {"step": 50, "total_steps": 100}
    assert sg.progress_fraction(event, 0, 1) == 0.5
    assert sg.progress_fraction(event, 1, 2) == 0.75
    assert sg.progress_fraction({}, 1, 4) == 0.25
    assert sg.progress_fraction({"step": 120, "total_steps": 100}, 0, 1) == 1.0


def test_progress_text_shows_step_and_eta():
    event = {"step": 12, "total_steps": 150, "eta": 83.4}
    text = sg.progress_text(event, 1, 3, "The Scream (Munch)")
    assert (
        text == "Style transfer: The Scream (Munch) · layer 2 of 3 · step 12/150 · 1 min 23 s left"
    )
    assert sg.progress_text({"step": 1, "total_steps": 9, "eta": None}, 0, 1, "x").endswith("1/9")
    assert "waiting for the server" in sg.progress_text(None, 0, 1, "x")
    assert "queued behind 2 jobs" in sg.progress_text(None, 0, 1, "x", position=2)


def test_format_seconds():
    assert [sg.format_seconds(s) for s in (0.4, 59, 61, 3725)] == [
        "0 s",
        "59 s",
        "1 min 01 s",
        "1 h 02 min",
    ]


# ================================================================================ errors


def test_error_messages_say_what_happened_and_that_the_image_is_unchanged():
    gone = sg.describe_error(ServerUnavailable("cannot connect to tcp://127.0.0.1:9"))
    assert "not available" in gone and "stylebridge serve" in gone and "not changed" in gone
    failed = sg.describe_error(ServerError("too_large", "content too large", "content"))
    assert "content too large" in failed and "too_large" in failed and "field content" in failed
    assert sg.describe_error(sg.PluginError("Select a layer.")) == "Select a layer."
    odd = sg.describe_error(RuntimeError("boom"))
    assert "RuntimeError: boom" in odd and "Traceback" not in odd


def test_the_zip_installs_an_executable_plug_in(tmp_path):
    archive = dist.build_gimp(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        mode = zf.getinfo("stylebridge/stylebridge.py").external_attr >> 16
    assert {
        "stylebridge/stylebridge_gimp.py",
        "stylebridge/stylebridge_wire/client.py",
        "stylebridge/stylebridge_wire/pixels.py",
        "stylebridge/styles/index.tsv",
    } <= names
    assert mode & stat.S_IXUSR
    text = (PLUGIN / "stylebridge.py").read_text()
    assert text.startswith("#!/usr/bin/env python3\n")


# ====================================================================== the GIMP edge, faked


class GError(Exception):
    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Buffer:
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


class Layer:
    def __init__(self, image, name, width, height, offsets=(0, 0), kind="layer") -> None:
        self.image, self.name, self.size, self.offsets, self.kind = (
            image,
            name,
            (width, height),
            offsets,
            kind,
        )
        self.buffer = Buffer(0.5, 4, image.log)

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


class FakeImage:
    def __init__(self, selection=None, base="rgb") -> None:
        self.log: list = []
        self.selection = selection
        self.base = base
        self.layers: list[Layer] = []
        self.selected: list[Layer] = []
        self.fail_insert = False

    def add(self, name, width, height, offsets=(0, 0), kind="layer") -> Layer:
        layer = Layer(self, name, width, height, offsets, kind)
        self.layers.append(layer)
        return layer

    def get_base_type(self):
        return self.base

    def get_selection(self):
        return types.SimpleNamespace(get_buffer=lambda: Buffer(1.0, 1, self.log))

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


class StyleImage:
    def get_width(self):
        return 2048

    def get_height(self):
        return 1024

    def scale(self, w, h):
        self.size = (w, h)

    def flatten(self):
        return types.SimpleNamespace(get_buffer=lambda: Buffer(0, 3, []))

    def delete(self):
        pass


def fake_gi(progress: list) -> dict[str, types.ModuleType]:
    ns = types.SimpleNamespace
    gimp = ns(
        PlugIn=object,
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
        Layer=ns(new=lambda image, name, w, h, kind, opacity, mode: Layer(image, name, w, h)),
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


class Procedure:
    def new_return_values(self, status, error):
        return status, error.message


class Config:
    def __init__(self, **values: Any) -> None:
        self.values = {
            "style-file": None,
            "more-styles": "",
            "builtin-style": "starry_night",
            "strength": 1.0,
            "preserve-colors": "none",
            "preset": "fast",
            "size": 64,
            "time-budget": 0.0,
            "seed": 0,
            "steps": 5,
            **values,
        }

    def get_property(self, name):
        return self.values[name]


class Job:
    """Three progress polls, then the result (content's size), or ``error``."""

    def __init__(self, content: Image, error: Exception | None, polls: list) -> None:
        self.content, self.error, self.polls = content, None, polls
        self._error = error
        self.progress: dict = {}
        self.position = 0
        self.cancelled = False
        self.result = None
        self._n = 0

    def poll(self, timeout):
        self.polls.append(timeout)
        self._n += 1
        if self._n < 4:
            self.progress = {"step": self._n, "total_steps": 3, "eta": 3.0 - self._n}
            return False
        if self._error is not None:
            self.error = self._error
        else:
            c = self.content
            self.result = Image(c.width, c.height, c.channels, c.dtype, c.data)
        return True


class Client:
    """Stands in for PluginClient: records submits; ``fail_at`` makes that job fail."""

    instances: ClassVar[list[Client]] = []
    fail_at: ClassVar[int | None] = None

    def __init__(self) -> None:
        self.submits: list[dict] = []
        self.polls: list[float] = []
        self.closed = False
        Client.instances.append(self)

    def ping(self):
        return {"type": "pong"}

    def submit(self, content, styles, *, preset, mask, **controls):
        self.submits.append(
            {"content": content, "styles": styles, "preset": preset, "mask": mask, **controls}
        )
        error = (
            ServerError("engine_error", "out of memory")
            if Client.fail_at == len(self.submits)
            else None
        )
        return Job(content, error, self.polls)

    def close(self):
        self.closed = True


@pytest.fixture
def edge(installed, monkeypatch):
    """stylebridge.py of the installed folder, imported against the fake gi."""
    progress: list = []
    for name, module in fake_gi(progress).items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(
        "stylebridge_gimp_edge", installed / "stylebridge.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the module puts its folder first
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(Client, "instances", [])
    monkeypatch.setattr(Client, "fail_at", None)
    module.progress_log = progress
    return module


def test_edge_registers_the_documented_arguments(edge):
    calls: list = []

    class Recorder:
        def __getattr__(self, method):
            return lambda *args: calls.append((method, args))

    choice = types.SimpleNamespace(new=lambda: Choices())

    class Choices:
        def __init__(self):
            self.nicks = []

        def add(self, nick, number, label, help_text):
            self.nicks.append(nick)

    edge.Gimp.Choice = choice
    edge.Gimp.FileChooserAction = types.SimpleNamespace(OPEN="open")
    edge.add_arguments(Recorder())
    names = [args[0] for _, args in calls]
    assert names == [
        "style-file",
        "builtin-style",
        "more-styles",
        "strength",
        "preserve-colors",
        "preset",
        "size",
        "time-budget",
        "seed",
        "steps",
    ]
    builtin = next(args for method, args in calls if args[0] == "builtin-style")
    assert builtin[4] == "starry_night" and "the_scream" in builtin[3].nicks
    assert [f for _, _, fields in edge.DIALOG_FRAMES for f in fields] == names


def test_edge_adds_results_above_each_layer_in_one_undo_group(edge, monkeypatch):
    monkeypatch.setattr(edge, "PluginClient", Client)
    image = FakeImage(selection=(30, 20, 60, 50))
    bottom = image.add("bottom", 120, 80)
    top = image.add("top", 60, 40, offsets=(20, 10))
    status, error = edge.run(Procedure(), "noninteractive", image, [bottom, top], Config(), None)
    assert (status, error) == ("success", "")
    inserts = [entry for entry in image.log if entry[0] == "insert"]
    undo = [i for i, entry in enumerate(image.log) if isinstance(entry, str)]
    assert [image.log[i] for i in undo] == ["undo_group_start", "undo_group_end"]
    first_insert = image.log.index(inserts[0])
    last_insert = image.log.index(inserts[-1])
    assert undo[0] < first_insert and last_insert < undo[1]  # the group wraps every insertion
    # each result lands right above its own layer, at its offsets, and ends up selected
    names = [layer.name for layer in image.layers]
    assert names == ["The Starry Night (van Gogh)", "bottom", "The Starry Night (van Gogh)", "top"]
    assert image.layers[0].offsets == (0, 0) and image.layers[2].offsets == (20, 10)
    assert image.selected == [image.layers[0], image.layers[2]]
    # the selection box plus the margin, in each layer's own pixels
    writes = [entry for entry in image.log if entry[0] == "set"]
    assert [w[1] for w in writes] == [(0, 0, 92, 80), (0, 0, 60, 40)]
    client = Client.instances[0]
    assert [s["mask"].width for s in client.submits] == [92, 60]
    assert client.submits[0]["content"].dtype == "float32"
    assert client.submits[0]["size"] == 64 and client.submits[0]["steps"] == 5
    assert client.closed


def test_edge_shows_progress_with_eta_and_polls_at_least_every_second(edge, monkeypatch):
    monkeypatch.setattr(edge, "PluginClient", Client)
    monkeypatch.setattr(edge.Progress, "show", _unthrottled(edge.Progress.show))
    image = FakeImage()
    layer = image.add("photo", 40, 30)
    edge.run(Procedure(), "noninteractive", image, [layer], Config(), None)
    texts = [entry[1] for entry in edge.progress_log if entry[0] == "text"]
    fractions = [entry[1] for entry in edge.progress_log if entry[0] == "update"]
    assert texts[0] == "Style transfer: The Starry Night (van Gogh) · step 1/3 · 2 s left"
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] <= 1
    assert edge.progress_log[-1] == ("end",)
    assert max(Client.instances[0].polls) <= 1.0


def _unthrottled(show):
    def always(self, event, position):
        self._last = 0.0
        return show(self, event, position)

    return always


def test_edge_server_error_on_a_later_layer_leaves_the_image_untouched(edge, monkeypatch):
    monkeypatch.setattr(edge, "PluginClient", Client)
    monkeypatch.setattr(Client, "fail_at", 2)
    image = FakeImage()
    layers = [image.add("a", 40, 30), image.add("b", 40, 30)]
    status, error = edge.run(Procedure(), "noninteractive", image, layers, Config(), None)
    assert status == "execution-error"
    assert "out of memory" in error and "not changed" in error
    assert [entry for entry in image.log if entry[0] in ("insert", "set")] == []
    assert "undo_group_start" not in image.log


def test_edge_closes_the_undo_group_when_an_insertion_fails(edge, monkeypatch):
    monkeypatch.setattr(edge, "PluginClient", Client)
    image = FakeImage()
    layer = image.add("a", 40, 30)
    image.fail_insert = True
    status, error = edge.run(Procedure(), "noninteractive", image, [layer], Config(), None)
    assert status == "execution-error" and "insert failed" in error
    assert image.log[0] == "undo_group_start" and image.log[-1] == "undo_group_end"


def test_edge_without_server_is_an_execution_error(edge, monkeypatch):
    monkeypatch.setenv("STYLEBRIDGE_ENDPOINT", f"tcp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("STYLEBRIDGE_TOKEN", "nobody")
    image = FakeImage()
    layer = image.add("a", 40, 30)
    status, error = edge.run(Procedure(), "noninteractive", image, [layer], Config(), None)
    assert status == "execution-error"
    assert error.startswith("The stylebridge server is not available") and "refused" in error
    assert image.log == []


@pytest.mark.parametrize(
    ("kind", "base", "words"),
    [
        ("channel", "rgb", "channel or a layer mask"),
        ("group", "rgb", "layer group"),
        ("layer", "indexed", "Indexed images"),
    ],
)
def test_edge_refuses_what_it_cannot_stylise_as_calling_errors(edge, kind, base, words):
    image = FakeImage(base=base)
    drawable = image.add("thing", 40, 30, kind=kind)
    status, error = edge.run(Procedure(), "noninteractive", image, [drawable], Config(), None)
    assert status == "calling-error" and words in error
    assert image.log == []


def test_edge_empty_layer_is_a_clear_error(edge, monkeypatch):
    monkeypatch.setattr(edge, "PluginClient", Client)
    image = FakeImage()
    layer = image.add("empty", 40, 30)
    layer.buffer.fill = 0.0
    status, error = edge.run(Procedure(), "noninteractive", image, [layer], Config(), None)
    assert status == "execution-error" and "'empty' is empty" in error
