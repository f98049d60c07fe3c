"""This machine's server listens on a Unix socket too (issue 27; docs/protocol.md,
"Transport"): ipc:// in its private runtime folder, named in the discovery file, preferred by
the pyzmq client, with the same handshake as its TCP port; the plug-ins' standard-library
client stays on TCP. Real server process, real sockets."""

from __future__ import annotations

import json
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from stylebridge import wire
from stylebridge.server.client import Client
from stylebridge.wire.discovery import IPC_FILE
from testing.servers import RunningServer, start_server

REFUSED = "did not accept this client's token"


@pytest.fixture(scope="module")
def served():
    # a short folder: a Unix socket's path must fit in about 100 bytes (pytest's tmp_path
    # names can pass that, and the server then says so and listens on TCP only)
    with tempfile.TemporaryDirectory(prefix="sb-") as folder:
        srv = start_server(Path(folder) / "run")
        yield srv
        srv.stop()


@pytest.fixture
def found(served: RunningServer, monkeypatch) -> RunningServer:
    """``served``, found through its discovery file."""
    for name in ("STYLEBRIDGE_ENDPOINT", "STYLEBRIDGE_TOKEN", "STYLEBRIDGE_SERVER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(served.runtime))
    return served


def test_the_socket_is_private_and_named_in_the_discovery_file(found):
    sock = found.runtime / IPC_FILE
    info = json.loads((found.runtime / "server.json").read_text())
    assert info["ipc"] == f"ipc://{sock}" and info["endpoint"] == found.endpoint
    mode = sock.lstat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_the_python_client_prefers_the_socket_with_the_same_proof_of_the_token(found):
    with Client(timeout=10) as client:
        assert client.endpoint == f"ipc://{found.runtime / IPC_FILE}"
        image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        assert np.array_equal(client.echo(image), image)  # echo carries pixels: proof first
    # the same handshake as the port: a wrong token is refused there
    endpoint = f"ipc://{found.runtime / IPC_FILE}"
    wrong = Client(endpoint, "not-the-token", timeout=5)
    with wrong, pytest.raises(wire.ServerUnavailable, match=REFUSED):
        wrong.ping()


def test_the_plugins_client_stays_on_tcp(found):
    with wire.Client(timeout=10) as client:
        assert client.endpoint == found.endpoint
        assert client.ping().protocol == wire.VERSION


def test_a_socket_the_client_cannot_use_falls_back_to_tcp(found):
    """No socket where the file says (a Flatpak sandbox that does not see the folder), or one
    that is not private: the port."""
    sock = found.runtime / IPC_FILE
    hidden = sock.rename(found.runtime / "elsewhere.sock")
    try:
        with Client(timeout=10) as client:
            assert client.endpoint == found.endpoint and client.ping().type == "pong"
    finally:
        hidden.rename(sock)
    sock.chmod(0o666)
    try:
        with Client(timeout=10) as client:
            assert client.endpoint == found.endpoint
    finally:
        sock.chmod(0o600)


def test_stopping_removes_the_socket(found):
    found.stop()
    assert found.proc.returncode == 0
    assert not (found.runtime / IPC_FILE).exists()
    assert not (found.runtime / "server.json").exists()
