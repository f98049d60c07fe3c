"""The dialogs' time estimate (`stylebridge_wire.estimate_watch`) without a toolkit, against a
real server that has measured nothing yet: the question goes out at once, the answer comes
with the ticks (through "measuring" while the server's probe runs), and a changed question is
asked again. The dialogs' views of it run in tests/plugins and in the real hosts."""

from __future__ import annotations

import time

import pytest

from stylebridge.wire import Client, estimate_watch
from stylebridge.wire.server_watch import POLL_S
from testing.servers import own_cache, start_server


def tick_until(watch, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out: {watch.text!r}"
        watch.tick()
        time.sleep(POLL_S / 5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("estimates")
    srv = start_server(folder / "runtime", env=own_cache(folder / "cache"))
    yield srv
    srv.stop()


def test_the_estimate_comes_through_measuring_and_follows_the_question(server):
    changes = []
    watch = estimate_watch.EstimateWatch(
        lambda timeout: Client(server.endpoint, server.token, timeout=timeout),
        lambda: changes.append(watch.text),
    )
    begun = time.monotonic()
    watch.want([(640, 480)], "fast", {"balance": 0.5})
    assert time.monotonic() - begun < 0.5 and watch.busy  # sent; the answer is polled
    tick_until(watch, lambda: watch.seconds is not None, 180)
    assert estimate_watch.MEASURING in changes  # the server's probe ran meanwhile
    assert watch.text.startswith("About ") and watch.text.endswith(
        " for this layer on this machine."
    )
    small = watch.seconds
    watch.want([(640, 480)], "fast", {"balance": 0.5})  # the same question: nothing sent
    assert not watch.busy
    watch.want([(4000, 3000), (640, 480)], "fast", {"balance": 0.5}, "these 2 layers")
    tick_until(watch, lambda: not watch.busy, 30)
    assert watch.seconds > 3 * small and "these 2 layers" in watch.text
    watch.close()


def test_no_server_no_estimate(no_server):
    def no_client(timeout):
        return Client(timeout=timeout)  # no discovery file: ServerUnavailable

    watch = estimate_watch.EstimateWatch(no_client)
    watch.want([(640, 480)], "fast", {})
    assert watch.text == "" and not watch.busy
