"""Quality sheets (`make quality`): pictures and paper losses of every preset, written to docs/.

For each content/style pair: content, style, the paper preset (1000 steps), fast, quality and
fast with colour preservation, each scored by the paper objective (fp32, content at the compared
size, style at 256 px: ``benchmarks.engine.PaperScore``) and timed in process CPU seconds (stable
when the machine is shared) and wall seconds. Every preset gets the content already at the
compared size (384 px), so each is scored at the resolution it optimised (see the scoring note in
docs/benchmarks.md). The paper run's loss-vs-CPU-time curve gives "the paper at equal time".

Also: a weight sweep of the fast preset (weights.png), colour preservation none / luminance /
histogram side by side with a colour-fidelity figure (colour.png), and style_scale 0.5 / 1 / 2
with a measured stroke length (scale.png). Each part caches its numbers in a JSON next to its
sheet; a rerun skips a part whose JSON matches its configuration unless --force.

Usage: python -m benchmarks.quality [--pairs NAME,...] [--only sweep,pairs,colour,scale]
                                    [--force] [--smoke] [--out DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from benchmarks.engine import PaperScore, first_time_below
from stylebridge.core import assets
from stylebridge.core.engine import Engine, resize_long_side
from stylebridge.core.images import Layer, layer_from_pil, layer_to_pil, load_image
from stylebridge.core.losses import objective
from stylebridge.core.settings import PRESETS, Settings, make_settings
from stylebridge.core.vgg import normalize

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "quality"
RUNS = ROOT / ".cache" / "quality-runs"  # every run's record and image (see Runner)
SHARED = ROOT.parent / "shared" / "images"
PAPER_WEIGHTS = (1.0, 1e6)  # content, style: the objective every image is scored by

STYLE_TITLES = {
    "starry_night": "The Starry Night",
    "the_scream": "The Scream",
    "shipwreck": "The Shipwreck",
    "woman_with_hat": "Woman with a Hat",
}


@dataclass(frozen=True)
class Pair:
    name: str
    content: str  # chelsea | astronaut | synthetic
    style: str  # a key of assets.BUILTIN_STYLES
    shared: str | None = None  # a file in ../shared/images used instead of the embedded copy


PAIRS = (
    Pair("chelsea-starry_night", "chelsea", "starry_night"),
    Pair("astronaut-the_scream", "astronaut", "the_scream"),
    Pair("synthetic-shipwreck", "synthetic", "shipwreck"),
    Pair("astronaut-woman_with_hat", "astronaut", "woman_with_hat", "woman-with-hat-matisse.jpg"),
)
PAIR_NAMES = tuple(p.name for p in PAIRS)
PAIR_BY_NAME = {p.name: p for p in PAIRS}
PARTS = ("lr", "sweep", "pairs", "colour", "scale")


@dataclass(frozen=True)
class Plan:
    side: int = 384  # content long side handed to every preset
    tile: int = 256  # tile height in the sheets, px
    steps: dict[str, int] = field(default_factory=dict)  # per-preset step overrides (smoke)
    sample_every: int = 5  # paper curve points kept in the JSON, in steps
    sweep_side: int = 256
    # per pair, the (style_weight, tv_weight) of the fast preset tried; content_weight stays 1.
    # One pair gets the range (and a total-variation term); a second checks the nearest change.
    sweep: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = (
        ("chelsea-starry_night", ((1e3, 0), (1e4, 0), (1e5, 0), (1e6, 0), (1e6, 1e3))),
        ("astronaut-the_scream", ((1e5, 0), (1e6, 0))),
    )
    # the learning rates of `fast` and `quality` tried on these pairs (the presets' own values
    # included), each row as (preset, coarse-to-fine scales or None for the preset's, lrs):
    # scored by the paper loss and by how much of the subject stays (SSIM)
    lr_pairs: tuple[str, ...] = ("chelsea-starry_night", "astronaut-the_scream")
    lrs: tuple[tuple[str, tuple[float, ...] | None, tuple[float, ...]], ...] = (
        ("fast", None, (0.01, 0.02, 0.03, 0.05, 0.1)),
        ("quality", None, (0.02, 0.03)),
        ("quality", (0.25, 0.5, 1.0), (0.02,)),
    )
    colour_pair: str = "chelsea-starry_night"
    scale_pair: str = "chelsea-starry_night"
    style_scales: tuple[float, ...] = (0.5, 1.0, 2.0)


SMOKE = Plan(
    side=96,
    tile=96,
    steps={"paper": 30, "fast": 10, "quality": 12},
    sample_every=1,
    sweep_side=64,
    sweep=(("chelsea-starry_night", ((1e3, 0), (1e6, 0))), ("synthetic-shipwreck", ((1e6, 0),))),
    lr_pairs=("chelsea-starry_night",),
    lrs=(("fast", None, (0.1, PRESETS["fast"].lr)), ("quality", (0.25, 0.5, 1.0), (0.02,))),
)


# --------------------------------------------------------------------------------------------
# Pure measures (tested in tests/test_quality_sheet.py)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> CIELAB (D65)."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0, 1)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps = 216 / 24389
    f = np.where(xyz > eps, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lab = np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )
    return lab


def chroma_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance in the Lab a*b* plane between two (H, W, 3) sRGB images: colour, not tone."""
    la, lb = srgb_to_lab(a), srgb_to_lab(b)
    return float(np.sqrt(((la[..., 1:] - lb[..., 1:]) ** 2).sum(-1)).mean())


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> BT.601 luma (H, W), the Y the engine's luminance mode keeps."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D array, edges reflected."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    x = torch.as_tensor(np.asarray(image, dtype=np.float64))[None, None]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window) of two 2-D images in [0, 1]."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = gaussian_blur(a, sigma), gaussian_blur(b, sigma)
    var_a = gaussian_blur(a * a, sigma) - mu_a**2
    var_b = gaussian_blur(b * b, sigma) - mu_b**2
    cov = gaussian_blur(a * b, sigma) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s.mean())


def block_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Means of k x k blocks of a 2-D array (the edge rows and columns that do not fill one
    are dropped)."""
    h, w = (x.shape[0] // k) * k, (x.shape[1] // k) * k
    return x[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def fidelity(result: np.ndarray, content: np.ndarray) -> dict[str, float]:
    """How much of the content's structure a (H, W, 3) result keeps, without VGG: SSIM of the
    luma at full size (grain counts) and of 4 x 4 block means (layout: is the subject there)."""
    a, b = luma(result), luma(content)
    return {
        "ssim_luma": ssim(a, b),
        "ssim_quarter": ssim(block_mean(a, 4), block_mean(b, 4)),
    }


def autocorrelation_half_width(*fields: np.ndarray, max_lag: int | None = None) -> float:
    """Radius (px) at which the radially averaged autocorrelation of 2-D signals (summed over
    ``fields``, each mean-removed) first falls to half its value at lag 0, linearly interpolated:
    the distance over which the signal stays alike."""
    h, w = np.shape(fields[0])
    pad = (2 * h, 2 * w)  # zero padding: no wrap-around
    ac = np.zeros(pad)
    for f in fields:
        x = np.asarray(f, dtype=np.float64)
        ac += np.fft.irfft2(np.abs(np.fft.rfft2(x - x.mean(), s=pad)) ** 2, s=pad)
    overlap = np.fft.irfft2(np.abs(np.fft.rfft2(np.ones((h, w)), s=pad)) ** 2, s=pad)
    ac = np.fft.fftshift(ac / np.maximum(overlap, 1.0))  # unbiased: each lag by its pixel pairs
    max_lag = max_lag or min(h, w) // 4
    yy, xx = np.indices(ac.shape)
    ring = np.rint(np.hypot(yy - h, xx - w)).astype(int).ravel()
    keep = ring <= max_lag
    profile = np.bincount(ring[keep], ac.ravel()[keep]) / np.bincount(ring[keep])
    if profile[0] <= 1e-20:  # no signal at all: nothing has a size
        return 0.0
    profile = profile / profile[0]
    below = np.nonzero(profile <= 0.5)[0]
    if len(below) == 0:
        return float(max_lag)
    r = int(below[0])
    p0, p1 = profile[r - 1], profile[r]
    return float(r - 1 + (p0 - 0.5) / (p0 - p1))


def orientation_field(y: np.ndarray, sigma_d: float, sigma_i: float) -> tuple[np.ndarray, ...]:
    """The structure tensor of a 2-D image as a doubled-angle vector field (J11 - J22, 2 J12):
    each pixel's dominant edge orientation, weighted by how strongly oriented it is. Gradients
    after smoothing at ``sigma_d`` (ignores pixel grain), products averaged over ``sigma_i``."""
    gy, gx = np.gradient(gaussian_blur(y, sigma_d))
    j11, j22 = gaussian_blur(gx * gx, sigma_i), gaussian_blur(gy * gy, sigma_i)
    j12 = gaussian_blur(gx * gy, sigma_i)
    return j11 - j22, 2 * j12


def stroke_length(result: np.ndarray, content: np.ndarray, scale: float = 1.0) -> float:
    """How far (px) a stroke's direction carries in a stylised (H, W, 3) image: the half-width
    of the autocorrelation of the orientation field of what the stylisation added to the
    content's luma. Long strokes and large swirls keep one direction over longer distances.
    ``scale``: the image's long side / 384 (the smoothing scales follow it)."""
    residual = luma(result) - luma(content)
    a, b = orientation_field(residual, 1.0 * scale, 2.0 * scale)
    return autocorrelation_half_width(a, b, max_lag=max(8, round(48 * scale)))


def grain_size(result: np.ndarray, content: np.ndarray, scale: float = 1.0) -> float:
    """The finest texture's size (px): the half-width of the autocorrelation of the same
    residual luma, high-passed at 8 px x ``scale`` so broad tone shifts do not count."""
    residual = luma(result) - luma(content)
    residual = residual - gaussian_blur(residual, 8.0 * scale)
    return autocorrelation_half_width(residual, max_lag=max(8, round(32 * scale)))


def fmt_loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


# --------------------------------------------------------------------------------------------
# Images


def synthetic_content(width: int = 384, height: int = 256) -> Image.Image:
    """A deterministic test picture: sky gradient, sun, hills, a house, a sign of text-like
    lines, a checkerboard, concentric rings, and large letters."""
    yy = np.linspace(0, 1, height)[:, None, None]
    top, bottom = np.array([0.25, 0.45, 0.85]), np.array([0.85, 0.9, 0.95])
    sky = top + (bottom - top) * yy
    img = Image.fromarray((np.broadcast_to(sky, (height, width, 3)) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)

    def px(fx: float, fy: float) -> tuple[int, int]:
        return round(fx * width), round(fy * height)

    d.ellipse([*px(0.78, 0.08), *px(0.92, 0.29)], fill=(250, 200, 60))
    d.polygon(
        [px(0, 0.62), px(0.3, 0.42), px(0.6, 0.6), px(1, 0.45), px(1, 1), px(0, 1)],
        fill=(70, 140, 60),
    )
    d.rectangle([*px(0.08, 0.55), *px(0.32, 0.85)], fill=(180, 60, 50))
    d.polygon([px(0.06, 0.55), px(0.2, 0.38), px(0.34, 0.55)], fill=(90, 50, 40))
    for fx in (0.11, 0.23):
        d.rectangle([*px(fx, 0.62), *px(fx + 0.06, 0.72)], fill=(240, 230, 150))
    d.rectangle([*px(0.17, 0.74), *px(0.21, 0.85)], fill=(60, 40, 30))
    # a sign with text-like lines of dark bars
    d.rectangle([*px(0.42, 0.64), *px(0.72, 0.95)], fill=(245, 245, 240), outline=(40, 40, 40))
    rng = np.random.default_rng(7)
    y = 0.68
    while y < 0.92:
        x = 0.44
        while x < 0.69:
            word = float(rng.uniform(0.02, 0.06))
            d.rectangle([*px(x, y), *px(min(x + word, 0.7), y + 0.025)], fill=(30, 30, 40))
            x += word + 0.015
        y += 0.05
    # checkerboard and rings
    cell = max(2, width // 48)
    x0, y0 = px(0.78, 0.62)
    for i in range(6):
        for j in range(6):
            colour = (20, 20, 20) if (i + j) % 2 else (235, 235, 235)
            d.rectangle(
                [x0 + i * cell, y0 + j * cell, x0 + (i + 1) * cell - 1, y0 + (j + 1) * cell - 1],
                fill=colour,
            )
    cx, cy = px(0.55, 0.25)
    for k, radius in enumerate(range(max(4, width // 10), 0, -max(2, width // 96))):
        colour = (200, 40, 120) if k % 2 else (250, 250, 250)
        d.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    font = ImageFont.load_default(size=max(8, height // 7))
    d.text(px(0.03, 0.05), "STYLE", fill=(20, 30, 90), font=font)
    return img


def to_side(layer: Layer, side: int) -> Layer:
    return Layer(resize_long_side(layer.rgb[None], side)[0].contiguous())


def load_content(name: str, side: int) -> tuple[Layer, str]:
    if name == "chelsea":
        layer, source = load_image(assets.DEFAULT_CONTENT), "chelsea.jpg (embedded)"
    elif name == "astronaut":
        full = load_image(assets.HERE / "astronaut.jpg")
        top = round(full.rgb.shape[1] * 0.047)  # a 3:2 crop: helmet to flag, face in the middle
        rows = round(full.rgb.shape[2] * 2 / 3)
        layer = Layer(full.rgb[:, top : top + rows, :].contiguous())
        source = "astronaut.jpg (embedded), 3:2 crop"
    else:
        layer = layer_from_pil(synthetic_content(), name="synthetic")
        source = "generated in code (benchmarks/quality.py)"
    return to_side(layer, side), source


def load_style(pair: Pair) -> tuple[Layer, str]:
    if pair.shared is not None:
        path = SHARED / pair.shared
        if path.is_file():
            return load_image(path), f"../shared/images/{pair.shared}"
        print(f"  note: {path} is absent; using the embedded copy of {pair.style}")
    path = assets.BUILTIN_STYLES[pair.style]
    return load_image(path), f"{path.name} (embedded)"


def to_array(layer: Layer) -> np.ndarray:
    return layer.rgb.permute(1, 2, 0).double().clamp(0, 1).numpy()


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def tile(img: Image.Image, lines: Sequence[str], height: int, min_width: int = 0) -> Image.Image:
    img = img.convert("RGB")
    img = img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)
    size = max(10, min(14, height // 18))
    f = font(size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max((draw.textlength(line, font=f) for line in lines), default=0)
    width = max(img.width, round(text_w) + 8, min_width)
    line_h = size + 3
    out = Image.new("RGB", (width, height + 6 + line_h * len(lines)), "white")
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        d.text((4, height + 4 + i * line_h), line, fill="black", font=f)
    return out


def sheet(rows: Sequence[Sequence[Image.Image]], title: Sequence[str], gap: int = 8) -> Image.Image:
    f = font(14)
    title_h = 18 * len(title) + 8
    widths = [sum(t.width for t in row) + gap * (len(row) - 1) for row in rows]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths += [round(probe.textlength(line, font=f)) for line in title]
    heights = [max(t.height for t in row) for row in rows]
    out = Image.new(
        "RGB", (max(widths) + 2 * gap, title_h + sum(heights) + gap * (len(rows) + 1)), "white"
    )
    d = ImageDraw.Draw(out)
    for i, line in enumerate(title):
        d.text((gap, 4 + 18 * i), line, fill="black", font=f)
    y = title_h
    for row, h in zip(rows, heights, strict=True):
        x = gap
        for t in row:
            out.paste(t, (x, y))
            x += t.width + gap
        y += h + gap
    return out


def save_png(img: Image.Image, path: Path) -> None:
    """A 256-colour PNG: a third of the RGB file's size, no visible difference on these sheets
    (every number is measured on the full-colour results, not on the sheet)."""
    palette = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    img = img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    img.save(path, optimize=True)
    print(f"  wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {img.width}x{img.height})")


# --------------------------------------------------------------------------------------------
# Running and scoring


class Score(PaperScore):
    """``PaperScore`` with the objective's parts: content, style term (x 1e6) and total."""

    @torch.no_grad()
    def parts(self, rgb: torch.Tensor) -> dict[str, float]:
        image = F.interpolate(rgb[None], size=self.shape, mode="bicubic", antialias=True)
        total, parts = objective(
            self.engine.model, normalize(image.clamp(0, 1)), self.targets, *PAPER_WEIGHTS
        )
        return {
            "total": total.item(),
            "content": PAPER_WEIGHTS[0] * parts["content"],
            "style": PAPER_WEIGHTS[1] * parts["style"],
        }


@dataclass
class Run:
    label: str
    preset: str
    overrides: dict
    steps: int
    cpu_s: float
    wall_s: float
    paper: dict[str, float]  # the paper objective of the result: total, content, style
    reported: float  # the engine's own last paper-weighted loss (its network precision)
    curve: list[tuple[float, float, float]]  # last stage: (cpu s, wall s, c + 1e6 s)
    image: Image.Image

    def record(self, sample_every: int = 1) -> dict:
        skip = ("image", "curve")
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip
        }
        out["curve"] = [list(map(float, p)) for p in self.curve[::sample_every]]
        if self.curve and (len(self.curve) - 1) % sample_every:
            out["curve"].append(list(map(float, self.curve[-1])))
        return out


class Runner:
    """Runs the engine through its public API, times it, scores it; remembers what it ran, in
    memory and, when ``cache`` is a folder, on disk (a record and a lossless PNG per run, keyed
    by the images, the settings and the machine), so a part whose configuration changed only
    measures the runs that changed: the paper recipe's 1000 steps are not run again."""

    def __init__(self, engine: Engine, plan: Plan, cache: Path | None = None) -> None:
        self.engine, self.plan, self.cache = engine, plan, cache
        self.memo: dict[tuple, Run] = {}
        self.warmed: set[tuple] = set()
        self.force = False  # measure again, ignoring (and replacing) the disk cache

    def cache_path(self, content: Layer, style: Layer, settings: Settings) -> Path | None:
        if self.cache is None:
            return None
        h = hashlib.sha256()
        for layer in (content, style):
            for plane in (layer.rgb, layer.alpha):
                if plane is not None:
                    h.update(repr(tuple(plane.shape)).encode())
                    h.update(plane.numpy().tobytes())
        record = {
            "settings": dataclasses.asdict(settings),
            "machine": {k: v for k, v in machine().items() if k != "date"},
        }
        h.update(json.dumps(record, sort_keys=True, default=str).encode())
        return self.cache / h.hexdigest()[:24]

    def load(self, path: Path | None, label: str) -> Run | None:
        if path is None or self.force:
            return None
        try:
            data = json.loads(path.with_suffix(".json").read_text())
            with Image.open(path.with_suffix(".png")) as img:
                image = img.copy()
        except (OSError, ValueError):
            return None
        data["curve"] = [tuple(p) for p in data["curve"]]
        return Run(**{**data, "label": label, "image": image})

    def save(self, path: Path | None, run: Run) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        run.image.save(path.with_suffix(".png"))
        write_json(path.with_suffix(".json"), run.record())

    def run(
        self,
        key: str,
        content: Layer,
        style: Layer,
        score: Score,
        label: str,
        preset: str,
        **overrides,
    ) -> Run:
        if preset in self.plan.steps and "steps" not in overrides:
            overrides["steps"] = self.plan.steps[preset]
        memo_key = (key, preset, tuple(sorted(overrides.items())))
        if memo_key in self.memo:
            return dataclasses.replace(self.memo[memo_key], label=label)
        settings = make_settings(preset, device=str(self.engine.device.type), **overrides)
        path = self.cache_path(content, style, settings)
        if (cached := self.load(path, label)) is not None:
            self.memo[memo_key] = cached
            print(f"  {label:24s} cached: {path}", flush=True)
            return cached
        # Untimed warm-up at the same sizes: the first convolution at a new shape pays for
        # kernel selection (measured: up to 15 CPU s at 96 px), which no timed run should carry.
        shapes = (key, settings.size, settings.scales, settings.style_scale, settings.precision)
        if shapes not in self.warmed:
            self.warmed.add(shapes)
            warm = dataclasses.replace(settings, steps=2 * len(settings.scales))
            self.engine.stylize(content, [style], warm)
        curve: list[tuple[float, float, float]] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()

        def on_progress(p) -> None:
            if p.stage == p.stages:  # earlier stages work at other sizes
                loss = PAPER_WEIGHTS[0] * p.losses["content"] + PAPER_WEIGHTS[1] * p.losses["style"]
                curve.append((time.process_time() - cpu0, time.perf_counter() - wall0, loss))

        result = self.engine.stylize(content, [style], settings, on_progress=on_progress)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        reported = PAPER_WEIGHTS[0] * result.losses.get("content", float("nan")) + PAPER_WEIGHTS[
            1
        ] * result.losses.get("style", float("nan"))
        run = Run(
            label=label,
            preset=preset,
            overrides=dict(overrides),
            steps=result.steps,
            cpu_s=cpu,
            wall_s=wall,
            paper=score.parts(result.layer.rgb),
            reported=reported,
            curve=curve,
            image=layer_to_pil(result.layer),
        )
        self.memo[memo_key] = run
        self.save(path, run)
        p = run.paper
        print(
            f"  {label:24s} {run.steps:5d} steps  CPU {cpu:7.1f} s  wall {wall:7.1f} s  "
            f"paper loss {fmt_loss(p['total'])} (content {fmt_loss(p['content'])}, "
            f"style {fmt_loss(p['style'])})",
            flush=True,
        )
        return run


def settings_record(preset: str, **overrides) -> dict:
    s = make_settings(preset, **overrides)
    return json.loads(json.dumps(dataclasses.asdict(s)))


def load_cached(path: Path, config: dict, force: bool, sheet_path: Path) -> dict | None:
    if force or not path.is_file() or not sheet_path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("config") != json.loads(json.dumps(config)):
        print(f"  {path.name}: configuration changed since it was measured; running again")
        return None
    return data


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "date": datetime.date.today().isoformat(),
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# The parts


@dataclass
class Context:
    runner: Runner
    plan: Plan
    out: Path
    force: bool
    pairs: dict[str, Pair]

    def images(self, pair: Pair, side: int) -> tuple[Layer, str, Layer, str, Score]:
        content, content_source = load_content(pair.content, side)
        style, style_source = load_style(pair)
        score = Score(self.runner.engine, content, style, max(content.size))
        return content, content_source, style, style_source, score


def run_pair(ctx: Context, pair: Pair) -> dict:
    plan = ctx.plan
    print(f"\n## {pair.name}", flush=True)
    content, content_source, style, style_source, score = ctx.images(pair, plan.side)
    variants = (
        ("paper", "paper", {"size": plan.side}),  # paper resizes up to its size: keep ours
        ("fast", "fast", {}),
        ("quality", "quality", {}),
        ("fast, luminance only", "fast", {"preserve_colors": "luminance"}),
    )
    config = {
        "pair": dataclasses.asdict(pair),
        "style_source": style_source,
        "side": plan.side,
        "steps": plan.steps,
        "presets": {label: settings_record(p, **o) for label, p, o in variants},
    }
    json_path, png_path = ctx.out / f"{pair.name}.json", ctx.out / f"{pair.name}.png"
    cached = load_cached(json_path, config, ctx.force, png_path)
    if cached is not None:
        print(f"  cached: {json_path} (use --force to measure again)")
        return cached
    key = f"{pair.name}@{plan.side}"
    runs = [ctx.runner.run(key, content, style, score, lab, p, **o) for lab, p, o in variants]
    paper = runs[0]
    # The paper recipe stopped where a preset stopped: the same run cut at the step its CPU
    # time reached the preset's (the optimisation is deterministic), so the picture and the
    # score of "the paper at equal time" are of a real image, not read off a curve.
    stopped = {}
    for run in runs[1:3]:
        n = max(1, sum(1 for c, _, _ in paper.curve if c <= run.cpu_s))
        label = f"paper, stopped at {run.label}'s CPU s"
        stopped[run.label] = ctx.runner.run(
            key, content, style, score, label, "paper", size=plan.side, steps=n
        )
    target = paper.paper["total"]
    ordered = [paper, runs[1], stopped[runs[1].label], runs[2], stopped[runs[2].label], runs[3]]
    rows = []
    for run in ordered:
        same = stopped.get(run.label)
        row = {
            "label": run.label,
            "preset": run.preset,
            "steps": run.steps,
            "cpu_s": run.cpu_s,
            "wall_s": run.wall_s,
            "paper_loss": run.paper["total"],
            "content": run.paper["content"],
            "style": run.paper["style"],
            "paper_run_at_same_cpu": same.paper["total"] if same else None,
            "chroma_to_content": chroma_distance(np.asarray(run.image) / 255, to_array(content)),
            **fidelity(np.asarray(run.image) / 255, to_array(content)),
        }
        if run is paper:
            row["x_sooner"] = 1.0
            row["reached_paper_final_cpu_s"] = run.cpu_s
        elif same is not None:
            reached = first_time_below([(c, loss) for c, _, loss in run.curve], target)
            row["reached_paper_final_cpu_s"] = reached
            row["x_sooner"] = paper.cpu_s / reached if reached else None
            row["reported_over_scored"] = run.reported / run.paper["total"]
        else:  # the paper cut short, or colour kept: its paper loss is not the point
            row["reached_paper_final_cpu_s"] = None
            row["x_sooner"] = None
        rows.append(row)
        if same is not None:
            line = (
                f"  {run.label:24s} paper loss {fmt_loss(row['paper_loss'])} vs the paper run at "
                f"the same CPU time {fmt_loss(row['paper_run_at_same_cpu'])}"
            )
            if row["x_sooner"]:
                line += f"; below the paper's final loss {row['x_sooner']:.1f}x sooner"
            print(line, flush=True)
    data = {
        "config": config,
        "machine": machine(),
        "content_source": content_source,
        "content_size": list(content.size),
        "paper_final_scored": target,
        "paper_final_reported": paper.reported,
        "rows": rows,
        "runs": [r.record(plan.sample_every) for r in ordered],
    }
    # the sheet: content, style, paper, colour-preserving / each preset beside the paper
    # recipe stopped at the same CPU time
    h = plan.tile
    tiles = {
        "content": tile(
            layer_to_pil(content),
            [
                f"content: {content_source}",
                f"{content.size[0]}x{content.size[1]} px, as every preset got it",
            ],
            h,
        ),
        "style": tile(
            layer_to_pil(style),
            [f"style: {STYLE_TITLES[pair.style]}", style_source, "scored with its Grams at 256 px"],
            h,
        ),
    }
    for run, row in zip(ordered, rows, strict=True):
        lines = [
            f"{run.label}: {run.steps} steps",
            f"paper loss {fmt_loss(row['paper_loss'])}"
            f" (content {fmt_loss(row['content'])} + style {fmt_loss(row['style'])})",
            f"CPU {run.cpu_s:.0f} s; SSIM to content {row['ssim_luma']:.2f}"
            f" (1/4 size {row['ssim_quarter']:.2f})",
        ]
        if "luminance" in run.label:
            lines.append(f"chroma distance to content {row['chroma_to_content']:.1f} (Lab a*b*)")
        tiles[run.label] = tile(run.image, lines, h)
    fast, quality, lum = (r.label for r in runs[1:])
    layout = [
        [tiles["content"], tiles["style"], tiles["paper"], tiles[lum]],
        [
            tiles[stopped[fast].label],
            tiles[fast],
            tiles[stopped[quality].label],
            tiles[quality],
        ],
    ]
    title = [
        f"{pair.name}: paper objective (content 1 x relu5_3 + style 1e6 x Grams at 256 px, fp32) "
        f"of each result at {content.size[0]}x{content.size[1]}; lower is better",
        "second row: each preset beside the paper recipe stopped at the same CPU time; "
        "SSIM of the luma to the content: higher keeps more of the subject",
        f"CPU s = process CPU time ({torch.get_num_threads()} threads); {data['machine']['cpu']}, "
        f"torch {torch.__version__}, {data['machine']['date']}",
    ]
    save_png(sheet(layout, title), png_path)
    write_json(json_path, data)
    return data


def run_lr(ctx: Context) -> dict:
    """The learning-rate study that chose the `fast` and `quality` defaults (docs/quality.md)."""
    plan = ctx.plan
    print(f"\n## learning rate: fast and quality at {plan.side} px", flush=True)
    config = {
        "side": plan.side,
        "pairs": list(plan.lr_pairs),
        "lrs": [[preset, scales and list(scales), list(lrs)] for preset, scales, lrs in plan.lrs],
        "presets": {preset: settings_record(preset) for preset, _, _ in plan.lrs},
        "steps": plan.steps,
    }
    json_path, png_path = ctx.out / "lr.json", ctx.out / "lr.png"
    cached = load_cached(json_path, config, ctx.force, png_path)
    if cached is not None:
        print(f"  cached: {json_path}")
        return cached
    rows, sheet_rows = [], []
    for name in plan.lr_pairs:
        pair = PAIR_BY_NAME[name]
        content, _, style, _, score = ctx.images(pair, plan.side)
        key = f"{pair.name}@{plan.side}"
        for preset, scales, lrs in plan.lrs:
            tiles = []
            for lr in lrs:
                overrides: dict = {"lr": lr}
                label = f"{preset}, lr {lr:g}"
                if scales is not None and scales != PRESETS[preset].scales:
                    overrides["scales"] = scales
                    label = f"{preset}, scales {'/'.join(f'{v:g}' for v in scales)}, lr {lr:g}"
                default = overrides == {"lr": PRESETS[preset].lr}
                run = ctx.runner.run(key, content, style, score, label, preset, **overrides)
                row = {
                    "pair": pair.name,
                    "preset": preset,
                    "scales": list(overrides.get("scales", PRESETS[preset].scales)),
                    "lr": lr,
                    "default": default,
                    "steps": run.steps,
                    "cpu_s": run.cpu_s,
                    "paper_loss": run.paper["total"],
                    "content": run.paper["content"],
                    "style": run.paper["style"],
                    **fidelity(np.asarray(run.image) / 255, to_array(content)),
                }
                rows.append(row)
                lines = [
                    label + (" (the default)" if default else ""),
                    f"paper loss {fmt_loss(row['paper_loss'])}, CPU {run.cpu_s:.0f} s",
                    f"SSIM (luma) {row['ssim_luma']:.2f}, at 1/4 size {row['ssim_quarter']:.2f}",
                ]
                tiles.append(tile(run.image, lines, max(64, plan.tile * 3 // 4)))
            sheet_rows.append(tiles)
    title = [
        f"fast and quality at {plan.side} px by learning rate (Adam on pixels in [0, 1]); "
        "paper loss: lower is closer to the objective",
        "SSIM of the luma to the content, at full size and of 4x4 block means: higher keeps more "
        f"of the subject; rows: {', '.join(plan.lr_pairs)}",
    ]
    save_png(sheet(sheet_rows, title), png_path)
    data = {"config": config, "machine": machine(), "rows": rows}
    write_json(json_path, data)
    return data


def run_sweep(ctx: Context) -> dict:
    plan = ctx.plan
    print(f"\n## weight sweep: fast preset at {plan.sweep_side} px", flush=True)
    config = {
        "side": plan.sweep_side,
        "sweep": [[name, [list(w) for w in weights]] for name, weights in plan.sweep],
        "fast": settings_record("fast"),
        "steps": plan.steps,
    }
    json_path, png_path = ctx.out / "sweep.json", ctx.out / "weights.png"
    cached = load_cached(json_path, config, ctx.force, png_path)
    if cached is not None:
        print(f"  cached: {json_path}")
        return cached
    rows, sheet_rows = [], []
    for name, weights in plan.sweep:
        pair = PAIR_BY_NAME[name]
        content, _, style, _, score = ctx.images(pair, plan.sweep_side)
        key = f"{pair.name}@{plan.sweep_side}"
        tiles = []
        for sw, tv in weights:
            label = f"style_weight {sw:g}" + (f", tv {tv:g}" if tv else "")
            run = ctx.runner.run(
                key,
                content,
                style,
                score,
                label,
                "fast",
                size=plan.sweep_side,
                style_weight=sw,
                tv_weight=tv,
            )
            row = {
                "pair": pair.name,
                "style_weight": sw,
                "tv_weight": tv,
                "steps": run.steps,
                "cpu_s": run.cpu_s,
                "wall_s": run.wall_s,
                "paper_loss": run.paper["total"],
                "content": run.paper["content"],
                "style": run.paper["style"],
                **fidelity(np.asarray(run.image) / 255, to_array(content)),
            }
            rows.append(row)
            print(
                f"    SSIM of luma vs content {row['ssim_luma']:.3f}, "
                f"at 1/4 size {row['ssim_quarter']:.3f}",
                flush=True,
            )
            tiles.append(
                tile(
                    run.image,
                    [
                        label,
                        f"paper loss {fmt_loss(row['paper_loss'])}",
                        f"content {fmt_loss(row['content'])}, style {fmt_loss(row['style'])}",
                        f"SSIM (luma) {row['ssim_luma']:.3f}, at 1/4 size "
                        f"{row['ssim_quarter']:.3f}",
                    ],
                    max(64, plan.tile * 3 // 4),
                )
            )
        sheet_rows.append(tiles)
    title = [
        f"fast preset at {plan.sweep_side} px, content_weight 1, style_weight and tv_weight varied;"
        " scored by the paper objective (1 / 1e6) and the SSIM of luma vs the content",
        f"rows: {', '.join(name for name, _ in plan.sweep)}; SSIM at 1/4 size: of 4x4 block "
        "means (is the content's layout still there, grain aside)",
    ]
    save_png(sheet(sheet_rows, title), png_path)
    data = {"config": config, "machine": machine(), "rows": rows}
    write_json(json_path, data)
    return data


def run_colour(ctx: Context) -> dict:
    plan = ctx.plan
    pair = PAIR_BY_NAME[plan.colour_pair]
    print(f"\n## colour preservation: {pair.name}, fast preset", flush=True)
    content, content_source, style, style_source, score = ctx.images(pair, plan.side)
    modes = ("none", "luminance", "histogram")
    config = {
        "pair": pair.name,
        "side": plan.side,
        "style_source": style_source,
        "fast": settings_record("fast"),
        "steps": plan.steps,
    }
    json_path, png_path = ctx.out / "colour.json", ctx.out / "colour.png"
    cached = load_cached(json_path, config, ctx.force, png_path)
    if cached is not None:
        print(f"  cached: {json_path}")
        return cached
    key = f"{pair.name}@{plan.side}"
    content_rgb = to_array(content)
    # for scale: how far the painting's own colours are from the content's
    painting = layer_to_pil(style).convert("RGB").resize(content.size, Image.LANCZOS)
    painting_chroma = chroma_distance(np.asarray(painting) / 255, content_rgb)
    rows = []
    tiles = [
        tile(layer_to_pil(content), ["content", content_source], plan.tile),
        tile(layer_to_pil(style), [f"style: {STYLE_TITLES[pair.style]}", style_source], plan.tile),
    ]
    for mode in modes:
        overrides = {} if mode == "none" else {"preserve_colors": mode}
        label = "fast" if mode == "none" else f"fast, {mode}"
        run = ctx.runner.run(key, content, style, score, label, "fast", **overrides)
        rgb = np.asarray(run.image) / 255
        row = {
            "mode": mode,
            "cpu_s": run.cpu_s,
            "wall_s": run.wall_s,
            "paper_loss": run.paper["total"],
            "content": run.paper["content"],
            "style": run.paper["style"],
            "chroma_to_content": chroma_distance(rgb, content_rgb),
            "chroma_style_to_content": painting_chroma,
            "ssim_luma": ssim(luma(rgb), luma(content_rgb)),
        }
        rows.append(row)
        print(
            f"    {mode:9s}: chroma distance to content {row['chroma_to_content']:.2f}, "
            f"style term {fmt_loss(row['style'])}, SSIM(luma) {row['ssim_luma']:.3f}",
            flush=True,
        )
        tiles.append(
            tile(
                run.image,
                [
                    f"preserve_colors={mode}",
                    f"chroma distance to content {row['chroma_to_content']:.1f}",
                    f"style term {fmt_loss(row['style'])} (paper, vs the painting)",
                    f"content {fmt_loss(row['content'])}, paper loss {fmt_loss(row['paper_loss'])}",
                ],
                plan.tile,
            )
        )
    title = [
        f"{pair.name}, fast preset: colour preservation none / luminance / histogram",
        "chroma distance = mean distance in the CIELAB a*b* plane against the content "
        "(0 = the content's colours); style term = 1e6 x Gram MSE against the unaltered "
        "painting (lower = closer)",
    ]
    title.append(
        f"for scale: the painting itself (resized to the content) is at chroma distance "
        f"{painting_chroma:.1f} from the content"
    )
    save_png(sheet([tiles[:2], tiles[2:]], title), png_path)
    data = {"config": config, "machine": machine(), "rows": rows}
    write_json(json_path, data)
    return data


def run_scale(ctx: Context) -> dict:
    plan = ctx.plan
    pair = PAIR_BY_NAME[plan.scale_pair]
    print(f"\n## style scale: {pair.name}, fast preset", flush=True)
    content, _, style, style_source, score = ctx.images(pair, plan.side)
    scale_px = plan.side / 384  # the measures' smoothing scales follow the image size
    config = {
        "pair": pair.name,
        "side": plan.side,
        "style_source": style_source,
        "scales": list(plan.style_scales),
        "fast": settings_record("fast"),
        "steps": plan.steps,
        "measure_scale": scale_px,
    }
    json_path, png_path = ctx.out / "scale.json", ctx.out / "scale.png"
    cached = load_cached(json_path, config, ctx.force, png_path)
    if cached is not None:
        print(f"  cached: {json_path}")
        return cached
    key = f"{pair.name}@{plan.side}"
    content_rgb = to_array(content)
    rows, tiles, crops = [], [], []
    w, h = content.size
    cw, ch = w // 3, h // 3  # the crop shown enlarged: the middle third
    box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
    for scale in plan.style_scales:
        overrides = {} if scale == 1 else {"style_scale": scale}
        label = "fast" if scale == 1 else f"fast, style_scale {scale:g}"
        run = ctx.runner.run(key, content, style, score, label, "fast", **overrides)
        rgb = np.asarray(run.image) / 255
        row = {
            "style_scale": scale,
            "cpu_s": run.cpu_s,
            "wall_s": run.wall_s,
            "paper_loss": run.paper["total"],
            "stroke_px": stroke_length(rgb, content_rgb, scale_px),
            "grain_px": grain_size(rgb, content_rgb, scale_px),
            "style_side_px": round(PRESETS["fast"].style_size * scale),
        }
        rows.append(row)
        print(
            f"    style_scale {scale:g}: stroke length {row['stroke_px']:.2f} px, "
            f"grain {row['grain_px']:.2f} px",
            flush=True,
        )
        tiles.append(
            tile(
                run.image,
                [
                    f"style_scale {scale:g} (style seen at {row['style_side_px']} px)",
                    f"stroke length {row['stroke_px']:.2f} px, grain {row['grain_px']:.2f} px",
                    f"paper loss {fmt_loss(row['paper_loss'])} (style at 256)",
                ],
                plan.tile,
            )
        )
        crops.append(
            tile(
                run.image.crop(box).resize((cw * 3, ch * 3), Image.NEAREST),
                [f"style_scale {scale:g}: middle third, 3x"],
                plan.tile,
            )
        )
    title = [
        f"{pair.name}, fast preset at {w}x{h}: style_scale 0.5 / 1 / 2 ({style_source})",
        "stroke length = how far a stroke's direction carries: half-width (px) of the "
        "autocorrelation of the structure-tensor orientation field of (result luma - content luma)",
        "grain = half-width of the autocorrelation of that residual itself, high-passed: the "
        "finest texture (the painting seen larger brings its canvas grain with it)",
    ]
    save_png(sheet([tiles, crops], title), png_path)
    data = {"config": config, "machine": machine(), "rows": rows}
    write_json(json_path, data)
    return data


# --------------------------------------------------------------------------------------------
# Tables


def table(title: str, heads: Sequence[str], rows: list[list[str]], note: str = "") -> list[str]:
    """One markdown section: a title, an optional line under it, and a table."""
    return [
        f"## {title}",
        "",
        *([note, ""] if note else []),
        "| " + " | ".join(heads) + " |",
        "|" + "---|" * len(heads),
        *("| " + " | ".join(cells) + " |" for cells in rows),
        "",
    ]


def tables(out: Path) -> str:
    """Markdown tables of every cached part in ``out``."""
    md = ["# Quality measurements (generated by `python -m benchmarks.quality`)", ""]
    for name in PAIR_NAMES:
        path = out / f"{name}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        m = data["machine"]
        note = (
            f"content {data['content_source']} at {data['content_size'][0]}x"
            f"{data['content_size'][1]}, style {data['config']['style_source']}; "
            f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['date']}"
        )
        heads = (
            "preset",
            "steps",
            "CPU s",
            "wall s",
            "paper loss (content + style)",
            "paper recipe stopped at the same CPU s",
            "x sooner to the paper's final loss",
            "SSIM luma (1/4 size)",
        )
        rows = [
            [
                r["label"],
                str(r["steps"]),
                f"{r['cpu_s']:.0f}",
                f"{r['wall_s']:.0f}",
                f"{fmt_loss(r['paper_loss'])} ({fmt_loss(r['content'])} + {fmt_loss(r['style'])})",
                fmt_loss(r["paper_run_at_same_cpu"]),
                f"{r['x_sooner']:.1f}x" if r.get("x_sooner") else "-",
                f"{r['ssim_luma']:.2f} ({r['ssim_quarter']:.2f})",
            ]
            for r in data["rows"]
        ]
        md += table(name, heads, rows, note)
    if (path := out / "lr.json").is_file():
        data = json.loads(path.read_text())
        heads = (
            "pair",
            "preset",
            "scales",
            "lr",
            "CPU s",
            "paper loss",
            "content",
            "style",
            "SSIM luma",
            "SSIM at 1/4 size",
        )
        rows = [
            [
                r["pair"],
                r["preset"] + (" (default)" if r["default"] else ""),
                "/".join(f"{v:g}" for v in r["scales"]),
                f"{r['lr']:g}",
                f"{r['cpu_s']:.0f}",
                fmt_loss(r["paper_loss"]),
                fmt_loss(r["content"]),
                fmt_loss(r["style"]),
                f"{r['ssim_luma']:.3f}",
                f"{r['ssim_quarter']:.3f}",
            ]
            for r in data["rows"]
        ]
        md += table(f"learning rate ({data['config']['side']} px)", heads, rows)
    if (path := out / "sweep.json").is_file():
        data = json.loads(path.read_text())
        heads = (
            "pair",
            "style_weight",
            "tv_weight",
            "CPU s",
            "paper loss",
            "content",
            "style",
            "SSIM luma",
            "SSIM at 1/4 size",
        )
        rows = [
            [
                r["pair"],
                f"{r['style_weight']:g}",
                f"{r['tv_weight']:g}",
                f"{r['cpu_s']:.0f}",
                fmt_loss(r["paper_loss"]),
                fmt_loss(r["content"]),
                fmt_loss(r["style"]),
                f"{r['ssim_luma']:.3f}",
                f"{r['ssim_quarter']:.3f}",
            ]
            for r in data["rows"]
        ]
        md += table(f"weight sweep (fast preset, {data['config']['side']} px)", heads, rows)
    if (path := out / "colour.json").is_file():
        data = json.loads(path.read_text())
        heads = (
            "preserve_colors",
            "chroma distance to content",
            "style term",
            "content",
            "paper loss",
            "SSIM luma",
            "CPU s",
        )
        rows = [
            [
                r["mode"],
                f"{r['chroma_to_content']:.2f}",
                fmt_loss(r["style"]),
                fmt_loss(r["content"]),
                fmt_loss(r["paper_loss"]),
                f"{r['ssim_luma']:.3f}",
                f"{r['cpu_s']:.0f}",
            ]
            for r in data["rows"]
        ]
        md += table(f"colour preservation ({data['config']['pair']}, fast)", heads, rows)
    if (path := out / "scale.json").is_file():
        data = json.loads(path.read_text())
        heads = (
            "style_scale",
            "style seen at",
            "stroke length px",
            "grain px",
            "paper loss",
            "CPU s",
        )
        rows = [
            [
                f"{r['style_scale']:g}",
                f"{r['style_side_px']} px",
                f"{r['stroke_px']:.2f}",
                f"{r['grain_px']:.2f}",
                fmt_loss(r["paper_loss"]),
                f"{r['cpu_s']:.0f}",
            ]
            for r in data["rows"]
        ]
        md += table(f"style scale ({data['config']['pair']}, fast)", heads, rows)
    return "\n".join(md)


# --------------------------------------------------------------------------------------------


def passive_openmp(argv: Sequence[str] | None) -> None:
    """Run again with OMP_WAIT_POLICY=PASSIVE unless it is set. OpenMP threads that spin at
    barriers count their spinning as CPU time, and on a shared machine a thread waiting for a
    descheduled partner spins for long: measured here under load, the same 30-step job took
    14-43 CPU s with spinning threads and 4.69-4.73 CPU s with passive ones."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    args = list(sys.argv[1:] if argv is None else argv)
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.quality", *args])


def main(argv: Sequence[str] | None = None) -> None:
    passive_openmp(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", help=f"comma-separated, of: {', '.join(PAIR_NAMES)}")
    parser.add_argument("--only", help=f"comma-separated parts, of: {', '.join(PARTS)}")
    parser.add_argument("--force", action="store_true", help="measure again what is cached")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few steps, temp dir")
    parser.add_argument("--out", type=Path, help=f"output folder (default {OUT})")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="engine device (default cpu)")
    args = parser.parse_args(argv)

    names = PAIR_NAMES if not args.pairs else tuple(n.strip() for n in args.pairs.split(","))
    unknown = [n for n in names if n not in PAIR_NAMES]
    parts = PARTS if not args.only else tuple(p.strip() for p in args.only.split(","))
    unknown += [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(
            f"unknown: {', '.join(unknown)} (pairs: {', '.join(PAIR_NAMES)}; "
            f"parts: {', '.join(PARTS)})"
        )
    plan = SMOKE if args.smoke else Plan()
    out = args.out or (Path(tempfile.mkdtemp(prefix="stylebridge-quality-")) if args.smoke else OUT)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    m = machine()
    print(f"# stylebridge quality sheets -> {out}")
    print(
        f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {m['date']}, "
        f"OMP_WAIT_POLICY={m['omp_wait_policy']}"
        + (" (smoke: tiny sizes, few steps)" if args.smoke else "")
    )
    if not SHARED.is_dir():
        print(f"note: {SHARED} is absent: the pairs use the embedded copies of the paintings")

    start_cpu, start_wall = time.process_time(), time.perf_counter()
    engine = Engine(device=args.device)
    print(f"weights: {engine.weights_source}")
    # warm-up: the first convolutions of a process pay for kernel selection
    warm = to_side(load_image(assets.DEFAULT_CONTENT), 64)
    for preset in ("paper", "fast"):
        engine.stylize(warm, [warm], make_settings(preset, size=64, steps=2))
    runner = Runner(engine, plan, out / "runs" if args.smoke else RUNS)
    runner.force = args.force
    ctx = Context(runner, plan, out, args.force, {p.name: p for p in PAIRS if p.name in names})
    if "lr" in parts:
        run_lr(ctx)
    if "sweep" in parts:
        run_sweep(ctx)
    if "pairs" in parts:
        for pair in ctx.pairs.values():
            run_pair(ctx, pair)
    if "colour" in parts:
        run_colour(ctx)
    if "scale" in parts:
        run_scale(ctx)
    md = tables(out)
    (out / "tables.md").write_text(md + "\n")
    print("\n" + md)
    print(
        f"\ndone in {time.perf_counter() - start_wall:.0f} s wall, "
        f"{time.process_time() - start_cpu:.0f} s CPU; outputs in {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
