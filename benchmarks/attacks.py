"""What the attacks of the second hardening round (issue 16) cost now: run by `make soak` after
the soak, figures for docs/benchmarks.md. The never-ending message without the token (item 1)
is the soak's own section; this module measures the rest, each beside the unguarded path
measured in the same run:

- item 2, a hostile server against the plug-ins' client: a reply header of 1 MiB of nested
  empty arrays, and a message of 500,000 empty frames;
- item 3, a preview frame that is not what a host may wrap as 8-bit RGB;
- item 6, one client that queues jobs whose content, 8 styles and mask are one large frame.

    python -m benchmarks.attacks
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import msgpack
import numpy as np

from stylebridge import wire
from stylebridge.wire.client import _check_preview
from stylebridge.wire.msgpack_lite import unpackb
from stylebridge.wire.protocol import VERSION
from testing import fuzz as fm
from testing.servers import raw_socket, start_server
from testing.zmtp_server import ScriptedServer, frame, server_handshake

MiB = 2**20


def row(name: str, value: str, note: str = "") -> None:
    print(f"  {name:<46} {value:>22}  {note}")


def measured(work: Callable[[], Any]) -> tuple[float, int, Any]:
    """Seconds, peak Python heap (tracemalloc) and result (or the exception raised)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result: Any = work()
    except Exception as exc:
        result = exc
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, result


def nested_bomb(size: int = MiB) -> bytes:
    """A msgpack map whose one value is an array of ``size`` empty arrays: 1 byte each on the
    wire, a Python list each once unpacked."""
    return b"\x81\xa1x\xdd" + struct.pack(">I", size) + b"\x90" * size


def header_bomb() -> None:
    bomb = nested_bomb()
    client = wire.Client("tcp://127.0.0.1:9", "t")  # never connects: only its dispatch is used
    t_old, peak_old, _ = measured(lambda: unpackb(bomb, max_depth=10**6))
    t_new, peak_new, _ = measured(lambda: client._dispatch([bomb]))
    client.close()
    row("reply header, 1 MiB of nested empty arrays",
        f"{t_new * 1e6:.0f} µs, {peak_new / 1024:.0f} KiB",
        f"dropped unread; unpacked without the limit: {t_old:.2f} s, "
        f"{peak_old / MiB:.0f} MiB")  # fmt: skip


def empty_frames(limit: int) -> tuple[float, int, Any]:
    """500,000 empty frames in one message from a scripted server, to a DealerSocket that takes
    at most ``limit`` frames a message."""
    body = frame(b"", more=True) * 499_999 + frame(b"")
    server = ScriptedServer()
    server.run(lambda conn: (server_handshake(conn), conn.sendall(body), time.sleep(2)))
    sock = wire.DealerSocket(server.endpoint, max_message_frames=limit)

    def receive() -> Any:
        sock.send([b"hi"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = sock.poll(0.2)
            if got:
                return len(got[0])
        return None

    try:
        return measured(receive)
    finally:
        sock.close()
        server.close()


def frame_flood() -> None:
    t_new, peak_new, new = empty_frames(64)
    t_old, peak_old, old = empty_frames(10**9)
    row("reply of 500,000 empty frames", f"{t_new * 1000:.0f} ms, {peak_new / MiB:.1f} MiB",
        f"{type(new).__name__}: connection closed; without the limit: {t_old:.1f} s, "
        f"{peak_old / MiB:.0f} MiB, {old} frames kept")  # fmt: skip


def bad_preview() -> None:
    data = bytes(MiB)
    image = wire.Image(1024, 1024, 1, "uint8", data)  # 1 channel: 3 x width bytes a row is past it
    seconds, _, exc = measured(lambda: _check_preview(image))
    row("preview of 1 channel, 1 MiB", f"{seconds * 1e6:.0f} µs",
        f"refused before any host call ({type(exc).__name__}); "
        "Qt read past the buffer before")  # fmt: skip


def queued_copies() -> None:
    """A client queues jobs whose content and 8 styles are all frame 1, a 1024 x 1024 RGBA
    image (4 MiB), behind a long job: what the server keeps, and when it says no."""
    big = np.random.default_rng(1).integers(0, 255, (1024, 1024, 4), dtype=np.uint8)
    spec = {"width": 1024, "height": 1024, "channels": 4, "dtype": "uint8", "frame": 1}
    controls = {"steps": 100_000, "size": 64, "refine_steps": 0}  # no full-size pass
    replies: list[dict] = []
    with TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), "--max-queue", "8", "--max-memory", "6")
        sock = raw_socket(server)
        try:
            before = fm.rss_of(server.proc.pid)
            start = time.perf_counter()
            for rid in range(1, 13):
                header = {"v": VERSION, "type": "submit", "id": rid, "content": spec,
                          "styles": [spec] * 8, "preset": "fast", "controls": controls}  # fmt: skip
                sock.send_multipart([msgpack.packb(header), big.tobytes()])
                while (reply := msgpack.unpackb(sock.recv_multipart()[0]))["id"] != rid:
                    pass  # the gate job's progress
                replies.append(reply)
                if reply["type"] == "error":
                    break
            seconds = time.perf_counter() - start
            after = fm.rss_of(server.proc.pid)
        finally:
            sock.close()  # the peer is gone: its jobs are cancelled
            server.stop()
    queued = sum(r["type"] == "accepted" for r in replies)
    refusal = replies[-1] if replies[-1]["type"] == "error" else {"code": "-", "message": "-"}
    row("jobs whose 9 images are one 4 MiB frame",
        f"{queued} taken, RSS +{(after - before) / MiB:.0f} MiB",
        f"one copy each (9 before: {queued * 9 * 4} MiB); job {len(replies)}: {refusal['code']} "
        f"after {seconds:.1f} s ({refusal['message'][:70]}...)")  # fmt: skip


def main() -> None:
    print("issue 16's attacks, now (the unguarded path measured in the same run)")
    header_bomb()
    frame_flood()
    bad_preview()
    queued_copies()


if __name__ == "__main__":
    main()
