"""The plug-ins as they install (testing/plugins.py), loaded once for the session: Krita's
under PyQt6 offscreen (Krita 6's binding), GIMP's logic module; and, per test, the GIMP edge
against the fake ``gi`` and the fake ``krita`` module as Krita's application."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from testing.plugins import load_gimp, load_gimp_edge, load_krita
from tests.fakes import gimp as fake_gimp
from tests.fakes import krita as fake_krita


@pytest.fixture(scope="session")
def sbk(tmp_path_factory):
    """The Krita plug-in's package ``stylebridge_krita`` (its modules are attributes)."""
    pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is a test dependency (.[test])")
    saved = {k: os.environ.get(k) for k in ("STYLEBRIDGE_QT", "QT_QPA_PLATFORM")}
    os.environ.update(STYLEBRIDGE_QT="6", QT_QPA_PLATFORM="offscreen")
    try:
        yield load_krita(tmp_path_factory.mktemp("pykrita"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def qapp(sbk):
    widgets = sbk.qt.QtWidgets
    return widgets.QApplication.instance() or widgets.QApplication([])


@pytest.fixture
def krita_app(monkeypatch) -> Any:
    """A fresh fake Krita application, importable as ``krita`` for the plug-in."""
    monkeypatch.setitem(sys.modules, "krita", fake_krita)
    app = fake_krita.reset()
    yield app
    fake_krita.reset()


@pytest.fixture(scope="session")
def sg(tmp_path_factory):
    """The GIMP plug-in's logic module ``stylebridge_gimp``, from its installed folder."""
    return load_gimp(tmp_path_factory.mktemp("gimp-plug-ins"))


@pytest.fixture(scope="session")
def installed(sg) -> Path:
    """The GIMP plug-in folder as the zip installs it."""
    return Path(sg.__file__).parent


@pytest.fixture(scope="session")
def gimp_wire(sg):
    """The GIMP plug-in's own copy of the stdlib bridge (``stylebridge_wire``)."""
    return sys.modules["stylebridge_wire"]


@pytest.fixture
def edge(installed, monkeypatch):
    """stylebridge.py of the installed folder, imported against the fake gi; GIMP's progress
    calls collect in ``edge.progress_log``."""
    progress: list = []
    module = load_gimp_edge(installed, monkeypatch, fake_gimp.modules(progress))
    module.progress_log = progress
    return module
