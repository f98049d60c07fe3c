"""`stylebridge serve` with a fault injected into its handshake's handler (the ZAP thread), for
tests/server/test_handshake.py: a client token of "fail" makes the check raise an error, one
of "die" ends the handler thread itself, as a bug or a crash below Python could.

    python -m tests.support.faulty_zap serve --listen ENDPOINT
"""

from __future__ import annotations

import sys

from stylebridge.server import cli, sockets
from stylebridge.wire.protocol import plain_password

check = sockets.TokenAuthenticator._authenticate_plain


def faulty(self, domain: str, username: str, password: str) -> tuple[bool, bytes]:
    if password == plain_password("fail"):  # a client's token "fail"
        raise RuntimeError("injected: the check fails")
    if password == plain_password("die"):
        raise SystemExit("injected: the handler thread ends")
    return check(self, domain, username, password)


sockets.TokenAuthenticator._authenticate_plain = faulty

if __name__ == "__main__":
    sys.exit(cli.main())
