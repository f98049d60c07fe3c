"""The objective: the paper's content MSE at relu5_3 plus Gram MSE at conv1_1..conv5_1, and
the product presets' structure term, with ``balance`` weighing the content side against the style.

Every function takes and returns tensors. Gram products run in the features' precision (bf16
under the fast presets' autocast: an fp32 copy of conv1_1's features alone would cost 185 MB at
1024 px) and the Grams and losses are then taken in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import rgb_to_yiq
from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGFeatures

TAPS = (*STYLE_LAYERS, CONTENT_LAYER)
# The structure term holds the content's colours averaged over blocks of this many px of the
# working size: the subject's layout of light and dark (luma), and, far more loosely, its colours
# (chroma counts STRUCTURE_CHROMA of the luma), while texture is free to take the style. relu5_3
# alone cannot hold the subject (docs/quality.md, "The objective").
STRUCTURE_POOL = 4
STRUCTURE_CHROMA = 0.05
# balance b weighs the content side by ((1 - b) / b) ** BALANCE_EXPONENT: 1 at 0.5, 3x at 0.25,
# 1/3 at 0.75. Exponent 2 (9x, 1/9) was tried first: 0.75 and 1 then gave the same picture and
# the style term rose by 0.5% between them; at 1 both axes fall at every step of the five-point
# sweep on both pairs (docs/quality.md, "balance")
BALANCE_EXPONENT = 1.0


def gram(features: torch.Tensor) -> torch.Tensor:
    """F·Fᵀ / (C·H·W) for features (N, C, H, W) -> (N, C, C)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return (flat @ flat.transpose(1, 2)).float() / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(features.float(), target)


def style_loss(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    return sum((F.mse_loss(g, t) for g, t in zip(grams, targets, strict=True)), torch.zeros(()))


def tv_loss(pixels: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness prior)."""
    dx = pixels[..., :, 1:] - pixels[..., :, :-1]
    dy = pixels[..., 1:, :] - pixels[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def pooled_structure(pixels: torch.Tensor, pool: int) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, 3, H / pool, W / pool): YIQ block means, the chroma scaled
    so that its squared error counts STRUCTURE_CHROMA of the luma's."""
    scale = pixels.new_tensor([1.0, STRUCTURE_CHROMA**0.5, STRUCTURE_CHROMA**0.5])
    yiq = rgb_to_yiq(pixels) * scale.view(1, 3, 1, 1)
    return F.avg_pool2d(yiq, pool) if pool > 1 else yiq


def structure_loss(pixels: torch.Tensor, target: torch.Tensor, pool: int) -> torch.Tensor:
    """The luma's mean squared error plus STRUCTURE_CHROMA x the chroma's, over the blocks."""
    error = F.mse_loss(pooled_structure(pixels, pool), target, reduction="sum")
    return error / target[:, :1].numel()


def structure_pool(side: int, working_side: int) -> int:
    """Block size at a picture long side of ``side`` px: STRUCTURE_POOL px of the working size,
    so a coarse stage or a full-resolution tile holds the same layout."""
    return max(1, round(STRUCTURE_POOL * side / working_side))


def balance_factor(balance: float) -> float:
    """How much the content side (content and structure terms) weighs at ``balance``: 1 at 0.5,
    falling to 0 at 1 (all style). At 0 it is infinite: the engine returns the content."""
    if balance <= 0:
        return math.inf
    return ((1 - balance) / balance) ** BALANCE_EXPONENT


@dataclass(frozen=True)
class Targets:
    content: torch.Tensor  # relu5_3 of the content image (float32)
    style: list[torch.Tensor]  # one Gram per style layer (float32), blended over style images
    structure: torch.Tensor | None = None  # pooled_structure of the content; None: no term
    pool: int = 1  # its block size, px


@torch.no_grad()
def style_grams(model: VGGFeatures, x: torch.Tensor) -> list[torch.Tensor]:
    feats = model(x, STYLE_LAYERS)
    return [gram(feats[i]) for i in STYLE_LAYERS]


def blend_grams(per_image: list[list[torch.Tensor]], weights: list[float]) -> list[torch.Tensor]:
    """Weighted mean of several style images' Grams, layer by layer."""
    total = sum(weights)
    if total <= 0:
        raise ValueError("style blend weights must add up to more than 0")
    return [
        sum(w / total * grams[layer] for w, grams in zip(weights, per_image, strict=True))
        for layer in range(len(STYLE_LAYERS))
    ]


@torch.no_grad()
def content_target(model: VGGFeatures, x: torch.Tensor) -> torch.Tensor:
    return model(x, (CONTENT_LAYER,))[CONTENT_LAYER].float()


def objective(
    model: VGGFeatures,
    x: torch.Tensor,
    targets: Targets,
    content_weight: float,
    style_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss for a normalised image ``x``, plus its parts as floats for progress reports."""
    feats = model(x, TAPS)
    c = content_loss(feats[CONTENT_LAYER], targets.content)
    s = style_loss([gram(feats[i]) for i in STYLE_LAYERS], targets.style)
    total = content_weight * c + style_weight * s
    return total, {"content": c.item(), "style": s.item()}


@torch.no_grad()
def structure_target(pixels: torch.Tensor, pool: int) -> torch.Tensor:
    return pooled_structure(pixels, pool).float()
