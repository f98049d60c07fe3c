"""Waiting jobs, served round-robin between clients.

One client's fifty queued jobs must not hold back another client's one: each client has its own
lane, and the next job comes from the lane after the one served last.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Protocol


class Queued(Protocol):
    peer: bytes
    id: str


class FairQueue:
    def __init__(self) -> None:
        # lanes in serving order: the first lane gives the next job, then goes to the back
        self._lanes: collections.OrderedDict[bytes, collections.deque[Queued]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def __bool__(self) -> bool:
        return bool(self._lanes)

    def __iter__(self) -> Iterator[Queued]:
        """The jobs in the order they will be served."""
        lanes = [list(lane) for lane in self._lanes.values()]
        for depth in range(max((len(lane) for lane in lanes), default=0)):
            for lane in lanes:
                if depth < len(lane):
                    yield lane[depth]

    def push(self, job: Queued) -> int:
        """Add ``job``; returns its place in the serving order (0 = next)."""
        self._lanes.setdefault(job.peer, collections.deque()).append(job)
        return next(i for i, queued in enumerate(self) if queued is job)

    def pop(self) -> Queued:
        peer, lane = next(iter(self._lanes.items()))
        job = lane.popleft()
        del self._lanes[peer]
        if lane:
            self._lanes[peer] = lane  # back of the rotation
        return job

    def remove(self, peer: bytes, job_id: str) -> Queued | None:
        lane = self._lanes.get(peer)
        for job in lane or ():
            if job.id == job_id:
                lane.remove(job)
                if not lane:
                    del self._lanes[peer]
                return job
        return None

    def drop_peer(self, peer: bytes) -> list[Queued]:
        return list(self._lanes.pop(peer, ()))

    def clear(self) -> list[Queued]:
        jobs = list(self)
        self._lanes.clear()
        return jobs
