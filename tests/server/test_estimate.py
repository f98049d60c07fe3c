"""The time estimate (server/estimate.py, issue 28): a cost model per preset learnt on this
machine, a first guess from a probe job, the `estimate` request, the rates kept between runs.
How close it comes to the real time is measured by benchmarks/estimate.py, not asserted."""

from __future__ import annotations

import json
import time

import pytest

from stylebridge.core.settings import make_settings
from stylebridge.server.estimate import (
    MEASURED,
    MEASURING,
    PROBED,
    CostModel,
    probe_request,
    work_units,
)
from stylebridge.wire import Client
from testing.servers import own_cache, start_server


def test_work_grows_with_the_layer_and_counts_the_upper_stages():
    fast = make_settings("fast")
    small, working, large = (
        work_units(fast, h, w) for h, w in ((96, 128), (288, 384), (3000, 4000))
    )
    assert small < working < large
    # a large layer climbs to its size in upper stages: far more work than the working size
    assert large > 3 * working
    # the steps' own overhead: a tiny layer is not a hundredth of the work
    assert small > 0.3 * working
    assert work_units(make_settings("fast", steps=140), 288, 384) > 1.9 * working


def test_a_rate_comes_from_the_probe_then_from_the_jobs(tmp_path):
    costs = CostModel("cpu", tmp_path / "costs.json")
    fast = make_settings("fast")
    assert costs.estimate(fast, 288, 384) == (None, MEASURING)
    assert costs.needs_probe("fast") and not costs.needs_probe("fast")  # one probe only
    probe = probe_request("fast")
    costs.expect("probe", probe.settings, *probe.content.shape[:2])
    probe_units = work_units(probe.settings, *probe.content.shape[:2])
    costs.finished("probe", 2.0 * probe_units, completed=True)  # 2 s a unit
    seconds, basis = costs.estimate(fast, 288, 384)
    assert basis == PROBED and seconds == pytest.approx(2.0 * work_units(fast, 288, 384))
    # a job of the preset's usual size moves the rate halfway to what it measured
    costs.expect("job", fast, 288, 384)
    costs.finished("job", 4.0 * work_units(fast, 288, 384), completed=True)
    seconds, basis = costs.estimate(fast, 288, 384)
    assert basis == MEASURED and seconds == pytest.approx(3.0 * work_units(fast, 288, 384))
    # a cancelled job, a failed one and a time-budgeted one teach nothing
    costs.expect("cancelled", fast, 288, 384)
    costs.finished("cancelled", 1000.0, completed=False)
    costs.expect("failed", fast, 288, 384)
    costs.forget("failed")
    budget = make_settings("fast", time_budget=5.0)
    costs.expect("timed", budget, 288, 384)
    costs.finished("timed", 5.0, completed=True)
    assert costs.estimate(fast, 288, 384)[0] == pytest.approx(seconds)
    assert costs.estimate(budget, 288, 384)[0] == 5.0  # a budget caps it
    assert costs.estimate(make_settings("fast", balance=0.0), 288, 384) == (0.0, MEASURED)
    # kept per device between runs
    again = CostModel("cpu", tmp_path / "costs.json")
    assert again.estimate(fast, 288, 384) == (pytest.approx(seconds), MEASURED)
    assert CostModel("cuda:0", tmp_path / "costs.json").estimate(fast, 288, 384)[0] is None
    assert json.loads((tmp_path / "costs.json").read_text())["cpu"]["fast"]["basis"] == MEASURED


def test_a_tiny_job_barely_moves_the_rate(tmp_path):
    costs = CostModel("cpu")
    fast = make_settings("fast")
    costs.needs_probe("fast")
    costs.expect("probe", fast, 288, 384)
    costs.finished("probe", work_units(fast, 288, 384), completed=True)  # 1 s a unit
    tiny = make_settings("fast", size=64, steps=3)
    costs.expect("tiny", tiny, 48, 64)
    costs.finished("tiny", 100 * work_units(tiny, 48, 64), completed=True)  # 100 s a unit
    assert costs.estimate(fast, 288, 384)[0] < 3 * work_units(fast, 288, 384)


@pytest.fixture
def server(tmp_path):
    """A server with a cache of its own: no rates known yet."""
    srv = start_server(tmp_path / "runtime", env=own_cache(tmp_path / "cache"))
    srv.cache = tmp_path / "cache"
    yield srv
    srv.stop()


def test_the_first_question_starts_the_probe_and_the_answer_follows(server):
    with Client(server.endpoint, server.token, timeout=30) as client:
        first = client.estimate(640, 480, preset="fast")
        assert (first.seconds, first.basis) == (None, MEASURING)
        deadline = time.monotonic() + 120
        while (answer := client.estimate(640, 480, preset="fast")).seconds is None:
            assert time.monotonic() < deadline, "the probe never reported"
            time.sleep(0.5)
        assert answer.basis == PROBED and answer.seconds > 0
        large = client.estimate(4000, 3000, preset="fast")
        assert large.seconds > 3 * answer.seconds  # the upper stages of a large layer
        assert client.estimate(640, 480, preset="fast", balance=0.0).seconds == 0.0
        status = client.status()
        assert status.running is None and status.queue == []  # the probe has ended
    rates = json.loads((server.cache / "costs.json").read_text())
    assert rates["cpu"]["fast"]["basis"] == PROBED


def test_a_bad_question_is_refused_like_a_bad_submit(server):
    from stylebridge.wire.protocol import ServerError

    with Client(server.endpoint, server.token, timeout=30) as client:
        with pytest.raises(ServerError) as bad:
            client.estimate(640, 480, preset="fast", size=10)
        assert bad.value.field == "controls.size"
        with pytest.raises(ServerError) as thin:
            client.estimate(6400, 10, preset="fast")
        assert thin.value.field == "content"
