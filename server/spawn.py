"""Find a running server, or start one in the background for the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from stylebridge.core.errors import StyleBridgeError
from stylebridge.wire.discovery import check_recorded_pid, open_log
from stylebridge.wire.server_process import SERVER_MODULE, START_WAIT, log_path

from .discovery import discovery_path, read_discovery


def running_server(endpoint: str | None = None) -> dict[str, Any] | None:
    """The discovery file's server if it answers a ping (and listens on ``endpoint``)."""
    from .client import Client, ServerError, ServerUnavailable

    info = read_discovery()
    if info is None or (endpoint and info["endpoint"] != endpoint):
        return None
    try:
        # a killed server's file (or another user's pid): nothing of ours to ping, and a ping
        # to a dead endpoint would wait out its whole timeout before a new server starts
        check_recorded_pid(info, str(discovery_path()))
        with Client(info["endpoint"], info["token"], timeout=2) as client:
            client.ping()
    except (ServerUnavailable, ServerError):
        return None
    return info


def ensure_server(
    endpoint: str | None = None, serve_args: Sequence[str] = ()
) -> tuple[dict[str, Any], bool]:
    """The running server, starting ``stylebridge serve [serve_args]`` in the background if
    there is none; and whether this call started it (``serve_args`` reach only a new server)."""
    info = running_server(endpoint)
    if info is not None:
        return info, False
    log = log_path()
    cmd = [sys.executable, *SERVER_MODULE, "serve", *serve_args]
    if endpoint:
        cmd += ["--listen", endpoint]
    print(f"stylebridge: starting a background server (log: {log})", file=sys.stderr)
    with open_log(str(log.parent)) as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StyleBridgeError(f"the background server exited ({proc.returncode}); see {log}")
        info = running_server(endpoint)
        if info is not None and info["pid"] == proc.pid:
            return info, True
        time.sleep(0.3)
    raise StyleBridgeError(
        f"the background server did not start within {START_WAIT:.0f} s; see {log}"
    )
