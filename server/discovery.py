"""The discovery file: where a running server is and its per-start token (mode 0600)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from stylebridge.core.errors import StyleBridgeError
from stylebridge.wire import discovery as wire_discovery

from .credentials import is_local


def discovery_path() -> Path:
    return Path(wire_discovery.discovery_path())


def private_folder(folder: Path) -> None:
    """Make ``folder`` (mode 0700) or close ours; raise OSError when it is another user's or a
    link: someone else's folder."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    why = wire_discovery.untrusted(str(folder), folder=True)
    if why == "is open to other users":  # ours, too open: close it
        os.chmod(folder, 0o700, follow_symlinks=False)
    elif why is not None:
        raise OSError(f"{folder} {why}")


def local_socket(endpoint: str) -> Path | None:
    """Where a server listening on ``endpoint`` also takes this machine's clients through a
    Unix socket (docs/protocol.md, "Transport"): loopback TCP on POSIX, in the runtime folder
    (made private here). None elsewhere: Windows, the LAN, an ipc:// endpoint already."""
    if os.name != "posix" or not endpoint.startswith("tcp://") or not is_local(endpoint):
        return None
    folder = discovery_path().parent
    private_folder(folder)
    return folder / wire_discovery.IPC_FILE


def write_discovery(info: dict[str, Any], path: Path | None = None) -> Path:
    """Write atomically with mode 0600 in a 0700 folder; refuse to go on if that fails."""
    path = path or discovery_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        private_folder(path.parent)
        # O_EXCL | O_NOFOLLOW: never write through a file or link planted at our temp name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w") as f:
            if hasattr(os, "fchmod"):  # POSIX; on Windows the user's profile folder protects it
                os.fchmod(f.fileno(), 0o600)
            json.dump(info, f)
        if os.name == "posix" and stat.S_IMODE(os.stat(tmp).st_mode) != 0o600:
            raise OSError("the file system does not keep mode 0600")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # never leave the token behind in a loose file
        raise StyleBridgeError(
            f"cannot write the discovery file {path} with mode 0600 ({exc}); "
            "set STYLEBRIDGE_RUNTIME_DIR to a private folder"
        ) from exc
    return path


def read_discovery(path: Path | None = None) -> dict[str, Any] | None:
    return wire_discovery.read_discovery(str(path or discovery_path()))


def remove_discovery(pid: int, path: Path | None = None, socket: Path | None = None) -> None:
    """Remove the file, and the server's Unix ``socket``, only if the file is still ours (a
    newer server may have replaced both)."""
    path = path or discovery_path()
    info = read_discovery(path)
    if info is not None and info.get("pid") == pid:
        path.unlink(missing_ok=True)
        if socket is not None:
            socket.unlink(missing_ok=True)
