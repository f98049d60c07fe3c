"""Engine benchmark (`make bench`): paper vs fast vs quality, machine limit, memory.

Everything is measured in this one run on this machine; the paper objective scores every preset.
Usage: python -m benchmarks.engine [--size N] [--paper-steps N] [--skip-1024]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.lpips import LPIPS
from benchmarks.measures import Judge
from benchmarks.timing import passive_openmp
from stylebridge.core import assets
from stylebridge.core.devices import autocast_dtype
from stylebridge.core.engine import Engine
from stylebridge.core.images import Layer, load_image
from stylebridge.core.losses import (
    STRUCTURE_POOL,
    Targets,
    content_targets,
    structure_target,
    style_grams,
)
from stylebridge.core.optimize import run_stage
from stylebridge.core.resize import resize_long_side
from stylebridge.core.settings import make_settings
from stylebridge.core.vgg import normalize

PAPER_BUDGET_S = 20 * 60  # the paper run shrinks its size when 1000 steps would take longer


def vgg_step_gflop(height: int, width: int) -> float:
    """Forward + input-gradient FLOPs of VGG16 features[:30] (weights frozen: no weight grads)."""
    channels = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    pools_before = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    macs = 0
    for (cin, cout), pools in zip(channels, pools_before, strict=True):
        h, w = height // 2**pools, width // 2**pools
        macs += cin * cout * 9 * h * w
    return 2 * 2 * macs / 1e9  # 2 FLOP per MAC; backward to the input costs one more forward


def conv_throughput(dtype: torch.dtype | None) -> float:
    """Sustained GFLOP/s of VGG-shaped 3x3 convolutions: the best over the network's shapes."""
    best = 0.0
    for c, s in ((128, 96), (256, 96), (512, 48)):
        x = torch.randn(1, c, s, s)
        wt = torch.randn(c, c, 3, 3)
        if dtype is not None:
            x, wt = x.to(dtype), wt.to(dtype)
        for _ in range(2):
            F.conv2d(x, wt, padding=1)
        n, t = 8, time.perf_counter()
        for _ in range(n):
            F.conv2d(x, wt, padding=1)
        best = max(best, 2 * c * c * 9 * s * s * n / (time.perf_counter() - t) / 1e9)
    return best


@torch.no_grad()
def forward_seconds(engine: Engine, height: int, width: int, dtype: torch.dtype | None) -> float:
    """One VGG16 features[:30] forward at this size: the network's own sustained conv speed."""
    x = torch.rand(1, 3, height, width)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        if dtype is None:
            engine.model(x, (29,))
        else:
            with torch.autocast("cpu", dtype=dtype):
                engine.model(x, (29,))
        times.append(time.perf_counter() - t)
    return min(times[1:])


def seconds_per_step(
    engine: Engine, content, style, preset: str, side: int, steps: int = 3, **overrides
) -> float:
    """The fastest of ``steps`` timed optimiser steps of ``preset`` at ``side`` (its own
    objective: with the structure term where the preset has one)."""
    settings = make_settings(preset, size=side, steps=steps + 1, scales=(1.0,), **overrides)
    work = resize_long_side(engine.pixels(content), side)
    structure = structure_target(work, STRUCTURE_POOL) if settings.structure_weight else None
    relu5_3, relu3_3 = content_targets(
        engine.model, normalize(work), detail=bool(settings.detail_weight)
    )
    targets = Targets(
        relu5_3,
        style_grams(engine.model, normalize(resize_long_side(engine.pixels(style), 256))),
        structure,
        STRUCTURE_POOL,
        relu3_3,
    )
    times: list[float] = []
    tick = [time.perf_counter()]

    def on_step(_r) -> None:
        now = time.perf_counter()
        times.append(now - tick[0])
        tick[0] = now

    run_stage(engine.model, work, targets, settings, steps + 1, on_step=on_step)
    return min(times[1:])  # the first step pays for warm-up


def run_preset(engine, judge: Judge, content, style, preset: str, **overrides) -> dict:
    """Run a preset through the public API, keeping every step's image of the last stage;
    score the result on both axes, and find when its image first matched the recipe."""
    frames: list[tuple[float, np.ndarray]] = []  # (process CPU s, the image) of each step
    cpu0 = time.process_time()

    def on_progress(p) -> None:
        if p.stage == p.stages and p.preview is not None:
            frames.append((time.process_time() - cpu0, p.preview))

    settings = make_settings(preset, **overrides)
    start = time.perf_counter()
    result = engine.stylize(
        content,
        [style],
        settings,
        on_progress=on_progress,
        preview_interval=0.0,
        preview_side=max(content.size),
    )
    wall = time.perf_counter() - start
    return {
        "preset": preset,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0,
        "steps": result.steps,
        "scores": judge(result.layer.rgb).as_dict(),
        "frames": frames,
    }


def first_time_matching(
    judge: Judge, frames: list[tuple[float, np.ndarray]], style: float, ssim: float
) -> float | None:
    """The first CPU time at which a frame is at or below ``style`` and at or above ``ssim``
    at once (every fourth frame is scored, then the steps before a hit)."""
    checked: dict[int, bool] = {}

    def ok(i: int) -> bool:
        if i not in checked:
            rgb = torch.from_numpy(frames[i][1]).permute(2, 0, 1).float() / 255
            s = judge(rgb)
            checked[i] = s.style <= style and s.ssim_quarter >= ssim
        return checked[i]

    for i in range(0, len(frames), 4):
        if ok(i):
            first = next(j for j in range(max(0, i - 3), i + 1) if ok(j))
            return frames[first][0]
    return frames[-1][0] if frames and ok(len(frames) - 1) else None


def peak_rss_1024(preset: str) -> float:
    """Peak RSS (GB) of a fresh process running `preset` at 1024 px for 5 steps."""
    code = (
        "import torch\n"
        "from stylebridge.core import assets\n"
        "from stylebridge.core.engine import Engine\n"
        "from stylebridge.core.images import Layer, load_image\n"
        "from stylebridge.core.settings import make_settings\n"
        "e = Engine(device='cpu')\n"
        "c = load_image(assets.BUILTIN_STYLES['shipwreck'])\n"
        "s = load_image(assets.DEFAULT_STYLE)\n"
        f"e.stylize(c, [s], make_settings({preset!r}, size=1024, steps=5, scales=(1.0,), "
        "allow_upscale=True))\n"
        "print(peak_kib())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", PEAK_KIB + code], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024 / 1024


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started from this
# (large) process would report this process's peak.
PEAK_KIB = """
def peak_kib():
    try:
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""


def main() -> None:
    passive_openmp("benchmarks.engine")
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--paper-steps", type=int, default=1000)
    parser.add_argument("--skip-1024", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(
        f"# stylebridge engine benchmark: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    engine = Engine(device="cpu")
    content = load_image(assets.DEFAULT_CONTENT)
    style = load_image(assets.DEFAULT_STYLE)
    print(f"weights: {engine.weights_source}")
    print(
        f"images: content {assets.DEFAULT_CONTENT.name} {content.size}, "
        f"style {assets.DEFAULT_STYLE.name} {style.size} (style at 256 px)"
    )

    # 1. machine limit
    fp32_peak, bf16_peak = conv_throughput(None), conv_throughput(torch.bfloat16)
    fast_dtype = autocast_dtype(engine.device, "bf16")
    peak = bf16_peak if fast_dtype else fp32_peak
    print(
        f"\n## machine: sustained 3x3 conv throughput fp32 {fp32_peak:.0f} GFLOP/s, "
        f"bf16 {bf16_peak:.0f} GFLOP/s"
    )

    # 2. per-step cost
    print("\n## seconds per step (fwd + bwd to the image)")
    rows = {}
    for side in (384, 1024):
        paper = seconds_per_step(
            engine, content, style, "paper", side, steps=2 if side > 500 else 3
        )
        fast = seconds_per_step(engine, content, style, "fast", side, steps=2 if side > 500 else 3)
        # the step before the structure term (the paper's terms in fast's precision)
        plain = seconds_per_step(
            engine,
            content,
            style,
            "fast",
            side,
            steps=2 if side > 500 else 3,
            structure_weight=0.0,
        )
        print(
            f"{side:5d} px: fast step {fast:.3f} s with the structure term, {plain:.3f} s "
            f"without: {fast / plain:.3f}x (target <= 1.10)"
        )
        h = round(content.size[1] * side / max(content.size))
        w = round(content.size[0] * side / max(content.size))
        gflop = vgg_step_gflop(h, w)
        peak_limit = gflop / peak
        # fwd + bwd-to-input is two forwards' worth of convolutions at the same shapes
        vgg_limit = 2 * forward_seconds(engine, h, w, fast_dtype)
        rows[side] = (paper, fast)
        print(
            f"{side:5d} px ({w}x{h}): paper {paper:.3f} s/step, fast {fast:.3f} s/step "
            f"({paper / fast:.2f}x faster per step); {gflop:.0f} GFLOP/step"
        )
        print(
            f"        limit from peak conv throughput {peak_limit:.3f} s -> fast/limit "
            f"{fast / peak_limit:.2f}; limit from 2 x this network's own forward at this size "
            f"({gflop / 2 / (vgg_limit / 2):.0f} GFLOP/s sustained) {vgg_limit:.3f} s -> "
            f"fast/limit {fast / vgg_limit:.2f} (target <= 1.3)"
        )
    square = vgg_step_gflop(384, 384)
    print(f"(VGG16 step at 384x384 = {square:.0f} GFLOP by count)")

    # 3. both axes, and the time to reach the recipe's final point on both at once
    size = args.size
    paper_estimate = rows[384][0] * (size / 384) ** 2 * args.paper_steps
    if paper_estimate > PAPER_BUDGET_S:
        shrunk = int(384 * (PAPER_BUDGET_S / paper_estimate) ** 0.5) // 32 * 32
        print(
            f"\nNOTE: the paper preset at {size} px would take ~{paper_estimate / 60:.0f} min; "
            f"running the comparison at {shrunk} px instead."
        )
        size = shrunk
    # Scored at the working size itself: content pre-resized to `size`, so no preset's result
    # goes through an up- and down-sampling round trip (which alone inflates the Gram loss).
    content = Layer(resize_long_side(torch.from_numpy(content.rgb)[None], size)[0].numpy())
    judge = Judge(engine.model, LPIPS(), content, style)
    print(
        f"\n## both axes at {size} px (style term: lower takes more of the painting; SSIM of the "
        "luma at 1/4 size: higher keeps more of the subject), and when each preset first "
        "matched the recipe's final point on both (style <= its own, SSIM >= its own - 0.05)"
    )
    paper = run_preset(engine, judge, content, style, "paper", size=size, steps=args.paper_steps)
    target = paper["scores"]
    bound = target["ssim_quarter"] - 0.05
    results = [paper]
    for preset in ("paper", "fast", "quality"):
        r = paper if preset == "paper" else run_preset(engine, judge, content, style, preset)
        if r is not paper:
            results.append(r)
        s = r["scores"]
        line = (
            f"{preset:7s}: {r['cpu_s']:7.1f} CPU s ({r['wall_s']:.0f} s wall), {r['steps']:4d} "
            f"steps, style {s['style']:8.1f}, "
            f"SSIM 1/4 {s['ssim_quarter']:.3f} (full {s['ssim_full']:.3f}), "
            f"LPIPS {s['lpips']:.3f}, paper total {s['total']:.4g}"
        )
        if r is not paper:
            reached = first_time_matching(judge, r["frames"], target["style"], bound)
            line += (
                f"; matched the recipe after {reached:.1f} CPU s = "
                f"{paper['cpu_s'] / reached:.1f}x sooner"
                if reached
                else "; did NOT match the recipe on both axes"
            )
        print(line)

    # 4. memory
    if not args.skip_1024:
        print("\n## peak memory at 1024 px on CPU (fresh process, 5 steps)")
        for preset in ("paper", "fast"):
            print(f"{preset:7s}: peak RSS {peak_rss_1024(preset):.2f} GB (target for fast < 2 GB)")
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nthis process peak RSS {rss_gb:.2f} GB")
    print("JSON " + json.dumps([{k: v for k, v in r.items() if k != "frames"} for r in results]))


if __name__ == "__main__":
    main()
