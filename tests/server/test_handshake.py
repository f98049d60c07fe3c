"""The token is checked in the ZMTP handshake (docs/protocol.md, "Authentication"): a peer
without it never gets a message frame buffered, and every client says plainly when its token
was refused. Real server process, real sockets."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from stylebridge import wire
from stylebridge.server.client import Client, ServerUnavailable, present_token
from stylebridge.wire.protocol import VERSION
from testing import fuzz as fm

REFUSED = "did not accept this client's token"
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
