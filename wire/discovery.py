"""Where a running server is: the discovery file it writes (endpoint, per-start token, pid),
or STYLEBRIDGE_ENDPOINT and STYLEBRIDGE_TOKEN. Standard library only; the server writes the file
through server/discovery.py, which reads it back with this module.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from typing import Any

from .protocol import ServerUnavailable

# in the runtime folder: where a running server is (with its token), and the log of a server
# started in the background
DISCOVERY_FILE = "server.json"
LOG_FILE = "server.log"
# a loopback server on POSIX also listens on this Unix socket (ZeroMQ's ipc://) beside its
# discovery file, which names it under IPC_KEY: the private folder guards it, no port does
IPC_FILE = "server.sock"
IPC_KEY = "ipc"
IPC_SCHEME = "ipc://"
FLATPAK_INFO = "/.flatpak-info"  # present inside every Flatpak sandbox
PROC = "/proc"  # Linux: a folder per running process, owned by its user
START_AGAIN = "start it again (the Start button, or `stylebridge serve`)"


def runtime_dir() -> str:
    """``$STYLEBRIDGE_RUNTIME_DIR``, ``$XDG_RUNTIME_DIR/stylebridge``, else a folder under the
    home folder, ``~/.cache/stylebridge/run``: never one in a shared temp folder, where another
    user could make it first and so keep the server from starting."""
    env = os.environ.get("STYLEBRIDGE_RUNTIME_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "stylebridge")
    return os.path.join(os.path.expanduser("~"), ".cache", "stylebridge", "run")


def discovery_path() -> str:
    """Where a running server writes its endpoint and token."""
    return os.path.join(runtime_dir(), DISCOVERY_FILE)


class UntrustedFile(ServerUnavailable):
    """A discovery file (or its folder) someone else could have put there: never used."""


def untrusted(path: str, folder: bool) -> str | None:
    """Why ``path`` cannot be trusted with a token, or None: it must be the user's own, not a
    symbolic link, and closed to group and others (POSIX; Windows profiles are private)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    st = os.lstat(path)  # FileNotFoundError: the caller's "absent"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if folder != stat.S_ISDIR(st.st_mode):
        return "is not a folder" if folder else "is not a regular file"
    if st.st_uid != getuid():
        return "belongs to another user"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return "is open to other users"
    return None


def check_private(path: str, folder: bool) -> None:
    """Raise `UntrustedFile` naming ``path`` and why, unless it passes `untrusted`."""
    why = untrusted(path, folder)
    if why is not None:
        raise UntrustedFile(
            f"{path} {why}, so it is not used (a stylebridge folder or file must be yours, with "
            "no access for others); remove it, or set STYLEBRIDGE_RUNTIME_DIR to a private folder"
        )


class StaleServer(ServerUnavailable):
    """The discovery file names a server process that no longer runs (killed, crashed): a
    plug-in's Apply starts a new server as it would with no file at all."""


class ForeignServer(ServerUnavailable):
    """The discovery file at ``path`` names a running process of another user: never used."""

    def __init__(self, path: str, pid: int) -> None:
        super().__init__(
            f"the discovery file {path} names pid {pid}, a process of another user, not a "
            f"stylebridge server of yours, so it is not used: remove the file and {START_AGAIN}"
        )
        self.path = path


def recorded_process(pid: int) -> tuple[bool, int | None]:
    """Whether process ``pid`` runs, and its owner's uid (None where the system does not say).
    Linux: its /proc folder (a zombie, dead but not yet reaped by the plug-in that started it,
    counts as gone); other POSIX systems: signal 0, alive only; Windows: unchecked (its os.kill
    ends the process), alive."""
    if sys.platform.startswith("linux"):
        try:
            owner = os.stat(os.path.join(PROC, str(pid))).st_uid
            with open(os.path.join(PROC, str(pid), "stat"), "rb") as f:
                state = f.read().rpartition(b")")[2].split()[:1]
        except OSError:  # FileNotFoundError, or gone between the two calls
            return False, None
        return state not in ([b"Z"], [b"X"]), owner
    if os.name != "posix":
        return True, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:  # another user's: alive
        pass
    return True, None


def check_recorded_pid(
    info: dict[str, Any],
    path: str,
    state: Callable[[int], tuple[bool, int | None]] = recorded_process,
    uid: int | None = None,
) -> None:
    """Raise `StaleServer` when the server the discovery file at ``path`` records no longer
    runs, `ForeignServer` when its pid is another user's process (``state`` and ``uid``:
    tests inject them; ``uid`` defaults to this process's). Inside a Flatpak sandbox pids
    belong to another namespace, so nothing is checked there: the server's proof of the token
    (docs/protocol.md, "Authentication") still guards the pixels."""
    if os.path.exists(FLATPAK_INFO):
        return
    pid = info["pid"]
    alive, owner = state(pid)
    if not alive:
        raise StaleServer(
            f"the stylebridge server recorded in {path} (pid {pid}) is no longer running: "
            + START_AGAIN
        )
    getuid = getattr(os, "getuid", None)
    uid = uid if uid is not None else getuid() if getuid is not None else None
    if owner is not None and uid is not None and owner != uid:
        raise ForeignServer(path, pid)


def local_socket(info: dict[str, Any], path: str) -> str | None:
    """The discovery file's ipc endpoint when its socket is there to use: a socket of this
    user's, closed to others, in the file's own (private) folder; else None (no socket, as on
    Windows, or one a Flatpak sandbox does not see): the caller uses the TCP endpoint."""
    endpoint = info.get(IPC_KEY)
    getuid = getattr(os, "getuid", None)
    if not isinstance(endpoint, str) or not endpoint.startswith(IPC_SCHEME) or getuid is None:
        return None
    socket_path = endpoint[len(IPC_SCHEME) :]
    if os.path.dirname(socket_path) != os.path.dirname(path):
        return None
    try:
        st = os.lstat(socket_path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        return None
    return endpoint


def read_discovery(path: str | None = None) -> dict[str, Any] | None:
    """The discovery file's content, or None when it is absent or not one. A file or folder
    another user could have planted raises `UntrustedFile` instead: a client must never send
    its pixels to someone else's listener."""
    path = path or discovery_path()
    try:
        check_private(os.path.dirname(path) or ".", folder=True)
        # O_NOFOLLOW: a link swapped in after the check is refused by the open itself
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except UntrustedFile:
        raise
    except OSError:
        return None
    try:
        with os.fdopen(fd, encoding="utf-8") as f:
            if getattr(os, "getuid", None) is not None:
                st = os.fstat(f.fileno())
                if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
                    raise UntrustedFile(
                        f"{path} belongs to another user or is open to others, so it is not used"
                    )
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    if not isinstance(info.get("endpoint"), str) or not isinstance(info.get("token"), str):
        return None
    pid = info.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 1:
        return None
    return info


def chosen_endpoint(endpoint: str | None = None) -> str:
    """The endpoint a client uses: ``endpoint``, else ``STYLEBRIDGE_ENDPOINT``; "" means this
    machine's own server, found by its discovery file (the only one a plug-in starts or stops)."""
    return (endpoint or "").strip() or os.environ.get("STYLEBRIDGE_ENDPOINT", "").strip()


def typed_server(endpoint: str, token: str) -> tuple[str | None, str | None]:
    """A panel's endpoint and token as a `Client` takes them: no endpoint typed is this
    machine's server (or the environment's), and a typed token counts only with an endpoint."""
    endpoint = endpoint.strip()
    return (endpoint, token.strip() or None) if endpoint else (None, None)


def find_server(
    endpoint: str | None = None, token: str | None = None, ipc: bool = False
) -> tuple[str, str]:
    """Endpoint and token: the arguments, else ``STYLEBRIDGE_ENDPOINT`` + ``STYLEBRIDGE_TOKEN``,
    else the discovery file (see `discovery_path`), whose server process must still run
    (`check_recorded_pid`). ``ipc``: the caller's transport speaks ipc://, so the file's
    `local_socket` is preferred to its TCP endpoint. Raises `ServerUnavailable` when none."""
    endpoint = chosen_endpoint(endpoint) or None
    token = token or os.environ.get("STYLEBRIDGE_TOKEN") or None
    if endpoint and token:
        return endpoint, token
    path = discovery_path()
    info = read_discovery(path)
    if info is None:
        raise ServerUnavailable(
            "no stylebridge server found: STYLEBRIDGE_ENDPOINT and STYLEBRIDGE_TOKEN are not "
            f"both set and there is no valid discovery file at {path} "
            "(start a server with: stylebridge serve)"
        )
    check_recorded_pid(info, path)
    if not endpoint:
        endpoint = (ipc and local_socket(info, path)) or info["endpoint"]
    return endpoint, token or info["token"]


def open_log(folder: str | None = None) -> Any:
    """`LOG_FILE` in the runtime folder (made 0700 if missing) for appending, binary: the
    folder must pass `check_private`, and the file is opened without following a link."""
    folder = folder or runtime_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    check_private(folder, folder=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(os.path.join(folder, LOG_FILE), flags, 0o600), "ab")
