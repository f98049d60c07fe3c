"""The command line as a user runs it: a real process, real files, exit codes, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylebridge.core import assets

CLI = [sys.executable, "-m", "stylebridge.server.cli"]
TINY = ["--size", "64", "--style-size", "64", "--steps", "3", "-q"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 100, 4), dtype=np.uint8), "RGBA").save(path)
    return path


def test_stylize_local_writes_the_result(photo, tmp_path):
    out = tmp_path / "out.png"
    proc = run("stylize", str(photo), str(assets.DEFAULT_STYLE), "-o", str(out), "--local", *TINY)
    assert proc.returncode == 0, proc.stderr
    assert f"saved to {out}" in proc.stdout
    with Image.open(out) as img:
        assert img.size == (100, 80) and img.mode == "RGBA"


def test_a_note_about_the_result_is_printed_beside_it(tmp_path):
    # a 48 px style, seen at 64 px on a layer 9.4x the working size: shown at 13x its pixels
    small, content = tmp_path / "small-style.png", tmp_path / "large.png"
    Image.open(assets.DEFAULT_STYLE).resize((48, 32)).save(small)
    Image.open(assets.DEFAULT_CONTENT).resize((600, 400)).save(content)
    out = tmp_path / "out.png"
    args = ("stylize", str(content), str(small), "-o", str(out), "--local", "--refine-steps", "0")
    proc = run(*args, *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "stylebridge: note: styles.0: the 48x32 px style is shown at 12x its own pixels" in (
        proc.stderr
    )


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty.png"
    empty.write_bytes(b"")
    text = tmp / "notes.png"
    text.write_text("this is not an image\n")
    full = tmp / "full.png"
    Image.fromarray(np.full((200, 200, 3), 120, np.uint8)).save(full)
    truncated = tmp / "truncated.png"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    small = tmp / "small.png"
    Image.new("RGB", (20, 500)).save(small)
    return {
        "missing": (tmp / "nope.jpg", "nope.jpg"),
        "empty": (empty, "empty"),
        "text": (text, "notes.png"),
        "truncated": (truncated, "truncated"),
        "small": (small, "32"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "small"])
def test_bad_content_is_one_line_and_exit_2(case, tmp_path):
    path, expected = _bad_inputs(tmp_path)[case]
    proc = run(
        "stylize",
        str(path),
        str(assets.DEFAULT_STYLE),
        "-o",
        str(tmp_path / "o.png"),
        "--local",
        *TINY,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(path.name) in lines[0] and expected in lines[0]


def test_bad_style_and_pixel_limit(photo, tmp_path):
    proc = run(
        "stylize",
        str(photo),
        str(tmp_path / "missing-style.jpg"),
        "-o",
        str(tmp_path / "o.png"),
        "--local",
        *TINY,
    )
    assert proc.returncode == 2 and "missing-style.jpg" in proc.stderr
    proc = run(
        "stylize",
        str(photo),
        str(assets.DEFAULT_STYLE),
        "-o",
        str(tmp_path / "o.png"),
        "--local",
        "--max-pixels",
        "1000",
        *TINY,
    )
    assert proc.returncode == 2 and "--max-pixels" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--strength", "3"], "strength"),
        (["--steps", "0"], "steps"),
        (["--blend", "1", "2"], "style_weights"),
    ],
)
def test_bad_controls_exit_2(photo, tmp_path, args, expected):
    proc = run(
        "stylize",
        str(photo),
        str(assets.DEFAULT_STYLE),
        "-o",
        str(tmp_path / "o.png"),
        "--local",
        *TINY,
        *args,
    )
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr


def test_bad_output_path_is_refused_before_work(photo, tmp_path):
    proc = run(
        "stylize",
        str(photo),
        str(assets.DEFAULT_STYLE),
        "-o",
        str(tmp_path / "o.bmpx"),
        "--local",
        *TINY,
    )
    assert proc.returncode == 2 and "unsupported output type" in proc.stderr
    proc = run(
        "stylize",
        str(photo),
        str(assets.DEFAULT_STYLE),
        "-o",
        str(tmp_path / "no" / "dir" / "o.png"),
        "--local",
        *TINY,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_ctrl_c_saves_the_best_image_so_far(photo, tmp_path):
    out = tmp_path / "out.png"
    proc = subprocess.Popen(
        [
            *CLI,
            "stylize",
            str(photo),
            str(assets.DEFAULT_STYLE),
            "-o",
            str(out),
            "--local",
            "--size",
            "96",
            "--steps",
            "100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the optimiser runs (the progress bar shows a step), then press Ctrl-C
    deadline = time.monotonic() + 90
    seen = ""
    while time.monotonic() < deadline and "stage" not in seen:
        seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    os.kill(proc.pid, signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "cancelled: saved the best image so far" in stdout
    assert out.is_file()


def test_weights_command_says_where_they_came_from():
    proc = run("weights")
    assert proc.returncode == 0 and proc.stdout.startswith("VGG16 weights: ")
