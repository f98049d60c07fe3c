"""A server for a studio: LAN listening with a fixed token, CURVE encryption, and the relay that
lets the plug-ins (plain ZMTP, no crypto library) reach it. Real processes and sockets."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from stylebridge import wire
from stylebridge.core.errors import StyleBridgeError
from stylebridge.server.client import Client, ServerUnavailable
from stylebridge.server.credentials import is_local, studio_token
from stylebridge.server.members import read_members
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


def studio_cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stylebridge.server.cli", "studio", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A CURVE server listening on every interface, reached here through 127.0.0.1, with one
    member, alice, added before it started."""
    top = tmp_path_factory.mktemp("studio")
    env = clean_env(STYLEBRIDGE_CONFIG=str(top / "config"), STYLEBRIDGE_RUNTIME_DIR=str(top / "rt"))
    added = studio_cli("add-member", "alice", env=env, cwd=top)
    assert added.returncode == 0, added.stderr
    port = free_port()
    log = top / "serve.log"
    proc = start(["serve", "--listen", f"tcp://0.0.0.0:{port}", "--curve"], env, log)
    key = log.read_text().split("server key ")[1].split()[0]
    assert f"the server key {key}," in added.stdout  # made by add-member, kept by serve
    token = (top / "config" / "token").read_text().strip()
    alice = (top / "alice.token").read_text().strip()
    yield {
        **{"proc": proc, "port": port, "key": key, "token": token, "top": top, "env": env},
        **{"alice": alice, "log": log},
    }  # fmt: skip
    stop(proc)


def test_lan_listening_makes_a_private_token_and_keys_on_first_use(studio):
    config = studio["top"] / "config"
    for secret in (config / "token", config / "curve" / "server.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "curve").stat().st_mode) == 0o700
    assert len(studio["token"]) >= 32 and len(studio["key"]) == 40  # Z85 of 32 bytes
    assert studio["token"] not in (studio["top"] / "serve.log").read_text()


def test_a_member_with_their_own_token_gets_their_job_done_and_the_log_names_them(studio):
    """Issue 27: each member's own key (from their own token), not one key every holder of a
    shared token derives; the server keeps only the public half."""
    top = studio["top"]
    assert stat.S_IMODE((top / "alice.token").stat().st_mode) == 0o600
    members = (top / "config" / "members").read_text()
    assert members.startswith("alice ") and studio["alice"] not in members
    assert stat.S_IMODE((top / "config" / "members").stat().st_mode) == 0o600
    endpoint = f"tcp://127.0.0.1:{studio['port']}"
    with Client(endpoint, studio["alice"], server_key=studio["key"], timeout=30) as c:
        assert c.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)
    log = studio["log"].read_text()
    assert "member alice connected" in log
    assert re.search(r"job \S+ for member alice", log), log


def test_a_member_removed_is_refused_from_their_next_connection(studio):
    env, top = studio["env"], studio["top"]
    endpoint = f"tcp://127.0.0.1:{studio['port']}"
    added = studio_cli("add-member", "bob", "--output", str(top / "b.token"), env=env, cwd=top)
    assert added.returncode == 0, added.stderr
    bob = (top / "b.token").read_text().strip()
    with Client(endpoint, bob, server_key=studio["key"], timeout=30) as c:  # no restart needed
        assert c.ping().type == "pong"
    again = studio_cli("add-member", "bob", "--output", str(top / "b2.token"), env=env, cwd=top)
    assert again.returncode == 2 and "already a member" in again.stderr
    assert not (top / "b2.token").exists()
    removed = studio_cli("remove-member", "bob", env=env, cwd=top)
    assert removed.returncode == 0 and "no longer a member" in removed.stdout
    with (
        Client(endpoint, bob, server_key=studio["key"], timeout=30) as c,
        pytest.raises(ServerUnavailable, match="did not accept this client's token"),
    ):
        c.ping()
    listed = studio_cli("members", env=env, cwd=top)
    assert listed.stdout.split()[0] == "alice" and "bob" not in listed.stdout
    assert "refused a CURVE key that is no member's" in studio["log"].read_text()


def test_the_servers_own_token_serves_its_own_user_on_its_machine(studio):
    """`stylebridge status` and `stop` on the studio box: the discovery file's token."""
    endpoint = f"tcp://127.0.0.1:{studio['port']}"
    with Client(endpoint, studio["token"], server_key=studio["key"], timeout=30) as c:
        assert c.ping().type == "pong"


def test_a_members_key_may_hold_a_hash_which_starts_only_a_whole_line_comment(tmp_path):
    keys = (zmq.curve_keypair()[0].decode() for _ in range(1000))
    key = next(k for k in keys if "#" in k[1:])  # z85 has "#": about 4 keys in 10 do
    path = tmp_path / "members"
    path.write_text(f"# the studio\n  # and its members\nalice {key}\n")
    path.chmod(0o600)
    assert read_members(path) == {key.encode(): "alice"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("alice\n", "expected 'NAME PUBLIC-KEY'"),
        ("al ice KEY\n", "expected 'NAME PUBLIC-KEY'"),
        ("alice short\n", "is not a z85 CURVE public key"),
        ("a {k}\nb {k}\n", "the key of a again"),
    ],
)
def test_a_bad_members_file_is_named_with_its_line(tmp_path, text, error):
    path = tmp_path / "members"
    path.write_text("# the studio\n" + text.format(k=zmq.curve_keypair()[0].decode()))
    path.chmod(0o600)
    with pytest.raises(StyleBridgeError, match=re.escape(error)) as bad:
        read_members(path)
    assert f"{path}, line " in str(bad.value)
    path.write_text("")
    path.chmod(0o620)
    with pytest.raises(StyleBridgeError, match="can be changed by other users"):
        read_members(path)


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
    server; the relay carries the job over CURVE with the member's own key."""
    rt = tmp_path / "rt"
    relay_port = free_port()
    env = clean_env(
        STYLEBRIDGE_RUNTIME_DIR=str(rt),
        STYLEBRIDGE_TOKEN=studio["alice"],
        STYLEBRIDGE_SERVER_KEY=studio["key"],
    )
    args = ["relay", "--to", f"tcp://127.0.0.1:{studio['port']}"]
    proc = start([*args, "--listen", f"tcp://127.0.0.1:{relay_port}"], env, tmp_path / "log")
    try:
        os.environ["STYLEBRIDGE_RUNTIME_DIR"] = str(rt)
        try:
            with wire.Client(timeout=30) as c:
                assert c.endpoint == f"tcp://127.0.0.1:{relay_port}"
                assert c.token != studio["alice"]  # the member's token never reaches the plug-in
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


def test_a_flood_of_unknown_keys_grows_the_log_by_a_line_each_interval(capsys):
    """Anyone who reaches the port can offer a fresh CURVE key: each refusal is not a line of
    its own, and the next line counts the ones left out."""
    import asyncio

    from stylebridge.server.sockets import Sparse, TokenAuthenticator

    auth = TokenAuthenticator(zmq.Context.instance(), "t" * 43)
    keys = [zmq.utils.z85.decode(zmq.curve_keypair()[0]) for _ in range(200)]
    for key in keys:
        assert asyncio.run(auth._authenticate_curve("*", key)) == (False, b"client key not allowed")
    assert capsys.readouterr().out.count("refused a CURVE key") == 1

    now = [0.0]
    sparse = Sparse(10.0, clock=lambda: now[0])
    for t in (0.0, 1.0, 2.0, 9.9, 10.0):
        now[0] = t
        sparse.say("refused")
    assert capsys.readouterr().out.splitlines() == [
        "refused",
        "refused (3 more refused since the last such line)",
    ]
