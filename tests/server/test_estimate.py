"""The time estimate (server/estimate.py, issue 28): a cost model per preset learnt on this
machine, a first guess from a probe job, the `estimate` request, the rates kept between runs.
How close it comes to the real time is measured by benchmarks/estimate.py, not asserted."""

from __future__ import annotations

import json
import time

import pytest

from stylebridge.core.settings import make_settings
from stylebridge.server.estimate import (
    JOB_SETUP_STEPS,
    MEASURED,
    MEASURING,
    PROBED,
    UPPER_RATE_RATIO,
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
    assert small.total < working.total < large.total
    # a large layer climbs to its size in upper stages: far more work than the working size,
    # counted apart (it has a rate of its own)
    assert working.upper == 0 and small.upper == 0
    assert large.upper > 3 * working.total and large.working == pytest.approx(working.working)
    # the steps' own overhead: a tiny layer is not a hundredth of the work
    assert small.total > 0.3 * working.total
    # a job's setup counts as JOB_SETUP_STEPS more steps: half the steps is more than half
    half = work_units(make_settings("fast", steps=32), 288, 384)
    assert working.total < 1.95 * half.total
    assert working.total / half.total == pytest.approx(
        (64 + JOB_SETUP_STEPS) / (32 + JOB_SETUP_STEPS)
    )


def test_the_probe_runs_at_the_working_size():
    for preset in ("fast", "quality"):
        probe = probe_request(preset)
        height, width = probe.content.shape[:2]
        assert width == probe.settings.size and height == width * 3 // 4
        assert work_units(probe.settings, height, width).upper == 0


def kept(path) -> dict:
    return json.loads(path.read_text())["cpu"]["fast"]


def test_a_rate_comes_from_the_probe_then_from_the_jobs(tmp_path):
    costs = CostModel("cpu", tmp_path / "costs.json")
    fast = make_settings("fast")
    usual, large = work_units(fast, 288, 384), work_units(fast, 1200, 1600)
    assert costs.estimate(fast, 288, 384) == (None, MEASURING)
    assert costs.needs_probe("fast") and not costs.needs_probe("fast")  # one probe only
    probe = probe_request("fast")
    costs.expect("probe", probe.settings, *probe.content.shape[:2])
    probe_work = work_units(probe.settings, *probe.content.shape[:2])
    costs.finished("probe", 2.0 * probe_work.working, completed=True)  # 2 s a unit
    seconds, basis = costs.estimate(fast, 288, 384)
    assert basis == PROBED and seconds == pytest.approx(2.0 * usual.total)
    # the upper stages' first guess: the working rate times UPPER_RATE_RATIO
    assert costs.estimate(fast, 1200, 1600)[0] == pytest.approx(
        2.0 * large.working + 2.0 * UPPER_RATE_RATIO * large.upper
    )
    assert kept(tmp_path / "costs.json") == {
        "rate": 2.0,
        "upper": pytest.approx(2.0 * UPPER_RATE_RATIO),
        "basis": PROBED,
    }
    # a job of the preset's usual size moves the rate halfway to what it measured
    costs.expect("job", fast, 288, 384)
    costs.finished("job", 4.0 * usual.total, completed=True)
    seconds, basis = costs.estimate(fast, 288, 384)
    assert basis == MEASURED and seconds == pytest.approx(3.0 * usual.total)
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
    assert kept(tmp_path / "costs.json")["basis"] == MEASURED


def test_each_rate_learns_from_its_share_of_a_job(tmp_path):
    costs = CostModel("cpu", tmp_path / "costs.json")
    fast = make_settings("fast")
    usual, large = work_units(fast, 288, 384), work_units(fast, 1200, 1600)
    costs.expect("first", fast, 288, 384)
    costs.finished("first", usual.total, completed=True)  # 1 s a working unit
    # a job without upper stages teaches the working rate only
    costs.expect("small", fast, 288, 384)
    costs.finished("small", 2.0 * usual.total, completed=True)
    assert kept(tmp_path / "costs.json")["rate"] == pytest.approx(1.5)
    assert kept(tmp_path / "costs.json")["upper"] == pytest.approx(UPPER_RATE_RATIO)
    # a large layer whose upper stages took twice the guess: each rate moves by its share of
    # the time the job was expected to take
    expected = costs.estimate(fast, 1200, 1600)[0]
    took = 1.5 * large.working + 2 * UPPER_RATE_RATIO * large.upper
    costs.expect("large", fast, 1200, 1600)
    costs.finished("large", took, completed=True)
    rates = kept(tmp_path / "costs.json")
    assert rates["upper"] > UPPER_RATE_RATIO and rates["rate"] > 1.5
    assert expected < costs.estimate(fast, 1200, 1600)[0] < took
    # a file kept before the upper rate: its first guess from the working rate
    (tmp_path / "old.json").write_text(json.dumps({"cpu": {"fast": {"rate": 2.0}}}))
    old = CostModel("cpu", tmp_path / "old.json")
    assert old.estimate(fast, 1200, 1600) == (
        pytest.approx(2.0 * large.working + 2.0 * UPPER_RATE_RATIO * large.upper),
        MEASURED,
    )


def test_a_tiny_job_barely_moves_the_rate(tmp_path):
    costs = CostModel("cpu")
    fast = make_settings("fast")
    usual = work_units(fast, 288, 384).total
    costs.needs_probe("fast")
    costs.expect("probe", fast, 288, 384)
    costs.finished("probe", usual, completed=True)  # 1 s a unit
    tiny = make_settings("fast", size=64, steps=3)
    costs.expect("tiny", tiny, 48, 64)
    costs.finished("tiny", 100 * work_units(tiny, 48, 64).total, completed=True)  # 100 s a unit
    assert costs.estimate(fast, 288, 384)[0] < 3 * usual


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
