"""Load on a real server (issue 8), shared by tests/server/test_load.py and `make soak`
(benchmarks/soak.py): 8 clients, 50 small jobs in all, each client on its own DEALER socket in
its own thread.

* every result is right: its own size, dtype and alpha (the alpha of each job's layer is a value
  no other job has, and alpha passes through untouched), and the very pixels the same job gives
  when it runs alone afterwards (the engine is seeded): none lost, none swapped, none extra;
* fair order: while all 50 wait, the server's queue (status) serves the clients round-robin,
  and the jobs really start in that order (first progress message of each);
* memory flat: the server's RSS after the first jobs and after the last are within 10%.

A gate job holds the worker while the clients queue theirs, so the order checks do not depend on
thread timing. `run_load` is shared with `make soak` (benchmarks/soak.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from stylebridge.server.client import Client

CLIENTS = 8
JOBS = 50
SHAPES = ((32, 40), (40, 32), (36, 36), (44, 32))  # a few sizes: caches keyed by shape stay warm
CONTROLS = {"size": 48, "style_size": 32, "steps": 2}
STYLE = (np.indices((32, 32)).sum(axis=0) % 7 * 40).astype(np.uint8)[:, :, None].repeat(3, 2)
RSS_TOLERANCE = 0.10
RSS_FIRST_AFTER = 8  # jobs finished before the first RSS sample


class WatchfulClient(Client):
    """The Python client, keeping every message that no request of its own expected (the
    client itself drops them): a server that sends strays or duplicates shows up here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.strays: list[Any] = []
        super().__init__(*args, **kwargs)

    def _dispatch(self, frames: list[bytes]) -> None:
        try:
            header = msgpack.unpackb(frames[0], raw=False, strict_map_key=False)
        except Exception:
            header = frames[0]
        rid = header.get("id") if isinstance(header, dict) else None
        proof = self._proof[0] if self._proof is not None else None  # the prove request's
        if isinstance(rid, list | dict) or not (
            rid in self._jobs or rid in self._cancels or rid in self._waiting or rid == proof
        ):
            self.strays.append(header)
        super()._dispatch(frames)


def job_content(index: int) -> np.ndarray:
    """RGBA uint8 whose alpha (5 * index + 5) no other job has, on a colour ramp of its own."""
    height, width = SHAPES[index % len(SHAPES)]
    y, x = np.mgrid[0:height, 0:width]
    base = np.array([(index * 37) % 200, (index * 91 + 60) % 200, (index * 53 + 120) % 200])
    rgb = base + (x[..., None] * 40 // width) + (y[..., None] * 15 // height)
    alpha = np.full((height, width, 1), 5 * index + 5)
    return np.concatenate([rgb, alpha], axis=2).astype(np.uint8)


def gate_content() -> np.ndarray:
    return np.full((32, 32, 3), 90, np.uint8)


@dataclass
class Record:
    index: int
    client: int
    job_id: str | None = None
    started: float | None = None  # first progress message
    ended: float | None = None
    image: np.ndarray | None = None
    outcome: str = "lost"  # result, error:<code>, cancelled, lost
    wrong: bool = False  # pixels of another job (its alpha), or not those of this job alone


@dataclass
class LoadReport:
    records: list[Record]
    planned: list[int] = field(default_factory=list)  # clients, in the queue's serving order
    started: list[int] = field(default_factory=list)  # clients, in the order jobs started
    rss_first: int = 0
    rss_last: int = 0
    elapsed: float = 0.0  # from the gate's end to the last result
    stray: list[Any] = field(default_factory=list)  # messages no request of a client expected
    problems: list[str] = field(default_factory=list)
    reference_equal: int = 0  # results identical to the job run alone

    @property
    def lost(self) -> int:
        return sum(r.outcome == "lost" for r in self.records)

    @property
    def swapped(self) -> int:
        return sum(r.wrong for r in self.records)

    @property
    def jobs_per_s(self) -> float:
        return len(self.records) / self.elapsed if self.elapsed else 0.0

    @property
    def rss_change(self) -> float:
        return (self.rss_last - self.rss_first) / self.rss_first if self.rss_first else 0.0


def imbalance(order: list[int], jobs_of: dict[int, int]) -> int:
    """How far ahead one client ever got: over every prefix of the serving order, the most jobs
    one client had started minus the fewest of a client that still had jobs waiting. Strict
    round-robin keeps it at 1; first-come-first-served lets it reach a client's whole batch."""
    count = dict.fromkeys(jobs_of, 0)
    worst = 0
    for client in order:
        count[client] += 1
        waiting = [count[c] for c in jobs_of if count[c] < jobs_of[c]]
        if waiting:
            worst = max(worst, max(count.values()) - min(waiting))
    return worst


def run_load(
    endpoint: str,
    token: str,
    clients: int = CLIENTS,
    jobs: int = JOBS,
    timeout: float = 300.0,
    references: bool = True,
) -> LoadReport:
    """Queue ``jobs`` jobs from ``clients`` clients behind a gate job, release them, check."""
    records = [Record(i, i % clients) for i in range(jobs)]
    report = LoadReport(records)
    contents = [job_content(i) for i in range(jobs)]
    finished = threading.Semaphore(0)
    barrier = threading.Barrier(clients + 1, timeout=60)
    monitor = Client(endpoint, token, timeout=60)
    gate_client = Client(endpoint, token, timeout=60)
    gate = gate_client.submit(gate_content(), [STYLE], size=32, style_size=32, steps=100_000)
    deadline = time.monotonic() + 60
    while not gate.progress and not gate.done and time.monotonic() < deadline:
        gate.poll(0.05)
    assert gate.progress and not gate.done, "the gate job did not start"

    def client_thread(c: int) -> None:
        mine = [r for r in records if r.client == c]
        with WatchfulClient(endpoint, token, timeout=60) as client:
            client.ping()
            barrier.wait()
            handles = {}
            for r in mine:

                def started(_p: dict, r: Record = r) -> None:
                    if r.started is None:
                        r.started = time.monotonic()

                handles[r.index] = client.submit(
                    contents[r.index], [STYLE], on_progress=started, **CONTROLS
                )
            end = time.monotonic() + timeout
            while time.monotonic() < end and not all(h.done for h in handles.values()):
                client.poll(0.01)
                for r in mine:
                    handle = handles[r.index]
                    r.job_id = r.job_id or handle.job_id
                    if handle.done and r.ended is None:
                        r.ended = time.monotonic()
                        finished.release()
                        if handle.error is not None:
                            r.outcome = f"error:{handle.error.code}"
                        elif handle.cancelled:
                            r.outcome = "cancelled"
                        else:
                            r.outcome, r.image = "result", handle.result
            client.poll(0.3)  # anything more for these jobs would be a stray message
            report.stray.extend(client.strays)
            for r in mine:
                r.job_id = r.job_id or handles[r.index].job_id

    threads = [threading.Thread(target=client_thread, args=(c,)) for c in range(clients)]
    try:
        for t in threads:
            t.start()
        barrier.wait()
        # everything queued behind the gate: the server's own serving order
        deadline = time.monotonic() + 60
        status = monitor.status()
        while len(status.queue) < jobs and time.monotonic() < deadline:
            time.sleep(0.05)
            status = monitor.status()
        queue = status.queue
        while any(r.job_id is None for r in records) and time.monotonic() < deadline:
            time.sleep(0.05)  # the client threads have yet to read some `accepted` replies
        ids = {r.job_id: r for r in records}
        report.planned = [ids[j].client if j in ids else -1 for j in queue]
        if len(queue) != jobs or -1 in report.planned:
            report.problems.append(f"queued: {queue}, known: {sorted(map(str, ids))}")
        gate.cancel()
        gate.wait(timeout=60)
        released = time.monotonic()
        done = 0
        end = released + timeout
        while done < jobs and time.monotonic() < end:
            if finished.acquire(timeout=0.1):
                done += 1
                if done == min(RSS_FIRST_AFTER, jobs):
                    report.rss_first = monitor.status().memory["rss"]
        report.rss_last = monitor.status().memory["rss"]
        for t in threads:
            t.join(timeout=max(1.0, end - time.monotonic()))
        ends = [r.ended for r in records if r.ended is not None]
        report.elapsed = (max(ends) - released) if ends else 0.0
        report.started = [r.client for r in sorted(records, key=lambda r: r.started or 1e18)]
        check_results(report, contents)
        if references:
            compare_with_references(report, contents, monitor)
        status = monitor.status()
        if status.queue or status.running:
            report.problems.append(f"not idle after the load: {status.queue}")
    finally:
        monitor.close()
        gate_client.close()
    return report


def check_results(report: LoadReport, contents: list[np.ndarray]) -> None:
    for r in report.records:
        content = contents[r.index]
        if r.outcome != "result":
            report.problems.append(f"job {r.index} (client {r.client}): {r.outcome}")
        elif r.image.shape != content.shape or r.image.dtype != content.dtype:
            report.problems.append(f"job {r.index}: {r.image.shape} {r.image.dtype} came back")
        elif not np.array_equal(r.image[..., 3], content[..., 3]):
            r.wrong = True
            got = np.unique(r.image[..., 3])[:5]
            report.problems.append(f"job {r.index}: the alpha of another job came back: {got}")
        elif r.started is None:
            report.problems.append(f"job {r.index}: a result without any progress message")
    if report.stray:
        report.problems.append(f"{len(report.stray)} stray messages: {report.stray[:3]!r}")


def compare_with_references(report: LoadReport, contents: list[np.ndarray], client) -> None:
    """Each job once more, alone: the same pixels must come back (nothing mixed under load)."""
    for r in report.records:
        if r.image is None or r.wrong:
            continue
        alone = client.stylize(contents[r.index], [STYLE], **CONTROLS)
        diff = int(np.abs(alone.astype(int) - r.image.astype(int)).max())
        if diff == 0:
            report.reference_equal += 1
        elif diff > 1:
            r.wrong = True
            report.problems.append(f"job {r.index}: {diff} levels from the same job run alone")
