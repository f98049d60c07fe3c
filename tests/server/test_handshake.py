"""The token is checked in the ZMTP handshake (docs/protocol.md, "Authentication"): a peer
without it never gets a message frame buffered, and every client says plainly when its token
was refused. Real server process, real sockets."""

from __future__ import annotations

import contextlib
import resource
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from stylebridge import wire
from stylebridge.core.errors import StyleBridgeError
from stylebridge.server.client import Client, ServerUnavailable, present_token
from stylebridge.server.protocol import Limits
from stylebridge.server.sockets import HANDSHAKE_SECONDS, FrontDoor
from stylebridge.wire.protocol import VERSION, server_proof
from testing import fuzz as fm
from testing.servers import free_port, raw_socket, start_server

REFUSED = "did not accept this client's token"
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
MB = 2**20


def handshake_event(endpoint: str, token: str | None, timeout: float = 10.0) -> int:
    """Connect a pyzmq DEALER (PLAIN with ``token``; None: NULL, as protocol 1 did) and send a
    shutdown; return the first handshake event its monitor reports."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if token is not None:
        present_token(sock, token, None)
    monitor = sock.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_SUCCEEDED
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        | zmq.EVENT_DISCONNECTED
    )
    try:
        sock.connect(endpoint)
        sock.send_multipart([msgpack.packb({"v": VERSION, "id": 1, "type": "shutdown"})])
        assert monitor.poll(int(timeout * 1000)), "no handshake event"
        return recv_monitor_message(monitor)["event"]
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)


@pytest.mark.parametrize("kind", ["one short", "one more", "another"])
def test_a_wrong_token_is_refused_in_the_handshake(server, kind):
    token = {
        "one short": server.token[:-1],
        "one more": server.token + "x",
        "another": "x" * 43,
    }[kind]
    assert handshake_event(server.endpoint, token) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    with Client(server.endpoint, server.token) as c:
        assert c.ping().type == "pong"  # and the shutdown it sent was never read


def test_a_protocol_1_client_is_refused_in_the_handshake(server):
    event = handshake_event(server.endpoint, None)  # NULL: no credentials at all
    assert event != zmq.EVENT_HANDSHAKE_SUCCEEDED, event  # libzmq says NO_DETAIL
    with Client(server.endpoint, server.token) as c:
        assert c.ping().type == "pong"


def test_the_right_token_gets_through(server):
    assert handshake_event(server.endpoint, server.token) == zmq.EVENT_HANDSHAKE_SUCCEEDED


def test_a_plugin_client_left_unpolled_past_the_handshake_timeout_still_works(server):
    """A host reads a large layer before the job's first request (Krita: seconds on 12 MP).
    The plug-ins' client opens its connection with that request: one opened when the client
    was made would have been closed by the server's handshake timeout, unread."""
    with wire.Client(server.endpoint, server.token) as client:
        time.sleep(HANDSHAKE_SECONDS + 1)
        assert client.ping().protocol == VERSION


@pytest.mark.parametrize("transport", ["pyzmq", "stdlib"])
def test_clients_say_at_once_that_the_token_was_refused(server, transport):
    make = Client if transport == "pyzmq" else wire.Client
    start = time.monotonic()
    # one error class: the pyzmq client's ServerUnavailable is the wire package's
    with (
        make(server.endpoint, "not-the-token", timeout=30) as client,
        pytest.raises(ServerUnavailable) as err,
    ):
        client.ping()
    assert REFUSED in str(err.value)
    assert time.monotonic() - start < 10  # told, not left to time out after 30 s


def test_a_protocol_1_plugin_hears_the_versions_differ(server):
    sock = wire.DealerSocket(server.endpoint)  # NULL, as the version-1 plug-ins spoke
    try:
        sock.send([b"hello"])
        with pytest.raises(wire.TransportError) as err:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sock.poll(0.2)
    finally:
        sock.close()
    assert "another protocol version" in str(err.value)


@pytest.mark.parametrize("credentials", ["none", "wrong password"])
def test_a_never_ending_message_without_the_token_costs_no_memory(server, credentials):
    """The reproduced attack (issue 16): 8 MiB frames with the MORE flag, never a last one.
    Before the handshake checked the token the server kept every byte until the peer left."""
    password = None if credentials == "none" else server.token[::-1]
    result = fm.flood_watched(server.endpoint, server.proc.pid, 256 * MB, password)
    assert result["ended"] in ("closed", "not read"), result
    assert result["sent"] < 64 * MB, result
    assert result["rss_peak"] - result["rss_before"] < 50 * MB, result
    with Client(server.endpoint, server.token) as c:
        assert c.ping().type == "pong"


def test_a_hello_announced_as_a_gigabyte_is_refused_unread(server):
    """Issue 27, item 1: libzmq applies MAXMSGSIZE to the handshake's commands too. At 1 GiB a
    peer without the token had the server hold a HELLO of 512 MiB until the handshake timed
    out; at FRAME_BYTES the connection closes on the command's size alone."""
    result = fm.flood_watched(server.endpoint, server.proc.pid, 512 * MB, None, fm.hello_flood)
    assert result["ended"] in ("closed", "not read"), result
    assert result["sent"] < 64 * MB, result
    assert result["rss_peak"] - result["rss_before"] < 50 * MB, result
    with Client(server.endpoint, server.token) as c:
        assert c.ping().type == "pong"


# --- the handshake's handler (issue 27, item 4) ---------------------------------------------


def test_an_error_in_the_handshakes_check_denies_and_the_server_keeps_serving(tmp_path):
    server = start_server(tmp_path / "rt", module="tests.support.faulty_zap")
    try:
        for _ in range(3):  # the handler survives each failure
            assert handshake_event(server.endpoint, "fail") == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        with (
            wire.Client(server.endpoint, "fail", timeout=30) as client,
            pytest.raises(ServerUnavailable, match="check of this client's credentials failed"),
        ):
            client.ping()
        with Client(server.endpoint, server.token, timeout=10) as c:
            assert c.ping().type == "pong"
    finally:
        server.stop()
    assert "its check failed" in server.log.read_text()


def test_a_server_whose_handshake_handler_died_exits_non_zero_and_says_why(tmp_path):
    server = start_server(tmp_path / "rt", module="tests.support.faulty_zap")
    try:
        with contextlib.suppress(AssertionError):  # no event: the handshake just stalls
            handshake_event(server.endpoint, "die", timeout=2)
        status = server.proc.wait(10)
    finally:
        server.stop()
    assert status != 0
    log = server.log.read_text()
    assert "no client could connect any more" in log
    assert not (server.runtime / "server.json").exists()


def test_a_curve_door_without_its_handler_lets_no_key_in(tmp_path):
    """ZAP_ENFORCE_DOMAIN: libzmq's CURVE lets any client key in when no ZAP handler answers,
    unless the socket insists on one."""
    ctx = zmq.Context()
    server_public, server_secret = zmq.curve_keypair()
    door = FrontDoor(ctx, Limits(), "t" * 43, (server_public, server_secret))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    door.router.bind(endpoint)
    door.auth.stop()  # the handler is gone (its thread, its socket)
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.curve_serverkey = server_public
    dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()  # on no allowlist
    monitor = dealer.get_monitor_socket()
    try:
        dealer.connect(endpoint)
        events = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not events:
            if monitor.poll(200):
                event = recv_monitor_message(monitor)["event"]
                if event & (zmq.EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED):
                    events.append(event)
        assert events and events[0] != zmq.EVENT_HANDSHAKE_SUCCEEDED
        with pytest.raises(StyleBridgeError, match="has stopped"):
            door.check()
    finally:
        dealer.disable_monitor()
        monitor.close(0)
        dealer.close(0)
        door.router.close(0)
        ctx.destroy(0)


# --- file descriptors (issue 27, item 2) -----------------------------------------------------


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    return int(line.split()[3])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_server_started_at_1024_files_serves_through_1100_idle_connections(tmp_path):
    """The server raises its soft limit on open files to the hard one: 1,100 connections that
    never greet, reopened as they drop, took every descriptor of a server at 1024, and then
    no real client got through."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # the server inherits it
    try:
        server = start_server(tmp_path / "rt")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    flood = None
    try:
        assert open_files_limit(server.proc.pid) > 1100 + 100
        if soft < 1100 + 200:  # this process holds the flood's ends
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        flood = fm.IdleFlood(server.endpoint, 1100).start()
        deadline = time.monotonic() + 10
        while flood.opened < 1100 and time.monotonic() < deadline:
            time.sleep(0.1)
        waits = []
        for _ in range(3):
            with Client(server.endpoint, server.token, timeout=5) as c:
                start = time.monotonic()
                assert c.status().type == "status"
                waits.append(time.monotonic() - start)
            time.sleep(1)
        assert max(waits) < 5, waits
    finally:
        if flood is not None:
            flood.stop()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- the server proves itself (issue 27, item 3) ----------------------------------------------


class Squatter:
    """What may answer on a killed server's port: a PLAIN server that lets every password in
    (and notes it), answers a ping, and answers a prove request with a proof keyed by the
    password it saw. It notes every message's frame count."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.passwords: list[str] = []
        squatter = self

        class Anyone(ThreadAuthenticator):
            def _authenticate_plain(self, domain, username, password):
                squatter.passwords.append(password)
                return True, b"OK"

        self.auth = Anyone(self.ctx)
        self.auth.start()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.plain_server = True
        self.router.zap_domain = b"squat"
        self.router.linger = 0
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.router.bind(self.endpoint)
        self.frames: list[int] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            if not self.router.poll(50):
                continue
            peer, *frames = self.router.recv_multipart()
            self.frames.append(len(frames))
            header = msgpack.unpackb(frames[0])
            reply = {"v": VERSION, "id": header.get("id"), "type": "pong"}
            if header.get("type") == "prove":
                key = self.passwords[-1] if self.passwords else ""
                reply = {**reply, "type": "proof", "mac": server_proof(key, header["nonce"])}
            self.router.send_multipart([peer, msgpack.packb(reply)])

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        self.router.close(0)
        self.auth.stop()
        self.ctx.destroy(0)


@pytest.mark.parametrize("transport", ["pyzmq", "standard library"])
def test_a_squatter_on_the_port_gets_neither_the_token_nor_pixels(transport):
    """After a SIGKILL, server.json stays behind and any process may take the port. It learns
    the PLAIN password, which is not the token; it cannot answer the token's proof; the client
    sends it no pixels and says why in one sentence."""
    squatter = Squatter()
    token = "t" * 43
    image = np.zeros((8, 8, 3), np.uint8)
    try:
        if transport == "pyzmq":
            client = Client(squatter.endpoint, token, timeout=5)
        else:
            client = wire.Client(squatter.endpoint, token, timeout=5)
            image = wire.Image(8, 8, 3, "uint8", image.tobytes())
        with client, pytest.raises(ServerUnavailable) as refused:
            assert client.ping().type == "pong"  # no pixels in a ping: it is not proved
            client.echo(image)
    finally:
        squatter.close()
    assert "did not prove it holds this client's token" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert squatter.passwords and token not in squatter.passwords
    assert squatter.frames and max(squatter.frames) == 1  # headers only: no pixels


def test_the_server_and_its_clients_prove_it_before_pixels(server):
    with Client(server.endpoint, server.token, timeout=10) as c:
        image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        assert np.array_equal(c.echo(image), image)
    sock = raw_socket(server)
    try:
        nonce = "ab" * 32
        sock.send_multipart(
            [msgpack.packb({"v": VERSION, "id": 9, "type": "prove", "nonce": nonce})]
        )
        reply = msgpack.unpackb(sock.recv_multipart()[0])
        assert reply["type"] == "proof" and reply["mac"] == server_proof(server.token, nonce)
        sock.send_multipart(
            [msgpack.packb({"v": VERSION, "id": 10, "type": "prove", "nonce": "x"})]
        )
        reply = msgpack.unpackb(sock.recv_multipart()[0])
        assert (reply["code"], reply["field"]) == ("bad_field", "nonce")
    finally:
        sock.close()
