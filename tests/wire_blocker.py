"""Make ``zmq`` and ``msgpack`` unimportable, then import the plug-ins' stdlib wire package.

Used by the subprocess peers of the conformance tests: what they prove holds only if the wire
package cannot lean on pyzmq or msgpack.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from pathlib import Path
from typing import Any

BLOCKED = ("zmq", "msgpack")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked in this peer")
        return None


def load_wire() -> Any:
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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "common"))
    wire = importlib.import_module("stylebridge_wire")
    leaked = [name for name in sys.modules if name.partition(".")[0] in BLOCKED]
    if leaked:
        raise SystemExit(f"importing the wire package pulled in {leaked}")
    return wire
