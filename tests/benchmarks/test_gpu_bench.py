"""`make bench-gpu` (benchmarks/gpu.py): no test needs a GPU, so its smoke runs on the CPU, and a
machine without CUDA is told so in one sentence."""

from __future__ import annotations

import pytest
import torch

from benchmarks import gpu


def test_the_smoke_writes_every_preset_and_the_canvas_under_the_marker(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"## GPU\n\n{gpu.MARKER}\n\n### an older run\n")
    assert gpu.main(["--device", "cpu", "--smoke", "--write", str(doc)]) == 0
    text = doc.read_text()
    new = text[text.index(gpu.MARKER) : text.index("### an older run")]
    rows = [line for line in new.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0] for r in rows[1:]] == [
        "| paper at 64 px",
        "| fast at 64 px",
        "| quality at 64 px",
        "| fast, 320×240",
    ]
    assert "smoke" in new  # a smoke run never reads as figures
    # the canvas job took the large path: more steps than its 3 at the working size
    assert int(rows[-1].split(" | ")[1]) > 3


def test_no_cuda_is_one_sentence_and_nothing_runs(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu, "measure", lambda *a: pytest.fail("measured without a device"))
    assert gpu.main([]) == 2
    assert "no CUDA device here" in capsys.readouterr().err


def test_a_file_without_the_marker_is_left_as_it_was(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu, "measure", lambda *a: ["### a run", ""])
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# figures\n")
    assert gpu.main(["--device", "cpu", "--write", str(doc)]) == 2
    assert doc.read_text() == "# figures\n"
    assert "has no line" in capsys.readouterr().err
