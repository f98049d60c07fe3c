"""Standard-library-only client wire protocol for the stylebridge server.

Embedded Pythons (Krita, GIMP) have neither pyzmq nor msgpack; this package speaks enough of
both to talk to the server's ROUTER socket. It only uses relative imports so that it can be
vendored into a plug-in under any parent package.
"""

from .msgpack_lite import packb, unpackb
from .zmtp import DealerSocket, ZmtpError

__all__ = ["DealerSocket", "ZmtpError", "packb", "unpackb"]
