"""Test harness plug-in (tests only): run one script inside a real Krita, report, quit.

When the first main window exists, the module at $KRITA_TEST_SCRIPT is run and its
``main()`` called; its return value (JSON-able) or the traceback goes to $KRITA_TEST_OUT.
Then every document is closed unsaved and Krita quits through its own ``file_quit`` action.
"""

import json
import os
import runpy
import traceback

from krita import Krita

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
    from PyQt5.QtCore import QTimer

    QTimer.singleShot(500, _run)


if os.environ.get("KRITA_TEST_SCRIPT"):
    Krita.instance().notifier().windowCreated.connect(_window_created)
