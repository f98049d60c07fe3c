"""Start and stop real server processes for tests (and benchmarks), and talk to them raw."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from stylebridge.server.client import present_token

from . import REPO

DISCOVERY_ENV = ("STYLEBRIDGE_ENDPOINT", "STYLEBRIDGE_TOKEN", "STYLEBRIDGE_RUNTIME_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any server address a developer may have set."""
    return {**{k: v for k, v in os.environ.items() if k not in DISCOVERY_ENV}, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    proc: subprocess.Popen
    endpoint: str
    token: str
    runtime: Path
    log: Path
    admin: str  # shutdown's key, from the discovery file

    @property
    def env(self) -> dict[str, str]:
        return clean_env(STYLEBRIDGE_RUNTIME_DIR=str(self.runtime))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def own_cache(folder: Path) -> dict[str, str]:
    """The environment of a server whose cache is ``folder`` (the converted VGG16 weights
    copied in, so nothing is converted again): it knows no measured rates yet."""
    from stylebridge.core.weights import CACHE_NAME, cache_dir

    folder.mkdir(parents=True, exist_ok=True)
    for name in (CACHE_NAME, Path(CACHE_NAME).with_suffix(".json").name):
        if (cache_dir() / name).is_file():
            shutil.copy2(cache_dir() / name, folder / name)
    return {"STYLEBRIDGE_CACHE": str(folder)}


def start_server(
    runtime: Path,
    *extra: str,
    timeout: float = 90,
    endpoint: str | None = None,
    module: str = "stylebridge.server.cli",
    env: dict[str, str] | None = None,
) -> RunningServer:
    """``python -m MODULE serve --listen ENDPOINT EXTRA...`` (a module of this repository may
    stand in for the CLI, to inject a fault), once it says it is ready; ``env``: more of its
    environment (e.g. a cache folder of its own)."""
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)  # a server wants it private
    endpoint = endpoint or f"tcp://127.0.0.1:{free_port()}"
    log = runtime / "serve.log"
    env = clean_env(STYLEBRIDGE_RUNTIME_DIR=str(runtime), **(env or {}))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--listen", endpoint, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "ready on" in log.read_text():
            info = json.loads((runtime / "server.json").read_text())
            return RunningServer(proc, endpoint, info["token"], runtime, log, info["admin"])
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def raw_socket(server: RunningServer, identity: bytes | None = None) -> zmq.Socket:
    """A bare pyzmq DEALER connected to ``server`` with its token, for hand-made messages."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 20000)
    if identity:
        sock.setsockopt(zmq.IDENTITY, identity)
    present_token(sock, server.token, None)
    sock.connect(server.endpoint)
    return sock
