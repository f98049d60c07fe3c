"""Resizing image tensors (N, C, H, W) in [0, 1]: bicubic, antialiased when shrinking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .plan import scaled_size


def resize_long_side(pixels: torch.Tensor, long_side: int) -> torch.Tensor:
    """(N, C, H, W) -> same aspect ratio with max(H, W) == long_side (never distorts)."""
    h, w = pixels.shape[-2:]
    size = scaled_size(h, w, long_side)
    if size == (h, w):
        return pixels
    shrink = long_side < max(h, w)
    out = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=shrink)
    return out.clamp(0, 1)


def resize_to(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(pixels.shape[-2:]) == size:
        return pixels
    antialias = size[0] < pixels.shape[-2]
    out = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    return out.clamp(0, 1)
