"""Each fact once (issue 26): a limit, a default, a file name or a protocol word that the server
and its clients share has a single definition, which every other module imports.

Read from the source of what ships (core/, server/, wire/, plugins/): a file name is written as
a string in one module only; a limit or default is assigned in one module, and the modules
that use it hold no number of its value (so none keeps a copy of its own).
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stylebridge.server import cli, install
from stylebridge.wire import messages
from testing import REPO

SHIPPED = ("core", "server", "wire", "plugins")


def sources() -> list[Path]:
    return sorted(p for folder in SHIPPED for p in (REPO / folder).rglob("*.py"))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def values(path: Path) -> list[Any]:
    """Every constant in ``path``, and every arithmetic of constants (``8192 * 8192``) folded."""
    found = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Constant):
            found.append(node.value)
        elif isinstance(node, ast.BinOp | ast.UnaryOp) and all(
            isinstance(n, ast.Constant | ast.BinOp | ast.UnaryOp | ast.operator | ast.unaryop)
            for n in ast.walk(node)
        ):
            found.append(eval(compile(ast.Expression(node), str(path), "eval"), {}))
    return found


def assigned(path: Path, name: str) -> bool:
    """Whether ``path`` assigns ``name`` at module level."""
    for node in tree(path).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


# ============================================================================== file names

FILE_NAMES = {
    "server.json": "wire/discovery.py",  # the discovery file
    "server.log": "wire/discovery.py",  # a background server's log
    "server.sock": "wire/discovery.py",  # a loopback server's Unix socket
    "/.flatpak-info": "wire/discovery.py",  # inside a Flatpak sandbox: pids are not ours
    "install.json": "wire/server_process.py",  # the installer's record in a plug-in's folder
    "strength": "wire/vocabulary.py",  # the control the plug-ins make the layer's opacity
    "/usr/bin/flatpak-spawn": "wire/server_process.py",  # a Flatpak host's way out (Start)
    "stylebridge.server.cli": "wire/server_process.py",  # the server's module, for python -m
}


@pytest.mark.parametrize(("text", "home"), FILE_NAMES.items())
def test_each_name_is_written_in_one_module(text, home):
    holders = [str(p.relative_to(REPO)) for p in sources() if text in values(p)]
    assert holders == [home]


# ================================================================ limits and defaults


@dataclass(frozen=True)
class Fact:
    home: str  # the module that defines it
    name: str  # its name there
    users: tuple[str, ...]  # modules that once held a copy of their own: now they import it
    namesakes: tuple[str, ...] = ()  # modules defining another fact under the same name

    @property
    def value(self) -> Any:
        package, _, module = self.home.removesuffix(".py").partition("/")
        return getattr(importlib.import_module(f"stylebridge.{package}.{module}"), self.name)


FACTS = {
    "max pixels": Fact(
        "core/settings.py",
        "DEFAULT_MAX_PIXELS",
        ("core/images.py", "server/protocol.py", "server/cli.py"),
    ),
    "idle unload": Fact(
        "server/defaults.py",
        "IDLE_UNLOAD",
        ("server/worker.py", "server/server.py", "server/cli.py"),
    ),
    "drain": Fact("server/defaults.py", "DRAIN_SECONDS", ("server/server.py", "server/cli.py")),
    "server start wait": Fact(
        "wire/server_process.py",
        "START_WAIT",
        ("server/spawn.py", "wire/server_watch.py", "plugins/gimp/stylebridge/stylebridge_gimp.py"),
    ),
    "preview side": Fact(
        "wire/messages.py",
        "PREVIEW_SIDE",
        ("wire/client.py", "server/protocol.py"),
    ),
    "header bytes": Fact("wire/protocol.py", "MAX_HEADER_BYTES", ("wire/client.py",)),
    "frame bytes": Fact(
        "wire/protocol.py",
        "FRAME_BYTES",
        ("wire/messages.py", "server/sockets.py", "server/protocol.py", "server/client.py"),
    ),
}


@pytest.mark.parametrize("fact", FACTS.values(), ids=FACTS)
def test_each_limit_is_defined_once_and_imported_where_it_is_used(fact):
    definers = [str(p.relative_to(REPO)) for p in sources() if assigned(p, fact.name)]
    assert sorted(definers) == sorted([fact.home, *fact.namesakes])
    copies = [user for user in fact.users if fact.value in values(REPO / user)]
    assert not copies, f"{fact.name} = {fact.value!r} written again in {copies}"


# ============================================================ the hosts, the CLI, the wire


def test_the_cli_offers_the_hosts_and_versions_of_the_install_table():
    (command,) = [
        a for a in cli.build_parser()._subparsers._group_actions if "install" in a.choices
    ]
    options = {a.dest: a.choices for a in command.choices["install"]._actions}
    assert list(options["host"]) == list(install.HOSTS)
    assert options["version"] == install.GIMP_VERSIONS == install.HOSTS["gimp"].versions


def test_the_cli_serves_with_the_servers_own_defaults():
    from stylebridge.server.defaults import DRAIN_SECONDS, IDLE_UNLOAD
    from stylebridge.server.protocol import Limits

    args = cli.build_parser().parse_args(["serve"])
    limits = Limits()
    assert (args.max_pixels, args.max_queue) == (limits.max_pixels, limits.max_queue)
    assert (args.idle_unload, args.drain) == (IDLE_UNLOAD, DRAIN_SECONDS)


def test_no_message_is_a_dict_literal_outside_the_messages_module():
    """A dict with a "type" key that names a message is one written by hand."""
    words = set(messages.REQUESTS) | set(messages.REPLIES)
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sources()
        if path != REPO / "wire" / "messages.py"
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Dict)
        and any(
            isinstance(k, ast.Constant) and k.value == "type" and isinstance(v, ast.Constant)
            and v.value in words
            for k, v in zip(node.keys, node.values, strict=True)
        )
    ]  # fmt: skip
    assert not found
