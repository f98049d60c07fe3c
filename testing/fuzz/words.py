"""What docs/protocol.md says, as the oracle needs it: the protocol's numbers and vocabulary
(the wire package's, the client core every client shares), the error codes, and the server's
limits a case is built for (`Context`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stylebridge.wire import protocol as wire_protocol
from stylebridge.wire import vocabulary

# --- what docs/protocol.md says ------------------------------------------------------------------
# The protocol's numbers (version, header limits, pixel types) and its vocabulary (presets and
# controls a client may send) are the wire package's: the client core every client shares, the
# plug-ins included (wire/, generated from core/settings.py). The rest
# of the oracle is written from docs/protocol.md, not from server/protocol.py.

VOCABULARY = vocabulary.default()
VERSION = wire_protocol.VERSION
# fmt: off
CODES = frozenset({
    "bad_message", "bad_version", "bad_token", "unknown_type", "bad_field", "too_large",
    "queue_full", "unknown_job", "engine_error", "shutting_down", "forbidden",
})
# fmt: on
REQUEST_TYPES = ("ping", "status", "submit", "cancel", "echo", "shutdown", "estimate")
VALID_REPLY = {
    "ping": "pong",
    "status": "status",
    "echo": "echo",
    "submit": "accepted",
    "shutdown": "bye",
    "estimate": "estimate",
}
ITEMSIZE = dict(wire_protocol.DTYPES)
PRESETS = tuple(VOCABULARY.presets)
DEFAULT_PRESET = VOCABULARY.default_preset
CONTROLS = tuple(VOCABULARY.controls)
MAX_HEADER_BYTES = wire_protocol.MAX_HEADER_BYTES
# the header is level 1, every value inside a container one level more
MAX_DEPTH = wire_protocol.MAX_HEADER_DEPTH
MAX_ID_CHARS = 64
MAX_ASPECT = 64  # the engine refuses thinner layers (late: as the job's error)
ERROR_KEYS = {"v", "type", "id", "job", "code", "message", "field"}
ANY = "<any>"  # an error whose field is not checked


@dataclass(frozen=True)
class Context:
    token: str
    max_pixels: int = 8192 * 8192
    max_styles: int = 8

    @classmethod
    def from_status(cls, token: str, status: dict[str, Any]) -> Context:
        limits = status["limits"]
        return cls(token, limits["max_pixels"], limits["max_styles"])


def depth(value: Any) -> int:
    """Levels of values: the header is 1, each container adds one (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest
