"""The paper's objective: content MSE at relu5_3 plus Gram MSE at conv1_1..conv5_1.

Every function takes and returns tensors. Gram products run in the features' precision (bf16
under the fast presets' autocast: an fp32 copy of conv1_1's features alone would cost 185 MB at
1024 px) and the Grams and losses are then taken in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGFeatures

TAPS = (*STYLE_LAYERS, CONTENT_LAYER)


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


@dataclass(frozen=True)
class Targets:
    content: torch.Tensor  # relu5_3 of the content image (float32)
    style: list[torch.Tensor]  # one Gram per style layer (float32), blended over style images


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
