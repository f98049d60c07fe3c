"""A CURVE studio server's members: who may connect, one CURVE public key each.

The members file (<config>/members, mode 0600) holds one ``NAME PUBLIC-KEY`` per line (z85);
a line that starts with `#` is a comment (z85 keys hold `#` too, so only a whole line is).
`add_member` makes a member a token of their own, whose key pair the member's client derives
from it (`credentials.token_keys`, as for any token), and writes only the public half here:
the server keeps no member's secret, and removing the line locks that member out without
touching anyone else (docs/studio.md).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from zmq.utils import z85

from stylebridge.core.errors import StyleBridgeError

from .credentials import config_dir, token_keys

MEMBERS_FILE = "members"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_CHARS = 40  # z85 of a 32-byte Curve25519 key


def members_path() -> Path:
    return config_dir() / MEMBERS_FILE


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise StyleBridgeError(
            f"member name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def read_members(path: Path) -> dict[bytes, str]:
    """z85 public key -> member name, from ``path`` (absent: no members). A line that is not
    ``NAME KEY``, a key twice, or a file others may write raises `StyleBridgeError` naming it."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StyleBridgeError(f"cannot read the members file {path}: {exc}") from None
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o022:
        raise StyleBridgeError(
            f"{path} can be changed by other users: chmod 600 it (it says who may connect)"
        )
    members: dict[bytes, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{path}, line {number}"
        if len(words) != 2 or not NAME.fullmatch(words[0]):
            raise StyleBridgeError(f"{where}: expected 'NAME PUBLIC-KEY', got {line.strip()!r}")
        name, key = words
        try:
            valid = len(key) == KEY_CHARS and len(z85.decode(key)) == 32
        except (ValueError, KeyError):
            valid = False
        if not valid:
            raise StyleBridgeError(f"{where}: {key!r} is not a z85 CURVE public key")
        if key.encode() in members:
            raise StyleBridgeError(f"{where}: the key of {members[key.encode()]} again")
        members[key.encode()] = name
    return members


def add_member(name: str, path: Path | None = None) -> str:
    """Make ``name`` a member with a new token of their own; its public key goes into the
    members file (made 0600 if missing). Returns the token, which only the member gets."""
    path = path or members_path()
    check_name(name)
    if name in read_members(path).values():
        raise StyleBridgeError(f"{name} is already a member (remove them first to replace them)")
    token = secrets.token_urlsafe(32)
    public = token_keys(token)[0].decode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(f"{name} {public}\n")
    except OSError as exc:
        raise StyleBridgeError(f"cannot add to the members file {path}: {exc}") from None
    return token


def remove_member(name: str, path: Path | None = None) -> None:
    """Take ``name``'s line out of the members file; `StyleBridgeError` if there is none."""
    path = path or members_path()
    if name not in read_members(path).values():
        raise StyleBridgeError(f"{name} is not a member (see {path})")
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if line.split()[:1] != [name]
    ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


class Members:
    """The members file as the handshake reads it: read again whenever it changes, so a member
    removed is refused from their next connection on. A file that no longer reads refuses every
    member until it is fixed (and says why in the log, once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._read_stamp()
        self.by_key = read_members(path)  # at start a bad file stops the server

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def name(self, key: bytes) -> str | None:
        """The member whose z85 public key is ``key``, or None."""
        stamp = self._read_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.by_key = read_members(self.path)
            except StyleBridgeError as exc:
                self.by_key = {}
                print(f"stylebridge: refusing every member: {exc}", flush=True)
        return self.by_key.get(key)
