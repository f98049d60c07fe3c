"""Limits and security that a request cannot get around: memory ceiling, frame size, pixels,
queue length, no path on disk, no pickle or eval anywhere data comes in. Real server process."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from stylebridge.core.memory import estimate_peak_bytes
from stylebridge.core.settings import make_settings
from stylebridge.server.client import Client, ServerError, ServerUnavailable
from stylebridge.wire.protocol import FRAME_BYTES, VERSION
from testing import REPO as ROOT
from testing.servers import raw_socket
from tests.support.images import STYLE, rgba

TINY = {"size": 64, "style_size": 64, "steps": 3}
SERVER_ARGS = (
    *("--max-memory", "1.5", "--max-queue", "3"),
    *("--max-pixels", str(512 * 512)),
)
CLIENT_TIMEOUT = 30


@pytest.mark.parametrize(
    ("preset", "controls", "shape", "measured"),
    [  # peak RSS measured in fresh processes on the CPU (docs/benchmarks.md)
        ("fast", {}, (3000, 4000), 2.07 * 2**30),  # tiled, through the server
        ("fast", {"size": 1024, "refine_steps": 0}, (681, 1024), 1.92e9),
        ("paper", {"size": 1024}, (681, 1024), 2.60e9),
    ],
)
def test_memory_estimate_is_close_to_the_measured_peaks_and_not_below(
    preset, controls, shape, measured
):
    estimate = estimate_peak_bytes(make_settings(preset, **controls), *shape)
    assert measured <= estimate <= 1.15 * measured


def test_jobs_over_the_memory_ceiling_are_refused_with_what_to_lower(client):
    with pytest.raises(ServerError) as big:
        client.submit(rgba(), [STYLE], preset="paper", size=2048, style_size=64, steps=1).wait(30)
    assert big.value.code == "too_large" and big.value.field == "controls.size"
    assert "GiB" in str(big.value) and "lower size" in str(big.value)
    assert client.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)


def test_bad_controls_are_refused_at_submit_not_after_queueing(client):
    with pytest.raises(ServerError) as bad:
        client.submit(rgba(), [STYLE], steps=-1).wait(30)
    assert bad.value.code == "bad_field" and bad.value.field == "controls.steps"
    with pytest.raises(ServerError) as thin:
        client.submit(rgba(h=40, w=4000), [STYLE], **TINY).wait(30)
    assert thin.value.field == "content" and "too thin" in str(thin.value)


def test_a_frame_over_the_protocols_size_drops_only_that_connection(server, client):
    sock = raw_socket(server)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    header = {"v": VERSION, "id": 1, "type": "ping"}
    sock.send_multipart([msgpack.packb(header), b"\0" * (FRAME_BYTES + 1)])
    with pytest.raises(zmq.Again):  # no reply: the connection was dropped unread
        sock.recv_multipart()
    sock.close()
    assert client.ping().type == "pong"


@pytest.mark.parametrize(
    ("width", "height"),
    [(2**40, 1), (1, 2**40), (513, 512), (2**31, 2**31), (2**62, 2**62)],
)
def test_pixel_limit_is_checked_before_any_allocation(server, width, height):
    sock = raw_socket(server)
    spec = {"width": width, "height": height, "channels": 4, "dtype": "uint8", "frame": 1}
    header = {"v": VERSION, "id": 7, "type": "echo", "image": spec}
    sock.send_multipart([msgpack.packb(header), b"\0" * 16])
    reply = msgpack.unpackb(sock.recv_multipart()[0])
    sock.close()
    assert reply["code"] == "too_large" and reply["field"] == "image"


def test_queue_limit_holds_across_clients(server):
    clients = [Client(server.endpoint, server.token, timeout=30) for _ in range(5)]
    try:
        long = {**TINY, "steps": 100_000}
        jobs, refused = [], []
        for c in clients:
            job = c.submit(rgba(), [STYLE], **long)
            while job.job_id is None and not job.done:  # accepted, or refused
                job.poll(0.1)
            if job.error:
                refused.append(job.error.code)
            else:
                jobs.append(job)
            time.sleep(0.2)  # the first leaves the queue to run
        assert len(jobs) == 4 and refused == ["queue_full"]  # 1 running + 3 waiting
        for job in jobs:
            job.cancel()
        for job in jobs:
            while not job.poll(0.1):
                pass
            assert job.cancelled
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize(
    "field",
    [
        {"content": "/etc/passwd"},
        {"content": {"path": "/etc/passwd"}},
        {"controls": {"weights": "/etc/passwd"}},
        {"controls": {"output": "/tmp/x.png"}},
        {"styles": ["/etc/passwd"]},
    ],
)
def test_no_request_names_a_path_on_disk(server, field):
    sock = raw_socket(server)
    header = {"v": VERSION, "id": 3, "type": "submit", "styles": [], **field}
    sock.send_multipart([msgpack.packb(header)])
    reply = msgpack.unpackb(sock.recv_multipart()[0])
    sock.close()
    assert reply["type"] == "error" and reply["code"] == "bad_field"


def test_token_is_compared_in_constant_time():
    """Front doors check the token in the handshake, with hmac.compare_digest (sockets.py), and
    nothing compares a token or password with == anywhere in the server."""
    for name in ("server.py", "relay.py", "protocol.py", "sockets.py"):
        text = (ROOT / "server" / name).read_text()
        compares = [
            node
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Compare)
            and any(
                word in ast.unparse(side)
                for side in (node.left, *node.comparators)
                for word in ("token", "password")
            )
        ]
        assert compares == [], f"{name}: {[ast.unparse(c) for c in compares]}"
    assert "hmac.compare_digest(password" in (ROOT / "server" / "sockets.py").read_text()


UNSAFE_CALLS = {
    "pickle.load",
    "pickle.loads",
    "eval",
    "exec",
    "marshal.loads",
    "yaml.load",
    "shelve.open",
    "numpy.load",
    "np.load",
}


def calls_in(path: Path) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def test_no_pickle_or_eval_on_data_from_the_wire_or_files():
    """Nothing in the product unpickles or evaluates data; torch.load only with
    weights_only=True; the one unpickler is the weights' restricted one (tested with a
    malicious pickle in test_weights.py)."""
    sources = [
        p
        for folder in ("core", "server", "plugins")
        for p in (ROOT / folder).rglob("*.py")
        if ".venv" not in p.parts
    ]
    assert len(sources) > 30
    for path in sources:
        for name, call in calls_in(path):
            assert name not in UNSAFE_CALLS, f"{path}: {name}"
            if name == "torch.load":
                flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert flags.get("weights_only") == "True", f"{path}: torch.load without it"
            if name.endswith("Unpickler"):
                assert path.name == "weights.py", f"{path}: {name}"


def test_a_killed_connection_mid_frame_leaves_the_server_serving(server, client):
    import socket

    host, port = server.endpoint.removeprefix("tcp://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"\xff" + b"\0" * 8 + b"\x7f\x03")  # a greeting cut short
    assert client.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)
    assert np.isfinite(client.status().uptime)


def test_unreachable_server_is_an_error_not_a_hang():
    with Client("tcp://127.0.0.1:9", "t" * 32, timeout=1) as c, pytest.raises(ServerUnavailable):
        c.ping()


def test_only_the_admin_key_of_the_discovery_file_stops_the_server(server):
    """Any token holder (a studio member) used to be able to stop everyone's server."""
    with Client(server.endpoint, server.token) as c:
        for admin in ("", server.token, server.admin[:-1]):
            with pytest.raises(ServerError) as refused:
                c.shutdown(admin)
            assert refused.value.code == "forbidden" and "stylebridge stop" in str(refused.value)
        assert c.ping().type == "pong"  # still serving


def test_one_client_cannot_fill_the_queue_and_queued_images_count_against_the_ceiling(tmp_path):
    """Queued jobs keep their decoded images: they used to be counted nowhere, and one client
    could take every place in the queue."""
    from testing.servers import start_server

    # max-queue 4: one client may hold 3. The ceiling: a 3000 px job's estimated peak (2.06 GiB)
    # with its own image (69 MiB) fits under 2.15 GiB; with a second such image queued, not
    srv = start_server(tmp_path / "rt", "--max-queue", "4", "--max-memory", "2.15")
    try:
        with (
            Client(srv.endpoint, srv.token, timeout=60) as a,
            Client(srv.endpoint, srv.token, timeout=60) as b,
        ):
            forever = {**TINY, "steps": 100_000}
            running = a.submit(rgba(), [STYLE], **forever)
            while not running.progress:
                running.poll(0.05)
            waiting = [a.submit(rgba(), [STYLE], **TINY) for _ in range(3)]
            over = a.submit(rgba(), [STYLE], **TINY)
            while not over.poll(0.05):
                pass
            assert over.error.code == "queue_full" and "3 of the 4 places" in str(over.error)
            other = b.submit(rgba(), [STYLE], **TINY)  # the place kept for the others
            while other.job_id is None and not other.done:
                other.poll(0.05)
            assert other.job_id and not other.done
            for job in (other, *waiting):  # room in the queue again
                job.cancel()
                while not job.done:
                    job.poll(0.05)
            # a big image in the queue: with a second one the server would pass its ceiling
            big = np.zeros((3000, 3000, 4), np.uint16)
            first = b.submit(big, [STYLE], **TINY)
            while first.job_id is None and not first.done:
                first.poll(0.05)
            assert first.job_id and not first.done, first.error
            second = b.submit(big, [STYLE], **TINY)
            while not second.poll(0.05):
                pass
            assert second.error.code == "queue_full" and "memory ceiling" in str(second.error)
            for job in (first, running):
                job.cancel()
    finally:
        srv.stop()
