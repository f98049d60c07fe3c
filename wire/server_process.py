"""The local server as a plug-in sees it: the command that starts it (the installer's record),
starting it detached, its log, and what to say when a sandbox hides it. Both plug-ins use it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from . import discovery
from .discovery import LOG_FILE, open_log, runtime_dir
from .protocol import ClientError

# The command Start runs is an argv list everywhere (the installer's record, the dialogs' saved
# settings, Popen): never a string split again, so a path with spaces or quotes stays one
# argument on every system.
DEFAULT_COMMAND = ("stylebridge", "serve")
# the other exact start `_runs_stylebridge_serve` takes: a Python running the server's module
PYTHON_NAME = r"python(\d+(\.\d+)*)?w?(\.exe)?"
SERVER_MODULE = ["-m", "stylebridge.server.cli"]
# how a Flatpak host starts a program outside its sandbox (its path in every Flatpak runtime)
FLATPAK_SPAWN = "/usr/bin/flatpak-spawn"
START_WAIT = 120.0  # s for a started server to load its model and answer (a cold CPU machine)
# `stylebridge install krita|gimp` writes INSTALL_FILE into the plug-in's own folder (the
# parent of this package as the plug-ins ship it): the absolute command of the stylebridge that
# installed it, so Start works without stylebridge on the host's PATH
INSTALL_FILE = "install.json"
INSTALL_RECORD = Path(__file__).resolve().parent.parent / INSTALL_FILE
FLATPAK_INFO = Path(discovery.FLATPAK_INFO)
# the hosts' Flatpak ids: the sandbox hint names them, `stylebridge install` prints overrides
KRITA_FLATPAK = "org.kde.krita"
GIMP_FLATPAK = "org.gimp.GIMP"


def _argv(value: object) -> list[str] | None:
    """``value`` if it is a non-empty list of strings (an argv), else None."""
    if isinstance(value, list) and value and all(isinstance(a, str) and a for a in value):
        return list(value)
    return None


def default_command(record: Path = INSTALL_RECORD) -> list[str]:
    """The installer's server command when there is one, else ``stylebridge serve``."""
    try:
        command = json.loads(record.read_text(encoding="utf-8")).get("server_command")
    except (OSError, ValueError, AttributeError):
        return list(DEFAULT_COMMAND)
    return _argv(command) or list(DEFAULT_COMMAND)


def command_for(program: str) -> list[str]:
    """The server command for a chosen ``stylebridge`` program (a file picker's answer)."""
    return [program, "serve"]


def saved_command(text: str, record: Path = INSTALL_RECORD) -> list[str]:
    """The command a dialog's saved setting holds (a JSON argv), else the installer's record.
    An empty setting, or one saved by an older plug-in as a string, means the record, so a
    reinstall elsewhere takes effect."""
    try:
        command = _argv(json.loads(text)) if text else None
    except ValueError:
        command = None
    return command or default_command(record)


def setting_for(command: list[str], record: Path = INSTALL_RECORD) -> str:
    """What a dialog saves for ``command``: "" for the installer's own (a later install's record
    then applies), else the argv as JSON."""
    return "" if command == default_command(record) else json.dumps(command)


def shown_command(command: list[str]) -> str:
    """``command`` as the system's shell would take it, to show (never to run)."""
    return subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command)


class StartError(OSError):
    """The configured command could not be started; the message says which and why."""


def start(command: list[str]) -> subprocess.Popen:
    """Run the argv ``command`` detached from the host (it outlives the host); output to
    `log_path`."""
    argv = [str(a) for a in command]
    if not argv:
        raise StartError("The server program is not set: choose it under Connection...")
    if not _runs_stylebridge_serve(argv):
        raise StartError(
            f"The server program {shown_command(argv)} does not run 'stylebridge serve' and "
            "nothing else: choose the stylebridge program by its absolute path under "
            f"Connection... (`stylebridge install` records it: {shown_command(default_command())})."
        )
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
            f"Cannot start {argv[0]}: {exc.strerror or exc}. Choose the stylebridge program "
            "under Connection..., or run `stylebridge install` again."
        ) from exc


def _runs_stylebridge_serve(argv: list[str]) -> bool:
    """Whether ``argv`` is exactly a stylebridge server's start and nothing else: an absolute
    ``.../stylebridge serve`` or ``.../python -m stylebridge.server.cli serve``, behind
    `FLATPAK_SPAWN` ``--host`` for a Flatpak host. No shell and no other program: the command
    lives in files a sandboxed host can write, and ``sh -c CMD stylebridge serve`` would run
    CMD outside the sandbox while it reads as stylebridge."""
    if argv[:2] == [FLATPAK_SPAWN, "--host"]:
        argv = argv[2:]
    if not argv or not os.path.isabs(argv[0]):
        return False
    program, args = Path(argv[0]).name.lower(), argv[1:]
    if re.fullmatch(r"stylebridge(\.exe)?", program):
        return args == ["serve"]
    return bool(re.fullmatch(PYTHON_NAME, program)) and args == [*SERVER_MODULE, "serve"]


def failed_status(process: object) -> int | None:
    """The exit status of a started server command that has ended in failure, else None. A
    command that ends with 0 is a launcher that handed the server on (a service, a shell
    script that backgrounds it): the caller goes on waiting for the server to answer."""
    poll = getattr(process, "poll", None)
    status = poll() if callable(poll) else None
    return status or None


def failed_start(status: int) -> str:
    """What to say of a server command that failed at once (`failed_status`)."""
    return f"ended at once (exit status {status}): see its log, {log_path()}"


def log_path() -> Path:
    """Where a server started here (or `stylebridge serve`) writes its log."""
    return Path(runtime_dir()) / LOG_FILE


def sandbox_hint(app_id: str, info: Path | None = None) -> str | None:
    """The exact command that lets a Flatpak host see the server's folder, when this host runs
    in a Flatpak sandbox (``info``: its marker file); else None."""
    if not (info or FLATPAK_INFO).exists():
        return None
    return (
        "This host runs in a Flatpak sandbox, which hides the server's folder from it. Run "
        f"'flatpak override --user --filesystem=xdg-run/stylebridge {app_id}' and restart it."
    )
