"""Test harness plug-in (tests only): run one script inside a real Krita, report, quit.

When the first main window exists, the module at $KRITA_TEST_SCRIPT is run and its
``main()`` called; its return value (JSON-able) or the traceback goes to $KRITA_TEST_OUT.
Then every document is closed unsaved and Krita quits through its own ``file_quit`` action.
Krita 5 embeds PyQt5, Krita 6 PyQt6 (and refuses a plug-in importing the other): the binding
follows ``pykrita.qt_major_version()`` where Krita has it.
"""

import importlib
import json
import os
import runpy
import traceback

from krita import Krita


def _qt_major() -> int:
    try:
        import pykrita
    except ImportError:
        return 5
    version = getattr(pykrita, "qt_major_version", None)
    return int(version()) if callable(version) else 5


_started = False


def _run() -> None:
    out = os.environ["KRITA_TEST_OUT"]
    try:
        module = runpy.run_path(os.environ["KRITA_TEST_SCRIPT"])
        report = {"ok": True, "result": module["main"]()}
    except BaseException:
        report = {"ok": False, "traceback": traceback.format_exc()}
    with open(out + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, default=repr)
    os.replace(out + ".tmp", out)
    app = Krita.instance()
    for doc in app.documents():
        doc.setModified(False)
        doc.close()
    app.action("file_quit").trigger()


def _window_created() -> None:
    global _started
    if _started:
        return
    _started = True
    qt_core = importlib.import_module(f"PyQt{_qt_major()}.QtCore")
    qt_core.QTimer.singleShot(500, _run)


if os.environ.get("KRITA_TEST_SCRIPT"):
    Krita.instance().notifier().windowCreated.connect(_window_created)
