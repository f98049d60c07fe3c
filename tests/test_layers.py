"""The layers point one way (docs/architecture.md): core <- server -> wire <- plugins.

Read from the source, not from what happens to be imported: every import statement of every
module, relative ones resolved, against what its layer may use.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from testing import REPO

# folder -> the stylebridge packages its modules may import
ALLOWED = {
    "core": {"core"},
    "wire": {"wire"},
    # install lays out the plug-ins, which ship as package data of stylebridge.plugins
    "server": {"core", "wire", "server", "plugins"},
    "plugins": {"wire", "plugins"},
}
# how the plug-ins name their vendored copy of the wire package
VENDORED_WIRE = "stylebridge_wire"


def optional(tree: ast.AST) -> set[ast.AST]:
    """Imports inside ``try: ... except ImportError``: the module works without them."""
    return {
        inner
        for node in ast.walk(tree)
        if isinstance(node, ast.Try)
        and any(isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers)
        for statement in node.body
        for inner in ast.walk(statement)
    }


def imports(path: Path, required: bool = False) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``path``, relative ones resolved;
    ``required``: leave out the optional ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(REPO).parent.parts
    skip = optional(tree) if required else set()
    found = []
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                parts = [*base, *(node.module.split(".") if node.module else [])]
                found.append((".".join(("stylebridge", *parts)), node.lineno))
            else:
                found.append((node.module, node.lineno))
    return found


def layer_of(name: str) -> str | None:
    """The stylebridge package ``name`` belongs to (the plug-ins' vendored wire included)."""
    parts = name.split(".")
    if VENDORED_WIRE in parts:
        return "wire"
    if parts[0] == "stylebridge" and len(parts) > 1:
        return parts[1]
    return None


def sources(layer: str) -> list[Path]:
    return sorted((REPO / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(layer):
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sources(layer)
        for name, line in imports(path)
        if (target := layer_of(name)) is not None and target not in ALLOWED[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_only_install_reaches_into_the_plug_ins():
    users = {
        str(path.relative_to(REPO))
        for path in sources("server")
        for name, _ in imports(path)
        if layer_of(name) == "plugins"
    }
    assert users == {"server/install.py"}


def test_the_wire_package_needs_only_the_standard_library():
    third_party = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sources("wire")
        for name, line in imports(path, required=True)
        if layer_of(name) is None and name.partition(".")[0] not in sys.stdlib_module_names
    ]
    assert not third_party, "\n".join(third_party)


def test_tests_and_benchmarks_stand_apart():
    """What both use is in testing/, which imports neither; the tests of benchmark code
    (tests/benchmarks/) are the only tests that import benchmarks."""
    never = {"benchmarks": {"tests"}, "testing": {"tests", "benchmarks"}, "tests": {"benchmarks"}}
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for folder, others in never.items()
        for path in sorted((REPO / folder).rglob("*.py"))
        if not path.is_relative_to(REPO / "tests" / "benchmarks")
        for name, line in imports(path)
        if name.partition(".")[0] in others
    ]
    assert not wrong, "\n".join(wrong)
