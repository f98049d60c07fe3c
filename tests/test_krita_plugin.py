"""The Krita plug-in's logic without Krita: pixel layouts at every depth, selection boxes,
options, and the dialog built offscreen under PyQt6 (Krita 6's binding). The plug-in is
assembled exactly as its zip ships it (with its own copy of the stdlib bridge)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is a test dependency (pip install -e .[test])")


@pytest.fixture(scope="module")
def sbk(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("plugins_dist", ROOT / "plugins" / "dist.py")
    dist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dist)
    where = dist.assemble_krita(tmp_path_factory.mktemp("pykrita"))
    saved = {k: os.environ.get(k) for k in ("STYLEBRIDGE_QT", "QT_QPA_PLATFORM")}
    os.environ.update(STYLEBRIDGE_QT="6", QT_QPA_PLATFORM="offscreen")
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module("stylebridge_krita")
        for name in ("formats", "host", "options", "styles", "dialog", "settings", "qt"):
            importlib.import_module(f"stylebridge_krita.{name}")
        yield module
    finally:
        sys.path.remove(str(where))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
    assert sbk.formats.alpha8(Image(1, 1, 3, "uint8", b"abc")) == b"\xff"


# ------------------------------------------------------------------ a fake of Krita's API
class Rect:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self):
        return self._r[0]

    def y(self):
        return self._r[1]

    def width(self):
        return self._r[2]

    def height(self):
        return self._r[3]


class Canvas:
    """Full-canvas pixels with Krita's ``pixelData(x, y, w, h)`` (zeros outside)."""

    def __init__(self, width, height, pixel, data):
        self.w, self.h, self.pixel, self.data = width, height, pixel, data

    def pixelData(self, x, y, w, h):
        out = bytearray()
        for row in range(y, y + h):
            for col in range(x, x + w):
                inside = 0 <= row < self.h and 0 <= col < self.w
                start = (row * self.w + col) * self.pixel
                out += self.data[start : start + self.pixel] if inside else bytes(self.pixel)
        return bytes(out)


class FakeNode(Canvas):
    def __init__(self, width, height, model="RGBA", depth="U8", data=None, kind="paintlayer"):
        pixel = {"RGBA": 4, "GRAYA": 2}.get(model, 5) * {"U8": 1, "U16": 2}.get(depth, 4)
        super().__init__(
            width, height, pixel, data or bytes(range(256)) * (width * height * pixel // 256 + 1)
        )
        self.model, self.depth, self.kind = model, depth, kind

    def type(self):
        return self.kind

    def name(self):
        return "Paint Layer 1"

    def bounds(self):
        return Rect(0, 0, self.w, self.h)

    def colorModel(self):
        return self.model

    def colorDepth(self):
        return self.depth


class FakeSelection(Canvas, Rect):
    def __init__(self, width, height, box):
        x, y, w, h = box
        mask = bytearray(width * height)
        for row in range(y, y + h):
            mask[row * width + x : row * width + x + w] = b"\xff" * w
        Canvas.__init__(self, width, height, 1, bytes(mask))
        Rect.__init__(self, *box)


class FakeDocument:
    def __init__(self, node, selection=None, model=None, depth=None):
        self.node, self.sel = node, selection
        self.model, self.depth = model or node.model, depth or node.depth

    def width(self):
        return self.node.w

    def height(self):
        return self.node.h

    def selection(self):
        return self.sel

    def colorModel(self):
        return self.model

    def colorDepth(self):
        return self.depth

    def pixelData(self, x, y, w, h):
        return self.node.pixelData(x, y, w, h)


def test_capture_without_selection_takes_the_whole_layer(sbk):
    node = FakeNode(40, 30)
    cap = sbk.host.capture(FakeDocument(node), node)
    assert cap.box == (0, 0, 40, 30) and cap.mask is None
    assert cap.content.data[:4] == bytes((2, 1, 0, 3))  # BGRA swapped to RGBA


def test_capture_of_a_small_selection_works_on_its_box_plus_a_margin(sbk):
    node = FakeNode(400, 300)
    doc = FakeDocument(node, FakeSelection(400, 300, (200, 100, 20, 10)))
    cap = sbk.host.capture(doc, node)
    margin = sbk.host.context_margin(20, 10)
    assert margin == 32
    assert cap.box == (200 - margin, 100 - margin, 20 + 2 * margin, 10 + 2 * margin)
    assert (cap.mask.width, cap.mask.height) == (cap.box[2], cap.box[3])
    row = cap.mask.data[(margin + 5) * cap.box[2] : (margin + 6) * cap.box[2]]
    assert row == bytes(margin) + b"\xff" * 20 + bytes(margin)
    # a selection at the edge: the box is clipped to the canvas
    cap = sbk.host.capture(FakeDocument(node, FakeSelection(400, 300, (0, 0, 10, 10))), node)
    assert cap.box == (0, 0, 42, 42)


@pytest.mark.parametrize(
    ("doc_args", "node_args", "message"),
    [
        ({}, {"model": "CMYKA"}, "CMYKA"),
        ({"depth": "U16"}, {}, "convert the layer to the image's colour space"),
        ({}, {"kind": "transparencymask"}, "Select a paint layer"),
        ({}, {"data": bytes(40 * 30 * 4)}, "is empty"),
    ],
)
def test_capture_refuses_what_it_cannot_stylise_with_a_clear_message(
    sbk, doc_args, node_args, message
):
    node = FakeNode(40, 30, **node_args)
    with pytest.raises(ValueError, match=message):
        sbk.host.capture(FakeDocument(node, **doc_args), node)
    with pytest.raises(ValueError, match="No document"):
        sbk.host.capture(None, None)


def test_empty_selection_is_refused(sbk):
    node = FakeNode(40, 30)
    sel = FakeSelection(40, 30, (5, 5, 4, 4))
    sel.data = bytes(len(sel.data))  # bounds but no selected pixel
    with pytest.raises(ValueError, match="selection is empty"):
        sbk.host.capture(FakeDocument(node, sel), node)


# ------------------------------------------------------------------ options and styles
def test_options_map_to_server_controls_and_name_bad_values(sbk):
    Options = sbk.options.Options
    opts = Options(["starry_night"], strength=0.5, preserve_colors="luminance", size=256, seed=3)
    assert opts.check().controls() == {
        "strength": 0.5,
        "preserve_colors": "luminance",
        "size": 256,
        "time_budget": None,
        "seed": 3,
    }
    for bad, message in [
        ({"styles": []}, "at least one style"),
        ({"strength": 1.5}, "strength"),
        ({"preset": "turbo"}, "preset must be one of fast, quality, paper"),
        ({"preserve_colors": "all"}, "preserve_colors"),
        ({"size": 10}, "size"),
        ({"weights": [1.0, 2.0]}, "2 blend weights for 1 styles"),
        ({"time_budget": 0}, "time budget"),
    ]:
        kwargs = {"styles": ["starry_night"], **bad}
        with pytest.raises(sbk.options.OptionsError, match=message):
            Options(**kwargs).check()


def test_styles_resolve_by_name_title_or_file(sbk, tmp_path):
    styles = sbk.styles
    assert styles.builtin_styles()[0].title == "The Starry Night (van Gogh)"
    assert styles.resolve("the_scream").title == "The Scream (Munch)"
    assert styles.resolve("The Shipwreck (Turner)").builtin
    path = tmp_path / "my_style.png"
    path.write_bytes(b"not an image")
    assert styles.resolve(str(path)).title == "my style"
    with pytest.raises(styles.StyleError, match="Cannot read the style image"):
        styles.load(styles.resolve(str(path)))
    with pytest.raises(styles.StyleError, match="neither an image file nor a built-in"):
        styles.resolve("no such painting")


# ------------------------------------------------------------------ the dialog, PyQt6, offscreen
@pytest.fixture(scope="module")
def qapp(sbk):
    app = sbk.qt.QtWidgets.QApplication.instance() or sbk.qt.QtWidgets.QApplication([])
    yield app


def test_dialog_builds_under_pyqt6_and_maps_its_fields_to_options(sbk, qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path))  # no server there
    for key in ("STYLEBRIDGE_ENDPOINT", "STYLEBRIDGE_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    dialog = sbk.dialog.StyleDialog(lambda source: None, sbk.settings.Settings())
    assert dialog.style_table.rowCount() == 1  # The Starry Night by default
    dialog.add_style("the_scream", 2.0)
    dialog.strength.setValue(40)
    dialog.colors.setCurrentIndex(dialog.colors.findData("histogram"))
    dialog.size.setValue(320)
    opts = dialog.options()
    assert [Path(p).name for p in opts.styles] == ["starry_night.jpg", "the_scream.jpg"]
    assert opts.weights == [1.0, 2.0] and opts.strength == 0.4
    assert (opts.preserve_colors, opts.size, opts.time_budget) == ("histogram", 320, None)
    assert dialog.check_server() is False
    assert "not running" in dialog.server_label.text() and dialog.start_button.isEnabled()
    dialog.apply()  # no server: a message in the dialog, not a traceback
    assert "server" in dialog.message.text().lower()
    assert dialog.apply_button.isEnabled()
    dialog.close()
