"""Resizing and smoothing image tensors (N, C, H, W) in [0, 1]; bicubic, antialiased shrinks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

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
    """(N, C, H, W) smoothed by a Gaussian of ``sigma`` px, 3 sigma each side (torchvision's
    separable kernel, edges reflected)."""
    size = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(pixels, [size, size], [sigma, sigma])
