"""The time estimate against the time a job takes (issue 28): a server with a cache of its own
(so it knows no rate yet), its probe's first guess, then one job per layer size; before each
job the estimate the dialogs would show is asked, and compared with the job's wall time
(submit to result, what a painter waits).

    python -m benchmarks.estimate [--preset fast] [--sizes 640x480,1600x1200,4000x3000]
                                  [--pairs all | NAME,...]

The target (issue 28): within ±30 % on every size, and on the quality sheets' pairs (their
content at the sheets' 384 px and their own style), run after the sizes. The first job is
judged on the probe's guess; the later ones on the rate the earlier jobs taught.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.pairs import PAIRS, load_content, load_style
from benchmarks.quality import Plan
from stylebridge.core import assets
from stylebridge.core.images import layer_to_array, load_image
from stylebridge.server.client import Client
from testing.servers import own_cache, start_server

TARGET = 0.30  # the estimate within ±30 % of the time taken


def sized(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(picture).resize((width, height), Image.LANCZOS))


def ask(client: Client, width: int, height: int, preset: str, timeout: float = 300) -> tuple:
    """The estimate once the server has one (the first question starts its probe)."""
    deadline = time.monotonic() + timeout
    while (answer := client.estimate(width, height, preset=preset)).seconds is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the server never measured this machine")
        time.sleep(0.5)
    return answer.seconds, answer.basis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--sizes", default="640x480,1600x1200")
    parser.add_argument("--pairs", default="", help="'all' or comma-separated sheet pairs")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    content = layer_to_array(load_image(assets.DEFAULT_CONTENT), np.uint8)
    style = layer_to_array(load_image(assets.DEFAULT_STYLE), np.uint8)
    jobs = [(f"{w}x{h}", sized(content, w, h), style) for w, h in sizes]
    names = {p.name for p in PAIRS}
    wanted = names if args.pairs == "all" else set(filter(None, args.pairs.split(",")))
    if unknown := wanted - names:
        parser.error(f"unknown pairs: {', '.join(sorted(unknown))}")
    for pair in (p for p in PAIRS if p.name in wanted):
        pair_content = layer_to_array(load_content(pair.content, Plan.side)[0], np.uint8)
        jobs.append((pair.name, pair_content, layer_to_array(load_style(pair)[0], np.uint8)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        server = start_server(Path(tmp) / "rt", env=own_cache(cache))
        try:
            with Client(server.endpoint, server.token, timeout=600) as client:
                device = client.status().device
                for label, layer, style_layer in jobs:
                    height, width = layer.shape[:2]
                    estimate, basis = ask(client, width, height, args.preset)
                    start = time.perf_counter()
                    job = client.submit(layer, [style_layer], preset=args.preset)
                    job.wait()
                    took = time.perf_counter() - start
                    rows.append((width, height, basis, estimate, took))
                    print(
                        f"{label}: {width}x{height} ({width * height / 1e6:.1f} MP) "
                        f"{args.preset} on "
                        f"{device}: estimate {estimate:.1f} s ({basis}), took {took:.1f} s "
                        f"(the engine {job.info.elapsed:.1f} s), "
                        f"{estimate / took - 1:+.0%}",
                        flush=True,
                    )
        finally:
            server.stop()
    worst = max(abs(e / t - 1) for *_, e, t in rows)
    verdict = "within" if worst <= TARGET else "OUTSIDE"
    print(f"worst {worst:.0%}: {verdict} the ±{TARGET:.0%} target")


if __name__ == "__main__":
    main()
