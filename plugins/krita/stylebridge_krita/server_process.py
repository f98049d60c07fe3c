"""Start the local server on the artist's request, with the command from the settings."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from .stylebridge_wire import ClientError
from .stylebridge_wire.discovery import open_log

DEFAULT_COMMAND = "stylebridge serve"
# written by `stylebridge install krita` beside this module: the absolute command of the
# stylebridge that installed it, so Start works without stylebridge on Krita's PATH
INSTALL_RECORD = Path(__file__).with_name("install.json")


def default_command(record: Path = INSTALL_RECORD) -> str:
    """The installer's server command when there is one, else ``stylebridge serve``."""
    try:
        command = json.loads(record.read_text(encoding="utf-8")).get("server_command")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_COMMAND
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        return subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command)
    return DEFAULT_COMMAND


class StartError(OSError):
    """The configured command could not be started; the message says which and why."""


def start(command: str) -> subprocess.Popen:
    """Run ``command`` detached from Krita (it outlives Krita); output to server.log."""
    argv = shlex.split(command, posix=os.name != "nt")
    if not argv:
        raise StartError("The server command is empty (Settings: server command).")
    try:
        out = open_log()
    except (OSError, ClientError):  # the runtime folder is unusable: a private one of our own
        out = open_log(tempfile.mkdtemp(prefix="stylebridge-"))
    flags: dict = {}
    if sys.platform == "win32":
        flags["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        flags["start_new_session"] = True
    try:
        with out:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **flags
            )
    except OSError as exc:
        raise StartError(
            f"Cannot start {argv[0]!r}: {exc.strerror or exc}. "
            "Install stylebridge or set the server command."
        ) from exc
