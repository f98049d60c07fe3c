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
    scores: dict[str, float]  # benchmarks.measures.Scores as a dict
    marker: str = "o"
    colour: str = "C0"


# The plots' panels: the style term (x) against each subject axis (y), and the direction in
# which each keeps more of the subject
PANELS = (
    ("ssim_quarter", "SSIM of the luma, quarter size (layout)", 1),
    ("ssim_full", "SSIM of the luma, full size (detail)", 1),
    ("lpips", "LPIPS to the content (lower is closer)", -1),
)


def scatter(
    path: Path,
    title: str,
    trajectory: Sequence[tuple[int, dict[str, float]]],
    points: Sequence[Point],
    target: tuple[dict[str, float], float] | None = None,
) -> None:
    """The style term (log, falling to the right: more style) against each subject axis, one
    panel each (PANELS).

    ``trajectory``: the paper recipe's (step, scores) as a labelled curve; ``points``: the
    presets; ``target``: (the recipe's final scores, the slack): the region that meets fast's
    target (style at most the recipe's final, each subject axis at most the slack worse), shaded.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(17, 5.0), dpi=100)
    styles = [scores["style"] for _, scores in trajectory]
    for ax, (axis, label, sign) in zip(axes, PANELS, strict=True):
        ys = [scores[axis] for _, scores in trajectory]
        ax.plot(styles, ys, "-", color="0.45", lw=1.4, label="paper recipe, steps 10 ... 1000")
        ax.plot(styles, ys, ".", color="0.45", ms=5)
        for (step, _), x, y in zip(trajectory, styles, ys, strict=True):
            ax.annotate(
                str(step), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                color="0.3",
            )  # fmt: skip
        for p in points:
            ax.plot(p.scores["style"], p.scores[axis], p.marker, color=p.colour, ms=8,
                    label=p.label)  # fmt: skip
        if target is not None:
            final, slack = target
            left = min([final["style"], *styles, *(p.scores["style"] for p in points)]) / 1.5
            bound = final[axis] - sign * slack
            ax.fill_between(
                [left, final["style"]], bound, 1.0 if sign > 0 else 0.0, color="C2", alpha=0.12,
                label="target: style at most the recipe's final, this axis at most 0.05 worse",
            )  # fmt: skip
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("style term (paper, style at 256 px): more style to the right")
        ax.set_ylabel(label)
        if sign > 0:
            ax.set_ylim(top=1.0)
        else:
            ax.set_ylim(bottom=0.0)
            ax.invert_yaxis()  # up keeps more of the subject on every panel
        ax.grid(True, which="both", alpha=0.25)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"  wrote {path}")
