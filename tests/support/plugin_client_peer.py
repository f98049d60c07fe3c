"""Client scenarios (the stdlib ``stylebridge_wire.Client``), run by
tests/wire/test_plugin_client.py in a subprocess.

As in Krita's and GIMP's Pythons, zmq and msgpack cannot be imported here: a meta path finder
refuses them before the wire package is imported, so the stdlib client proves it needs
neither. Usage::

    python plugin_client_peer.py SCENARIO JSON_OPTIONS

Options: "endpoint", "token" (absent: the client finds the server itself), "timeout".
Results go to stdout as one JSON object per line; the last one has "done": true. Any
unexpected exception ends the process with a traceback on stderr and a non-zero status.
Kept runnable on Python 3.8, like the package itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import json
import random
import struct
import sys
import time
from typing import Any

from wire_blocker import load_wire

TINY = {"size": 64, "style_size": 64, "steps": 4}


wire: Any = None


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def make_client(opts: dict[str, Any], **overrides: Any) -> Any:
    args = {**opts, **overrides}
    return wire.Client(args.get("endpoint"), args.get("token"), timeout=args["timeout"])


def noise(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n))


def rgba8(width: int, height: int, seed: int) -> Any:
    """A smooth picture (gradients and a disc) with an uneven alpha: something to stylise."""
    rng = random.Random(seed)
    cx, cy, r = width * rng.random(), height * rng.random(), min(width, height) / 3
    data = bytearray()
    for y in range(height):
        for x in range(width):
            inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
            data += bytes(
                (
                    255 * x // width,
                    255 * y // height,
                    220 if inside else 40,
                    (x * 7 + y * 3 + seed) % 256,
                )
            )
    return wire.Image(width, height, 4, "uint8", bytes(data))


def rgb8(width: int, height: int, seed: int) -> Any:
    """Bold diagonal stripes with a little noise: a style with obvious texture."""
    rng = random.Random(seed)
    data = bytearray()
    for y in range(height):
        for x in range(width):
            on = ((x + y) // 6) % 2
            jitter = rng.getrandbits(5)
            data += bytes((200 * on + jitter, 30 + jitter, 200 * (1 - on) + jitter))
    return wire.Image(width, height, 3, "uint8", bytes(data))


def alpha_of(image: Any) -> bytes:
    return image.data[image.channels - 1 :: image.channels]


def rgb_of(image: Any) -> bytes:
    data = image.data
    return b"".join(data[i : i + 3] for i in range(0, len(data), 4))


def describe(image: Any) -> dict[str, Any]:
    return {
        "width": image.width,
        "height": image.height,
        "channels": image.channels,
        "dtype": image.dtype,
        "sha": hashlib.sha256(image.data).hexdigest(),
    }


# ============================================================================== scenarios


def basics(opts: dict[str, Any]) -> None:
    zmq_blocked = False
    try:
        importlib.import_module("zmq")
    except ImportError:
        zmq_blocked = True
    # no endpoint or token: found through STYLEBRIDGE_RUNTIME_DIR's discovery file
    found = list(wire.find_server())
    with make_client(opts, endpoint=None, token=None) as client:
        pong = client.ping()
        status = client.status()
        endpoint = client.endpoint
    emit(
        zmq_blocked=zmq_blocked,
        found=found,
        endpoint=endpoint,
        pong={"type": pong.type, "protocol": pong.protocol},
        status={
            "type": status.type,
            **{k: getattr(status, k) for k in ("protocol", "model_loaded", "queue", "pid")},
        },
        done=True,
    )


def echo(opts: dict[str, Any]) -> None:
    rng = random.Random(5)
    deep = wire.Image(37, 23, 4, "uint16", noise(37 * 23 * 4 * 2, 3))
    floats = [rng.random() for _ in range(44 * 27 - 3)] + [0.0, 1.0, 1e-30]
    gray = wire.Image(44, 27, 1, "float32", struct.pack(f"<{len(floats)}f", *floats))
    results = []
    with make_client(opts) as client:
        for image in (deep, gray):
            back = client.echo(image)
            results.append(
                {"sent": describe(image), "back": describe(back), "equal": back == image}
            )
    emit(results=results, done=True)


def stylize(opts: dict[str, Any]) -> None:
    content = rgba8(64, 48, 1)
    style = rgb8(64, 64, 2)
    events: list[Any] = []
    with make_client(opts) as client:
        out = client.stylize(content, [style], on_progress=events.append, **TINY)
    emit(
        out=describe(out),
        alpha_same=alpha_of(out) == alpha_of(content),
        rgb_changed=rgb_of(out) != rgb_of(content),
        steps=[e.step for e in events],
        total_steps=[e.total_steps for e in events],
        done=True,
    )


def preview(opts: dict[str, Any]) -> None:
    content = rgba8(96, 72, 4)
    style = rgb8(64, 64, 5)
    previews: list[dict[str, Any]] = []
    slowest = 0.0
    polls = 0
    running_polls = 0
    with make_client(opts) as client:
        job = client.submit(
            content,
            [style],
            preview=0.2,
            on_preview=lambda image, event: previews.append(
                {**describe(image), "step": event.step}
            ),
            size=96,
            style_size=64,
            steps=40,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            before = time.monotonic()
            finished = job.poll(0)
            spent = time.monotonic() - before
            polls += 1
            if job.progress and not finished:
                running_polls += 1
                slowest = max(slowest, spent)
            if finished:
                break
            time.sleep(0.01)  # a host's UI timer
        emit(
            done_=job.done,
            error=None if job.error is None else str(job.error),
            result=None if job.result is None else describe(job.result),
            latest_preview=None if job.latest_preview is None else describe(job.latest_preview),
            previews=previews,
            polls=polls,
            running_polls=running_polls,
            slowest_poll=slowest,
            last_progress={k: getattr(job.progress, k) for k in ("step", "total_steps", "eta")},
            done=True,
        )


def cancel(opts: dict[str, Any]) -> None:
    content = rgba8(128, 96, 6)
    style = rgb8(64, 64, 7)
    long_job = {"size": 128, "style_size": 64, "steps": 2000}
    with make_client(opts) as client:
        running = client.submit(content, [style], **long_job)
        deadline = time.monotonic() + 60
        while not running.progress and not running.done and time.monotonic() < deadline:
            running.poll(0.05)
        was_running = bool(running.progress) and not running.done

        # queued behind it, and cancelled before its `accepted` has even arrived
        queued = client.submit(content, [style], **long_job)
        start = time.monotonic()
        queued.cancel()
        while not queued.done and time.monotonic() - start < 10:
            queued.poll(0.05)
        emit(
            position=queued.position,
            cancelled=queued.cancelled,
            error=None if queued.error is None else str(queued.error),
            result=None if queued.result is None else describe(queued.result),
            seconds=time.monotonic() - start,
        )

        start = time.monotonic()
        running.cancel()
        running.cancel()  # twice is harmless
        while not running.done and time.monotonic() - start < 10:
            running.poll(0.05)
        emit(
            was_running=was_running,
            cancelled=running.cancelled,
            cancelling=running.cancelling,
            error=None if running.error is None else str(running.error),
            seconds=time.monotonic() - start,
            result=None if running.result is None else describe(running.result),
            steps=running.info.steps if running.info else None,
        )
        # the client stays usable after the cancels
        emit(pong=client.ping().type, done=True)


def errors(opts: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    with make_client(opts, token="not-the-token") as client:  # refused in the handshake
        try:
            client.ping()
            out["bad_token_ping"] = None
        except wire.ServerUnavailable as exc:
            out["bad_token_ping"] = str(exc)
        job = client.submit(rgba8(8, 8, 1), [rgb8(8, 8, 2)], **TINY)
        try:
            job.poll(10)
            out["bad_token_submit"] = None
        except wire.ServerUnavailable as exc:
            out["bad_token_submit"] = [str(exc), job.job_id]
    with make_client(opts) as client:
        job = client.submit(rgba8(16, 16, 1), [rgb8(16, 16, 2)], strength=5, **TINY)
        job.poll(20)
        out["bad_control"] = [job.done, job.error and job.error.code, job.error and job.error.field]
        try:
            client.stylize(rgba8(16, 16, 1), [rgb8(16, 16, 2)], strength=5, **TINY)
            out["stylize_raises"] = None
        except wire.ServerError as exc:
            out["stylize_raises"] = [exc.code, exc.field]
        job = client.submit(rgba8(16, 16, 1), [rgb8(16, 16, 2)], brushiness=1)
        job.poll(10)
        out["unknown_control"] = [job.error and job.error.code, job.error and job.error.field]
        out["pong_after_errors"] = client.ping().type
    try:
        wire.Image(2, 2, 4, "uint8", b"\x00" * 15)
        out["short_data"] = None
    except ValueError as exc:
        out["short_data"] = str(exc)
    emit(**out, done=True)


def wait_for_death(opts: dict[str, Any]) -> None:
    """Block in stylize; the test stops or kills the server once progress shows."""
    content = rgba8(128, 96, 8)
    style = rgb8(64, 64, 9)
    announced = []

    def on_progress(event: Any) -> None:
        if not announced:
            announced.append(True)
            emit(event="running", step=event.step)

    with make_client(opts) as client:
        start = time.monotonic()
        try:
            client.stylize(
                content, [style], on_progress=on_progress, size=128, style_size=64, steps=5000
            )
            emit(outcome="finished", seconds=time.monotonic() - start, done=True)
            return
        except wire.ServerUnavailable as exc:
            emit(outcome="unavailable", message=str(exc), done=not opts.get("retry"))
        if opts.get("retry"):
            # Lazy Pirate: the next request connects a new socket (and is refused now)
            start = time.monotonic()
            try:
                client.ping()
                emit(retry="pong", done=True)
            except wire.ServerUnavailable as exc:
                emit(
                    retry="unavailable",
                    message=str(exc),
                    seconds=time.monotonic() - start,
                    done=True,
                )


SCENARIOS = {
    f.__name__: f for f in (basics, echo, stylize, preview, cancel, errors, wait_for_death)
}


def main() -> None:
    global wire
    wire = load_wire()
    scenario, options = sys.argv[1], json.loads(sys.argv[2])
    SCENARIOS[scenario](options)


if __name__ == "__main__":
    main()
