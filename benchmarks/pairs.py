"""The content/style pairs of the quality figures: which images, and where they come from.

Two pairs chose the defaults ("tuned"); the others confirm them on pairs nothing was tuned on.
A painting from ../shared/images is used where the pair names one and it is there; otherwise the
embedded copy, and the run says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from stylebridge.core import assets
from stylebridge.core.images import Layer, layer_from_pil, load_image
from stylebridge.core.resize import resize_long_side

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"

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
    tuned: bool = False  # the defaults were chosen on this pair


PAIRS = (
    Pair("chelsea-starry_night", "chelsea", "starry_night", tuned=True),
    Pair("astronaut-the_scream", "astronaut", "the_scream", tuned=True),
    Pair("synthetic-shipwreck", "synthetic", "shipwreck"),
    Pair("astronaut-woman_with_hat", "astronaut", "woman_with_hat", "woman-with-hat-matisse.jpg"),
    Pair("chelsea-shipwreck", "chelsea", "shipwreck", "shipwreck.jpg"),
    Pair("chelsea-the_scream", "chelsea", "the_scream", "the_scream.jpg"),
)
PAIR_NAMES = tuple(p.name for p in PAIRS)
PAIR_BY_NAME = {p.name: p for p in PAIRS}


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
    resized = resize_long_side(torch.from_numpy(layer.rgb)[None], side)[0]
    return Layer(np.ascontiguousarray(resized.numpy()))


def load_content(name: str, side: int) -> tuple[Layer, str]:
    if name == "chelsea":
        layer, source = load_image(assets.DEFAULT_CONTENT), "chelsea.jpg (embedded)"
    elif name == "astronaut":
        full = load_image(assets.HERE / "astronaut.jpg")
        top = round(full.rgb.shape[1] * 0.047)  # a 3:2 crop: helmet to flag, face in the middle
        rows = round(full.rgb.shape[2] * 2 / 3)
        layer = Layer(np.ascontiguousarray(full.rgb[:, top : top + rows, :]))
        source = "astronaut.jpg (embedded), 3:2 crop"
    else:
        layer = layer_from_pil(synthetic_content(), name="synthetic")
        source = "generated in code (benchmarks/pairs.py)"
    return to_side(layer, side), source


def load_style(pair: Pair) -> tuple[Layer, str]:
    if pair.shared is not None:
        path = SHARED / pair.shared
        if path.is_file():
            return load_image(path), f"../shared/images/{pair.shared}"
        print(f"  note: {path} is absent; using the embedded copy of {pair.style}")
    path = assets.BUILTIN_STYLES[pair.style]
    return load_image(path), f"{path.name} (embedded)"
