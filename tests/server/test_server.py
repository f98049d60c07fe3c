"""The bridge with real parts: a real server process, real sockets, the Python client and CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from stylebridge import wire
from stylebridge.core.weights import cache_dir
from stylebridge.server.client import Client, ServerError, ServerUnavailable
from stylebridge.wire.messages import PREVIEW_SIDE, Cancel
from stylebridge.wire.protocol import FRAME_BYTES, VERSION
from testing.servers import free_port, raw_socket, start_server
from tests.support.images import STYLE, rgba

TINY = {"size": 64, "style_size": 64, "steps": 4}


def test_discovery_file_is_private_and_status_answers(server, client):
    info_path = server.runtime / "server.json"
    assert stat.S_IMODE(info_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.runtime.stat().st_mode) == 0o700
    status = client.status()
    assert status.model_loaded and status.device == "cpu" and status.protocol == VERSION
    assert status.queue == [] and status.pid == server.proc.pid
    assert client.ping().type == "pong"


def test_stylize_keeps_size_dtype_and_alpha(client):
    content = rgba(dtype=np.uint16)
    steps = []
    out = client.stylize(content, [STYLE], on_progress=lambda p: steps.append(p.step), **TINY)
    assert out.shape == content.shape and out.dtype == np.uint16
    assert np.array_equal(out[:, :, 3], content[:, :, 3])  # alpha untouched
    assert not np.array_equal(out[:, :, :3], content[:, :, :3])
    assert steps and steps[-1] == 4


def test_previews_keep_within_the_protocols_side_whatever_the_working_size(client):
    """The engine previews at its working size unless told; the server bounds it."""
    previews = []
    job = client.submit(
        rgba(240, 320), [STYLE], preview=0.2, on_preview=lambda image, _: previews.append(image),
        size=320, style_size=64, steps=2,
    )  # fmt: skip
    job.wait(120)
    assert previews and all(p.shape == (PREVIEW_SIDE * 3 // 4, PREVIEW_SIDE, 3) for p in previews)


def test_mask_limits_the_effect_to_the_selection(client):
    content = rgba()
    content[:, :, 3] = 255
    mask = np.zeros((48, 64, 1), np.uint8)
    mask[:, 32:] = 255
    out = client.stylize(content, [STYLE], mask=mask, **TINY)
    assert (out[:, :32, 3] == 0).all() and (out[:, 32:, 3] == 255).all()


def test_mask_on_a_layer_without_alpha_adds_one(client):
    content = np.ascontiguousarray(rgba()[:, :, :3])
    mask = np.zeros((48, 64, 1), np.uint8)
    mask[:, 32:] = 255
    out = client.stylize(content, [STYLE], mask=mask, **TINY)
    assert out.shape == (48, 64, 4)  # RGB -> RGBA: the selection lives in the added alpha
    assert (out[:, :32, 3] == 0).all() and (out[:, 32:, 3] == 255).all()


def test_style_targets_are_cached_across_requests(client):
    client.stylize(rgba(), [STYLE], **TINY)
    before = client.status().style_cache["entries"]
    client.stylize(rgba(seed=2), [STYLE], **TINY)
    assert before >= 1 and client.status().style_cache["entries"] == before


def test_two_concurrent_clients_each_get_their_own_result(server):
    results: dict[int, np.ndarray] = {}

    def work(i: int, shape: tuple[int, int]) -> None:
        with Client(server.endpoint, server.token, timeout=30) as c:
            results[i] = c.stylize(rgba(*shape, seed=i), [STYLE], **TINY)

    threads = [
        threading.Thread(target=work, args=(i, s)) for i, s in enumerate([(40, 70), (56, 50)])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results[0].shape == (40, 70, 4) and results[1].shape == (56, 50, 4)
    assert np.array_equal(results[0][:, :, 3], rgba(40, 70, seed=0)[:, :, 3])
    assert np.array_equal(results[1][:, :, 3], rgba(56, 50, seed=1)[:, :, 3])


def test_cancel_running_and_queued_jobs(client):
    long = {**TINY, "steps": 100000}
    running = client.submit(rgba(), [STYLE], **long)
    queued = client.submit(rgba(seed=1), [STYLE], **long)
    while running.progress is None or running.progress.step < 2:
        running.poll(0.1)
    assert queued.position == 1
    queued.cancel()
    while not queued.poll(0.1):
        pass
    assert queued.cancelled and queued.result is None
    start = time.monotonic()
    running.cancel()
    best = running.wait(timeout=10)
    assert running.cancelled and time.monotonic() - start < 2.0
    assert best.shape == (48, 64, 4)  # the best image so far comes back
    with pytest.raises(ServerError) as err:
        client._request(Cancel("nope"))
    assert err.value.code == "unknown_job"


def _ask(sock: zmq.Socket, frames: list[bytes]) -> dict:
    sock.send_multipart(frames)
    return msgpack.unpackb(sock.recv_multipart()[0])


def _header(server, **fields) -> dict:
    return {"v": VERSION, "id": 7, **fields}


BAD_REQUESTS = {
    "not msgpack": (lambda s: [b"\xc1\xc1garbage"], "bad_message"),
    "header not a map": (lambda s: [msgpack.packb([1, 2, 3])], "bad_message"),
    "bad version": (lambda s: [msgpack.packb(_header(s, v=99, type="ping"))], "bad_version"),
    "unknown type": (lambda s: [msgpack.packb(_header(s, type="explode"))], "unknown_type"),
    "id of wrong type": (lambda s: [msgpack.packb(_header(s, id=[1], type="ping"))], "bad_field"),
    "width is a string": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="echo",
                    image={"width": "64", "height": 1, "channels": 1, "dtype": "uint8", "frame": 1},
                )
            ),
            b"x" * 64,
        ],
        "bad_field",
    ),
    "huge declared size": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="echo",
                    image={
                        "width": 10**6,
                        "height": 10**6,
                        "channels": 4,
                        "dtype": "uint8",
                        "frame": 1,
                    },
                )
            ),
            b"",
        ],
        "too_large",
    ),
    "bytes do not match shape": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="echo",
                    image={"width": 8, "height": 8, "channels": 3, "dtype": "uint16", "frame": 1},
                )
            ),
            b"\0" * 100,
        ],
        "bad_field",
    ),
    "missing frame": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="echo",
                    image={"width": 8, "height": 8, "channels": 3, "dtype": "uint8", "frame": 3},
                )
            )
        ],
        "bad_field",
    ),
    "submit without styles": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="submit",
                    content={"width": 8, "height": 8, "channels": 1, "dtype": "uint8", "frame": 1},
                    styles=[],
                )
            ),
            b"\0" * 64,
        ],
        "bad_field",
    ),
    "unknown control": (
        lambda s: [
            msgpack.packb(
                _header(
                    s,
                    type="submit",
                    content={"width": 8, "height": 8, "channels": 1, "dtype": "uint8", "frame": 1},
                    styles=[{"width": 8, "height": 8, "channels": 1, "dtype": "uint8", "frame": 1}],
                    controls={"rm -rf": 1},
                )
            ),
            b"\0" * 64,
        ],
        "bad_field",
    ),
    "nested too deep": (
        lambda s: [msgpack.packb(_header(s, type="ping", extra=[[[[[[[[[[1]]]]]]]]]]))],
        "bad_message",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_an_error_and_the_server_keeps_serving(server, client, case):
    make, code = BAD_REQUESTS[case]
    sock = raw_socket(server)
    try:
        reply = _ask(sock, make(server))
    finally:
        sock.close()
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["message"]
    assert client.ping().type == "pong"


def test_bad_request_field_is_named(client):
    with pytest.raises(ServerError) as err:
        client.stylize(rgba(), [STYLE], strength=5, **TINY)
    assert err.value.code == "bad_field" and err.value.field == "controls.strength"
    with pytest.raises(ServerError) as err:
        client.stylize(rgba(), [STYLE], style_weights=[1, 2], **TINY)
    assert err.value.field == "style_weights"
    assert client.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)


def test_round_trip_of_16_bit_and_float_layers_is_exact(client):
    for image in (rgba(300, 400, dtype=np.uint16), np.random.rand(50, 60, 1).astype(np.float32)):
        assert np.array_equal(client.echo(image), image)


def test_images_over_a_frame_travel_in_several_both_ways_and_both_clients(server, client):
    """Issue 27, item 1: no frame is over FRAME_BYTES, so larger pixels travel in several."""
    image = np.random.default_rng(3).random((1100, 1000, 4), np.float32)  # 17.6 MB: 2 frames
    assert image.nbytes > FRAME_BYTES
    assert np.array_equal(client.echo(image), image)
    sent = wire.Image(1000, 1100, 4, "float32", image.tobytes())
    with wire.Client(server.endpoint, server.token, timeout=30) as plain:
        assert plain.echo(sent).data == sent.data


def test_client_killed_mid_job_does_not_stop_the_server(server, client):
    script = (
        "import numpy as np, time\n"
        "from stylebridge.server.client import Client\n"
        f"c = Client({server.endpoint!r}, {server.token!r})\n"
        "j = c.submit(np.zeros((64, 64, 3), np.uint8), [np.ones((64, 64, 3), np.uint8)], "
        "size=64, style_size=64, steps=100000)\n"
        "while j.progress is None or j.progress.step < 2: j.poll(0.1)\n"
        "print('running', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    proc.kill()
    proc.wait()
    # the vanished client's job is cancelled at its next progress message: the next job runs
    start = time.monotonic()
    assert client.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)
    assert time.monotonic() - start < 20
    assert client.status().running is None


def test_server_killed_while_client_waits_fails_clearly(tmp_path):
    srv = start_server(tmp_path / "rt")
    try:
        with Client(srv.endpoint, srv.token, timeout=2) as c:
            job = c.submit(rgba(), [STYLE], **{**TINY, "steps": 100000})
            while not job.progress:
                job.poll(0.1)
            os.kill(srv.proc.pid, signal.SIGKILL)
            start = time.monotonic()
            with pytest.raises(ServerUnavailable, match="stopped answering"):
                job.wait(timeout=30)
            assert time.monotonic() - start < 6  # 2 s silence + 2 s for the ping, plus slack
    finally:
        srv.stop()


def test_cli_status_stop_second_serve_and_idle_unload(tmp_path):
    srv = start_server(tmp_path / "rt", "--idle-unload", "1", "--max-queue", "1")
    try:
        with Client(srv.endpoint, srv.token) as c:  # the queue limit cannot be bypassed
            long = {**TINY, "steps": 100000}
            running = c.submit(rgba(), [STYLE], **long)
            while not running.progress:  # running, so out of the queue
                running.poll(0.1)
            queued = c.submit(rgba(), [STYLE], **long)
            refused = c.submit(rgba(), [STYLE], **long)
            while not refused.poll(0.1):
                pass
            assert refused.error is not None and refused.error.code == "queue_full"
            while queued.job_id is None:
                queued.poll(0.1)
            queued.cancel()
            running.cancel()
            running.wait(timeout=30)
        cli = [sys.executable, "-m", "stylebridge.server.cli"]
        again = subprocess.run(
            [*cli, "serve", "--listen", srv.endpoint],
            env=srv.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0 and "already running" in again.stdout
        with Client(srv.endpoint, srv.token) as c:
            deadline = time.monotonic() + 20
            while c.status().model_loaded and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not c.status().model_loaded  # idle: model unloaded
            assert c.stylize(rgba(), [STYLE], **TINY).shape == (48, 64, 4)  # reloads
        status = subprocess.run([*cli, "status"], env=srv.env, capture_output=True, text=True)
        assert status.returncode == 0 and srv.endpoint in status.stdout
        stop = subprocess.run([*cli, "stop"], env=srv.env, capture_output=True, text=True)
        assert stop.returncode == 0
        assert srv.proc.wait(30) == 0
        assert not (srv.runtime / "server.json").exists()
    finally:
        srv.stop()


def test_sigterm_removes_the_discovery_file(tmp_path):
    srv = start_server(tmp_path / "rt")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    assert not (srv.runtime / "server.json").exists()


def test_cli_stylize_spawns_a_server_and_ctrl_c_cancels_on_it(tmp_path):
    from PIL import Image

    from stylebridge.core import assets

    runtime = tmp_path / "rt"
    env = {**os.environ, "STYLEBRIDGE_RUNTIME_DIR": str(runtime)}
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cli = [sys.executable, "-m", "stylebridge.server.cli"]
    photo = tmp_path / "photo.png"
    Image.fromarray(rgba(60, 80)).save(photo)
    out = tmp_path / "out.png"
    common = [str(photo), str(assets.DEFAULT_STYLE), "-o", str(out), "--endpoint", endpoint]
    weights = cache_dir() / "vgg16-features.safetensors"  # the converted weights, as a file
    engine = ["--device", "cpu", *(["--weights", str(weights)] if weights.is_file() else [])]
    try:
        proc = subprocess.run(
            [*cli, "stylize", *common, "--size", "64", "--steps", "3", "-q", *engine],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        assert "starting a background server" in proc.stderr and endpoint in proc.stdout
        # the engine's flags reached the server the command started
        pid = json.loads((runtime / "server.json").read_text())["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert all(arg in cmdline for arg in engine), cmdline
        with Image.open(out) as img:
            assert img.size == (80, 60) and img.mode == "RGBA"
        out.unlink()
        # Ctrl-C: the job is cancelled on the server and the best image so far is saved
        run = subprocess.Popen(
            [*cli, "stylize", *common, "--size", "96", "--steps", "100000", "--no-spawn"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = ""
        deadline = time.monotonic() + 60
        while "stage" not in seen and time.monotonic() < deadline:
            seen += os.read(run.stderr.fileno(), 4096).decode(errors="replace")
        run.send_signal(signal.SIGINT)
        stdout, _ = run.communicate(timeout=30)
        assert run.returncode == 130 and "cancelled: saved the best image so far" in stdout
        assert out.is_file()
    finally:
        subprocess.run([*cli, "stop", "--endpoint", endpoint], env=env, timeout=30)
    deadline = time.monotonic() + 20
    while (runtime / "server.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (runtime / "server.json").exists()


def test_no_spawn_without_a_server_is_a_clear_error(tmp_path):
    from stylebridge.core import assets

    env = {**os.environ, "STYLEBRIDGE_RUNTIME_DIR": str(tmp_path / "none")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stylebridge.server.cli",
            "stylize",
            str(assets.DEFAULT_CONTENT),
            str(assets.DEFAULT_STYLE),
            "-o",
            str(tmp_path / "o.png"),
            "--no-spawn",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no stylebridge server found" in proc.stderr


def test_a_style_shown_far_larger_than_its_pixels_gets_a_note_and_still_works(client):
    # issue 25: a 200 px style on a 5000 px layer works, with one line saying so; here a 16 px
    # style seen at 64 px on a layer 8x the working size: 32x its own pixels
    style = STYLE[::4, ::4][:16, :16]
    job = client.submit(rgba(360, 512), [style], size=64, style_size=64, steps=2, refine_steps=0)
    out = job.wait(120)
    assert out.shape == (360, 512, 4)
    (note,) = job.info.notes
    assert note.startswith("styles.0: the 16x16 px style is shown at 32x its own pixels")
    # a style of the working size's own scale gets none
    job = client.submit(rgba(48, 64), [STYLE], **TINY)
    job.wait(120)
    assert job.info.notes is None
