"""The objective: the paper's content MSE at relu5_3 plus Gram MSE at conv1_1..conv5_1, and the
product presets' structure and detail terms, with ``balance`` weighing the content side against
the style.

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
from .vgg import CONTENT_LAYER, DETAIL_LAYER, STYLE_LAYERS, VGGFeatures

TAPS = (*STYLE_LAYERS, DETAIL_LAYER, CONTENT_LAYER)
# The structure term holds the content's colours averaged over blocks of this many px of the
# working size: the subject's layout of light and dark (luma), and, far more loosely, its colours
# (chroma counts STRUCTURE_CHROMA of the luma), while texture is free to take the style. relu5_3
# alone cannot hold the subject (docs/quality.md, "The objective").
STRUCTURE_POOL = 4
STRUCTURE_CHROMA = 0.05
# balance b weighs the content side by ((1 - b) / b) ** BALANCE_EXPONENT: 1 at 0.5, 5.4x at 0.3,
# 81x at 0.1, 1/81 at 0.9. With the exponent 1 (9x at 0.1) and L-BFGS, 0.1 kept only 1.3x the
# style term of 0.5 on astronaut x The Scream: the content side could not hold texture back,
# and a painter saw the slider do little (docs/quality.md, "balance")
BALANCE_EXPONENT = 2.0


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
    """How much the content side (content, detail and structure terms) weighs at ``balance``:
    1 at 0.5, falling to 0 at 1 (all style). At 0 it is infinite: the engine returns the
    content."""
    if balance <= 0:
        return math.inf
    return ((1 - balance) / balance) ** BALANCE_EXPONENT


@dataclass(frozen=True)
class Targets:
    content: torch.Tensor | None  # relu5_3 of the content image (float32); None: no term
    style: list[torch.Tensor]  # one Gram per style layer (float32), blended over style images
    structure: torch.Tensor | None = None  # pooled_structure of the content; None: no term
    pool: int = 1  # its block size, px
    detail: torch.Tensor | None = None  # relu3_3 of the content (float32); None: no term
    style_layers: tuple[int, ...] = STYLE_LAYERS  # the layers of ``style``


@dataclass(frozen=True)
class Weights:
    """Each term's weight in the total (0: the term is not computed)."""

    content: float
    style: float
    detail: float = 0.0
    structure: float = 0.0
    tv: float = 0.0


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
def content_targets(
    model: VGGFeatures, x: torch.Tensor, detail: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """relu5_3 of a normalised image, and relu3_3 when the detail term is on (one pass)."""
    taps = (DETAIL_LAYER, CONTENT_LAYER) if detail else (CONTENT_LAYER,)
    feats = model(x, taps)
    return feats[CONTENT_LAYER].float(), feats[DETAIL_LAYER].float() if detail else None


def objective(
    model: VGGFeatures,
    x: torch.Tensor,
    targets: Targets,
    weights: Weights,
    pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted total for a normalised image ``x`` and each term unweighted, as tensors
    (read them with one ``.tolist()``: a ``.item()`` a term would synchronise a GPU each time).
    The pixel-space terms (structure, tv) are taken in float32 on ``pixels``, the image in
    [0, 1] units, which they need when their weight is set."""
    taps = list(targets.style_layers)
    if targets.content is not None and weights.content:
        taps.append(CONTENT_LAYER)
    if targets.detail is not None and weights.detail:
        taps.append(DETAIL_LAYER)
    feats = model(x, tuple(taps))  # the network runs up to the deepest of them only
    parts = {"style": style_loss([gram(feats[i]) for i in targets.style_layers], targets.style)}
    total = weights.style * parts["style"]
    if CONTENT_LAYER in feats:
        parts["content"] = content_loss(feats[CONTENT_LAYER], targets.content)
        total = total + weights.content * parts["content"]
    if DETAIL_LAYER in feats:
        parts["detail"] = content_loss(feats[DETAIL_LAYER], targets.detail)
        total = total + weights.detail * parts["detail"]
    with torch.autocast(x.device.type, enabled=False):  # colour maths stays in float32
        if weights.structure and targets.structure is not None:
            parts["structure"] = structure_loss(pixels.float(), targets.structure, targets.pool)
            total = total + weights.structure * parts["structure"]
        if weights.tv:
            parts["tv"] = tv_loss(pixels.float())
            total = total + weights.tv * parts["tv"]
    return total, parts


@torch.no_grad()
def structure_target(pixels: torch.Tensor, pool: int) -> torch.Tensor:
    return pooled_structure(pixels, pool).float()
