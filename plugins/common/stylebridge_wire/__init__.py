"""Standard-library-only client wire protocol for the stylebridge server.

Embedded Pythons (Krita, GIMP) have neither pyzmq nor msgpack; this package speaks enough of
both to talk to the server's ROUTER socket, and `PluginClient` speaks docs/protocol.md on top.
It only uses relative imports so that it can be vendored into a plug-in under any parent
package.
"""

from .client import (
    DTYPES,
    PROTOCOL_VERSION,
    ClientError,
    Image,
    JobHandle,
    PluginClient,
    ServerError,
    ServerUnavailable,
    discovery_path,
    find_server,
    runtime_dir,
)
from .msgpack_lite import packb, unpackb
from .zmtp import DealerSocket, ZmtpError

__all__ = [
    "DTYPES",
    "PROTOCOL_VERSION",
    "ClientError",
    "DealerSocket",
    "Image",
    "JobHandle",
    "PluginClient",
    "ServerError",
    "ServerUnavailable",
    "ZmtpError",
    "discovery_path",
    "find_server",
    "packb",
    "runtime_dir",
    "unpackb",
]
