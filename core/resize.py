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


def gaussian_blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) smoothed by a Gaussian of ``sigma`` px (separable, edges reflected)."""
    radius = min(max(1, round(3 * sigma)), min(pixels.shape[-2:]) - 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=pixels.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(pixels.dtype)
    c = pixels.shape[-3]
    out = F.pad(pixels, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out.flatten(0, 1)[:, None], kernel.view(1, 1, 1, -1))
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    return out.view(-1, c, *pixels.shape[-2:])
