"""Colour statistics (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

- luminance: keep the content's chroma and take only the luminance of the stylised result;
- histogram: before optimising, give each style image the content's colour mean and covariance;
- recolour (the product presets' start): the other way round, the content takes the styles'
  colour mean and covariance and keeps its own luma.
"""

from __future__ import annotations

import torch

# ITU-R BT.601 RGB <-> YIQ: luminance in Y, chroma in I and Q.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (N, 3, H, W) RGB -> YIQ."""
    return torch.einsum("ij,...jhw->...ihw", _RGB_TO_YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_RGB_TO_YIQ).to(yiq), yiq)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(rgb)[..., :1, :, :]


def transfer_luminance(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luminance with the content's chroma, clamped to [0, 1]."""
    yiq = rgb_to_yiq(content).clone()
    yiq[..., :1, :, :] = luminance(stylised)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _mean_cov(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = rgb.reshape(3, -1).double()
    mean = flat.mean(1, keepdim=True)
    centred = flat - mean
    cov = centred @ centred.T / flat.shape[1] + 1e-5 * torch.eye(3, dtype=flat.dtype)
    return mean, cov


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8).pow(-0.5 if inverse else 0.5)
    return vectors @ torch.diag(values) @ vectors.T


def _map_moments(image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Linearly map ``image``'s colours (3, H, W) to the given mean and covariance."""
    i_mean, i_cov = _mean_cov(image)
    transform = _sqrtm(cov) @ _sqrtm(i_cov, inverse=True)
    out = transform @ (image.reshape(3, -1).double() - i_mean) + mean
    return out.reshape(image.shape).to(image.dtype).clamp(0, 1)


def match_color_statistics(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Linearly map ``style``'s colours (3, H, W) to the content's mean and covariance."""
    return _map_moments(style, *_mean_cov(content))


def recolour(
    content: torch.Tensor, styles: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """``content`` (N, 3, H, W) with the blended styles' colour mean and covariance and its own
    luma: a start whose colours are already the painting's, so the optimiser spends its steps
    on texture (measured in docs/quality.md, "The objective")."""
    total = sum(weights)
    moments = [_mean_cov(s) for s in styles]
    mean = sum(w / total * m for w, (m, _) in zip(weights, moments, strict=True))
    second = sum(w / total * (c + m @ m.T) for w, (m, c) in zip(weights, moments, strict=True))
    out = torch.stack([_map_moments(image, mean, second - mean @ mean.T) for image in content])
    yiq = rgb_to_yiq(out)
    yiq[:, :1] = luminance(content)
    return yiq_to_rgb(yiq).clamp(0, 1)
