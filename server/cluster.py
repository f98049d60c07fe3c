"""Jobs on warm actors of a Ray cluster, behind the same ZeroMQ front door.

``stylebridge serve --cluster ADDRESS`` swaps the local worker thread for ``ClusterWorker``: the
server's socket thread still validates, queues and answers; this backend hands each job to one of
N Ray actors (one per GPU), each holding a warm ``Engine``. One dispatcher thread per actor takes
the next job from the fair queue, runs it on its actor as a streaming generator (progress and
previews come back message by message and go out through ``emit``), forwards a cancel, and, when
the actor dies mid-job, puts the job back at the head of the queue and starts a new actor so the
pool stays at N. The socket thread never calls Ray; it only touches this object's lock.

Needs the optional extra: ``pip install '.[cluster]'`` (from a checkout).
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

from stylebridge.core.errors import StyleBridgeError
from stylebridge.core.jobs import GramCache, release_free_memory, set_threads
from stylebridge.core.request import JobRequest
from stylebridge.wire.messages import Error, Message, Result

from .board import Emit, Job, JobBoard
from .worker import Final, engine_error, run_job

READY_TIMEOUT = 600.0  # seconds for an actor to start and load its model (a cold node is slow)
MAX_ATTEMPTS = 3  # a job whose actor dies runs at most this many times, then fails
POLL = 0.05  # how often a dispatcher waiting on its actor looks for a cancel to forward
RETRY_PAUSE = 5.0  # between attempts to start an actor that would not start
INSTALL_HINT = "pip install '.[cluster]' in a checkout of stylebridge"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StyleBridgeError(f"--cluster needs Ray: {INSTALL_HINT}") from None
    return ray


def cluster_backend(
    address: str, *, actors: int | None = None, weights_path: str | None = None
) -> Callable[[Emit], ClusterWorker]:
    """The server's ``backend`` factory. ``address``: a Ray address (``auto``, ``host:6379``)
    or ``local`` (start a Ray instance in this process)."""
    if address == "local":
        # a token on every one of Ray's RPCs (one of this start unless one is given): Ray
        # (>= 2.52) reads these when it is imported, and its processes inherit them. Joining a
        # cluster, its operator decides.
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_urlsafe(32))
        # and every listener on loopback: with a node IP of 127.0.0.1 alone, Ray 2.60 still
        # binds its GCS, raylet and workers' gRPC servers to every interface (measured)
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import_ray()  # fail now, in one line, if the extra is missing
    if address.startswith("ray://"):
        raise StyleBridgeError(
            f"--cluster {address}: Ray Client addresses cannot stream a job's progress "
            "(Ray's streaming generators need a driver inside the cluster); run the server on "
            "a node of the cluster with --cluster auto, or give the head's HOST:6379"
        )
    if actors is not None and actors < 1:
        raise StyleBridgeError(f"--actors: {actors} is not a number of actors (1 or more)")
    return functools.partial(
        ClusterWorker, address=address, actors=actors, weights_path=weights_path
    )


# --- the actor (runs in a Ray worker process, on any node) ---------------------------------------


class Said(NamedTuple):
    """One message of a job, actor -> dispatcher; the last one has ``final`` set."""

    message: Message
    blobs: list[bytes]
    final: bool = False
    cache: dict[str, int] | None = None  # the actor's style cache, reported with the final


class StyleActor:
    """One warm engine. ``run`` streams a job's messages; ``cancel`` reaches it mid-job because
    the actor runs several calls at once (``max_concurrency``)."""

    def __init__(self, weights_path: str | None, threads: int | None) -> None:
        from stylebridge.core.engine import Engine

        # Ray sets OMP_NUM_THREADS=1 in CPU actors: give each its share of cores
        self.threads = set_threads(threads)
        self.cache = GramCache()
        self.engine = Engine(weights_path=weights_path, style_cache=self.cache)
        self.jobs: dict[str, Job] = {}
        self.cancelled: set[str] = set()  # a cancel can overtake its job's ``run`` call

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "pid": os.getpid(),
            "node": ray.util.get_node_ip_address(),
            "device": str(self.engine.device),
            "weights": self.engine.weights_source,
            "threads": self.threads,
        }

    def run(self, job_id: str, request_id: Any, request: JobRequest) -> Iterator[Said]:
        job = Job(b"", request_id, request, id=job_id, started=True)
        self.jobs[job_id] = job
        if job_id in self.cancelled:
            job.cancel.set()
        out: queue.SimpleQueue[Said] = queue.SimpleQueue()

        def emit(_peer: bytes, message: Message, blobs: list) -> None:
            out.put(Said(message, [bytes(b) for b in blobs]))  # memoryviews do not pickle

        def work() -> None:
            try:
                message, blobs = run_job(self.engine, job, emit)
            except BaseException as exc:  # run_job reports its own errors; this is a last guard
                message, blobs = engine_error(job, exc), []
            out.put(Said(message, [bytes(b) for b in blobs], True, self.cache.stats()))
            release_free_memory()

        # the engine runs in its own thread so that this generator can yield while it works
        threading.Thread(target=work, name=f"job-{job_id}", daemon=True).start()
        try:
            while not (said := out.get()).final:
                yield said
            yield said
        finally:
            job.cancel.set()  # the dispatcher went away: stop the engine within a step
            self.jobs.pop(job_id, None)
            self.cancelled.discard(job_id)

    def cancel(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            self.cancelled.add(job_id)
        else:
            job.cancel.set()


# --- the dispatcher (in the front server's process) ----------------------------------------------


@dataclass
class Slot:
    """One actor of the pool and what its dispatcher thread is doing with it."""

    name: str
    handle: Any = None  # the Ray actor
    info: dict[str, Any] = field(default_factory=dict)  # its describe(), once warm
    alive: bool = False
    job: Job | None = None
    jobs_done: int = 0
    restarts: int = 0
    cache: dict[str, int] = field(default_factory=lambda: {"entries": 0, "bytes": 0})
    thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alive": self.alive,
            "busy": self.job.id if self.job else None,
            "jobs_done": self.jobs_done,
            "restarts": self.restarts,
            **{k: self.info.get(k) for k in ("node", "pid", "device", "threads")},
        }


class RayActors:
    """Ray, and the actors on it: join (or start) the cluster, start an actor, wait for its
    model, let them all go. ``stopping()`` ends a wait early."""

    def __init__(
        self, address: str, weights_path: str | None, stopping: Callable[[], bool]
    ) -> None:
        self.address, self.weights_path, self.stopping = address, weights_path, stopping
        self.ray: Any = None  # the module, once connected
        self.actor_class: Any = None
        self.options: dict[str, Any] = {}
        self.threads: int | None = None
        self.private_dir: str | None = None  # a local instance's temp folder's 0700 parent

    def connect(self, actors: int | None) -> int:
        """Join Ray; returns how many actors to keep (``actors``, else one per GPU)."""
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": self.address}
            if self.address == "local":  # a new private instance, even where one is running
                kwargs["include_dashboard"] = False
                kwargs["_node_ip_address"] = "127.0.0.1"  # this machine only
                # Ray makes its temp and session folders 0777 (its logs, its sockets): inside
                # a 0700 folder of ours no other user reaches them
                self.private_dir = tempfile.mkdtemp(prefix="stylebridge-ray-")
                kwargs["_temp_dir"] = os.path.join(self.private_dir, "ray")
            try:
                with keep_signal_handlers():
                    ray.init(logging_level="WARNING", **kwargs)
            except Exception as exc:
                if self.private_dir is not None:
                    shutil.rmtree(self.private_dir, ignore_errors=True)
                raise StyleBridgeError(f"cannot join Ray at {self.address}: {exc}") from None
        self.ray = ray
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        actors = actors or max(1, gpus)
        self.options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        # CPU actors share the cluster's cores; on GPUs torch's CPU threads hardly matter
        self.threads = None if gpus else max(1, int(resources.get("CPU", 1)) // actors)
        # max_concurrency: a cancel (or describe) call runs while ``run`` is busy
        self.actor_class = ray.remote(StyleActor).options(max_concurrency=4, **self.options)
        return actors

    @property
    def connected(self) -> bool:
        return self.ray is not None

    def start(self, slot: Slot) -> None:
        """A new actor in ``slot`` (what is left of an old one is killed); `wait_ready` waits
        for its model."""
        if slot.handle is not None:
            self.kill(slot)  # whatever is left of the old one
        slot.handle = self.actor_class.remote(self.weights_path, self.threads)

    def wait_ready(self, slot: Slot) -> None:
        """Until ``slot``'s actor has its model loaded; raises StyleBridgeError if it cannot."""
        ref = slot.handle.describe.remote()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ray.wait([ref], timeout=POLL * 10)[0]:
            if self.stopping():
                raise StyleBridgeError("stopping")
            if time.monotonic() > deadline:
                raise StyleBridgeError(
                    f"{slot.name} did not start within {READY_TIMEOUT:.0f} s: does the cluster "
                    f"have a free {self.options} for it?"
                )
        try:
            slot.info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise StyleBridgeError(f"{slot.name} could not start: {exc}") from None
        slot.alive = True

    def kill(self, slot: Slot) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(slot.handle)

    def leave(self, slots: list[Slot]) -> None:
        """Kill the actors and leave Ray (a local instance, ``--cluster local``, stops too)."""
        if self.ray is None:
            return
        for slot in slots:
            self.kill(slot)
        with keep_signal_handlers():  # shutdown resets them too
            self.ray.shutdown()
        self.ray = None
        if self.private_dir is not None:
            shutil.rmtree(self.private_dir, ignore_errors=True)


class ClusterWorker:
    """The server's ``Backend`` (see worker.py) on a pool of Ray actors: one dispatcher thread
    per actor takes jobs from the board and streams each one's messages back."""

    def __init__(
        self, emit: Emit, *, address: str, actors: int | None, weights_path: str | None
    ) -> None:
        self.emit, self.address, self.actors = emit, address, actors
        self.slots: list[Slot] = []
        self.board = JobBoard(emit, runners=lambda: sum(s.alive for s in self.slots))
        self.pool = RayActors(address, weights_path, lambda: self.board.stopping)
        self.engine: Any = None  # what the server's "ready on" line prints: set by load()

    # --- lifecycle (server thread) ---------------------------------------------------------------

    def load(self) -> Any:
        """Connect to Ray, start the actors, and return once each has its model warm."""
        if self.slots:
            return self.engine
        self.slots = [Slot(f"actor-{i}") for i in range(self.pool.connect(self.actors))]
        for slot in self.slots:  # all start at once, then wait for each
            self.pool.start(slot)
        for slot in self.slots:
            self.pool.wait_ready(slot)
        devices = ", ".join(sorted({s.info["device"] for s in self.slots}))
        self.engine = SimpleNamespace(
            device=f"Ray actors: {len(self.slots)} on {devices}, cluster {self.address}",
            weights_source=self.slots[0].info["weights"],
        )
        return self.engine

    def start(self) -> None:
        for slot in self.slots:
            slot.thread = threading.Thread(
                target=self._serve, args=(slot,), name=f"stylebridge-{slot.name}", daemon=True
            )
            slot.thread.start()

    def is_alive(self) -> bool:
        # alive while connected: join() is what disconnects (and stops a local Ray)
        return self.pool.connected or any(s.thread and s.thread.is_alive() for s in self.slots)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the dispatchers (after stop()), then leave Ray: its actors end with us."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for slot in self.slots:
            if slot.thread and slot.thread.is_alive():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                slot.thread.join(left)
        self.pool.leave(self.slots)

    # --- called from the server thread -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        live = [s for s in self.slots if s.alive]
        running = self.board.running_ids()
        return {
            "device": ", ".join(sorted({s.info["device"] for s in live})) or "none",
            "model_loaded": bool(live),
            "weights": live[0].info["weights"] if live else None,
            "queue": self.board.waiting_ids(),
            "running": running[0] if running else None,  # the local worker's field
            "running_jobs": running,
            "style_cache": {k: sum(s.cache[k] for s in self.slots) for k in ("entries", "bytes")},
            "cluster": self.address,
            "actors": [s.status() for s in self.slots],
        }

    # --- the dispatcher threads, one per actor ---------------------------------------------------

    def _serve(self, slot: Slot) -> None:
        while (job := self.board.take()) is not None:
            slot.job = job
            final = self._run(slot, job)
            slot.job = None
            # after the board has let it go: a client holding its result sees the server idle
            if final is not None:
                self.emit(job.peer, *final)
            if not slot.alive:
                self._replace(slot)

    def _run(self, slot: Slot, job: Job) -> Final | None:
        """Run ``job`` on ``slot``'s actor, emitting its messages; returns its final message,
        or None when the actor died and the job went back to the queue."""
        ray = self.pool.ray
        stream = slot.handle.run.options(num_returns="streaming").remote(
            job.id, job.request_id, job.request
        )
        cancel_sent = False
        try:
            while True:
                if job.cancel.is_set() and not cancel_sent:
                    slot.handle.cancel.remote(job.id)
                    cancel_sent = True
                if not ray.wait([stream], timeout=POLL)[0]:
                    continue
                said = ray.get(next(stream))
                if said.final:
                    slot.jobs_done += 1
                    slot.cache = said.cache
                    self.board.finish(job)
                    return said.message, said.blobs
                self.emit(job.peer, said.message, said.blobs)
        except ray.exceptions.RayActorError as exc:
            return self._actor_died(slot, job, exc)
        except Exception as exc:  # anything else fails this job, never the dispatcher
            self.board.finish(job)
            return engine_error(job, exc), []

    def _actor_died(self, slot: Slot, job: Job, exc: Exception) -> Final | None:
        """Hand the job back for another actor (at most MAX_ATTEMPTS runs), else fail it."""
        slot.alive = False
        where = f"{slot.name} (pid {slot.info.get('pid')} on {slot.info.get('node')})"
        cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        runs = self.board.retry(job, MAX_ATTEMPTS)
        if runs == 0:
            return Result(job.id, None, 0, cancelled=True, id=job.request_id), []
        if runs is not None:
            message = f"{where} died running this job, {runs} actors in a row: {cause}"
            return Error("engine_error", message, None, job.id, id=job.request_id), []
        print(f"stylebridge: {where} died ({cause}); job {job.id} runs again", flush=True)
        return None

    def _replace(self, slot: Slot) -> None:
        """Start a new actor in place of the dead one, so the pool stays at N."""
        while not self.board.stopping:
            try:
                self.pool.start(slot)
                self.pool.wait_ready(slot)
            except Exception as exc:  # e.g. no node has the resources right now
                if not self.board.stopping:
                    print(f"stylebridge: {slot.name} did not restart ({exc})", flush=True)
                    time.sleep(RETRY_PAUSE)
                continue
            slot.restarts += 1
            print(f"stylebridge: {slot.name} is back (pid {slot.info['pid']})", flush=True)
            return


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """ray.init installs its own SIGTERM/SIGINT handlers (exit at once, no drain) and
    ray.shutdown resets them: put the server's back, so a signal still drains the jobs and then
    shuts Ray down cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)
