"""One import point for Qt: PyQt5 inside Krita 5, PyQt6 inside Krita 6.

Krita refuses a plug-in that imports the other binding (two Qt copies in one process crash),
so the choice follows the host: ``pykrita.qt_major_version()`` where Krita has it (5.3+ and
6), else Krita 5's PyQt5. Outside Krita (tests), $STYLEBRIDGE_QT ("5" or "6") picks, else
whichever is installed, PyQt6 first. Code elsewhere spells enums fully scoped
(``Qt.AlignmentFlag.AlignLeft``), which both bindings accept.
"""

from __future__ import annotations

import importlib
import os


def _major() -> int:
    try:
        import pykrita  # present only inside Krita
    except ImportError:
        wanted = os.environ.get("STYLEBRIDGE_QT")
        if wanted in ("5", "6"):
            return int(wanted)
        for major in (6, 5):
            try:
                importlib.import_module(f"PyQt{major}.QtCore")
            except ImportError:
                continue
            return major
        raise ImportError("stylebridge_krita needs PyQt5 or PyQt6") from None
    version = getattr(pykrita, "qt_major_version", None)
    return int(version()) if callable(version) else 5


QT_MAJOR = _major()
QtCore = importlib.import_module(f"PyQt{QT_MAJOR}.QtCore")
QtGui = importlib.import_module(f"PyQt{QT_MAJOR}.QtGui")
QtWidgets = importlib.import_module(f"PyQt{QT_MAJOR}.QtWidgets")
Qt = QtCore.Qt
pyqtSignal = QtCore.pyqtSignal


def exec_loop(loop: object) -> int:
    """``exec()`` of a dialog or event loop (PyQt5 also spells it ``exec_``)."""
    return loop.exec() if hasattr(loop, "exec") else loop.exec_()  # type: ignore[attr-defined]


def image_bytes(image: object) -> bytes:
    """A QImage's pixel buffer as bytes, rows without padding."""
    stride, height = image.bytesPerLine(), image.height()  # type: ignore[attr-defined]
    raw = image.constBits().asstring(stride * height)  # type: ignore[attr-defined]
    row = image.width() * image.depth() // 8  # type: ignore[attr-defined]
    if row == stride:
        return raw
    return b"".join(raw[y * stride : y * stride + row] for y in range(height))
