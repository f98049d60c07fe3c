"""The server panel's logic both dialogs share (`stylebridge_wire.server_watch`), without a
toolkit: against real server processes and a TCP peer that never answers. The Krita panel's
Qt view is tested in test_krita_server_panel.py, GIMP's GTK view in real GIMP (tests/e2e/gimp).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from stylebridge.server.discovery import write_discovery
from stylebridge.wire import server_watch
from testing.servers import start_server


def tick_until(watch: server_watch.ServerWatch, done: Callable[[], bool], timeout: float) -> float:
    """Call ``tick`` as a host's timer would, until ``done``; the seconds it took."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < timeout, f"timed out: {watch.state} / {watch.error}"
        watch.tick()
        time.sleep(server_watch.POLL_S / 5)
    return time.monotonic() - start


@pytest.fixture
def watch(no_server):
    changes: list[str] = []
    started: list[list[str]] = []
    watch = server_watch.ServerWatch(
        "org.example.Host", lambda: changes.append(watch.state), started.append
    )
    watch.changes, watch.started = changes, started
    yield watch
    watch.close()


def test_no_server_here_says_what_to_press(watch):
    watch.check()
    assert not watch.busy and not watch.ready  # discovery found nothing: no request in flight
    assert watch.state == "Server: not running. Apply starts it, or press Start."
    assert watch.error == ""  # the state says it: no environment variables, no file paths
    assert watch.can_start and not watch.can_stop


def test_ensure_with_no_server_starts_the_command_then_calls_back_once_ready(no_server):
    servers, outcome = [], []
    watch = server_watch.ServerWatch("org.example.Host", start=lambda c: servers.append(c))
    try:
        watch.ensure(["/opt/my venv/bin/stylebridge", "serve"], lambda: outcome.append("ok"),
                     outcome.append)  # fmt: skip
        assert servers == [["/opt/my venv/bin/stylebridge", "serve"]]  # an argv, as it was
        assert watch.state == server_watch.STARTING + "..." and outcome == []
        tick_until(watch, lambda: ": 0 s" in watch.state or ": 1 s" in watch.state, 5)
        servers.append(start_server(no_server))  # the server comes up while the watch asks
        tick_until(watch, lambda: outcome, 30)
        assert outcome == ["ok"] and watch.ready and watch.device == "cpu"
        watch.ensure(["unused"], lambda: outcome.append("again"), outcome.append)
        tick_until(watch, lambda: len(outcome) == 2, 10)  # ready: a check, no second start
        assert outcome == ["ok", "again"] and len(servers) == 2
    finally:
        servers[-1].stop()


def test_apply_over_a_killed_servers_discovery_file_starts_a_server(no_server):
    """A stale discovery file (its pid is gone) is no server: Apply starts one, no error."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    write_discovery({"endpoint": "tcp://127.0.0.1:9", "token": "t", "pid": dead.pid})
    started: list[list[str]] = []
    watch = server_watch.ServerWatch("org.example.Host", start=started.append)
    try:
        watch.ensure(["/usr/bin/stylebridge", "serve"], lambda: None, started.append)
        assert started == [["/usr/bin/stylebridge", "serve"]] and watch.starting
        assert watch.error == ""
        watch.close()
        watch.check()  # no Apply waiting: the panel says what to press, without an error
        assert watch.state == "Server: not running. Apply starts it, or press Start."
        assert watch.error == ""
    finally:
        watch.close()


def test_ensure_fails_with_the_reason_when_no_server_can_be_had(no_server, monkeypatch):
    def refuse(command):
        raise server_watch.server_process.StartError("Cannot start x: no such file.")

    outcome = []
    watch = server_watch.ServerWatch("org.example.Host", start=refuse)
    watch.ensure(["x", "serve"], lambda: outcome.append("ok"), outcome.append)
    assert outcome == ["Cannot start x: no such file."]
    monkeypatch.setenv("STYLEBRIDGE_ENDPOINT", "tcp://127.0.0.1:9")  # a studio's: not started
    monkeypatch.setenv("STYLEBRIDGE_TOKEN", "t")
    studio = server_watch.ServerWatch("org.example.Host", start=refuse)
    studio.ensure(["x", "serve"], lambda: outcome.append("ok"), outcome.append)
    tick_until(studio, lambda: len(outcome) == 2, 10)
    assert outcome[1].startswith("No answer from the server at tcp://127.0.0.1:9")


def test_a_peer_that_never_answers_is_given_up_by_the_ticks_not_the_call(watch):
    with socket.create_server(("127.0.0.1", 0)) as hole:  # takes connections, never speaks
        watch.endpoint = f"tcp://127.0.0.1:{hole.getsockname()[1]}"
        watch.token = "a-token"
        begun = time.monotonic()
        watch.check()
        assert time.monotonic() - begun < 0.1 and watch.busy  # sent; the reply is polled
        waited = tick_until(watch, lambda: not watch.busy, 10)
    assert waited >= server_watch.CHECK_TIMEOUT - 0.5
    assert watch.state == f"Server: no answer at {watch.endpoint}."
    assert watch.error.startswith("No answer from the server at tcp://127.0.0.1:")
    assert not watch.can_start  # a studio's is started there


def test_start_then_ready_then_stop_a_real_server(no_server):
    servers = []
    watch = server_watch.ServerWatch("org.example.Host", start=lambda c: servers.append(c))
    try:
        assert watch.start(["/opt/my venv/bin/stylebridge", "serve"])
        assert servers == [["/opt/my venv/bin/stylebridge", "serve"]]
        assert watch.state.startswith("Starting the server") and watch.busy
        assert not watch.can_start
        tick_until(watch, lambda: watch.state.endswith(" s..."), 5)  # the seconds it has waited
        servers.append(start_server(no_server))  # the server comes up while the watch asks
        tick_until(watch, lambda: watch.ready, 30)
        assert watch.state == "Server: ready on cpu" and watch.can_stop
        watch.stop()  # with the admin key of its discovery file
        tick_until(watch, lambda: "stopped" in watch.state, 10)
        servers[-1].proc.wait(30)  # the real server exited
        assert not watch.ready and watch.can_start and not watch.busy
    finally:
        servers[-1].stop()


def test_a_server_that_never_comes_up_is_said_after_the_wait(watch, monkeypatch):
    monkeypatch.setattr(server_watch.server_process, "START_WAIT", 0.5)
    watch.start(["stylebridge", "serve"])
    tick_until(watch, lambda: not watch.busy, 5)
    assert watch.state == "Server: it did not come up."
    assert "press Open log under Connection..." in watch.error


def test_a_command_that_cannot_run_is_said_in_words(no_server):
    def refuse(command: list[str]) -> None:
        raise server_watch.server_process.StartError("Cannot start 'nope': no such file")

    watch = server_watch.ServerWatch("org.example.Host", start=refuse)
    assert not watch.start(["nope", "serve"])
    assert watch.error == "Cannot start 'nope': no such file" and not watch.busy


def test_stop_is_for_this_machines_server_only(watch):
    watch.endpoint = "tcp://gpu-box:47474"
    watch.stop()
    assert "stop a studio one there" in watch.error and not watch.busy


def test_open_log_without_a_log_names_the_path(watch, no_server):
    assert watch.missing_log() == f"There is no log yet: {no_server / 'server.log'}"
    (no_server / "server.log").write_text("started\n")
    assert watch.missing_log() is None


@pytest.mark.parametrize(
    "command",
    [
        ["/usr/bin/gimp", "serve"],
        ["stylebridge", "install", "krita"],
        ["x"],
        # issue 27, item 7: the command lives in files a sandboxed host can write
        ["sh", "-c", "touch /tmp/pwned", "stylebridge", "serve"],
        ["/bin/sh", "-c", "/opt/sb/bin/stylebridge", "serve"],
        ["stylebridge", "serve"],  # not an absolute path: whatever PATH finds first
        ["/opt/sb/bin/stylebridge", "serve", "--listen", "tcp://0.0.0.0:1"],
        ["/opt/sb/bin/stylebridge", "serve;", "rm", "-rf", "~"],
        ["/usr/bin/env", "/opt/sb/bin/stylebridge", "serve"],
        ["/usr/bin/python3", "-c", "import os", "stylebridge", "serve"],
        ["/usr/bin/flatpak-spawn", "--host", "sh", "-c", "x", "/opt/sb/bin/stylebridge", "serve"],
        ["flatpak-spawn", "--host", "/opt/sb/bin/stylebridge", "serve"],
        ["/opt/sb/bin/stylebridge-evil", "serve"],
        [],
    ],
)
def test_a_command_that_is_not_stylebridge_serve_is_refused_before_it_runs(no_server, command):
    with pytest.raises(server_watch.server_process.StartError, match="under Connection"):
        server_watch.server_process.start(command)


@pytest.mark.parametrize("folder", ["Jane Doe", "Zoë Ångström", 'Jane "Q" Doe'])
def test_a_program_in_a_folder_with_spaces_or_other_letters_gets_its_argv_as_is(
    no_server, tmp_path, folder
):
    """Issue 28: Krita kept the command as a string and split it again, so a space in the
    install path (`C:\\Users\\Jane Doe\\...`) broke Start. Stored and run as an argv, the
    program gets exactly the arguments it was given."""
    home = tmp_path / folder / "bin"
    home.mkdir(parents=True)
    program = home / "stylebridge"
    seen = tmp_path / "argv.json"
    program.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(sys.argv))\n"
    )
    program.chmod(0o755)
    sp = server_watch.server_process
    command = sp.command_for(str(program))
    saved = sp.setting_for(command)  # what a dialog keeps between sessions
    sp.start(sp.saved_command(saved)).wait(30)
    assert json.loads(seen.read_text()) == [str(program), "serve"]


@pytest.mark.parametrize(
    "argv",
    [
        ["/opt/my venv/bin/stylebridge", "serve"],
        ["/opt/sb/bin/python3.11", "-m", "stylebridge.server.cli", "serve"],
        ["/usr/bin/flatpak-spawn", "--host", "/home/a/sb/bin/stylebridge", "serve"],
    ],
)
def test_exactly_stylebridge_serve_by_its_absolute_path_is_taken(argv):
    assert server_watch.server_process._runs_stylebridge_serve(argv)


def test_a_command_that_ends_at_once_is_said_without_waiting(no_server, tmp_path):
    program = tmp_path / "stylebridge"  # passes the check, then fails like a broken venv
    program.write_text("#!/bin/sh\necho 'ModuleNotFoundError: torch' >&2\nexit 3\n")
    program.chmod(0o755)
    watch = server_watch.ServerWatch("org.example.Host")  # the real start: a process
    assert watch.start([str(program), "serve"])
    waited = tick_until(watch, lambda: not watch.busy, 10)
    assert waited < 5  # not START_WAIT
    assert watch.state == "Server: it did not start."
    assert f"ended at once (exit status 3): see its log, {no_server / 'server.log'}" in watch.error
    assert "ModuleNotFoundError: torch" in (no_server / "server.log").read_text()


def test_a_launcher_that_ends_with_0_is_waited_for_until_its_server_answers(no_server, tmp_path):
    program = tmp_path / "stylebridge"  # hands the server on (a service, a backgrounding script)
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    watch = server_watch.ServerWatch("org.example.Host")
    assert watch.start([str(program), "serve"])
    tick_until(watch, lambda: watch._process.poll() is not None, 5)
    tick_until(watch, lambda: watch.state.endswith(" s..."), 5)
    server = start_server(no_server)  # comes up after its launcher has ended
    try:
        tick_until(watch, lambda: watch.ready, 30)
        assert watch.state == "Server: ready on cpu" and not watch.error
    finally:
        server.stop()


def test_an_endpoint_from_the_environment_is_not_this_machines_server(watch, monkeypatch):
    monkeypatch.setenv("STYLEBRIDGE_ENDPOINT", "tcp://gpu-box:47474")
    assert not watch.local and not watch.can_start  # Start would start one nobody asks
    watch.ready = True
    assert not watch.can_stop
    watch._on_down(ConnectionError("no answer"))
    assert watch.state == "Server: no answer at tcp://gpu-box:47474."
