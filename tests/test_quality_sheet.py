"""docs/quality (benchmarks/quality.py): its pure measures, and a smoke run of the real thing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.quality import (
    autocorrelation_half_width,
    block_mean,
    chroma_distance,
    fmt_loss,
    grain_size,
    srgb_to_lab,
    ssim,
    stroke_length,
    synthetic_content,
)
from stylebridge.core.settings import PRESETS

ROOT = Path(__file__).resolve().parents[1]


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


def test_smoke_sheet_sets_each_preset_beside_the_paper_stopped_at_its_time_and_reuses_runs(
    tmp_path,
):
    """The real engine at tiny sizes: the pair sheet holds the paper recipe cut at each preset's
    CPU time, the lr study covers the defaults, and a changed part reruns nothing unchanged."""
    args = ("--pairs", "chelsea-starry_night", "--threads", "1")
    first = _smoke(tmp_path, "--only", "pairs", *args)
    assert "cached: " not in first
    data = json.loads((tmp_path / "chelsea-starry_night.json").read_text())
    rows = {r["label"]: r for r in data["rows"]}
    assert list(rows) == [
        "paper",
        "fast",
        "paper, stopped at fast's CPU s",
        "quality",
        "paper, stopped at quality's CPU s",
        "fast, luminance only",
    ]
    for preset in ("fast", "quality"):
        cut = rows[f"paper, stopped at {preset}'s CPU s"]
        assert 1 <= cut["steps"] < rows["paper"]["steps"]
        assert rows[preset]["paper_run_at_same_cpu"] == cut["paper_loss"]
    assert Image.open(tmp_path / "chelsea-starry_night.png").size[0] > 4 * 96
    # the pair's sheet is measured again (its file is gone): every run comes from the run cache,
    # and so does the lr study's run of fast at its default lr
    (tmp_path / "chelsea-starry_night.json").unlink()
    second = _smoke(tmp_path, "--only", "lr,pairs", *args)
    measured = re.findall(r"^  (.+?) +\d+ steps  CPU ", second, flags=re.M)
    assert measured == ["fast, lr 0.1", "quality, scales 0.25/0.5/1, lr 0.02"]
    # at least the six distinct pair runs and fast's lr-study run come off disk (the two "stopped
    # at" cuts may land on one step count on a slow machine: the second is then a memory hit)
    assert second.count("cached: ") >= 6
    assert re.search(rf"^  fast, lr {PRESETS['fast'].lr:g} +cached: ", second, flags=re.M)
    again = json.loads((tmp_path / "chelsea-starry_night.json").read_text())
    assert [r["paper_loss"] for r in again["rows"]] == [r["paper_loss"] for r in data["rows"]]
    lr = json.loads((tmp_path / "lr.json").read_text())
    assert {(r["preset"], r["lr"], r["default"]) for r in lr["rows"]} == {
        ("fast", 0.1, False),
        ("fast", PRESETS["fast"].lr, True),
        ("quality", 0.02, False),  # at the old scales 0.25/0.5/1: not the default
    }
