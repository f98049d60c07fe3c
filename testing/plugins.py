"""The plug-ins as users install them (plugins/dist.py lays them out), imported by path.

Nothing goes on ``sys.path``: the Krita plug-in's package and the GIMP plug-in's modules are
loaded from the assembled folders with importlib, under the names the hosts give them
(``stylebridge_krita``; ``stylebridge_gimp`` and the vendored ``stylebridge_wire``), so the
tests exercise the copies that ship, vendored bridge and built-in paintings included.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testing import REPO

KRITA_MODULES = (
    "formats", "slices", "host", "canvas", "options", "prefs", "qt", "styles", "runner",
    "server_panel", "dialog", "api",
)  # fmt: skip


def import_path(name: str, path: Path, package: bool = False) -> types.ModuleType:
    """Import the file ``path`` (a package's ``__init__.py`` when ``package``) as ``name``."""
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and relative imports look it up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@functools.cache
def dist() -> types.ModuleType:
    """plugins/dist.py: ``assemble_krita``, ``assemble_gimp``, ``build_krita``, ..."""
    return import_path("plugins_dist", REPO / "plugins" / "dist.py")


def load_krita(pykrita: Path) -> types.ModuleType:
    """Assemble the Krita plug-in into ``pykrita`` and import it with its modules (Qt comes from
    $STYLEBRIDGE_QT, so set it first)."""
    dist().assemble_krita(pykrita)
    package = import_path(
        "stylebridge_krita", pykrita / "stylebridge_krita" / "__init__.py", package=True
    )
    for name in KRITA_MODULES:
        importlib.import_module(f"stylebridge_krita.{name}")
    return package


def load_gimp(plug_ins: Path) -> types.ModuleType:
    """Assemble the GIMP plug-in into ``plug_ins`` and import its logic module
    (``stylebridge_gimp``) with the vendored ``stylebridge_wire`` beside it, as the edge does.
    Returns the logic module; its folder is ``Path(module.__file__).parent``."""
    folder = dist().assemble_gimp(plug_ins) / "stylebridge"
    import_path("stylebridge_wire", folder / "stylebridge_wire" / "__init__.py", package=True)
    return import_path("stylebridge_gimp", folder / "stylebridge_gimp.py")


def load_gimp_edge(folder: Path, monkeypatch: Any, fake_modules: dict[str, Any]) -> Any:
    """``folder/stylebridge.py`` (the edge that talks to GIMP) imported against fake ``gi``
    modules, for one test (`load_gimp` first: it finds the logic module loaded)."""
    for name, module in fake_modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    # the edge puts its own folder first on the import path when it is missing, as GIMP runs
    # it; that folder holds a stylebridge.py, which must not shadow the stylebridge package
    # for later tests: the path is given back as it was when the test ends
    monkeypatch.setattr(sys, "path", [*sys.path])
    name = "stylebridge_gimp_edge"
    spec = importlib.util.spec_from_file_location(name, folder / "stylebridge.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pump_until(qapp: Any, done: Callable[[], bool], timeout: float = 10.0) -> float:
    """Run Qt's event loop until ``done()`` (failing after ``timeout`` s); the seconds it took."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < timeout, "timed out"
        qapp.processEvents()
        time.sleep(0.005)
    return time.monotonic() - start
