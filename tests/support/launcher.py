"""A stand-in for the last hop of a plug-in's Start inside a host root (tests/e2e)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from testing.servers import start_server


class HostLauncher:
    """Starts this venv's server on the host when a shim inside a host root asks: the roots'
    Pythons cannot run the venv, so the command the plug-in starts is ``shim`` (a script of
    the root's python3, written into ``folder``, which the root must see), which asks here
    for `stylebridge serve` over loopback (the roots share this machine's network). What runs
    the shim is the plug-in's own Start path (server_process.start); only the last hop is
    this stand-in. The server's discovery file goes to ``runtime``."""

    def __init__(self, runtime: Path, folder: Path) -> None:
        self.runtime, self.servers = runtime, []
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.shim = folder / "stylebridge"
        self.shim.write_text(
            "#!/usr/bin/python3\nimport socket, sys\n"
            f"with socket.create_connection(('127.0.0.1', {port})) as s:\n"
            "    s.sendall(' '.join(sys.argv[1:]).encode()); s.shutdown(socket.SHUT_WR)\n"
            "    print(s.recv(100).decode())\n"
        )
        self.shim.chmod(0o755)
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn:
                self.asked.append(conn.recv(100).decode())
                self.servers.append(start_server(self.runtime))  # returns once it is ready
                conn.sendall(b"started")

    def close(self) -> None:
        self._listener.close()
        for server in self.servers:
            server.stop()
