"""Bridge benchmark (`make bench`): warm server vs fresh --local, big-layer round trips, previews.

All figures come from this one run, each against its own baseline.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from stylebridge.core import assets
from stylebridge.core.images import layer_to_array, load_image
from stylebridge.server.client import Client
from testing.servers import clean_env, start_server

SMALL_JOBS = ({"size": 256, "steps": 50}, {"size": 128, "steps": 20})
# what a script sends when the process start is most of it: 5 steps at 128 px, no full-size
# refinement (with it, the 451x300 content would be refined in tiles: seconds of work)
CLI_JOB = {"size": 128, "steps": 5, "refine_steps": 0}


def fresh_cli_seconds(
    content: Path, style: Path, out: Path, job: dict, *, runtime: Path | None = None
) -> float:
    """Wall time of one `stylebridge stylize` process: with ``runtime``, a client of the warm
    server found through that folder's discovery file; without, ``--local``."""
    cmd = [
        sys.executable,
        "-m",
        "stylebridge.server.cli",
        "stylize",
        str(content),
        str(style),
        "-o",
        str(out),
        *(() if runtime else ("--local",)),
        "-q",
        *(a for k, v in job.items() for a in (f"--{k.replace('_', '-')}", str(v))),
    ]
    env = clean_env(**({"STYLEBRIDGE_RUNTIME_DIR": str(runtime)} if runtime else {}))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        server = start_server(tmp_path / "rt")
        try:
            run(server, tmp_path)
        finally:
            server.stop()


def run(server, tmp_path: Path) -> None:
    content = layer_to_array(load_image(assets.DEFAULT_CONTENT), np.uint8)
    style = layer_to_array(load_image(assets.DEFAULT_STYLE), np.uint8)
    print("# stylebridge bridge benchmark (CPU, loopback)")
    with Client(server.endpoint, server.token, timeout=120) as client:
        for i, job in enumerate(SMALL_JOBS):
            start = time.perf_counter()  # the first of these is the server's first job ever
            client.stylize(content, [style], **job)
            warm = time.perf_counter() - start
            local = fresh_cli_seconds(
                assets.DEFAULT_CONTENT, assets.DEFAULT_STYLE, tmp_path / "local.png", job
            )
            print(
                f"\n## small job ({job['size']} px, {job['steps']} steps): "
                f"{'first job of a' if i == 0 else ''} warm server {warm:.2f} s, fresh --local "
                f"process {local:.2f} s (import + model load + job) -> {local / warm:.1f}x "
                f"(target >= 5x)"
            )

        # the same small job from a fresh CLI process each time: remote (no torch imported) vs
        # --local (import torch, load the model, run); best of 3 each
        files = (assets.DEFAULT_CONTENT, assets.DEFAULT_STYLE, tmp_path / "cli.png", CLI_JOB)
        remote = min(fresh_cli_seconds(*files, runtime=server.runtime) for _ in range(3))
        local = min(fresh_cli_seconds(*files) for _ in range(3))
        print(
            f"\n## `stylebridge stylize` ({CLI_JOB['size']} px, {CLI_JOB['steps']} steps), a fresh "
            f"process each: to the warm server {remote:.2f} s, --local {local:.2f} s -> "
            f"{local / remote:.1f}x (target >= 5x)"
        )

        big = np.random.default_rng(0).integers(0, 65535, (3000, 4000, 4), dtype=np.uint16)
        client.echo(big[:8, :8])
        times = []
        for _ in range(3):
            start = time.perf_counter()
            back = client.echo(big)
            times.append(time.perf_counter() - start)
        assert np.array_equal(back, big)
        print(
            f"\n## 4000x3000 16-bit RGBA ({big.nbytes / 2**20:.0f} MiB) echo round trip: pyzmq "
            f"client {min(times):.3f} s (best of 3; target < 1 s)"
        )
        stdlib_echo(server, big)

        base = step_rate(client, content, style, preview=None)
        with_preview = step_rate(client, content, style, preview=0.2)
        print(
            f"\n## previews: {base:.2f} steps/s without, {with_preview:.2f} steps/s with a frame "
            f"every 0.2 s -> cost {100 * (1 - with_preview / base):.1f}% (target < 5%)"
        )


def stdlib_echo(server, big: np.ndarray) -> None:
    from stylebridge.wire import Client as StdlibClient
    from stylebridge.wire import Image

    image = Image(big.shape[1], big.shape[0], big.shape[2], "uint16", big.tobytes())
    client = StdlibClient(server.endpoint, server.token, timeout=60)  # the plug-ins' client
    try:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            back = client.echo(image)
            times.append(time.perf_counter() - start)
        assert back.data == image.data
    finally:
        client.close()
    print(f"   stdlib bridge (ZMTP + msgpack subset, no pyzmq) {min(times):.3f} s (target < 1 s)")


def step_rate(client: Client, content, style, preview: float | None) -> float:
    """Steps per second of a 384 px job measured over its last 20 steps."""
    marks: list[tuple[float, int]] = []
    frames: list[int] = []
    client.stylize(
        content,
        [style],
        size=384,
        steps=30,
        preview=preview,
        on_progress=lambda p: marks.append((p.elapsed, p.step)),
        on_preview=lambda img, preview: frames.append(preview.step),
    )
    (t0, s0), (t1, s1) = marks[len(marks) // 3], marks[-1]
    if preview is not None:
        print(f"   ({len(frames)} preview frames received)")
    return (s1 - s0) / (t1 - t0)


if __name__ == "__main__":
    main()
