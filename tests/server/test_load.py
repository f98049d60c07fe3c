"""Load on a real server (issue 8): every result right, fair order, memory flat
(testing/load.py says how), and a full queue refused without breaking anything else."""

from __future__ import annotations

import numpy as np
import pytest

from stylebridge.server.client import Client, ServerError
from stylebridge.wire.messages import Cancel
from testing.load import (
    CLIENTS,
    CONTROLS,
    JOBS,
    RSS_FIRST_AFTER,
    RSS_TOLERANCE,
    SHAPES,
    STYLE,
    WatchfulClient,
    gate_content,
    imbalance,
    job_content,
    run_load,
)
from testing.servers import start_server

SERVER_ARGS = ("--max-queue", "64")


def test_eight_clients_fifty_jobs(server):
    with Client(server.endpoint, server.token, timeout=60) as warm:  # first use of each size
        for i in range(len(SHAPES)):
            warm.stylize(job_content(i), [STYLE], **CONTROLS)
    report = run_load(server.endpoint, server.token)
    assert not report.problems, "\n".join(report.problems)
    assert report.lost == 0 and len(report.records) == JOBS
    jobs_of = {c: sum(r.client == c for r in report.records) for c in range(CLIENTS)}
    # the queue as the server means to serve it: strictly round-robin
    assert imbalance(report.planned, jobs_of) <= 1, report.planned
    # as the jobs really started (first progress seen by each client thread: allow one swap)
    assert imbalance(report.started, jobs_of) <= 2, report.started
    last_start = {c: max(r.started for r in report.records if r.client == c) for c in jobs_of}
    first_start = {c: min(r.started for r in report.records if r.client == c) for c in jobs_of}
    assert min(last_start.values()) > max(first_start.values())
    assert abs(report.rss_change) <= RSS_TOLERANCE, (
        f"RSS {report.rss_first / 2**20:.0f} MiB after {RSS_FIRST_AFTER} jobs, "
        f"{report.rss_last / 2**20:.0f} MiB after {JOBS} ({report.rss_change:+.1%})"
    )
    assert server.proc.poll() is None


def test_queue_full_is_refused_and_nothing_else_breaks(tmp_path):
    srv = start_server(tmp_path / "rt", "--max-queue", "3")
    try:
        with (
            WatchfulClient(srv.endpoint, srv.token, timeout=60) as a,
            WatchfulClient(srv.endpoint, srv.token, timeout=60) as b,
        ):
            gate = a.submit(gate_content(), [STYLE], size=32, style_size=32, steps=100_000)
            while not gate.progress:
                gate.poll(0.05)
            queued = [a.submit(job_content(0), [STYLE], **CONTROLS)]
            queued.append(b.submit(job_content(1), [STYLE], **CONTROLS))
            queued.append(a.submit(job_content(2), [STYLE], **CONTROLS))
            for job in queued:
                while job.job_id is None and not job.done:
                    job.poll(0.05)
                assert job.job_id and not job.done
            refused = [b.submit(job_content(3), [STYLE], **CONTROLS)]
            refused.append(a.submit(job_content(4), [STYLE], **CONTROLS))
            for job in refused:
                while not job.done:
                    job.poll(0.05)
                assert job.error is not None and job.error.code == "queue_full", job.error
                assert job.job_id is None and job.result is None  # refused, not queued
            assert b.ping().type == "pong"
            assert len(a.status().queue) == 3
            gate.cancel()
            assert gate.wait(timeout=60).shape == (32, 32, 3)
            for index, job in zip((0, 1, 2), queued, strict=True):
                image = job.wait(timeout=120)
                assert np.array_equal(image[..., 3], job_content(index)[..., 3])
            again = b.submit(job_content(5), [STYLE], **CONTROLS)  # room again
            assert np.array_equal(again.wait(timeout=120)[..., 3], job_content(5)[..., 3])
            with pytest.raises(ServerError) as err:
                b._request(Cancel(again.job_id))
            assert err.value.code == "unknown_job"
            assert a.status().queue == [] and not a.strays and not b.strays
        assert srv.proc.poll() is None
    finally:
        srv.stop()
