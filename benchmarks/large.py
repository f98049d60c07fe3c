"""Large-canvas benchmark (`make bench-large`): a 4000x3000 RGBA layer end to end through a real
server, tiled refinement against the same time spent without tiling.

Prints wall time and the server's peak RSS (VmHWM) for each run, the seam score (gradient energy
across tile borders over the image's average; 1.0 = no seam) and the full-image paper objective
of both results: content at the full 4000x3000, style Grams of the whole style image at its own
resolution, fp32 (the same scoring for both, so the comparison is fair).

    python -m benchmarks.large [--preset quality] [--no-baseline]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylebridge.core import assets
from stylebridge.core.engine import Engine
from stylebridge.core.images import layer_from_array, layer_to_array, load_image
from stylebridge.core.losses import Targets, content_target, objective, style_grams
from stylebridge.core.plan import refinement_tiles
from stylebridge.core.settings import make_settings
from stylebridge.core.tiles import seam_score
from stylebridge.core.vgg import normalize
from stylebridge.server.client import Client
from tests.support.servers import start_server

WIDTH, HEIGHT = 4000, 3000
BASELINE_SIZE = 1536  # largest working size run untiled in bounded memory on this machine


def make_content() -> np.ndarray:
    """A 4000x3000 RGBA photo: the embedded astronaut, resized, with an alpha gradient."""
    photo = torch.from_numpy(load_image(assets.HERE / "astronaut.jpg").rgb)[None]
    rgb = F.interpolate(photo, size=(HEIGHT, WIDTH), mode="bicubic").clamp(0, 1)[0]
    alpha = torch.linspace(1.0, 0.6, WIDTH).expand(1, HEIGHT, WIDTH)
    rgba = torch.cat([rgb, alpha]).permute(1, 2, 0).numpy()
    return (rgba * 255 + 0.5).astype(np.uint8)


def peak_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # GiB
    return float("nan")


def through_server(content: np.ndarray, style: np.ndarray, tmp: Path, **controls) -> dict:
    server = start_server(tmp / f"rt-{len(list(tmp.iterdir()))}")
    try:
        with Client(server.endpoint, server.token, timeout=60) as client:
            client.ping()
            base = peak_rss(server.proc.pid)
            start = time.perf_counter()
            events: list[dict] = []
            job = client.submit(content, [style], on_progress=events.append, **controls)
            result = job.wait()
            wall = time.perf_counter() - start
            # predicted end (elapsed + eta) over the real one, at a few points of the job
            timed = [e for e in events if e.get("eta") is not None]
            at = {f"{q:.0%}": timed[int(q * (len(timed) - 1))] for q in (0, 0.1, 0.25, 0.5, 0.75)}
            return {
                "eta_ratio": {k: (e["elapsed"] + e["eta"]) / wall for k, e in at.items()},
                "result": result,
                "wall": wall,
                "rss": peak_rss(server.proc.pid),
                "rss_idle": base,
                "steps": events[-1]["step"] if events else 0,
                "eta_first": timed[0]["eta"],
                "elapsed_first": timed[0]["elapsed"],
            }
    finally:
        server.stop()


@torch.no_grad()
def full_image_loss(engine: Engine, content: np.ndarray, style, result: np.ndarray) -> float:
    model = engine.model
    c = torch.from_numpy(layer_from_array(content).rgb)[None]
    r = torch.from_numpy(layer_from_array(result).rgb)[None]
    targets = Targets(
        content_target(model, normalize(c)),
        style_grams(model, normalize(engine.pixels(style))),
    )
    del c
    total, _ = objective(model, normalize(r), targets, 1.0, 1e6)
    return total.item()


def rgb(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="fast", choices=("fast", "quality"))
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the untiled run at the same time"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    content = make_content()
    style_layer = load_image(assets.DEFAULT_STYLE)
    style = layer_to_array(style_layer, np.uint8)
    settings = make_settings(args.preset)
    boxes = refinement_tiles(settings, HEIGHT, WIDTH, settings.size)
    print(
        f"4000x3000 RGBA through the server, {args.preset} preset: {len(boxes)} tiles of "
        f"{settings.tile_size} px, overlap {settings.tile_overlap}, "
        f"{settings.refine_steps} steps each"
    )
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs["tiled"] = tiled = through_server(content, style, Path(tmp), preset=args.preset)
        print(
            f"  tiled:    {tiled['wall']:.0f} s wall, server peak RSS {tiled['rss']:.2f} GiB "
            f"(idle {tiled['rss_idle']:.2f}), {tiled['steps']} steps; first ETA "
            f"{tiled['eta_first']:.0f} s at {tiled['elapsed_first']:.0f} s"
        )
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in tiled["eta_ratio"].items())
        print(f"  predicted end / real end, at that share of the progress reports: {ratios}")
        if not args.no_baseline:
            runs["untiled"] = untiled = through_server(
                content, style, Path(tmp), preset=args.preset, refine_steps=0,
                size=BASELINE_SIZE, steps=100_000, time_budget=max(1.0, tiled["wall"] - 10),
            )  # fmt: skip
            print(
                f"  untiled at {BASELINE_SIZE} px, same time: {untiled['wall']:.0f} s wall, "
                f"peak RSS {untiled['rss']:.2f} GiB, {untiled['steps']} steps"
            )
    seams = ", ".join(f"{k} {seam_score(rgb(r['result']), boxes):.3f}" for k, r in runs.items())
    print(f"  seam score at the tile borders (target <= 1.1): {seams}")
    engine = Engine("cpu")
    for name, run in runs.items():
        loss = full_image_loss(engine, content, style_layer, run["result"])
        print(f"  full-image paper loss, {name}: {loss:.1f}")


if __name__ == "__main__":
    main()
