"""One contract, one file (issue 26): a field added to a message in wire/messages.py, and nowhere
else, reaches the server's codec, the CLI's client and both plug-ins' vendored clients.

The field is a throwaway: this test writes it into a copy of the wire package (the only file
changed is messages.py) and then uses that copy where each side gets its wire package from:
the server and the CLI import ``stylebridge.wire`` (a subprocess whose import path puts the copy
there), the plug-ins carry what plugins/dist.py vendors (the copy, assembled as a zip would be).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import msgpack
import pytest

from stylebridge.wire import messages
from testing import REPO
from testing.plugins import dist

FIELD = "    heat: float | None = optional()  # a throwaway field of this test\n"


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> Path:
    """A copy of wire/ whose Progress has one more field; messages.py is the only change."""
    copy = tmp_path_factory.mktemp("patched") / "wire"
    shutil.copytree(REPO / "wire", copy, ignore=shutil.ignore_patterns("__pycache__"))
    messages = copy / "messages.py"
    text = messages.read_text(encoding="utf-8")
    start = text.index("class Progress(Message):")
    end = text.index("    id: Any = None\n", start)
    messages.write_text(text[:end] + FIELD + text[end:], encoding="utf-8")
    return copy


def load_package(folder: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def progress_header(heat: float) -> dict:
    fields = {"job": "j", "step": 3, "total_steps": 9, "stage": 1, "stages": 1, "width": 8}
    return {"v": 2, "type": "progress", "id": 7, **fields, "height": 8, "losses": {},
            "elapsed": 1.0, "eta": None, "heat": heat}  # fmt: skip


def test_the_server_and_the_cli_see_the_new_field(patched, tmp_path):
    """The server writes it with its own codec (server/protocol.py), and the CLI's client
    (stylebridge.server.client, the wire's Client over pyzmq) hands it to ``on_progress``."""
    package = tmp_path / "pkg" / "stylebridge"
    package.mkdir(parents=True)
    for name in ("core", "server", "plugins"):
        (package / name).symlink_to(REPO / name)
    (package / "wire").symlink_to(patched)
    code = """if True:
        import json, msgpack
        from stylebridge.server.client import Client
        from stylebridge.server.protocol import pack
        from stylebridge.wire import JobHandle, messages
        sent = messages.Progress("j", 3, 9, 1, 1, 8, 8, {}, 1.0, None, heat=0.5, id=7)
        frames = pack(sent)
        client = Client("tcp://127.0.0.1:9", "token", timeout=1)
        seen = []
        client._jobs[7] = JobHandle(client, 7, on_progress=seen.append)
        client._dispatch(frames)
        client.close()
        print(json.dumps({"wire": msgpack.unpackb(frames[0])["heat"], "cli": seen[0].heat,
                          "messages": messages.__file__}))
    """
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["messages"].startswith(str(package))  # the copy, not the repository's wire/
    assert out["wire"] == out["cli"] == 0.5


@pytest.mark.parametrize("host", ["krita", "gimp"])
def test_both_plug_ins_carry_and_read_the_new_field(patched, tmp_path, monkeypatch, host):
    monkeypatch.setattr(dist(), "WIRE", patched)
    if host == "krita":
        folder = dist().assemble_krita(tmp_path) / "stylebridge_krita"
    else:
        folder = dist().assemble_gimp(tmp_path) / "stylebridge"
    name = f"{host}_vendored_wire"
    monkeypatch.delitem(sys.modules, name, raising=False)
    wire = load_package(folder / "stylebridge_wire", name)
    try:
        client = wire.Client("tcp://127.0.0.1:9", "token", timeout=1)
        seen = []
        client._jobs[7] = wire.JobHandle(client, 7, on_progress=seen.append)
        client._dispatch([msgpack.packb(progress_header(0.25))])
        client.close()
        assert seen[0].heat == 0.25 and seen[0].step == 3
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_the_repositorys_own_messages_do_not_have_it():
    assert "heat" not in {f.name for f in dataclasses.fields(messages.Progress)}
