"""The protocol's words (docs/protocol.md) that are not a message's: the version, the header's
limits, the pixel types, the errors a client raises, and `Image`, raw pixels as a message
carries them. The messages themselves are in messages.py. Standard library only: the server's
own codec (server/protocol.py) reads its constants from here.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

# 2: the token moved from every header into the ZMTP handshake (PLAIN, or a CURVE key derived
# from it), so nothing from an unauthenticated peer is ever buffered; a version-1 client is
# refused in the handshake (its NULL mechanism does not match).
# 3: no frame is larger than FRAME_BYTES (an image's pixels over it travel in several), so a
# server takes no larger frame, the handshake's commands included (docs/protocol.md, "Images");
# the PLAIN password is `plain_password`, not the token, and the server proves it holds the
# token (`server_proof`) before a client sends it any pixels ("Authentication")
VERSION = 3  # the protocol version this package speaks
PLAIN_USER = "stylebridge"  # the ZMTP PLAIN username; the password is `plain_password`
DEFAULT_PORT = 47474
DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PORT}"
MAX_HEADER_BYTES = 64 * 1024  # frame 0, the msgpack header
# the most bytes one frame of a message carries: an image's pixels over it travel in
# consecutive frames of this size (the last one shorter); a peer that sends a larger frame, or
# announces one in its handshake, is dropped unread
FRAME_BYTES = 16 << 20
MAX_HEADER_DEPTH = 8
NONCE_BYTES = 32  # a prove request's nonce
DTYPES = {"uint8": 1, "uint16": 2, "float32": 4}  # dtype name -> bytes per sample


def plain_password(token: str) -> str:
    """The ZMTP PLAIN password of a client that holds ``token``: PLAIN shows it in clear to
    whatever answers (after a SIGKILL, any process that took the server's port), so it is a
    key derived from the token, never the token, which `server_proof` then needs."""
    return hmac.new(token.encode(), b"stylebridge plain password", hashlib.sha256).hexdigest()


def server_proof(token: str, nonce: str) -> str:
    """How a server that holds ``token`` answers a client's ``nonce`` (a prove request): both
    in hex."""
    message = b"stylebridge server proof\0" + bytes.fromhex(nonce)
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


class ClientError(Exception):
    """Base of the errors this client raises on purpose."""


class TransportError(ClientError):
    """The connection itself failed (refused, reset, a bad greeting)."""


class ServerUnavailable(ClientError):
    """No server found, the connection failed, or the server stopped answering."""


class ServerError(ClientError):
    """The server answered with an ``error`` reply (docs/protocol.md, "Errors")."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"ServerError({self.code!r}, {self.message!r}, {self.field!r})"


class Image:
    """Raw pixels as the protocol carries them.

    ``height`` rows of ``width`` pixels of ``channels`` interleaved samples (1 gray, 2 gray +
    alpha, 3 RGB, 4 RGBA with straight alpha), row-major, no padding, little-endian samples of
    ``dtype`` ("uint8", "uint16" or "float32": full scale 1.0, values beyond it kept; see
    docs/protocol.md). ``data`` is kept as bytes (other bytes-like objects are copied once); its
    length must match exactly.
    """

    __slots__ = ("channels", "data", "dtype", "height", "width")

    def __init__(self, width: int, height: int, channels: int, dtype: str, data: Any) -> None:
        for name, value in (("width", width), ("height", height), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if channels > 4:
            raise ValueError(f"channels must be 1..4, got {channels}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if not isinstance(data, bytes):
            try:
                data = memoryview(data).tobytes()
            except TypeError:
                raise TypeError(f"data must be bytes-like, not {type(data).__name__!r}") from None
        expected = width * height * channels * DTYPES[dtype]
        if len(data) != expected:
            raise ValueError(
                f"{width}x{height}x{channels} {dtype} needs {expected} bytes, got {len(data)}"
            )
        self.width = width
        self.height = height
        self.channels = channels
        self.dtype = dtype
        self.data: bytes = data

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (self.width, self.height, self.channels, self.dtype, self.data) == (
            other.width,
            other.height,
            other.channels,
            other.dtype,
            other.data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height}, channels={self.channels}, dtype={self.dtype})"
