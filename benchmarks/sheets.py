"""Pictures of the quality figures: contact sheets (Pillow) and style-vs-subject plots
(matplotlib). Every number drawn here was measured elsewhere (benchmarks/measures.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


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


@dataclass(frozen=True)
class Point:
    label: str
    style: float
    ssim_quarter: float
    marker: str = "o"
    colour: str = "C0"


def scatter(
    path: Path,
    title: str,
    trajectory: Sequence[tuple[int, float, float]],
    points: Sequence[Point],
    target: tuple[float, float] | None = None,
) -> None:
    """Style term (log, falling to the right: more style) against quarter-size SSIM.

    ``trajectory``: the paper recipe's (step, style, ssim) as a labelled curve; ``points``: the
    presets; ``target``: (style, ssim) corner of the region that meets fast's target against the
    recipe's final point (style at most its own, SSIM at least its own - 0.05), shaded.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    _, styles, ssims = zip(*trajectory, strict=True)
    ax.plot(styles, ssims, "-", color="0.45", lw=1.4, label="paper recipe, steps 10 ... 1000")
    ax.plot(styles, ssims, ".", color="0.45", ms=5)
    for step, x, y in trajectory:
        ax.annotate(
            str(step), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7, color="0.3"
        )
    for p in points:
        ax.plot(p.style, p.ssim_quarter, p.marker, color=p.colour, ms=8, label=p.label)
    if target is not None:
        style, ssim = target
        left = min([style, *styles, *(p.style for p in points)]) / 1.5
        ax.fill_between(
            [left, style],
            ssim,
            1.0,
            color="C2",
            alpha=0.12,
            label="fast's target: style at most the recipe's final, SSIM 1/4 at most 0.05 below",
        )
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("style term (paper, 1e6 x Gram MSE, style at 256 px): more style to the right")
    ax.set_ylabel("SSIM of the luma to the content, quarter size")
    ax.set_ylim(top=1.0)
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"  wrote {path}")
