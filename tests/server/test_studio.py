"""A server for a studio: LAN listening with a fixed token, CURVE encryption, and the relay that
lets the plug-ins (plain ZMTP, no crypto library) reach it. Real processes and sockets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from stylebridge import wire
from stylebridge.server.client import Client, ServerUnavailable
from stylebridge.server.credentials import is_local, studio_token
from testing.servers import clean_env, free_port
from tests.support.images import STYLE, rgba

TINY = {"size": 64, "style_size": 64, "steps": 3}


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:47474", True),
        ("tcp://127.8.9.1:1", True),
        ("tcp://localhost:47474", True),
        ("tcp://[::1]:47474", True),
        ("ipc:///tmp/sb.sock", True),
        ("tcp://0.0.0.0:47474", False),
        ("tcp://*:47474", False),
        ("tcp://192.168.1.20:47474", False),
        ("tcp://eth0:47474", False),
        ("tcp://studio.example:47474", False),
    ],
)
def test_what_counts_as_this_machine_only(endpoint, local):
    assert is_local(endpoint) is local


def test_default_listen_is_loopback_only():
    from stylebridge.server.cli import build_parser

    assert is_local(build_parser().parse_args(["serve"]).listen)


def start(args: list[str], env: dict, log: Path, ready: str = "ready on") -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stylebridge.server.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    deadline = time.monotonic() + 120
    while ready not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A CURVE server listening on every interface, reached here through 127.0.0.1."""
    top = tmp_path_factory.mktemp("studio")
    env = clean_env(STYLEBRIDGE_CONFIG=str(top / "config"), STYLEBRIDGE_RUNTIME_DIR=str(top / "rt"))
    port = free_port()
    log = top / "serve.log"
    proc = start(["serve", "--listen", f"tcp://0.0.0.0:{port}", "--curve"], env, log)
    key = log.read_text().split("server key ")[1].split()[0]
    token = (top / "config" / "token").read_text().strip()
    yield {"proc": proc, "port": port, "key": key, "token": token, "top": top, "env": env}
    stop(proc)


def test_lan_listening_makes_a_private_token_and_keys_on_first_use(studio):
    config = studio["top"] / "config"
    for secret in (config / "token", config / "curve" / "server.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "curve").stat().st_mode) == 0o700
    assert len(studio["token"]) >= 32 and len(studio["key"]) == 40  # Z85 of 32 bytes
    assert studio["token"] not in (studio["top"] / "serve.log").read_text()


def test_curve_client_with_the_token_gets_its_job_done(studio):
    endpoint = f"tcp://127.0.0.1:{studio['port']}"
    with Client(endpoint, studio["token"], server_key=studio["key"], timeout=30) as c:
        assert c.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)


def test_curve_server_refuses_plain_and_wrong_key_clients_and_wrong_tokens(studio):
    endpoint = f"tcp://127.0.0.1:{studio['port']}"
    # no handshake without CURVE, or with another server's key: nothing ever answers
    for key in (None, zmq.curve_keypair()[0].decode()):
        with Client(endpoint, studio["token"], server_key=key, timeout=1.5) as c:
            c.server_key = key
            with pytest.raises(ServerUnavailable):
                c.ping()
    # a wrong token derives a key that is not on the allowlist: refused in the handshake
    with (
        Client(endpoint, "x" * 43, server_key=studio["key"], timeout=30) as c,
        pytest.raises(ServerUnavailable) as wrong,
    ):
        c.ping()
    assert "did not accept this client's token" in str(wrong.value)


def test_restart_keeps_the_token_and_the_key(studio, tmp_path):
    env, port = studio["env"], free_port()
    proc = start(["serve", "--listen", f"tcp://0.0.0.0:{port}", "--curve"], {
        **env, "STYLEBRIDGE_RUNTIME_DIR": str(tmp_path)}, tmp_path / "log")  # fmt: skip
    try:
        assert f"server key {studio['key']}" in (tmp_path / "log").read_text()
        endpoint = f"tcp://127.0.0.1:{port}"
        with Client(endpoint, studio["token"], server_key=studio["key"], timeout=30) as c:
            assert c.ping().type == "pong"
    finally:
        stop(proc)


def test_lan_without_curve_warns_that_it_is_unencrypted(tmp_path):
    env = clean_env(STYLEBRIDGE_CONFIG=str(tmp_path / "c"), STYLEBRIDGE_RUNTIME_DIR=str(tmp_path))
    proc = start(["serve", "--listen", f"tcp://0.0.0.0:{free_port()}"], env, tmp_path / "log")
    stop(proc)
    text = (tmp_path / "log").read_text()
    assert "without --curve" in text and "unencrypted" in text
    assert (tmp_path / "c" / "token").exists()  # the LAN always gets a fixed token


def test_plugins_reach_the_curve_server_through_the_relay(studio, tmp_path):
    """The plug-ins' stdlib client finds the relay by its discovery file, as it would a local
    server; the relay carries the job over CURVE with the studio token's key."""
    rt = tmp_path / "rt"
    relay_port = free_port()
    env = clean_env(
        STYLEBRIDGE_RUNTIME_DIR=str(rt),
        STYLEBRIDGE_TOKEN=studio["token"],
        STYLEBRIDGE_SERVER_KEY=studio["key"],
    )
    args = ["relay", "--to", f"tcp://127.0.0.1:{studio['port']}"]
    proc = start([*args, "--listen", f"tcp://127.0.0.1:{relay_port}"], env, tmp_path / "log")
    try:
        os.environ["STYLEBRIDGE_RUNTIME_DIR"] = str(rt)
        try:
            with wire.Client(timeout=30) as c:
                assert c.endpoint == f"tcp://127.0.0.1:{relay_port}"
                assert c.token != studio["token"]  # the studio token never reaches the plug-in
                content = wire.Image(64, 48, 4, "uint8", rgba().tobytes())
                style = wire.Image(64, 64, 3, "uint8", STYLE.tobytes())
                result = c.stylize(content, [style], **TINY)
                assert (result.width, result.height, result.channels) == (64, 48, 4)
                with (
                    wire.Client(c.endpoint, "wrong-token", timeout=10) as bad,
                    pytest.raises(wire.ServerUnavailable) as refused,
                ):
                    bad.status()
                assert "did not accept this client's token" in str(refused.value)
                # a member cannot stop everyone's server, even holding its admin key
                admin = json.loads((studio["top"] / "rt" / "server.json").read_text())["admin"]
                with pytest.raises(wire.ServerError) as forbidden:
                    c.shutdown(admin, drain=0)
                assert forbidden.value.code == "forbidden" and "does not forward" in str(
                    forbidden.value
                )
                assert c.ping().type == "pong"
        finally:
            del os.environ["STYLEBRIDGE_RUNTIME_DIR"]
    finally:
        stop(proc)
    assert "CURVE" in (tmp_path / "log").read_text()
    assert not (rt / "server.json").exists()


def test_relay_only_listens_on_loopback(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stylebridge.server.cli",
            "relay",
            "--to",
            "tcp://h:1",
            "--listen",
            "tcp://0.0.0.0:5",
        ],
        env=clean_env(STYLEBRIDGE_TOKEN="t" * 32),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "loopback only" in out.stderr


def test_relay_refuses_a_token_file_other_users_can_read(tmp_path):
    token = tmp_path / "token"
    token.write_text("t" * 32)
    token.chmod(0o644)
    out = subprocess.run(
        [
            *(sys.executable, "-m", "stylebridge.server.cli", "relay", "--to", "tcp://h:1"),
            *("--token-file", str(token), "--listen", f"tcp://127.0.0.1:{free_port()}"),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "readable by other users" in out.stderr


def test_a_token_file_in_an_existing_folder_leaves_the_folders_mode_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    token = studio_token(home / "token")
    assert len(token) >= 16
    assert stat.S_IMODE(home.stat().st_mode) == 0o755  # was chmodded to 0700
    assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600
    made = studio_token(tmp_path / "new" / "folder" / "token")  # a folder it makes is private
    assert made and stat.S_IMODE((tmp_path / "new" / "folder").stat().st_mode) == 0o700


# --- PLAIN beyond this machine only when asked (issue 27, item 6) -------------------------------

LAN = "tcp://192.0.2.1:47474"  # TEST-NET-1: never reached, the refusal comes first


def test_a_client_without_a_server_key_speaks_plain_only_on_loopback(monkeypatch):
    monkeypatch.delenv("STYLEBRIDGE_SERVER_KEY", raising=False)
    with pytest.raises(ServerUnavailable, match=r"unencrypted to whoever answers.*--insecure"):
        Client(LAN, "t" * 43, timeout=1)
    with Client(LAN, "t" * 43, timeout=1, insecure=True) as c:  # asked for: it tries
        assert c.endpoint == LAN


def test_the_relay_refuses_a_plain_studio_server_unless_asked(tmp_path):
    env = clean_env(STYLEBRIDGE_TOKEN="t" * 43, STYLEBRIDGE_RUNTIME_DIR=str(tmp_path))
    env.pop("STYLEBRIDGE_SERVER_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "stylebridge.server.cli", "relay", "--to", LAN],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "unencrypted to whoever answers" in done.stderr and "--insecure" in done.stderr
    assert done.stderr.count("\n") == 1  # one sentence
