"""Start the local server on the artist's request, with the command from the settings."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from .stylebridge_wire import runtime_dir

DEFAULT_COMMAND = "stylebridge serve"


class StartError(OSError):
    """The configured command could not be started; the message says which and why."""


def start(command: str = DEFAULT_COMMAND) -> subprocess.Popen:
    """Run ``command`` detached from Krita (it outlives Krita); output to server.log."""
    argv = shlex.split(command, posix=os.name != "nt")
    if not argv:
        raise StartError("The server command is empty (Settings: server command).")
    folder = Path(runtime_dir())
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    log = folder / "server.log"
    flags: dict = {}
    if sys.platform == "win32":
        flags["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        flags["start_new_session"] = True
    try:
        with open(log, "ab") as out:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **flags
            )
    except OSError as exc:
        raise StartError(
            f"Cannot start {argv[0]!r}: {exc.strerror or exc}. "
            "Install stylebridge or set the server command."
        ) from exc
