"""Write docs/demo.png: content, style and the fast preset's result side by side, with its time."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from stylebridge.core import assets
from stylebridge.core.engine import Engine
from stylebridge.core.images import layer_to_pil, load_image
from stylebridge.core.settings import make_settings

OUT = Path(__file__).resolve().parents[1] / "docs" / "demo.png"
HEIGHT = 256


def tile(img: Image.Image, caption: str) -> Image.Image:
    img = img.convert("RGB")
    img = img.resize((round(img.width * HEIGHT / img.height), HEIGHT), Image.LANCZOS)
    out = Image.new("RGB", (img.width, HEIGHT + 24), "white")
    out.paste(img, (0, 0))
    ImageDraw.Draw(out).text((6, HEIGHT + 6), caption, fill="black")
    return out


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    engine = Engine(device="auto")
    content, style = load_image(assets.DEFAULT_CONTENT), load_image(assets.DEFAULT_STYLE)
    start = time.perf_counter()
    result = engine.stylize(content, [style], make_settings("fast"))
    seconds = time.perf_counter() - start
    tiles = [
        tile(layer_to_pil(content), "content: Chelsea (CC0)"),
        tile(layer_to_pil(style), "style: The Starry Night (PD)"),
        tile(layer_to_pil(result.layer), f"fast preset, {seconds:.0f} s on {engine.device}"),
    ]
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * 2, tiles[0].height), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 8
    OUT.parent.mkdir(exist_ok=True)
    sheet.save(OUT, optimize=True)
    print(f"wrote {OUT} ({seconds:.1f} s stylisation)")


if __name__ == "__main__":
    main()
