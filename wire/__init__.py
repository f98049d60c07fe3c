"""stylebridge's client, standard library only: the protocol's words, discovery, the request
and job bookkeeping (`Client`), ZMTP and msgpack in plain Python, and what the plug-ins share
(the vocabulary of presets and controls, the style catalogue, progress text, pixel helpers).

Installed as ``stylebridge.wire``, and vendored into the Krita and GIMP plug-ins as
``stylebridge_wire`` (which is why every import inside it is relative).
"""

from .client import Client, JobHandle, PendingReply
from .discovery import discovery_path, find_server, runtime_dir
from .protocol import (
    DTYPES,
    VERSION,
    ClientError,
    Image,
    ServerError,
    ServerUnavailable,
    TransportError,
)
from .zmtp import DealerSocket, ZmtpError

__all__ = [
    "DTYPES",
    "VERSION",
    "Client",
    "ClientError",
    "DealerSocket",
    "Image",
    "JobHandle",
    "PendingReply",
    "ServerError",
    "ServerUnavailable",
    "TransportError",
    "ZmtpError",
    "discovery_path",
    "find_server",
    "runtime_dir",
]
