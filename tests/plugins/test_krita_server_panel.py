"""The Krita dialog's server line (offscreen, PyQt6): every check is polled by a timer, so
the UI thread never waits on the network; Start runs the recorded program, Stop stops this
machine's real server with its admin key, the log and the last error are shown in words."""

from __future__ import annotations

import json
import socket
import time

import pytest

from testing.plugins import pump_until
from testing.servers import start_server


@pytest.fixture
def panel(sbk, qapp, no_server):
    started: list[str] = []
    panel = sbk.server_panel.ServerPanel(sbk.prefs.Prefs(), start=started.append)
    panel.started = started
    yield panel
    panel.close()


def test_a_server_that_never_answers_does_not_block_the_ui(sbk, qapp, panel):
    with socket.create_server(("127.0.0.1", 0)) as hole:  # takes connections, never speaks
        panel.endpoint.setText(f"tcp://127.0.0.1:{hole.getsockname()[1]}")
        panel.token.setText("a-token")
        start = time.monotonic()
        panel.check()
        assert time.monotonic() - start < 0.1  # returned at once: the reply is polled
        waited = pump_until(qapp, lambda: "no answer at" in panel.state.text(), 10)
    assert waited >= sbk.stylebridge_wire.server_watch.CHECK_TIMEOUT - 0.5  # the timer gave up
    assert panel.error.text().startswith("No answer from the server at tcp://127.0.0.1:")
    assert "check the endpoint and token under Connection..." in panel.error.text()
    assert not panel.start_button.isEnabled()  # a studio endpoint is not started from here


def test_no_server_here_says_what_to_press(sbk, qapp, panel):
    panel.check()
    pump_until(qapp, lambda: "not running" in panel.state.text(), 5)
    assert panel.state.text() == "Server: not running. Apply starts it, or press Start."
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.error.text() == ""  # the line says it all: nothing of environment variables


def test_start_runs_the_program_as_an_argv_and_waits_for_the_server(sbk, qapp, panel):
    program = "/opt/my venv/bin/stylebridge"  # a space: one argument all the same
    panel.program.setText(program)
    panel.program.textEdited.emit(program)  # as typed by the painter
    panel.start_server()
    assert panel.started == [[program, "serve"]]
    assert panel.state.text().startswith("Starting the server (first time: about")
    assert not panel.start_button.isEnabled()
    assert json.loads(panel.prefs.get("server_command")) == [program, "serve"]


def test_a_command_that_cannot_start_is_said_in_words(sbk, qapp, no_server):
    def refuse(command: list[str]) -> None:
        raise sbk.stylebridge_wire.server_process.StartError("Cannot start 'nope': no such file")

    panel = sbk.server_panel.ServerPanel(sbk.prefs.Prefs(), start=refuse)
    panel.start_server()
    assert "Cannot start 'nope'" in panel.error.text()
    panel.close()


def test_ready_then_stop_this_machines_server(sbk, qapp, panel, no_server):
    server = start_server(no_server)  # its discovery file in the folder the panel reads
    try:
        panel.check()
        pump_until(qapp, lambda: panel.ready, 10)
        assert panel.state.text() == "Server: ready on cpu" and panel.stop_button.isEnabled()
        assert panel.log.text() == str(no_server / "server.log")
        panel.stop_server()
        pump_until(qapp, lambda: "stopped" in panel.state.text(), 10)
        server.proc.wait(30)  # the real server exited: the admin key came from discovery
        assert not panel.ready and panel.start_button.isEnabled()
    finally:
        server.stop()


def test_the_chosen_program_becomes_the_command(sbk):
    sp = sbk.stylebridge_wire.server_process
    assert sp.command_for("/opt/my venv/bin/stylebridge") == [
        "/opt/my venv/bin/stylebridge",
        "serve",
    ]


def test_a_flatpak_sandbox_gets_the_exact_override(sbk, tmp_path):
    sp = sbk.stylebridge_wire.server_process
    assert sp.sandbox_hint("org.kde.krita", tmp_path / "absent") is None
    (tmp_path / ".flatpak-info").write_text("[Application]\nname=org.kde.krita\n")
    hint = sp.sandbox_hint("org.kde.krita", tmp_path / ".flatpak-info")
    assert "flatpak override --user --filesystem=xdg-run/stylebridge org.kde.krita" in hint
