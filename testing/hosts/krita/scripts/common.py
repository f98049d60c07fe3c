"""Helpers for the scripts that run inside Krita (imported by path from each script).

Krita 5 embeds PyQt5 and Krita 6 PyQt6; `qt_widgets()` gives the one this Krita runs.
"""

import importlib
import struct

from krita import Krita


def qt_major():
    """5 or 6: the Qt (and PyQt) this Krita embeds."""
    try:
        import pykrita
    except ImportError:
        return 5
    version = getattr(pykrita, "qt_major_version", None)
    return int(version()) if callable(version) else 5


def qt_widgets():
    return importlib.import_module(f"PyQt{qt_major()}.QtWidgets")


def pattern_rgba8(width, height):
    """A deterministic test picture: gradients, a disc and stripes, opaque, RGBA bytes."""
    out = bytearray()
    for y in range(height):
        for x in range(width):
            inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 3) ** 2
            r = 230 if inside else int(255 * x / width)
            g = int(255 * y / height) if not inside else 60
            b = 200 if (x // 6) % 2 else 40
            out += bytes((r, g, b, 255))
    return bytes(out)


def encode(rgba8, model, depth):
    """RGBA bytes -> Krita's layout for (model, depth) (BGRA for U8/U16, RGBA for floats)."""
    pixels = [rgba8[i : i + 4] for i in range(0, len(rgba8), 4)]
    out = bytearray()
    for r, g, b, a in pixels:
        if model == "GRAYA":
            values = ((r * 30 + g * 59 + b * 11) // 100, a)
        elif depth in ("U8", "U16"):
            values = (b, g, r, a)
        else:
            values = (r, g, b, a)
        if depth == "U8":
            out += bytes(values)
        elif depth == "U16":
            out += struct.pack(f"<{len(values)}H", *(v * 257 for v in values))
        elif depth == "F16":
            out += struct.pack(f"<{len(values)}e", *(v / 255 for v in values))
        else:
            out += struct.pack(f"<{len(values)}f", *(v / 255 for v in values))
    return bytes(out)


def decode(data, model, depth):
    """Krita bytes -> list of (channel values as floats 0..1) per pixel, colour then alpha."""
    fmt = {"U8": "B", "U16": "H", "F16": "e", "F32": "f"}[depth]
    scale = {"U8": 255.0, "U16": 65535.0, "F16": 1.0, "F32": 1.0}[depth]
    n = len(data) // struct.calcsize(fmt)
    values = [v / scale for v in struct.unpack(f"<{n}{fmt}", data)]
    channels = 2 if model == "GRAYA" else 4
    pixels = [values[i : i + channels] for i in range(0, n, channels)]
    if channels == 4 and depth in ("U8", "U16"):
        pixels = [[p[2], p[1], p[0], p[3]] for p in pixels]
    return pixels


def new_document(width, height, model="RGBA", depth="U8", name="stylebridge-test"):
    app = Krita.instance()
    doc = app.createDocument(width, height, name, model, depth, "", 72.0)
    app.activeWindow().addView(doc)
    layer = doc.rootNode().childNodes()[0]
    layer.setPixelData(encode(pattern_rgba8(width, height), model, depth), 0, 0, width, height)
    doc.refreshProjection()
    doc.waitForDone()
    activate(doc, layer)
    return doc, layer


def names(doc):
    """Top-level layer names, bottom first (the global selection mask left out)."""
    return [n.name() for n in doc.rootNode().childNodes() if n.type() != "selectionmask"]


def undo(doc):
    Krita.instance().action("edit_undo").trigger()
    doc.waitForDone()


def activate(doc, node):
    """Make ``node`` the active layer; Krita applies it through the event loop."""
    import time

    QApplication = qt_widgets().QApplication

    settle = time.monotonic() + 0.3  # let pending node insertions activate their nodes first
    while time.monotonic() < settle:
        QApplication.processEvents()
        time.sleep(0.01)
    doc.setActiveNode(node)
    deadline = time.monotonic() + 5
    while doc.activeNode() is None or doc.activeNode().name() != node.name():
        if time.monotonic() > deadline:
            raise RuntimeError("Krita did not activate " + node.name())
        QApplication.processEvents()
        time.sleep(0.01)


def pump_until(predicate, timeout):
    """Run Krita's event loop until ``predicate()`` holds; returns the seconds it took."""
    import time

    QApplication = qt_widgets().QApplication

    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not met within {timeout} s")
        QApplication.processEvents()
        time.sleep(0.01)
    return time.monotonic() - start


def grab_screen(path):
    """A screenshot of the whole (virtual) screen, as a user sees it."""
    QApplication = qt_widgets().QApplication

    QApplication.processEvents()
    return QApplication.primaryScreen().grabWindow(0).save(path)
