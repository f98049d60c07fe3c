"""The job board: what waits, what runs, cancel and stop, in one place for every backend.

The local worker (one runner: its thread) and the cluster dispatcher (one runner per actor) keep
the same state and follow the same rules, so they share this class and differ only in how a
job runs. Rules:

- waiting jobs are served retries first (their runner died), then round-robin between clients;
- a cancel removes a waiting job at once, or sets the running job's event (it stops within a
  step and ends with its own final message);
- ``stop`` takes no more jobs, cancels the running ones and hands back the waiting ones;
- every change to the waiting order tells each waiting client its new position.

Every method takes the board's lock; ``emit`` hands messages to the server's thread through an
in-process queue, never to a client's socket.
"""

from __future__ import annotations

import collections
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stylebridge.core.request import JobRequest
from stylebridge.wire.messages import Message, Queued

from .scheduler import FairQueue

Emit = Callable[[bytes, Message, list], None]  # to a peer: a message and its blobs


@dataclass
class Job:
    peer: bytes
    request_id: Any
    request: JobRequest  # validated once, by the socket thread that accepted it
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False  # taken from the queue: it ends with its own final message
    nbytes: int = 0  # the decoded pixels it holds while it waits (shared frames once)


class JobBoard:
    def __init__(self, emit: Emit, runners: Callable[[], int] = lambda: 1) -> None:
        self.emit = emit
        self.runners = runners  # how many jobs can run at once right now
        self.lock = threading.Condition()
        self.queue = FairQueue()
        self.retries: collections.deque[Job] = collections.deque()  # served before the queue
        self.attempts: dict[str, int] = {}  # job id -> runs started, once its first runner died
        self.running: list[Job] = []
        self.stopping = False

    # --- called from the server thread -----------------------------------------------------------

    def submit(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it (a busy runner counts one)."""
        with self.lock:
            ahead = len(self.retries) + self.queue.push(job)
            busy = len(self.running) >= self.runners()
            self.lock.notify()
        return ahead + (1 if busy else 0)

    def pending(self) -> int:
        with self.lock:
            return len(self.retries) + len(self.queue)

    def pending_for(self, peer: bytes) -> int:
        """Jobs this client has waiting."""
        with self.lock:
            return sum(j.peer == peer for j in self._waiting())

    def held_bytes(self) -> int:
        """The pixels every waiting and running job holds."""
        with self.lock:
            return sum(j.nbytes for j in (*self._waiting(), *self.running))

    def idle(self) -> bool:
        with self.lock:
            return not self.retries and not self.queue and not self.running

    def cancel(self, peer: bytes, job_id: str) -> Job | None:
        """Remove a waiting job now, or stop the running one (within a step)."""
        with self.lock:
            job = self.queue.remove(peer, job_id) or self._remove_retry(peer, job_id)
            if job is not None:
                self.attempts.pop(job.id, None)
                self._announce_positions()
                return job
            for job in self.running:
                if job.id == job_id and job.peer == peer:
                    job.cancel.set()
                    return job
        return None

    def cancel_peer(self, peer: bytes) -> None:
        """A client vanished: drop its waiting jobs and stop its running ones."""
        with self.lock:
            dropped = self.queue.drop_peer(peer) + [j for j in self.retries if j.peer == peer]
            self.retries = collections.deque(j for j in self.retries if j.peer != peer)
            for job in self.running:
                if job.peer == peer:
                    job.cancel.set()
            if dropped:
                self._announce_positions()

    def stop(self) -> list[Job]:
        """Take no more jobs, cancel the running ones; returns the waiting jobs it dropped."""
        with self.lock:
            self.stopping = True
            dropped = [*self.retries, *self.queue.clear()]
            self.retries.clear()
            for job in self.running:
                job.cancel.set()
            self.lock.notify_all()
        return dropped

    def waiting_ids(self) -> list[str]:
        with self.lock:
            return [j.id for j in self._waiting()]

    def running_ids(self) -> list[str]:
        with self.lock:
            return [j.id for j in self.running]

    # --- called from a runner's thread -----------------------------------------------------------

    def take(self, on_idle: Callable[[], float | None] = lambda: None) -> Job | None:
        """The next job for a runner, waiting for one; None once stopping. While nothing
        waits, ``on_idle`` runs under the lock and returns how long to sleep (None: until a
        job comes), e.g. to unload an idle model."""
        with self.lock:
            while not self.stopping and not (self.retries or self.queue):
                self.lock.wait(on_idle())
            if self.stopping:
                return None
            job = self.retries.popleft() if self.retries else self.queue.pop()
            job.started = True
            self.running.append(job)
            self._announce_positions()
            return job

    def finish(self, job: Job) -> None:
        """``job`` has ended (its final message is the runner's to send, after this)."""
        with self.lock:
            self.running.remove(job)
            self.attempts.pop(job.id, None)

    def retry(self, job: Job, limit: int) -> int | None:
        """``job``'s runner died: queue it again, ahead of the others, unless it was cancelled
        or has had ``limit`` runs. Returns the number of runs it has had when it is not queued
        again (0 when cancelled or stopping), None when it is."""
        with self.lock:
            self.running.remove(job)
            attempt = self.attempts.get(job.id, 1)
            if job.cancel.is_set() or self.stopping:
                self.attempts.pop(job.id, None)
                return 0
            if attempt >= limit:
                self.attempts.pop(job.id, None)
                return attempt
            self.attempts[job.id] = attempt + 1
            job.started = False  # waiting again: a cancel now ends it at once
            self.retries.append(job)
            self._announce_positions()
            self.lock.notify()
        return None

    # --- under the lock --------------------------------------------------------------------------

    def _waiting(self) -> list[Job]:
        return [*self.retries, *self.queue]

    def _remove_retry(self, peer: bytes, job_id: str) -> Job | None:
        for job in self.retries:
            if job.id == job_id and job.peer == peer:
                self.retries.remove(job)
                return job
        return None

    def _announce_positions(self) -> None:
        for position, job in enumerate(self._waiting(), start=1):
            # a retry: its runner died, and it runs again from step 0
            retry = self.attempts[job.id] - 1 if job.id in self.attempts else None
            self.emit(job.peer, Queued(job.id, position, retry, id=job.request_id), [])
