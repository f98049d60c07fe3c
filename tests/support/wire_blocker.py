"""Make ``zmq`` and ``msgpack`` unimportable, then load the plug-ins' stdlib wire package.

Used by the subprocess peers of the wire tests: what they prove holds only if the wire package
cannot lean on pyzmq or msgpack. The package is loaded from wire/ by
its path, under the name the plug-ins vendor it as (``stylebridge_wire``), exactly as a plug-in
holds it: nothing from the installed ``stylebridge`` package is involved, so the peers run under
any Python 3.8+ (STYLEBRIDGE_WIRE_PEER_PYTHON). Kept runnable on Python 3.8.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from typing import Any

BLOCKED = ("zmq", "msgpack")
WIRE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "wire",
)


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked in this peer")
        return None


def load_package(folder: str = WIRE, name: str = "stylebridge_wire") -> Any:
    """The package in ``folder``, imported as ``name`` (its submodules import relatively)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_wire() -> Any:
    """The wire package with zmq and msgpack blocked; its submodules (``msgpack_lite``,
    ``zmtp``, ``client``, ...) are attributes of it."""
    sys.meta_path.insert(0, _Blocker())
    for name in list(sys.modules):
        if name.partition(".")[0] in BLOCKED:
            del sys.modules[name]
    for name in BLOCKED:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        raise SystemExit(f"{name} is still importable; the peer would prove nothing")
    wire = load_package()
    importlib.import_module("stylebridge_wire.msgpack_lite")
    leaked = [name for name in sys.modules if name.partition(".")[0] in BLOCKED]
    if leaked:
        raise SystemExit(f"importing the wire package pulled in {leaked}")
    return wire
