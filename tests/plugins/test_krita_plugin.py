"""The Krita plug-in's logic without Krita: pixel layouts at every depth, selection boxes (on
the fake ``krita`` module, tests/fakes/krita.py), options checked against the vocabulary, and
the dialog built offscreen under PyQt6 (Krita 6's binding). The plug-in is assembled exactly as
its zip ships it, with its own copy of the stdlib bridge (tests/plugins/conftest.py)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from testing import REPO
from testing.plugins import pump_until
from tests.fakes import krita as fake


# ------------------------------------------------------------------ pixel formats
def test_qt_binding_is_pyqt6_outside_krita(sbk):
    assert sbk.qt.QT_MAJOR == 6 and sbk.qt.QtCore.__name__ == "PyQt6.QtCore"


@pytest.mark.parametrize(
    ("model", "depth", "krita_bytes", "dtype", "protocol_values"),
    [
        ("RGBA", "U8", bytes((30, 20, 10, 255)), "uint8", (10, 20, 30, 255)),  # BGRA -> RGBA
        ("RGBA", "U16", struct.pack("<4H", 3, 2, 1, 65535), "uint16", (1, 2, 3, 65535)),
        ("RGBA", "F16", struct.pack("<4e", 0.25, 0.5, 0.75, 1), "float32", (0.25, 0.5, 0.75, 1)),
        ("RGBA", "F32", struct.pack("<4f", 0.1, 0.2, 0.3, 1), "float32", (0.1, 0.2, 0.3, 1)),
        ("GRAYA", "U8", bytes((77, 200)), "uint8", (77, 200)),
        ("GRAYA", "U16", struct.pack("<2H", 7, 9), "uint16", (7, 9)),
    ],
)
def test_krita_pixels_travel_in_protocol_order_and_come_back_unchanged(
    sbk, model, depth, krita_bytes, dtype, protocol_values
):
    fmt = sbk.formats.PixelFormat.of(model, depth)
    image = fmt.to_image(krita_bytes * 2, 2, 1)
    assert (image.width, image.height, image.channels, image.dtype) == (2, 1, fmt.channels, dtype)
    code = {"uint8": "B", "uint16": "H", "float32": "f"}[dtype]
    values = struct.unpack(f"<{2 * fmt.channels}{code}", image.data)[: fmt.channels]
    assert values == pytest.approx(protocol_values, abs=1e-6)
    assert fmt.from_image(image) == krita_bytes * 2


def test_preview_frames_convert_to_every_depth(sbk):
    bgra = bytes((10, 20, 30, 255))  # QImage ARGB32 in memory: B, G, R, A
    pf = sbk.formats.PixelFormat.of
    assert pf("RGBA", "U8").from_rgba8(bgra) == bgra
    assert struct.unpack("<4H", pf("RGBA", "U16").from_rgba8(bgra)) == (2570, 5140, 7710, 65535)
    assert struct.unpack("<4f", pf("RGBA", "F32").from_rgba8(bgra)) == pytest.approx(
        (30 / 255, 20 / 255, 10 / 255, 1), abs=1e-7
    )
    assert struct.unpack("<4e", pf("RGBA", "F16").from_rgba8(bgra)) == pytest.approx(
        (30 / 255, 20 / 255, 10 / 255, 1), abs=1e-3
    )
    assert pf("GRAYA", "U8").from_rgba8(bgra) == bytes((20, 255))


def test_other_colour_models_get_a_message_that_says_what_to_do(sbk):
    with pytest.raises(sbk.formats.UnsupportedFormat, match=r"CMYKA.*Convert Image Color Space"):
        sbk.formats.PixelFormat.of("CMYKA", "U8")
    with pytest.raises(sbk.formats.UnsupportedFormat, match="depth U32"):
        sbk.formats.PixelFormat.of("RGBA", "U32")


def test_alpha_plane_at_every_dtype(sbk):
    Image = sbk.formats.Image
    assert sbk.formats.alpha8(Image(2, 1, 4, "uint8", bytes((1, 2, 3, 40, 5, 6, 7, 50)))) == bytes(
        (40, 50)
    )
    u16 = Image(1, 1, 2, "uint16", struct.pack("<2H", 0, 0x8000))
    assert sbk.formats.alpha8(u16) == bytes((0x80,))
    f32 = Image(1, 1, 4, "float32", struct.pack("<4f", 0, 0, 0, 0.5))
    assert sbk.formats.alpha8(f32) == bytes((128,))
    # floats through a table of their high halves: within one step, clamped, NaN transparent
    alphas = [i / 1000 for i in range(1001)] + [1.5, -0.2, float("nan")]
    gray = Image(len(alphas), 1, 2, "float32", struct.pack(f"<{2 * len(alphas)}f",
                 *(x for a in alphas for x in (0.3, a))))  # fmt: skip
    expected = [round(min(1, max(0, a)) * 255) if a == a else 0 for a in alphas]
    got = list(sbk.formats.alpha8(gray))
    assert max(abs(g - e) for g, e in zip(got, expected, strict=True)) <= 1
    assert got[-3:] == [255, 0, 0]
    assert sbk.formats.alpha8(Image(1, 1, 3, "uint8", b"abc")) == b"\xff"


# ------------------------------------------------------------------ capture, on the fake Krita
def layer(width=40, height=30, model="RGBA", depth="U8", data=None, kind="paintlayer", doc=None):
    """A document (the layer's colour space unless ``doc`` says otherwise) and its one layer."""
    document = fake.Document(width, height, **(doc or {"model": model, "depth": depth}))
    size = width * height * fake.pixel_size(model, depth)
    node = document.add_layer("Paint Layer 1", fake.ramp(size) if data is None else data,
                              model, depth, kind)  # fmt: skip
    return document, node


def test_capture_without_selection_takes_the_whole_layer(sbk):
    doc, node = layer()
    cap = sbk.host.capture(doc, node)
    assert cap.box == (0, 0, 40, 30) and cap.mask is None
    assert cap.content.data[:4] == bytes((2, 1, 0, 3))  # BGRA swapped to RGBA


def test_capture_of_a_small_selection_works_on_its_box_plus_a_margin(sbk):
    doc, node = layer(400, 300)
    doc.setSelection(fake.Selection(400, 300, (200, 100, 20, 10)))
    cap = sbk.host.capture(doc, node)
    margin = sbk.host.context_margin(20, 10)
    assert margin == 32
    assert cap.box == (200 - margin, 100 - margin, 20 + 2 * margin, 10 + 2 * margin)
    assert (cap.mask.width, cap.mask.height) == (cap.box[2], cap.box[3])
    row = cap.mask.data[(margin + 5) * cap.box[2] : (margin + 6) * cap.box[2]]
    assert row == bytes(margin) + b"\xff" * 20 + bytes(margin)
    # a selection at the edge: the box is clipped to the canvas
    doc.setSelection(fake.Selection(400, 300, (0, 0, 10, 10)))
    cap = sbk.host.capture(doc, node)
    assert cap.box == (0, 0, 42, 42)


@pytest.mark.parametrize(
    ("doc_args", "node_args", "message"),
    [
        (None, {"model": "CMYKA"}, "CMYKA"),
        ({"model": "RGBA", "depth": "U16"}, {}, "convert the layer to the image's colour space"),
        (None, {"kind": "transparencymask"}, "Select a paint layer"),
        (None, {"data": bytes(40 * 30 * 4)}, "is empty"),
    ],
)
def test_capture_refuses_what_it_cannot_stylise_with_a_clear_message(
    sbk, doc_args, node_args, message
):
    doc, node = layer(doc=doc_args, **node_args)
    with pytest.raises(ValueError, match=message):
        sbk.host.capture(doc, node)
    with pytest.raises(ValueError, match="No document"):
        sbk.host.capture(None, None)


def test_empty_selection_is_refused(sbk):
    doc, node = layer()
    sel = fake.Selection(40, 30, (5, 5, 4, 4))
    sel.data[:] = bytes(len(sel.data))  # bounds but no selected pixel
    doc.setSelection(sel)
    with pytest.raises(ValueError, match="selection is empty"):
        sbk.host.capture(doc, node)


# ------------------------------------------------------------------ options and styles
def test_options_map_to_server_controls_and_name_bad_values(sbk):
    Options = sbk.options.Options
    controls = {"strength": 0.5, "preserve_colors": "luminance", "size": 256, "seed": 3}
    opts = Options(["starry_night"], controls={**controls, "time_budget": None}).check()
    assert opts.preset == "fast"  # the vocabulary's default
    assert opts.controls == controls  # None: the preset's, left out
    # strength is the result layer's opacity, not an engine control: the job never sees it
    assert opts.strength == 0.5
    assert opts.job_controls() == {"preserve_colors": "luminance", "size": 256, "seed": 3}
    assert Options(["starry_night"]).check().strength == 1.0
    assert Options(["x"], controls={"size": 256.0}).check().controls == {"size": 256}  # an int
    for bad, message in [
        ({"styles": []}, "at least one style"),
        ({"controls": {"strength": 1.5}}, "Layer opacity must be between 0 and 1"),
        ({"preset": "turbo"}, "Preset must be one of fast, quality, paper"),
        ({"controls": {"preserve_colors": "all"}}, "Colours must be one of none, luminance"),
        ({"controls": {"size": 10}}, r"Detail \(px\) must be between 32 and 8192 px"),
        ({"weights": [1.0, 2.0]}, "2 blend weights for 1 styles"),
        ({"controls": {"time_budget": 0}}, "Time limit must be between 0.1"),
        ({"controls": {"balance": -0.1}}, "Style amount"),
        ({"controls": {"brushiness": 1}}, "Unknown control 'brushiness'"),
        ({"source": "canvas"}, "source must be one of layer, visible"),
    ]:
        kwargs = {"styles": ["starry_night"], **bad}
        with pytest.raises(sbk.options.OptionsError, match=message):
            Options(**kwargs).check()


def test_styles_resolve_by_name_title_or_file(sbk, tmp_path):
    styles = sbk.styles
    assert styles.builtin_styles()[0].title == "The Starry Night (van Gogh)"
    assert styles.resolve("the_scream").title == "The Scream (Munch)"
    assert styles.is_builtin(styles.resolve("The Shipwreck (Turner)"))
    path = tmp_path / "my_style.png"
    path.write_bytes(b"not an image")
    assert styles.resolve(str(path)).title == "my style"
    assert not styles.is_builtin(styles.resolve(str(path)))
    with pytest.raises(styles.StyleError, match="Cannot read the style image"):
        styles.load(styles.resolve(str(path)))
    with pytest.raises(styles.StyleError, match="neither an image file nor a built-in"):
        styles.resolve("no such painting")


def test_a_big_style_travels_at_most_1024_px_a_side(sbk, qapp, tmp_path):
    QtGui = sbk.qt.QtGui
    big = QtGui.QImage(3000, 1500, QtGui.QImage.Format.Format_RGB888)
    big.fill(0x336699)
    big.save(str(tmp_path / "big.png"))
    image = sbk.styles.load(sbk.styles.resolve(str(tmp_path / "big.png")))
    assert (image.width, image.height, image.channels, image.dtype) == (1024, 512, 3, "uint8")
    assert image.data[:3] == bytes((0x33, 0x66, 0x99))


# ------------------------------------------------------------------ the dialog, PyQt6, offscreen
def test_dialog_builds_under_pyqt6_and_maps_its_fields_to_options(sbk, qapp, krita_app):
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    vocabulary = dialog.vocabulary
    assert list(dialog.fields) == [c.name for c in vocabulary.dialog_controls()]
    # left alone, the dialog runs the preset as defined: no size or steps of its own
    fresh = dialog.options().job_controls()
    assert fresh.get("size") is None and fresh.get("steps") is None and fresh["balance"] == 0.5
    assert fresh.get("style_scale") is None  # Brush size: shown, the preset's until set
    assert dialog.style_table.rowCount() == 1  # The Starry Night by default
    dialog.add_style("the_scream", 2.0)
    dialog.fields["strength"].set(0.4)
    dialog.fields["preserve_colors"].set("histogram")
    dialog.fields["size"].set(320)
    opts = dialog.options()
    assert [Path(p).name for p in opts.styles] == ["starry_night.jpg", "the_scream.jpg"]
    assert opts.weights == [1.0, 2.0] and opts.strength == 0.4
    assert opts.preset == vocabulary.default_preset
    c = opts.controls
    assert (c["preserve_colors"], c["size"], c.get("time_budget")) == ("histogram", 320, None)
    assert "strength" not in opts.job_controls()
    dialog.close()


def test_the_dialog_reads_like_a_painters_tool(sbk, qapp, krita_app):
    """The controls under the names issue 28 gave them; seed, steps and the time limit behind
    Advanced; every tooltip a sentence; the server a line with Start and Stop, its
    connection behind Connection..."""
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    labels = {name: f.control.label for name, f in dialog.fields.items()}
    assert labels == {
        "balance": "Style amount",
        "style_scale": "Brush size",
        "preserve_colors": "Colours",
        "size": "Detail (px)",
        "strength": "Layer opacity",
        "time_budget": "Time limit",
        "steps": "Steps",
        "seed": "Seed",
    }
    advanced = [n for n, f in dialog.fields.items() if f.control.advanced]
    assert advanced == ["time_budget", "steps", "seed"]
    dialog.show()
    assert not dialog.fields["seed"].widget.isVisible()  # behind Advanced until it is opened
    assert dialog.fields["balance"].widget.isVisible()
    dialog.advanced_button.click()
    assert dialog.fields["seed"].widget.isVisible()
    for f in dialog.fields.values():
        tip = f.widget.toolTip()
        assert tip[0].isupper() and tip.endswith(".") and "_" not in tip, tip
    paper = dialog.preset.itemText(dialog.preset.findData("paper"))
    assert paper == "Reference (slow): the original paper"
    panel = dialog.server
    assert not panel.details.isVisible() and panel.start_button.isVisible()
    panel.connection_button.click()
    assert panel.details.isVisible() and panel.program.isVisible()
    plain = sbk.qt.QtCore.Qt.TextFormat.PlainText
    assert all(label.textFormat() == plain for label in (panel.state, panel.error, panel.log))
    assert dialog.message.textFormat() == plain and dialog.estimate.textFormat() == plain
    dialog.close()


def test_apply_with_no_server_starts_the_recorded_program_and_says_so(sbk, qapp, krita_app,
                                                                      no_server):  # fmt: skip
    started: list[list[str]] = []
    dialog = sbk.dialog.StyleDialog(
        sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs(), start=started.append
    )
    dialog.apply()  # no Start pressed: Apply starts it
    assert not dialog.apply_button.isEnabled() and dialog.cancel_button.isEnabled()
    pump_until(qapp, lambda: started)
    assert started == [dialog.server.command()]
    assert dialog.server.state.text().startswith("Starting the server (first time: about")
    dialog.cancel()  # while it starts: nothing runs, Apply is back
    assert dialog.apply_button.isEnabled() and "Cancelled" in dialog.message.text()
    dialog.close()


def test_apply_when_the_program_cannot_start_says_what_to_choose(sbk, qapp, krita_app,
                                                                 no_server):  # fmt: skip
    def refuse(command: list[str]) -> None:
        raise sbk.stylebridge_wire.server_process.StartError("Cannot start x: no such file.")

    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs(), start=refuse)
    dialog.apply()
    pump_until(qapp, lambda: dialog.apply_button.isEnabled())
    assert dialog.message.text() == "Cannot start x: no such file."
    assert dialog.server.error.text() == "Cannot start x: no such file."
    dialog.close()


def test_dialog_fields_follow_each_controls_kind(sbk, qapp, krita_app):
    W = sbk.qt.QtWidgets
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    fields = dialog.fields
    # 0..1 controls are sliders in hundredths, choices are lists of the vocabulary's labels
    assert isinstance(fields["strength"].input, W.QSlider)
    colours = fields["preserve_colors"].input
    assert isinstance(colours, W.QComboBox)
    choices = dialog.vocabulary.controls["preserve_colors"].choices
    assert [colours.itemData(i) for i in range(colours.count())] == list(choices)
    assert [colours.itemText(i) for i in range(colours.count())] == list(choices.values())
    # a spin box whose 0 means "the preset's" (or "no limit") where 0 is not a value it takes
    size = fields["size"]
    size.set(None)
    assert size.value() is None and size.input.specialValueText() == "as the preset"
    assert fields["time_budget"].input.specialValueText() == "no limit"
    brush = fields["style_scale"]  # Brush size: the preset's until the painter sets one
    assert brush.value() is None and brush.input.suffix() == " ×"
    brush.set(2.0)
    assert brush.value() == 2.0
    seed = fields["seed"]
    seed.set(0)
    assert seed.value() == 0  # a real seed, not "the preset's"
    presets = dialog.preset
    assert [presets.itemData(i) for i in range(presets.count())] == ["fast", "quality", "paper"]
    dialog.close()


def test_dialog_choices_persist_in_the_preferences(sbk, qapp, krita_app):
    prefs = sbk.prefs.Prefs()
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), prefs)
    dialog.fields["strength"].set(0.85)
    dialog.fields["size"].set(96)
    dialog.preset.setCurrentIndex(dialog.preset.findData("quality"))
    dialog._save_prefs(dialog.options())
    dialog.close()
    assert prefs.get("strength") == "0.85" and prefs.get("size") == "96"
    prefs.set("seed", "not json")  # a stale or broken value keeps the default
    again = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), prefs)
    assert again.fields["strength"].value() == 0.85 and again.fields["size"].value() == 96
    assert again.preset.currentData() == "quality" and again.fields["seed"].value() == 0
    again.close()


def test_start_uses_the_installers_absolute_server_command(sbk, tmp_path):
    """`stylebridge install krita` records the command of the stylebridge that installed it:
    Start must work where Krita's PATH has no `stylebridge` (a desktop launcher, a Flatpak)."""
    sp = sbk.stylebridge_wire.server_process
    record = tmp_path / "install.json"
    assert sp.default_command(record) == ["stylebridge", "serve"]  # no record: the plain one
    record.write_text('{"server_command": ["/opt/my venv/bin/stylebridge", "serve"]}')
    assert sp.default_command(record) == ["/opt/my venv/bin/stylebridge", "serve"]
    for broken in ("[1]", '{"server_command": "rm -rf /"}', "{", '{"server_command": []}'):
        record.write_text(broken)
        assert sp.default_command(record) == ["stylebridge", "serve"]


def test_the_saved_command_is_an_argv_and_the_installers_is_not_saved(sbk, tmp_path):
    """Issue 28: a string was split again on its way back, so quotes in a Windows path
    survived; and a command saved on every Apply hid a reinstall elsewhere."""
    sp = sbk.stylebridge_wire.server_process
    record = tmp_path / "install.json"
    installed = ["C:\\Users\\Jane Doe\\pipx\\stylebridge.exe", "serve"]
    record.write_text(json.dumps({"server_command": installed}))
    assert sp.setting_for(installed, record) == ""  # the record's own: nothing saved
    assert sp.saved_command("", record) == installed
    chosen = ["/home/zoë/my venv/bin/stylebridge", "serve"]
    text = sp.setting_for(chosen, record)
    assert json.loads(text) == chosen and sp.saved_command(text, record) == chosen
    # an older plug-in's string, with its quotes: the record instead, never split again
    assert sp.saved_command("'/opt/old venv/bin/stylebridge' serve", record) == installed
    record.write_text(json.dumps({"server_command": ["/elsewhere/stylebridge", "serve"]}))
    assert sp.saved_command("", record) == ["/elsewhere/stylebridge", "serve"]  # a reinstall


def test_a_hostile_number_or_text_never_aborts_krita_or_renders(tmp_path, no_server):
    """Issue 27, item 8: an exception inside a Qt slot aborts a PyQt6 host (exit 134); every
    slot of the dialog is guarded (qt.slot) and tells the error, and server text is plain."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.krita_hostile_slots", str(tmp_path / "pykrita")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "STYLEBRIDGE_RUNTIME_DIR": str(no_server)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout.splitlines()[-1])
    assert "infinity" in shown["after_progress"]  # told in the dialog, Krita still running
    assert "division by zero" in shown["panel_error"]
    assert shown["plain_labels"] == [True, True, True]
    assert shown["message"] == "<b>bold</b> <img src='x'>"
