"""What a server on the LAN needs that a loopback one does not: a token that survives restarts
(studio members are given it once) and a CURVE key pair, both made on first use, mode 0600."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import stat
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.utils import z85

from stylebridge.core.errors import StyleBridgeError


def config_dir() -> Path:
    """``STYLEBRIDGE_CONFIG``, else ``$XDG_CONFIG_HOME/stylebridge``, ``~/.config/stylebridge``."""
    if env := os.environ.get("STYLEBRIDGE_CONFIG"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "stylebridge"


def is_local(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address; False for any other
    interface (a LAN address, a host name, ``*`` or 0.0.0.0)."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _private_folder(path: Path) -> None:
    """Make ``path`` private if this call creates it. A folder that exists is the user's
    (``--token-file ~/token`` names their home): its mode is theirs, the secret file's is ours."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)


def _check_private(path: Path) -> None:
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise StyleBridgeError(
            f"{path} is readable by other users: chmod 600 it (it holds a secret)"
        )


def read_secret(path: Path) -> str:
    """The stripped text of a secret file that only its owner can read."""
    _check_private(path)
    return path.read_text().strip()


def studio_token(path: Path | None = None) -> str:
    """The token in ``path`` (default: <config>/token), made on first use."""
    path = path or config_dir() / "token"
    try:
        if not path.exists():
            _private_folder(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        token = read_secret(path)
    except OSError as exc:
        raise StyleBridgeError(f"cannot read or make the token file {path}: {exc}") from exc
    if len(token) < 16:
        raise StyleBridgeError(f"the token in {path} is shorter than 16 characters")
    return token


def curve_keys(folder: Path | None = None) -> tuple[bytes, bytes]:
    """This server's CURVE (public, secret) keys from ``folder`` (default: <config>/curve),
    made on first use; the public key is what clients are given."""
    folder = folder or config_dir() / "curve"
    secret = folder / "server.key_secret"  # create_certificates writes server.key beside it
    try:
        if not secret.exists():
            _private_folder(folder)
            zmq.auth.create_certificates(folder, "server")
            os.chmod(secret, 0o600)
        _check_private(secret)
        pub, sec = zmq.auth.load_certificate(secret)
    except (OSError, ValueError) as exc:
        raise StyleBridgeError(f"cannot read or make the CURVE keys in {folder}: {exc}") from exc
    if sec is None or pub is None:
        raise StyleBridgeError(f"{secret} holds no secret key")
    return pub, sec


def token_keys(token: str) -> tuple[bytes, bytes]:
    """The CURVE (public, secret) key pair, z85, that the holder of ``token`` derives from it:
    a studio server allows the public keys of its members' tokens (server/members.py) and of
    its own in its handshake, so the token is checked there, before any message frame (any 32
    bytes are a valid Curve25519 secret key)."""
    seed = hashlib.sha256(b"stylebridge curve client key\x00" + token.encode()).digest()
    secret = z85.encode(seed)
    return zmq.curve_public(secret), secret
