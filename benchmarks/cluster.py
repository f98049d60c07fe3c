"""Cluster benchmark (`make bench-cluster`): the same small jobs through a real front server, on
the plain local worker and on a local Ray cluster with 1 and 2 actors, all in this one run.

Throughput: JOBS equal jobs from CLIENTS clients at once (jobs/minute, wall clock from the first
submit to the last result). Overhead: one job at a time, the time from submit to result minus
the engine's own time for the job (its ``elapsed``), median of SINGLE runs; the same for the
first progress message (dispatch latency as a client sees it).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stylebridge.core import assets
from stylebridge.core.images import layer_to_array, load_image
from stylebridge.server.client import Client
from testing.servers import start_server

JOB = {"size": 128, "style_size": 128, "steps": 30}
JOBS, CLIENTS, SINGLE = 12, 4, 5
CONFIGS = (  # name, serve arguments
    ("local worker (no --cluster)", ()),
    ("--cluster local --actors 1", ("--cluster", "local", "--actors", "1")),
    ("--cluster local --actors 2", ("--cluster", "local", "--actors", "2")),
)


def images() -> tuple[np.ndarray, np.ndarray]:
    """The demo photo at 128 px (the working size: no full-resolution refinement) and style."""
    photo = layer_to_array(load_image(assets.DEFAULT_CONTENT), np.uint8)
    h, w = photo.shape[:2]
    size = (JOB["size"], round(JOB["size"] * h / w))
    content = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    return content, layer_to_array(load_image(assets.DEFAULT_STYLE), np.uint8)


def throughput(server, content: np.ndarray, style: np.ndarray) -> tuple[float, float]:
    """Wall seconds for JOBS jobs from CLIENTS clients, and their mean submit-to-result time."""
    latencies: list[float] = []

    def client_work() -> None:
        with Client(server.endpoint, server.token, timeout=300) as c:
            starts = {}
            jobs = []
            for _ in range(JOBS // CLIENTS):
                job = c.submit(content, [style], **JOB)
                starts[id(job)] = time.perf_counter()
                jobs.append(job)
            pending = list(jobs)
            while pending:
                for job in list(pending):
                    if job.poll(0.02):
                        job.wait()
                        latencies.append(time.perf_counter() - starts[id(job)])
                        pending.remove(job)

    threads = [threading.Thread(target=client_work) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(latencies) == JOBS
    return time.perf_counter() - start, statistics.mean(latencies)


def single(client: Client, content: np.ndarray, style: np.ndarray) -> tuple[float, float, float]:
    """Median submit->first progress, submit->result, and the engine's own seconds per job."""
    first, total, engine = [], [], []
    for _ in range(SINGLE):
        marks: list[float] = []
        start = time.perf_counter()
        job = client.submit(
            content, [style], on_progress=lambda p, m=marks: m.append(time.perf_counter()), **JOB
        )
        job.wait()
        total.append(time.perf_counter() - start)
        first.append(marks[0] - start)
        engine.append(job.info.elapsed)
    return statistics.median(first), statistics.median(total), statistics.median(engine)


def run_config(args: tuple[str, ...], tmp: Path, content, style) -> dict:
    t0 = time.perf_counter()
    server = start_server(tmp, *args, "--drain", "5", timeout=300)
    startup = time.perf_counter() - t0
    try:
        with Client(server.endpoint, server.token, timeout=300) as client:
            status = client.status()
            actors = status.get("actors")
            threads = (
                [a["threads"] for a in actors] if actors else [os.cpu_count() or 1]
            )  # the local worker: torch's default, one thread per core
            for _ in range(len(actors or [None])):  # warm each actor's style cache
                client.stylize(content, [style], **JOB)
            first, total, engine = single(client, content, style)
        wall, latency = throughput(server, content, style)
    finally:
        server.stop()
    return {
        "startup": startup,
        "threads": threads,
        "wall": wall,
        "latency": latency,
        "first": first,
        "total": total,
        "engine": engine,
    }


def main() -> None:
    content, style = images()
    print(
        f"# stylebridge cluster benchmark: {os.cpu_count()} CPU cores, no GPU; job: "
        f"{content.shape[1]}x{content.shape[0]} RGB at {JOB['size']} px, {JOB['steps']} steps; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, args) in enumerate(CONFIGS):
            results[name] = run_config(args, Path(tmp) / f"rt{i}", content, style)
            print(f"  done: {name} (load average {os.getloadavg()[0]:.1f})", flush=True)

    print(f"\n## throughput: {JOBS} jobs from {CLIENTS} clients at once")
    print("| server | torch threads per engine | start to ready | wall | jobs/min | mean latency |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {'+'.join(map(str, r['threads']))} | {r['startup']:.1f} s | "
            f"{r['wall']:.1f} s | {JOBS / r['wall'] * 60:.1f} | {r['latency']:.2f} s |"
        )
    print(f"\n## one job at a time (median of {SINGLE})")
    print("| server | submit -> first progress | submit -> result | engine time | overhead |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['first'] * 1000:.0f} ms | {r['total']:.3f} s | {r['engine']:.3f} s | "
            f"{(r['total'] - r['engine']) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
