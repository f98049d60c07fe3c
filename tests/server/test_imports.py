"""The bridge's modules import no torch: the server's sockets, queue and protocol, the CLI, the
Python client, the relay and image file I/O start fast and lean. Everything that touches
tensors lives in core/ (core/jobs.py for what a server job needs)."""

from __future__ import annotations

import ast
import subprocess
import sys

from testing import REPO

LEAN = (
    "stylebridge.server.cli",
    "stylebridge.server.client",
    "stylebridge.server.relay",
    "stylebridge.server.protocol",
    "stylebridge.server.spawn",
    "stylebridge.core.images",
)


def torch_imports(path) -> list[int]:
    """Lines of ``path`` that import torch (or a torch submodule), wherever they are."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "torch" or name.startswith("torch.") for name in names):
            lines.append(node.lineno)
    return lines


def test_no_server_module_imports_torch():
    sources = sorted((REPO / "server").glob("*.py"))
    assert len(sources) > 5
    found = {p.name: torch_imports(p) for p in sources}
    assert {name: lines for name, lines in found.items() if lines} == {}
    assert not any("import torch" in p.read_text(encoding="utf-8") for p in sources)


def test_the_lean_modules_leave_torch_out_of_a_fresh_process():
    code = (
        "import importlib, json, sys\n"
        f"for name in {LEAN!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"torch was imported: {done.stdout}"
