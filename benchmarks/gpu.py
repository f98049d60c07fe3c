"""The engine on a GPU (`make bench-gpu`, issue 25): each preset at 512 px, then a 4000x3000
canvas through the large path, in this one process on one device; wall time (the device
synchronised), the device's peak memory, and the 512 px results scored on the three axes by the
CPU judge (benchmarks/measures.py). Ratios are against the paper recipe at 512 px measured in the
same run. Meant to take under 5 minutes of device time.

    python -m benchmarks.gpu [--device cuda] [--write docs/benchmarks.md]
    python -m benchmarks.gpu --device cpu --smoke      # checks this script: tiny sizes and steps

The suite never needs a GPU: tests run the smoke on the CPU.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.large import astronaut_4000, style_image
from benchmarks.lpips import LPIPS
from benchmarks.measures import Judge
from benchmarks.pairs import load_content
from stylebridge.core.engine import Engine
from stylebridge.core.images import Layer, layer_from_array
from stylebridge.core.settings import PRESETS, make_settings

PAIR = ("astronaut", "the_scream")  # the sheets' portrait pair: faces are where painters look


@dataclass(frozen=True)
class Sizes:
    side: int = 512  # the presets' content size
    canvas: tuple[int, int] = (4000, 3000)  # width, height of the large job
    canvas_side: int | None = None  # the large job's working size (None: the preset's)
    steps: dict | None = None  # per-preset step overrides (the smoke's)


# the canvas 5x its working size, so the smoke takes the large path too
SMOKE = Sizes(
    side=64, canvas=(320, 240), canvas_side=64, steps={"paper": 4, "fast": 3, "quality": 3}
)
# docs/benchmarks.md's line under which `--write` puts each run, the newest first
MARKER = "<!-- bench-gpu: each run goes below this line, the newest first -->"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float | None:
    """The device's peak allocated memory since the last reset; None off CUDA."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def timed(engine: Engine, content: Layer, style: Layer, preset: str, **overrides) -> dict:
    device = engine.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    result = engine.stylize(content, [style], make_settings(preset, **overrides))
    synchronize(device)
    return {
        "wall": time.perf_counter() - start,
        "peak": peak_gib(device),
        "steps": result.steps,
        "layer": result.layer,
    }


def canvas_content(width: int, height: int) -> Layer:
    """The large path's test layer: bench-large's 4000x3000 astronaut, at ``width`` x ``height``."""
    pixels = astronaut_4000()
    if pixels.shape[:2] != (height, width):
        planes = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
        planes = F.interpolate(planes, size=(height, width), mode="area")[0]
        pixels = planes.permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)
    return layer_from_array(pixels)


def fmt_gib(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} GiB"


def measure(device: str, sizes: Sizes) -> list[str]:
    """Runs everything; returns the markdown section with the figures."""
    engine = Engine(device=device)
    judge_engine = engine if engine.device.type == "cpu" else Engine(device="cpu")
    content = load_content(PAIR[0], sizes.side)[0]
    style = style_image(PAIR[1])[0]
    judge = Judge(judge_engine.model, LPIPS(), content, style)
    steps = sizes.steps or {}
    # untimed warm-up: the first convolutions at a shape choose their kernels
    timed(engine, content, style, "fast", steps=2)
    rows = {}
    for preset in sorted(PRESETS, key=lambda name: name != "paper"):  # the recipe first
        extra = {"steps": steps[preset]} if preset in steps else {}
        run = timed(engine, content, style, preset, size=sizes.side, **extra)
        run["scores"] = judge(run["layer"].rgb)
        rows[preset] = run
        print(f"  {preset}: {run['wall']:.1f} s, {run['steps']} steps", flush=True)
    width, height = sizes.canvas
    extra = {"steps": steps["fast"]} if "fast" in steps else {}
    if sizes.canvas_side:
        extra["size"] = sizes.canvas_side
    big = timed(engine, canvas_content(width, height), style, "fast", **extra)
    print(f"  {width}x{height} fast: {big['wall']:.1f} s", flush=True)
    name = torch.cuda.get_device_name(engine.device) if engine.device.type == "cuda" else device
    paper = rows["paper"]["wall"]
    lines = [
        f"### {datetime.date.today()}: {name}, torch {torch.__version__}"
        f"{' (smoke: tiny sizes and steps, not figures)' if sizes.steps else ''}",
        "",
        f"`python -m benchmarks.gpu`: astronaut × The Scream at {sizes.side} px, then the "
        f"{width}×{height} astronaut (`fast`, the large path), in one process on `{device}`.",
        "",
        "| job | steps | wall | vs the recipe's wall | device peak | style / SSIM ¼ / SSIM full "
        "/ LPIPS |",
        "|---|---|---|---|---|---|",
    ]
    for preset, run in rows.items():
        s = run["scores"]
        lines.append(
            f"| {preset} at {sizes.side} px | {run['steps']} | {run['wall']:.1f} s | "
            f"{paper / run['wall']:.1f}× sooner | {fmt_gib(run['peak'])} | "
            f"{s.style:,.0f} / {s.ssim_quarter:.3f} / {s.ssim_full:.3f} / {s.lpips:.3f} |"
        )
    lines.append(
        f"| fast, {width}×{height} | {big['steps']} | {big['wall']:.1f} s | "
        f"{big['wall'] / rows['fast']['wall']:.1f}× fast's {sizes.side} px job | "
        f"{fmt_gib(big['peak'])} | (bench-large judges it) |"
    )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and steps")
    parser.add_argument("--write", type=Path, help=f"put the section under {MARKER} there")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "benchmarks.gpu: no CUDA device here (torch.cuda.is_available() is False): run it on "
            "a machine with an NVIDIA GPU and a CUDA build of torch; `--device cpu --smoke` "
            "checks the script itself",
            file=sys.stderr,
        )
        return 2
    section = measure(args.device, SMOKE if args.smoke else Sizes())
    print("\n".join(section))
    if args.write:
        text = args.write.read_text()
        if MARKER not in text:
            print(f"benchmarks.gpu: {args.write} has no line {MARKER}", file=sys.stderr)
            return 2
        args.write.write_text(text.replace(MARKER, MARKER + "\n\n" + "\n".join(section), 1))
        print(f"wrote the section into {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
