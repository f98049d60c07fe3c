"""A scripted ZMTP 3.1 peer on a raw TCP socket: greetings, frames and commands written byte by
byte, so the stdlib `DealerSocket` can be checked against exact bytes and misbehaving servers
(tests/wire/test_wire_conformance.py)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

SERVER_GREETING = (
    b"\xff" + bytes(8) + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\0") + b"\x01" + bytes(31)
)
CLIENT_GREETING = (
    b"\xff" + bytes(8) + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\0") + b"\x00" + bytes(31)
)


def frame(body: bytes, more: bool = False, command: bool = False, long: bool = False) -> bytes:
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    if long or len(body) > 255:
        return bytes((flags | 0x02,)) + struct.pack(">Q", len(body)) + body
    return bytes((flags, len(body))) + body


def command(name: bytes, data: bytes = b"") -> bytes:
    return frame(bytes((len(name),)) + name + data, command=True)


def ready(**props: bytes) -> bytes:
    meta = b"".join(
        bytes((len(k),)) + k.encode().replace(b"_", b"-") + struct.pack(">I", len(v)) + v
        for k, v in props.items()
    )
    return command(b"READY", meta)


def recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_frame(conn: socket.socket) -> tuple[int, bytes]:
    flags, size = recv_exact(conn, 2)
    if flags & 0x02:
        (size,) = struct.unpack(">Q", bytes((size,)) + recv_exact(conn, 7))
    return flags, recv_exact(conn, size)


def wait_for_eof(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass


def server_handshake(conn: socket.socket) -> tuple[int, bytes]:
    conn.sendall(SERVER_GREETING)
    assert recv_exact(conn, 64) == CLIENT_GREETING
    their_ready = recv_frame(conn)
    conn.sendall(ready(Socket_Type=b"ROUTER"))
    return their_ready


class ScriptedServer:
    """A raw TCP listener whose one connection is handled by `script` on a thread."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.conn: socket.socket | None = None

    def run(self, script: Callable[[socket.socket], None]) -> None:
        def main() -> None:
            try:
                self.listener.settimeout(10)
                conn, _ = self.listener.accept()
                conn.settimeout(10)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.conn = conn
                script(conn)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def finish(self) -> None:
        assert self.thread is not None
        self.thread.join(10)
        assert not self.thread.is_alive(), "scripted server hangs"
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()
