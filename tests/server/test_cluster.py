"""``serve --cluster``: the front server dispatching to warm Ray actors, with real parts only.

One real server process starts a local Ray instance with two CPU actors; the clients talk to it
through the ordinary ZeroMQ front door. One actor is killed (SIGKILL) mid-job.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import itertools
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylebridge.server.client import Client
from stylebridge.wire.messages import Status
from testing.servers import clean_env, free_port, start_server

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (make bench-cluster, or pip install '.[cluster]')",
)
TINY = {"size": 64, "style_size": 64, "steps": 20}
LONG = {**TINY, "steps": 100_000}
STYLE = np.random.default_rng(9).integers(0, 255, (64, 64, 3), dtype=np.uint8)
RAY_PROCESSES = ("gcs_server", "raylet", "ray::", "ray/_private", "ray/dashboard")


def ray_pids() -> set[int]:
    """Processes of any Ray instance on this machine (zombies excluded)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z" and any(name in cmdline for name in RAY_PROCESSES):
            pids.add(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    before = ray_pids()
    srv = start_server(
        tmp_path_factory.mktemp("runtime"),
        *("--cluster", "local", "--actors", "2", "--drain", "5"),
        timeout=240,
    )
    srv.ray_before = before
    yield srv
    srv.stop()


@pytest.fixture
def client(cluster):
    with Client(cluster.endpoint, cluster.token, timeout=60) as c:
        yield c


def content(kind: int, h: int = 56, w: int = 72) -> np.ndarray:
    """RGBA ramps running across (kind 0) or down (kind 1): two images that do not correlate."""
    y, x = np.mgrid[0:h, 0:w]
    ramp = x / (w - 1) if kind == 0 else y / (h - 1)
    alpha = (np.random.default_rng(kind).random((h, w)) * 255).round()
    rgb = np.stack([ramp, ramp, ramp], axis=2) * 255
    return np.concatenate([rgb, alpha[:, :, None]], axis=2).astype(np.uint8)


def check_result(out: np.ndarray, kind: int) -> None:
    """Right size, dtype and alpha, and it is *this* content's result, not the other's."""
    own, other = content(kind), content(1 - kind)
    assert out.shape == own.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 3], own[:, :, 3])
    luma = out[:, :, :3].astype(float).mean(axis=2).ravel()
    corr = [np.corrcoef(luma, c[:, :, 0].astype(float).ravel())[0, 1] for c in (own, other)]
    assert corr[0] > 0.5 and corr[0] > corr[1] + 0.3, corr


def wait_status(client: Client, ready, timeout: float = 120) -> Status:
    deadline = time.monotonic() + timeout
    while not ready(status := client.status()):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


def run_until_step(job, step: int = 2, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.progress is None or job.progress.step < step:
        assert not job.poll(0.1) and time.monotonic() < deadline, job.error
    assert job.job_id


@needs_ray
def test_status_shows_two_warm_actors(client, cluster):
    status = client.status()
    actors = status.actors
    assert [a["alive"] for a in actors] == [True, True]
    assert {a["device"] for a in actors} == {"cpu"} and status.model_loaded
    pids = {a["pid"] for a in actors}
    assert len(pids) == 2 and cluster.proc.pid not in pids  # two processes, not the server
    assert status.running is None and status.queue == [] and status.cluster == "local"
    assert "Ray actors: 2 on cpu" in cluster.log.read_text()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (its children, theirs, ...)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        try:
            parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, up in parent.items() if up in frontier} - found
        found |= frontier
    return found


@needs_ray
def test_the_local_ray_wants_a_token_of_this_start(cluster):
    """The server's own Ray processes (its GCS and raylet, started below it) take only callers
    with this start's token."""
    ours = descendants(cluster.proc.pid) & ray_pids()
    # the GCS and the raylet: Python workers write their titles over their environment
    daemons = [
        pid
        for pid in ours
        if any(
            name in Path(f"/proc/{pid}/cmdline").read_bytes() for name in (b"gcs_server", b"raylet")
        )
    ]
    tokens = set()
    for pid in daemons:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"RAY_AUTH_MODE=token" in environ, pid
        tokens |= {e for e in environ if e.startswith(b"RAY_AUTH_TOKEN=")}
    assert len(daemons) >= 2, ours  # the GCS and the raylet
    assert len(tokens) == 1 and len(tokens.pop()) > 40  # one token, made for this start


def listening(pids: set[int]) -> list[str]:
    """The TCP addresses the processes ``pids`` listen on (Linux), as "HOST:PORT"."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = []
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            # /proc/net/tcp* write each 32-bit word in the host's (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
            found.append(f"{ipaddress.ip_address(raw)}:{int(port, 16)}")
    return found


def loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


@needs_ray
def test_nothing_of_the_local_ray_listens_beyond_loopback(cluster):
    """Issue 27, item 5: with the node IP 127.0.0.1 alone Ray 2.60 bound its GCS, raylet and
    workers' gRPC servers to every interface; its folders are 0777, so they sit in ours."""
    ours = descendants(cluster.proc.pid) | {cluster.proc.pid}
    addresses = listening(ours)
    assert len(addresses) >= 3, addresses  # the front door, the GCS, the raylet at least
    beyond = [a for a in addresses if not loopback(a.rsplit(":", 1)[0])]
    assert beyond == [], beyond
    cmdlines = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in ours}
    raylet = next(args for args in cmdlines.values() if args[0].endswith(b"raylet"))
    session = next(a.split(b"=", 1)[1] for a in raylet if a.startswith(b"--session_dir="))
    parents = Path(session.decode()).parents
    private = next(p for p in parents if p.name.startswith("stylebridge-ray-"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o700 and private.stat().st_uid == os.getuid()


@needs_ray
def test_two_clients_run_on_both_actors_and_get_their_own_results(cluster, client):
    done_before = [a["jobs_done"] for a in client.status().actors]
    results: dict[int, np.ndarray] = {}

    def work(kind: int) -> None:
        with Client(cluster.endpoint, cluster.token, timeout=60) as c:
            results[kind] = c.stylize(content(kind), [STYLE], **TINY)

    threads = [threading.Thread(target=work, args=(kind,)) for kind in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    check_result(results[0], 0)
    check_result(results[1], 1)
    done_after = [a["jobs_done"] for a in client.status().actors]
    assert [b - a for a, b in zip(done_before, done_after, strict=True)] == [1, 1]


@needs_ray
def test_progress_and_previews_come_through_the_front_server(client):
    progress, previews = [], []
    out = client.stylize(
        content(0),
        [STYLE],
        preview=0.2,
        on_progress=progress.append,
        on_preview=lambda image, header: previews.append(image.shape),
        **{**TINY, "steps": 30},
    )
    check_result(out, 0)
    steps = [p.step for p in progress]
    assert steps == sorted(steps) and steps[-1] == progress[-1].total_steps >= 30
    assert progress[-1].losses["total"] > 0
    assert previews and all(len(s) == 3 and s[2] == 3 for s in previews)


@needs_ray
def test_cancel_reaches_the_actor(client):
    job = client.submit(content(1), [STYLE], **LONG)
    run_until_step(job)
    start = time.monotonic()
    job.cancel()
    best = job.wait(timeout=30)
    assert job.cancelled and job.info.steps < 1000
    assert time.monotonic() - start < 10  # a step is ~0.1 s: this is slack for a busy machine
    assert best.shape == content(1).shape


@needs_ray
def test_status_answers_while_every_actor_is_busy(client):
    jobs = [client.submit(content(k % 2), [STYLE], **LONG) for k in range(3)]
    for job in jobs[:2]:
        run_until_step(job)
    start = time.monotonic()
    status = client.status()
    assert time.monotonic() - start < 5
    assert sorted(status.running_jobs) == sorted(j.job_id for j in jobs[:2])
    assert status.queue == [jobs[2].job_id] and all(a["busy"] for a in status.actors)
    for job in reversed(jobs):
        job.cancel()
    for job in jobs:
        while not job.poll(0.1):
            pass
    assert all(j.cancelled for j in jobs) and jobs[2].result is None  # never started
    assert all(j.result is not None for j in jobs[:2])  # their best images so far
    wait_status(client, lambda s: s.running is None, 30)


@needs_ray
def test_a_job_whose_actor_dies_runs_again_on_the_other(client):
    before = {a["name"]: a for a in client.status().actors}
    job = client.submit(content(0), [STYLE], **{**TINY, "steps": 120})
    seen: list[dict] = []
    handle = job._on_message
    job._on_message = lambda header, frames: (seen.append(header), handle(header, frames))
    run_until_step(job, 3)
    victim = next(a for a in client.status().actors if a["busy"] == job.job_id)
    os.kill(victim["pid"], signal.SIGKILL)

    check_result(job.wait(timeout=180), 0)
    assert job.info.steps == job.progress.total_steps
    retries = [h for h in seen if h["type"] == "queued" and h.get("retry") == 1]
    assert retries, [h["type"] for h in seen]
    steps = [h["step"] for h in seen if h["type"] == "progress"]
    drops = [b for a, b in itertools.pairwise(steps) if b < a]
    assert drops and drops[0] <= 10, steps  # progress started again from the beginning

    # the pool is back to two warm actors; the other one ran the job to its end
    status = wait_status(client, lambda s: all(a["alive"] for a in s.actors), 180)
    after = {a["name"]: a for a in status.actors}
    other = next(name for name in after if name != victim["name"])
    assert after[victim["name"]]["restarts"] == 1 and after[victim["name"]]["pid"] != victim["pid"]
    assert after[other]["jobs_done"] == before[other]["jobs_done"] + 1
    assert after[victim["name"]]["jobs_done"] == before[victim["name"]]["jobs_done"]
    # and the restarted actor works
    check_result(client.stylize(content(1), [STYLE], **TINY), 1)


@needs_ray
def test_a_job_that_outlives_three_actors_fails_naming_the_cause(client):
    job = client.submit(content(1), [STYLE], **LONG)
    killed: list[int] = []
    deadline = time.monotonic() + 240
    while not job.poll(0.2):
        assert time.monotonic() < deadline, killed
        for actor in client.status().actors:
            if actor["busy"] == job.job_id and actor["pid"] not in killed:
                os.kill(actor["pid"], signal.SIGKILL)
                killed.append(actor["pid"])
    assert len(killed) == 3 and job.error is not None and job.error.code == "engine_error"
    assert "died running this job, 3 actors in a row: ActorDiedError" in str(job.error)
    wait_status(client, lambda s: all(a["alive"] for a in s.actors), 180)


@needs_ray
def test_stopping_the_server_cancels_its_jobs_and_stops_ray(cluster, client):
    assert ray_pids() - cluster.ray_before  # the server's local Ray instance is up
    job = client.submit(content(0), [STYLE], **LONG)
    run_until_step(job)
    cluster.proc.send_signal(signal.SIGTERM)  # drain: the job may go on for --drain seconds
    time.sleep(0.5)
    cluster.proc.send_signal(signal.SIGTERM)  # asked twice: cancel it now
    best = job.wait(timeout=30)
    assert job.cancelled and best.shape == content(0).shape
    assert cluster.proc.wait(60) == 0
    assert "stylebridge: stopped" in cluster.log.read_text()
    deadline = time.monotonic() + 30
    while left := ray_pids() - cluster.ray_before:
        assert time.monotonic() < deadline, f"Ray processes left behind: {sorted(left)}"
        time.sleep(0.5)


def test_without_ray_the_cli_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what an install without the extra sees
        "from stylebridge.server.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-c", code, "serve", "--listen", endpoint, "--cluster", "local"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(STYLEBRIDGE_RUNTIME_DIR=str(tmp_path)),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "stylebridge: --cluster needs Ray: pip install '.[cluster]' in a checkout of stylebridge"
    ]
