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

import torch
import torch.nn.functional as F

from stylebridge.core import assets
from stylebridge.core.devices import autocast_dtype
from stylebridge.core.engine import Engine, resize_long_side
from stylebridge.core.images import Layer, load_image
from stylebridge.core.losses import Targets, content_target, objective, style_grams
from stylebridge.core.optimize import run_stage
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
    engine: Engine, content, style, preset: str, side: int, steps: int = 3
) -> float:
    settings = make_settings(preset, size=side, steps=steps + 1, scales=(1.0,))
    work = resize_long_side(engine.pixels(content), side)
    targets = Targets(
        content_target(engine.model, normalize(work)),
        style_grams(engine.model, normalize(resize_long_side(engine.pixels(style), 256))),
    )
    times: list[float] = []
    tick = [time.perf_counter()]

    def on_step(_r) -> None:
        now = time.perf_counter()
        times.append(now - tick[0])
        tick[0] = now

    run_stage(engine.model, work, targets, settings, steps + 1, on_step=on_step)
    return min(times[1:])  # the first step pays for warm-up


class PaperScore:
    """The paper objective (fp32, content at `side`, style at 256) of any image."""

    def __init__(self, engine: Engine, content, style, side: int) -> None:
        self.engine = engine
        self.side = side
        work = resize_long_side(engine.pixels(content), side)
        self.shape = tuple(work.shape[-2:])
        self.targets = Targets(
            content_target(engine.model, normalize(work)),
            style_grams(engine.model, normalize(resize_long_side(engine.pixels(style), 256))),
        )

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> float:
        image = F.interpolate(rgb[None], size=self.shape, mode="bicubic", antialias=True)
        total, _ = objective(
            self.engine.model, normalize(image.clamp(0, 1)), self.targets, 1.0, 1e6
        )
        return total.item()


def run_preset(engine, content, style, preset: str, score: PaperScore, **overrides):
    """Run a preset through the public API; log (elapsed, loss) of the final stage."""
    log: list[tuple[float, float]] = []
    snapshots: list[tuple[float, torch.Tensor]] = []

    def on_progress(p) -> None:
        if p.stage == p.stages:
            log.append((p.elapsed, p.losses["total"]))
            if p.preview is not None:
                snapshots.append((p.elapsed, p.preview))

    settings = make_settings(preset, **overrides)
    start = time.perf_counter()
    result = engine.stylize(content, [style], settings, on_progress=on_progress)
    wall = time.perf_counter() - start
    return {
        "preset": preset,
        "wall_s": wall,
        "steps": result.steps,
        "paper_loss": score(result.layer.rgb),
        "log": log,
    }


def first_time_below(log: list[tuple[float, float]], target: float) -> float | None:
    for elapsed, loss in log:
        if loss <= target:
            return elapsed
    return None


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

    # 3. time to reach the paper's final loss
    size = args.size
    paper_estimate = rows[384][0] * (size / 384) ** 2 * args.paper_steps
    if paper_estimate > PAPER_BUDGET_S:
        shrunk = int(384 * (PAPER_BUDGET_S / paper_estimate) ** 0.5) // 32 * 32
        print(
            f"\nNOTE: the paper preset at {size} px would take ~{paper_estimate / 60:.0f} min; "
            f"running the comparison at {shrunk} px instead."
        )
        size = shrunk
    # Score at the working size itself: content pre-resized to `size`, so no preset's result
    # goes through an up- and down-sampling round trip (which alone inflates the Gram loss).
    content = Layer(resize_long_side(content.rgb[None], size)[0])
    score = PaperScore(engine, content, style, size)
    print(
        f"\n## reaching the paper's {args.paper_steps}-step loss at {size} px "
        f"(scored by the paper objective, fp32)"
    )
    paper = run_preset(engine, content, style, "paper", score, size=size, steps=args.paper_steps)
    target = paper["paper_loss"]
    print(f"paper  : {paper['wall_s']:7.1f} s, {paper['steps']} steps, loss {target:.4g}")
    results = [paper]
    for preset, overrides in (("fast", {"size": size}), ("quality", {"size": size})):
        r = run_preset(engine, content, style, preset, score, **overrides)
        results.append(r)
        reached = first_time_below(r["log"], target)
        beat = r["paper_loss"] <= target
        line = (
            f"{preset:7s}: {r['wall_s']:7.1f} s, {r['steps']} steps, loss {r['paper_loss']:.4g} "
            f"({target / r['paper_loss']:.1f}x lower than paper)"
        )
        if reached is not None:
            line += (
                f"; first below the paper's final loss after {reached:.1f} s = "
                f"{paper['wall_s'] / reached:.1f}x sooner (target >= 10x)"
            )
        elif beat:
            line += f"; whole run {paper['wall_s'] / r['wall_s']:.1f}x sooner"
        else:
            line += "; did NOT reach the paper's loss"
        print(line)

    # 4. memory
    if not args.skip_1024:
        print("\n## peak memory at 1024 px on CPU (fresh process, 5 steps)")
        for preset in ("paper", "fast"):
            print(f"{preset:7s}: peak RSS {peak_rss_1024(preset):.2f} GB (target for fast < 2 GB)")
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nthis process peak RSS {rss_gb:.2f} GB")
    print("JSON " + json.dumps([{k: v for k, v in r.items() if k != "log"} for r in results]))


if __name__ == "__main__":
    main()
