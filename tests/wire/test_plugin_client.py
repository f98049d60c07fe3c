"""The plug-ins' standard-library client (wire/client.py, installed
as stylebridge.wire; the Python client is the same class over pyzmq).

Against a real server process over real sockets, with the client in a subprocess where zmq
and msgpack cannot be imported (tests/support/plugin_client_peer.py), as in Krita's and GIMP's
Pythons.
A second server is started only to be stopped (SIGSTOP) and killed (SIGKILL) under a client
that is waiting on it.

STYLEBRIDGE_WIRE_PEER_PYTHON picks another interpreter for the subprocess (e.g. a Python 3.8,
the oldest the package supports); by default it is the one running the tests.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stylebridge import wire
from stylebridge.server.discovery import write_discovery
from stylebridge.wire import discovery
from stylebridge.wire.msgpack_lite import packb
from stylebridge.wire.protocol import VERSION
from testing.servers import DISCOVERY_ENV, RunningServer, free_port, start_server
from tests.support import SUPPORT

PEER_SCRIPT = SUPPORT / "plugin_client_peer.py"
PEER_PYTHON = os.environ.get("STYLEBRIDGE_WIRE_PEER_PYTHON") or sys.executable


# ============================================================================ real servers


@pytest.fixture
def doomed(tmp_path):
    """A second server of its own for each test that stops or kills it."""
    srv = start_server(tmp_path / "runtime")
    yield srv
    srv.stop()


# ================================================================================= the peer


def peer_command(scenario: str, srv: RunningServer, options: dict[str, Any]) -> list[str]:
    opts = {"endpoint": srv.endpoint, "token": srv.token, "timeout": 10, **options}
    return [PEER_PYTHON, str(PEER_SCRIPT), scenario, json.dumps(opts)]


def run_peer(scenario: str, srv: RunningServer, timeout: float = 60, **options: Any) -> list[dict]:
    proc = subprocess.run(
        peer_command(scenario, srv, options),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=srv.env,
    )
    assert proc.returncode == 0, f"peer failed ({proc.returncode}):\n{proc.stderr}"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines and lines[-1].get("done"), proc.stdout
    return lines


class StreamingPeer:
    """A peer whose lines are read as they come, for tests that act in between."""

    def __init__(self, scenario: str, srv: RunningServer, **options: Any) -> None:
        self.proc = subprocess.Popen(
            peer_command(scenario, srv, options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=srv.env,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the peer said nothing for {timeout} s (a hang)") from None
        if line is None:
            self.proc.wait(5)
            assert self.proc.stderr is not None
            raise AssertionError(
                f"the peer ended ({self.proc.returncode}): {self.proc.stderr.read()}"
            )
        return line

    def finish(self, timeout: float = 10) -> None:
        try:
            assert self.proc.wait(timeout) == 0, self.proc.stderr.read() if self.proc.stderr else ""
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


# ================================================================================== tests


def test_ping_status_and_discovery_without_zmq(server):
    (out,) = run_peer("basics", server)
    assert out["zmq_blocked"]  # the peer could not import zmq, yet talked to the server
    assert out["found"] == [server.endpoint, server.token]  # from the discovery file
    assert out["endpoint"] == server.endpoint
    assert out["pong"]["type"] == "pong" and out["pong"]["protocol"] == VERSION
    status = out["status"]
    assert status["type"] == "status" and status["protocol"] == VERSION
    assert status["model_loaded"] and status["queue"] == [] and status["pid"] == server.proc.pid


def test_echo_is_bit_exact_for_16_bit_and_float(server):
    (out,) = run_peer("echo", server)
    deep, gray = out["results"]
    assert deep["sent"]["dtype"] == "uint16" and deep["sent"]["channels"] == 4
    assert gray["sent"]["dtype"] == "float32" and gray["sent"]["channels"] == 1
    for result in (deep, gray):
        assert result["equal"] and result["back"] == result["sent"]


def test_stylize_keeps_size_dtype_and_alpha_and_reports_progress(server):
    (out,) = run_peer("stylize", server)
    assert {k: out["out"][k] for k in ("width", "height", "channels", "dtype")} == {
        "width": 64,
        "height": 48,
        "channels": 4,
        "dtype": "uint8",
    }
    assert out["alpha_same"]  # straight alpha passes through untouched
    assert out["rgb_changed"]
    assert out["steps"] and out["steps"][-1] == 4 and set(out["total_steps"]) == {4}


@pytest.fixture(scope="module")
def preview_run(server):
    (out,) = run_peer("preview", server)
    return out


def test_preview_frames_arrive(preview_run):
    out = preview_run
    assert out["done_"] and out["error"] is None
    assert out["result"]["width"] == 96 and out["result"]["height"] == 72
    assert len(out["previews"]) >= 2
    steps = [p["step"] for p in out["previews"]]
    assert steps == sorted(steps) and steps[-1] <= 40
    for p in out["previews"]:  # 8-bit RGB, at most 256 px a side
        assert p["channels"] == 3 and p["dtype"] == "uint8"
        assert 1 <= p["width"] <= 256 and 1 <= p["height"] <= 256
    assert out["latest_preview"]["sha"] == out["previews"][-1]["sha"]
    assert out["last_progress"]["step"] == 40 and out["last_progress"]["total_steps"] == 40


def test_poll_zero_returns_quickly_while_a_job_runs(preview_run):
    assert preview_run["running_polls"] >= 5
    assert preview_run["slowest_poll"] < 0.2


def test_cancel_queued_and_running_jobs(server):
    queued, running, after = run_peer("cancel", server)
    # cancelled before its `accepted` arrived: the cancel goes out once the job id is known
    assert queued["position"] == 1 and queued["cancelled"] and queued["error"] is None
    assert queued["result"] is None and queued["seconds"] < 2
    assert running["was_running"] and running["cancelled"] and running["cancelling"]
    assert running["error"] is None and running["seconds"] < 2
    # the best image so far, in the content's layout
    assert {k: running["result"][k] for k in ("width", "height", "channels", "dtype")} == {
        "width": 128,
        "height": 96,
        "channels": 4,
        "dtype": "uint8",
    }
    assert after["pong"] == "pong"


def test_error_replies_become_server_errors(server):
    (out,) = run_peer("errors", server)
    assert "did not accept this client's token" in out["bad_token_ping"]
    refused, job_id = out["bad_token_submit"]
    assert "did not accept this client's token" in refused and job_id is None
    assert out["bad_control"] == [True, "bad_field", "controls.strength"]
    assert out["stylize_raises"] == ["bad_field", "controls.strength"]
    assert out["unknown_control"] == ["bad_field", "controls.brushiness"]
    assert out["pong_after_errors"] == "pong"  # the connection survives every error
    assert "needs 16 bytes" in out["short_data"]


def test_silent_server_is_found_out_by_the_liveness_ping(doomed):
    """SIGSTOP: the connection stays open but nothing answers; ping after 2 s, fail 2 s later."""
    peer = StreamingPeer("wait_for_death", doomed, timeout=2, retry=True)
    try:
        assert peer.next(60)["event"] == "running"
        doomed.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            out = peer.next(15)
            elapsed = time.monotonic() - stopped
            # a new socket: the kernel accepts the connection, the stopped server never
            # greets; the ping gives up after the timeout
            retry = peer.next(15)
        finally:
            doomed.proc.send_signal(signal.SIGCONT)
        assert out["outcome"] == "unavailable", out
        assert doomed.endpoint in out["message"] and "ping" in out["message"]
        assert 3.0 <= elapsed <= 7.0, elapsed
        assert retry["retry"] == "unavailable" and doomed.endpoint in retry["message"]
        assert 1.9 <= retry["seconds"] <= 5.0, retry
        peer.finish()
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()


def test_killed_server_gives_unavailable_within_the_timeout(doomed):
    peer = StreamingPeer("wait_for_death", doomed, timeout=2, retry=True)
    try:
        assert peer.next(60)["event"] == "running"
        doomed.proc.kill()
        killed = time.monotonic()
        out = peer.next(10)
        elapsed = time.monotonic() - killed
        assert out["outcome"] == "unavailable", out
        assert doomed.endpoint in out["message"]
        assert elapsed < 2.0, elapsed
        retry = peer.next(10)  # a new request reconnects, and is refused at once
        assert retry["retry"] == "unavailable" and doomed.endpoint in retry["message"]
        assert retry["seconds"] < 2.0
        peer.finish()
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
        doomed.proc.wait(10)


# ======================================================= in-process: discovery and images


def test_find_server_order(tmp_path, monkeypatch):
    for name in (*DISCOVERY_ENV, "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)

    def write(folder: Path, endpoint: str) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as a server makes it
        info = folder / "server.json"
        info.write_text(
            json.dumps({"endpoint": endpoint, "pid": os.getpid(), "token": f"tok-{endpoint[-1]}"})
        )
        info.chmod(0o600)

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "home" / ".cache" / "stylebridge" / "run", "tcp://127.0.0.1:1")
    assert wire.find_server() == ("tcp://127.0.0.1:1", "tok-1")
    write(tmp_path / "xdg" / "stylebridge", "tcp://127.0.0.1:2")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert wire.find_server() == ("tcp://127.0.0.1:2", "tok-2")
    write(tmp_path / "own", "tcp://127.0.0.1:3")
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path / "own"))
    assert wire.discovery_path() == str(tmp_path / "own" / "server.json")
    assert wire.find_server() == ("tcp://127.0.0.1:3", "tok-3")
    monkeypatch.setenv("STYLEBRIDGE_ENDPOINT", "tcp://127.0.0.1:4")
    monkeypatch.setenv("STYLEBRIDGE_TOKEN", "tok-4")
    assert wire.find_server() == ("tcp://127.0.0.1:4", "tok-4")
    assert wire.find_server("tcp://127.0.0.1:5", "tok-5") == ("tcp://127.0.0.1:5", "tok-5")

    for name in DISCOVERY_ENV:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STYLEBRIDGE_RUNTIME_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(wire.ServerUnavailable, match="nothing-here"):
        wire.find_server()
    with pytest.raises(wire.ServerUnavailable):
        wire.Client()


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_a_discovery_file_whose_server_was_killed_says_so(no_server, monkeypatch):
    """Issue 27: a killed server's file is named as such, in one sentence with what to do,
    rather than read as a server that stopped answering."""
    path = write_discovery({"endpoint": "tcp://127.0.0.1:9", "token": "t", "pid": dead_pid()})
    with pytest.raises(discovery.StaleServer) as stale:
        wire.Client()
    pid = json.loads(path.read_text())["pid"]
    assert str(stale.value) == (
        f"the stylebridge server recorded in {path} (pid {pid}) is no longer running: start it "
        "again (the Start button, or `stylebridge serve`)"
    )
    assert isinstance(stale.value, wire.ServerUnavailable)
    # inside a Flatpak sandbox pids are another namespace's: unchecked (the proof guards)
    monkeypatch.setattr(discovery, "FLATPAK_INFO", str(path))
    assert wire.find_server() == ("tcp://127.0.0.1:9", "t")


def test_a_zombie_server_counts_as_gone():
    """A server that died under a plug-in that started it stays a zombie until reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    try:
        deadline = time.monotonic() + 10
        while discovery.recorded_process(proc.pid)[0]:
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.05)
        assert os.path.exists(f"/proc/{proc.pid}")  # not reaped yet: a zombie
    finally:
        proc.wait()
    assert discovery.recorded_process(os.getpid()) == (True, os.getuid())


@pytest.mark.parametrize(
    ("state", "refused"),
    [
        ((True, 1000), None),  # alive, ours
        ((True, None), None),  # alive, owner unknown (macOS, BSD)
        ((True, 1001), discovery.ForeignServer),
        ((False, None), discovery.StaleServer),
    ],
)
def test_the_recorded_pid_must_be_a_live_process_of_this_user(state, refused):
    """The decision, with the process's state and this user's uid injected (the tests run as
    root, so no real process of another user is at hand)."""
    info = {"endpoint": "tcp://127.0.0.1:9", "token": "t", "pid": 4242}

    def check() -> None:
        discovery.check_recorded_pid(info, "/run/s.json", lambda pid: state, 1000)

    if refused is None:
        check()
        return
    with pytest.raises(refused) as err:
        check()
    assert "4242" in str(err.value) and "/run/s.json" in str(err.value)
    assert "stylebridge serve" in str(err.value)


def test_no_listener_is_unavailable_with_the_endpoint(monkeypatch):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with wire.Client(endpoint, "token", timeout=2) as client:
        with pytest.raises(wire.ServerUnavailable, match=endpoint.replace(".", r"\.")):
            client.ping()
        job = client.submit(
            wire.Image(1, 1, 3, "uint8", b"\x00\x00\x00"),
            [wire.Image(1, 1, 3, "uint8", b"\x00\x00\x00")],
        )
        with pytest.raises(wire.ServerUnavailable):
            job.poll(2)
        with pytest.raises(wire.ServerUnavailable):  # again: a lost job stays lost
            job.poll(0)
        assert job.done and job.unavailable is not None
    assert time.monotonic() - start < 3


def test_image_checks_its_layout():
    image = wire.Image(2, 1, 2, "uint16", bytearray(8))
    assert isinstance(image.data, bytes) and image.nbytes == 8 and image.itemsize == 2
    assert image == wire.Image(2, 1, 2, "uint16", bytes(8))
    assert image != wire.Image(1, 2, 2, "uint16", bytes(8))
    for args in (
        (0, 1, 1, "uint8", b""),
        (1, 1, 5, "uint8", bytes(5)),
        (1, 1, 1, "int8", bytes(1)),
        (2, 2, 1, "float32", bytes(15)),
        (True, 1, 1, "uint8", bytes(1)),
    ):
        with pytest.raises(ValueError):
            wire.Image(*args)
    with pytest.raises(TypeError):
        wire.Image(1, 1, 1, "uint8", "x")


def test_events_are_routed_by_request_id_and_unknown_ones_ignored():
    """Message handling without a server: crafted replies fed to the dispatcher."""
    client = wire.Client(f"tcp://127.0.0.1:{free_port()}", "token", timeout=2)
    try:
        job, other = wire.JobHandle(client, 7), wire.JobHandle(client, 8)
        client._jobs.update({7: job, 8: other})

        def feed(header: dict, *blobs: bytes) -> None:
            client._dispatch([packb({"v": VERSION, **header}), *blobs])

        rgb = {"width": 2, "height": 1, "channels": 3, "dtype": "uint8", "frame": 1}
        feed({"type": "accepted", "id": 7, "job": "j7", "position": 2})
        assert (job.job_id, job.position, other.job_id) == ("j7", 2, None)
        feed({"type": "queued", "id": 7, "job": "j7", "position": 1})
        feed({"type": "brand_new_event", "id": 7, "job": "j7", "extra": [1, 2]})
        client._dispatch([b"\xc1"])  # not msgpack
        client._dispatch([packb([1, 2])])  # not a map
        feed({"type": "progress", "id": 7, "job": "j7", "step": 3, "total_steps": 9, "eta": None})
        assert job.position == 0 and job.progress.step == 3 and not job.done
        feed({"type": "preview", "id": 7, "job": "j7", "step": 3, "image": rgb})  # no frame 1
        assert job.latest_preview is None and not job.done
        feed({"type": "preview", "id": 7, "job": "j7", "step": 4, "image": rgb}, b"abcdef")
        assert job.latest_preview == wire.Image(2, 1, 3, "uint8", b"abcdef")
        assert job.preview_step == 4
        feed({"type": "result", "id": 7, "job": "j7", "image": rgb, "steps": 9}, b"ABCDEF")
        assert job.done and not job.cancelled and job.error is None
        assert job.result == wire.Image(2, 1, 3, "uint8", b"ABCDEF") and job.info.steps == 9
        assert job.poll(0) and job.wait(0) == job.result
        feed({"type": "error", "id": 7, "job": "j7", "code": "late", "message": "x"})
        assert job.error is None  # nothing changes a finished job

        feed({"type": "result", "id": 8, "job": "j8", "image": rgb}, b"short")
        assert other.done and other.error is not None and other.error.code == "bad_reply"
        with pytest.raises(wire.ServerError, match="bad image"):
            other.wait(0)
        assert client._jobs == {}
    finally:
        client.close()


def test_previews_and_results_that_do_not_fit_the_layer_sent_never_reach_the_host():
    """A bad server cannot hand a host bytes it would misread: a 1-channel 'preview' (which
    Krita would wrap as RGB and read past) is skipped, a result that is not the content's size,
    channels and dtype is an error, and a fitting one is the result."""
    client = wire.Client(f"tcp://127.0.0.1:{free_port()}", "token", timeout=2)
    try:
        content = wire.Image(2, 1, 4, "uint16", bytes(16))
        job, bad = (
            wire.JobHandle(client, 1, content=content),
            wire.JobHandle(client, 2, content=content),
        )
        client._jobs.update({1: job, 2: bad})

        def feed(header: dict, *blobs: bytes) -> None:
            client._dispatch([packb({"v": VERSION, **header}), *blobs])

        def spec(w: int, h: int, c: int, dtype: str) -> dict:
            return {"width": w, "height": h, "channels": c, "dtype": dtype, "frame": 1}

        gray = spec(1000, 1000, 1, "uint8")
        feed({"type": "preview", "id": 1, "job": "j", "step": 1, "image": gray}, bytes(10**6))
        big = spec(300, 1, 3, "uint8")  # over the protocol's 256 px
        feed({"type": "preview", "id": 1, "job": "j", "step": 2, "image": big}, bytes(900))
        assert job.latest_preview is None and not job.done
        feed(
            {"type": "preview", "id": 1, "job": "j", "step": 3, "image": spec(2, 1, 3, "uint8")},
            bytes(6),
        )
        assert job.latest_preview == wire.Image(2, 1, 3, "uint8", bytes(6))

        feed({"type": "result", "id": 2, "job": "k", "image": spec(2, 1, 4, "uint8")}, bytes(8))
        assert bad.done and bad.result is None and bad.error.code == "bad_reply"
        assert "2x1, 4 channels of uint8, not 2x1, 4 channels of uint16" in str(bad.error)
        feed({"type": "result", "id": 1, "job": "j", "image": spec(2, 1, 4, "uint16")}, bytes(16))
        assert job.error is None and job.result == content
        # with a mask, a layer without alpha comes back with one
        rgb = wire.Image(2, 1, 3, "uint8", bytes(6))
        masked = wire.JobHandle(client, 3, content=rgb, masked=True)
        client._jobs[3] = masked
        feed({"type": "result", "id": 3, "job": "m", "image": spec(2, 1, 4, "uint8")}, bytes(8))
        assert masked.error is None and masked.result.channels == 4
    finally:
        client.close()
