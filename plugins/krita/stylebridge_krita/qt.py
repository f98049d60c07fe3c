"""One import point for Qt: PyQt5 inside Krita 5, PyQt6 inside Krita 6.

Krita refuses a plug-in that imports the other binding (two Qt copies in one process crash),
so the choice follows the host: ``pykrita.qt_major_version()`` where Krita has it (5.3+ and
6), else Krita 5's PyQt5. Outside Krita (tests), $STYLEBRIDGE_QT ("5" or "6") picks, else
whichever is installed, PyQt6 first. Code elsewhere spells enums fully scoped
(``Qt.AlignmentFlag.AlignLeft``), which both bindings accept.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any


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


def _taken(call: Callable[..., Any]) -> int | None:
    """How many positional arguments ``call`` takes (None: any number)."""
    params = inspect.signature(call).parameters.values()
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _run(
    call: Callable[..., Any], args: tuple, kwargs: dict, takes: int | None, report: Any
) -> Any:
    try:
        return call(*args[:takes], **kwargs)
    except Exception as exc:
        try:
            if report is None:
                raise
            report(str(exc).strip() or type(exc).__name__)
        except Exception:
            traceback.print_exc(file=sys.stderr)
        return None


def guarded(call: Callable[..., Any], report: Callable[[str], Any] | None = None) -> Any:
    """``call`` as Qt may call it (a signal's slot, a timer's): an exception never leaves it,
    since PyQt6 aborts the whole host on one that does (and PyQt5 does where the host keeps
    the default ``sys.excepthook``). The exception goes to ``report(text)``, else to stderr
    with its traceback. Signal arguments ``call`` does not take are dropped, as PyQt does."""
    takes = _taken(call)
    return lambda *args: _run(call, args, {}, takes, report)


def slot(method: Callable[..., Any]) -> Any:
    """`guarded` for a method Qt calls (a slot, an event handler): the exception goes to its
    object's ``report_error(text)`` where it has one (the dialog shows it), else to stderr."""
    takes = _taken(method)  # self included

    def bound(self: Any, *args: Any, **kwargs: Any) -> Any:
        report = getattr(self, "report_error", None)
        return _run(method, (self, *args), kwargs, takes, report)

    bound.__name__, bound.__doc__ = method.__name__, method.__doc__
    return bound


def plain_label(text: str = "") -> Any:
    """A QLabel that shows its text as written: a server's message with HTML in it is not
    rendered (QLabel's default, AutoText, would)."""
    label = QtWidgets.QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


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
