"""VGG16 ``features`` as a frozen feature extractor with taps at chosen layers."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CONTENT_LAYER = 29  # relu5_3
DETAIL_LAYER = 15  # relu3_3: the product presets' detail term (core/losses.py)
STYLE_LAYERS = (0, 5, 10, 17, 24)  # conv1_1 .. conv5_1, before their ReLU


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB (N, 3, H, W) -> ImageNet-normalised input."""
    mean = pixels.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = pixels.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * std + mean


class VGGFeatures(nn.Module):
    """``vgg16().features`` truncated after the deepest tap, frozen, in eval mode.

    Built from torchvision's layer list alone (the classifier would cost 0.5 GB for nothing).
    A ReLU right after a tapped conv (the style layers, taken before their ReLU) runs out of
    place so it cannot overwrite the tap; the others stay in place to save activation memory.
    """

    def __init__(
        self,
        state_dict: dict[str, torch.Tensor],
        last: int = CONTENT_LAYER,
        taps: tuple[int, ...] = STYLE_LAYERS,
    ) -> None:
        super().__init__()
        layers = make_layers(cfgs["D"])[: last + 1]
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):
                layers[i] = nn.ReLU(inplace=i - 1 not in taps)
        layers.load_state_dict(
            {k: v for k, v in state_dict.items() if int(k.split(".")[0]) <= last}
        )
        self.layers = layers.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, taps: tuple[int, ...]) -> dict[int, torch.Tensor]:
        """Run up to the deepest tap and return ``{layer index: output}``."""
        out: dict[int, torch.Tensor] = {}
        deepest = max(taps)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in taps:
                out[i] = x
            if i == deepest:
                break
        return out
