"""Shared fixtures: the real VGG16 weights (resolved once), the engine, the shared paintings, a
real server process per test module with a client for it, and no server at all (`no_server`).

A module tunes its server with module-level constants: ``SERVER_ARGS`` (extra ``serve``
options, default none) and ``CLIENT_TIMEOUT`` (seconds, default 20).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testing import REPO
from testing.servers import start_server

SHARED_IMAGES = REPO.parent / "shared" / "images"


@pytest.fixture(scope="session")
def weights():
    from stylebridge.core.weights import resolve_weights

    return resolve_weights(allow_download=False)


@pytest.fixture(scope="session")
def engine():
    import torch

    from stylebridge.core.engine import Engine

    torch.set_num_threads(2)
    return Engine(device="cpu")


@pytest.fixture(scope="session")
def assets():
    from stylebridge.core import assets

    return assets


@pytest.fixture
def shared_images() -> Path:
    if not (SHARED_IMAGES / "starry_night.jpg").is_file():
        pytest.skip(f"the shared paintings are absent ({SHARED_IMAGES}); they are optional")
    return SHARED_IMAGES


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A real server process of the module's own (``SERVER_ARGS``), on a free loopback port."""
    args = getattr(request.module, "SERVER_ARGS", ())
    srv = start_server(tmp_path_factory.mktemp("runtime"), *args)
    yield srv
    srv.stop()


@pytest.fixture
def client(request, server):
    """The Python client (pyzmq) connected to the module's server."""
    from stylebridge.server.client import Client

    timeout = getattr(request.module, "CLIENT_TIMEOUT", 20)
    with Client(server.endpoint, server.token, timeout=timeout) as c:
        yield c


@pytest.fixture
def no_server(tmp_path, monkeypatch) -> Path:
    """No server anywhere: an empty discovery folder and no address in the environment."""
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path))
    for key in ("STYLEBRIDGE_ENDPOINT", "STYLEBRIDGE_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path
