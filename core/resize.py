"""Resizing and smoothing image tensors (N, C, H, W) in [0, 1]; bicubic, antialiased shrinks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from .color import luminance
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


def guided_upsample(image: torch.Tensor, content: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """``image`` resized up to ``content``'s size, with the content's own luma detail finer than
    ``image`` could hold added back (``gain`` of it): the detail of the content at its size
    minus the same content seen at ``image``'s size. Added to R, G and B alike, it changes the
    luma only, so the colours stay the painting's."""
    small = tuple(image.shape[-2:])
    size = tuple(content.shape[-2:])
    coarse = resize_to(resize_to(content, small), size)
    detail = luminance(content) - luminance(coarse)
    return (resize_to(image, size) + gain * detail).clamp(0, 1)
