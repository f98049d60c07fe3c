"""The measures every quality figure reports, as plain functions over arrays and tensors.

Two axes, and a second opinion (docs/quality.md):
- **style**: the paper's style term, 1e6 x the Gram MSE at conv1_1..conv5_1 with the style image
  at 256 px (fp32): lower has taken more of the painting;
- **subject**: the SSIM of the luma against the content's, at quarter size (4 x 4 block means:
  is the layout still there) and at full size (the grain counts too);
- **LPIPS** (AlexNet, benchmarks/lpips.py) to the content: a network the optimiser never sees.
Beside them the paper's total (content 1 x relu5_3 MSE + the style term).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.lpips import LPIPS
from stylebridge.core.images import Layer
from stylebridge.core.losses import Targets, Weights, content_targets, objective, style_grams
from stylebridge.core.resize import resize_long_side
from stylebridge.core.vgg import VGGFeatures, normalize

PAPER_WEIGHTS = (1.0, 1e6)  # content, style: the founding paper's objective
STYLE_SIDE = 256  # the paper's style size: every style term is scored with Grams at 256 px
QUARTER = 4  # block size of the quarter-size SSIM


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> CIELAB (D65)."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0, 1)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps = 216 / 24389
    f = np.where(xyz > eps, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lab = np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )
    return lab


def chroma_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance in the Lab a*b* plane between two (H, W, 3) sRGB images: colour, not tone."""
    la, lb = srgb_to_lab(a), srgb_to_lab(b)
    return float(np.sqrt(((la[..., 1:] - lb[..., 1:]) ** 2).sum(-1)).mean())


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> BT.601 luma (H, W), the Y the engine's luminance mode keeps."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D array, edges reflected."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    x = torch.as_tensor(np.asarray(image, dtype=np.float64))[None, None]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window) of two 2-D images in [0, 1]."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = gaussian_blur(a, sigma), gaussian_blur(b, sigma)
    var_a = gaussian_blur(a * a, sigma) - mu_a**2
    var_b = gaussian_blur(b * b, sigma) - mu_b**2
    cov = gaussian_blur(a * b, sigma) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s.mean())


def block_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Means of k x k blocks of a 2-D array (the edge rows and columns that do not fill one
    are dropped)."""
    h, w = (x.shape[0] // k) * k, (x.shape[1] // k) * k
    return x[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def fidelity(result: np.ndarray, content: np.ndarray) -> dict[str, float]:
    """How much of the content's structure a (H, W, 3) result keeps, without VGG: SSIM of the
    luma at full size (grain counts) and of 4 x 4 block means (layout: is the subject there)."""
    a, b = luma(result), luma(content)
    return {
        "ssim_luma": ssim(a, b),
        "ssim_quarter": ssim(block_mean(a, QUARTER), block_mean(b, QUARTER)),
    }


def autocorrelation_half_width(*fields: np.ndarray, max_lag: int | None = None) -> float:
    """Radius (px) at which the radially averaged autocorrelation of 2-D signals (summed over
    ``fields``, each mean-removed) first falls to half its value at lag 0, linearly interpolated:
    the distance over which the signal stays alike."""
    h, w = np.shape(fields[0])
    pad = (2 * h, 2 * w)  # zero padding: no wrap-around
    ac = np.zeros(pad)
    for f in fields:
        x = np.asarray(f, dtype=np.float64)
        ac += np.fft.irfft2(np.abs(np.fft.rfft2(x - x.mean(), s=pad)) ** 2, s=pad)
    overlap = np.fft.irfft2(np.abs(np.fft.rfft2(np.ones((h, w)), s=pad)) ** 2, s=pad)
    ac = np.fft.fftshift(ac / np.maximum(overlap, 1.0))  # unbiased: each lag by its pixel pairs
    max_lag = max_lag or min(h, w) // 4
    yy, xx = np.indices(ac.shape)
    ring = np.rint(np.hypot(yy - h, xx - w)).astype(int).ravel()
    keep = ring <= max_lag
    profile = np.bincount(ring[keep], ac.ravel()[keep]) / np.bincount(ring[keep])
    if profile[0] <= 1e-20:  # no signal at all: nothing has a size
        return 0.0
    profile = profile / profile[0]
    below = np.nonzero(profile <= 0.5)[0]
    if len(below) == 0:
        return float(max_lag)
    r = int(below[0])
    p0, p1 = profile[r - 1], profile[r]
    return float(r - 1 + (p0 - 0.5) / (p0 - p1))


def orientation_field(y: np.ndarray, sigma_d: float, sigma_i: float) -> tuple[np.ndarray, ...]:
    """The structure tensor of a 2-D image as a doubled-angle vector field (J11 - J22, 2 J12):
    each pixel's dominant edge orientation, weighted by how strongly oriented it is. Gradients
    after smoothing at ``sigma_d`` (ignores pixel grain), products averaged over ``sigma_i``."""
    gy, gx = np.gradient(gaussian_blur(y, sigma_d))
    j11, j22 = gaussian_blur(gx * gx, sigma_i), gaussian_blur(gy * gy, sigma_i)
    j12 = gaussian_blur(gx * gy, sigma_i)
    return j11 - j22, 2 * j12


def stroke_length(result: np.ndarray, content: np.ndarray, scale: float = 1.0) -> float:
    """How far (px) a stroke's direction carries in a stylised (H, W, 3) image: the half-width
    of the autocorrelation of the orientation field of what the stylisation added to the
    content's luma. Long strokes and large swirls keep one direction over longer distances.
    ``scale``: the image's long side / 384 (the smoothing scales follow it)."""
    residual = luma(result) - luma(content)
    a, b = orientation_field(residual, 1.0 * scale, 2.0 * scale)
    return autocorrelation_half_width(a, b, max_lag=max(8, round(48 * scale)))


def grain_size(result: np.ndarray, content: np.ndarray, scale: float = 1.0) -> float:
    """The finest texture's size (px): the half-width of the autocorrelation of the same
    residual luma, high-passed at 8 px x ``scale`` so broad tone shifts do not count."""
    residual = luma(result) - luma(content)
    residual = residual - gaussian_blur(residual, 8.0 * scale)
    return autocorrelation_half_width(residual, max_lag=max(8, round(32 * scale)))


def fmt_loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def to_array(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) float64."""
    return rgb.permute(1, 2, 0).double().clamp(0, 1).numpy()


@dataclass(frozen=True)
class Scores:
    style: float  # the paper's style term (x 1e6): lower has taken more of the painting
    ssim_quarter: float  # SSIM of the luma at quarter size: higher keeps more of the subject
    ssim_full: float
    lpips: float  # AlexNet LPIPS to the content: lower is closer
    content: float  # the paper's relu5_3 term
    total: float  # the paper's objective: content + style

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class Judge:
    """Scores any image against one content/style pair on every axis, at the content's size
    (an image of another size is resized to it first)."""

    def __init__(self, model: VGGFeatures, lpips: LPIPS, content: Layer, style: Layer) -> None:
        self.model, self.lpips = model, lpips
        self.content = torch.from_numpy(content.rgb)[None]
        self.shape = tuple(self.content.shape[-2:])
        self.content_array = to_array(self.content[0])
        style_rgb = torch.from_numpy(style.rgb)[None]
        grams = style_grams(model, normalize(resize_long_side(style_rgb, STYLE_SIDE)))
        self.targets = Targets(content_targets(model, normalize(self.content))[0], grams)

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor | np.ndarray) -> Scores:
        """Scores of a (3, H, W) image in [0, 1] (a tensor, or a Layer's array)."""
        image = torch.as_tensor(rgb)[None].float().clamp(0, 1)
        if tuple(image.shape[-2:]) != self.shape:
            image = F.interpolate(image, size=self.shape, mode="bicubic", antialias=True)
            image = image.clamp(0, 1)
        total, parts = objective(
            self.model, normalize(image), self.targets, Weights(*PAPER_WEIGHTS)
        )
        fid = fidelity(to_array(image[0]), self.content_array)
        return Scores(
            style=PAPER_WEIGHTS[1] * parts["style"].item(),
            ssim_quarter=fid["ssim_quarter"],
            ssim_full=fid["ssim_luma"],
            lpips=float(self.lpips(image, self.content)[0]),
            content=PAPER_WEIGHTS[0] * parts["content"].item(),
            total=total.item(),
        )


def paper_style_term(model: VGGFeatures, image: torch.Tensor, grams: list[torch.Tensor]) -> float:
    """The paper's style term (1e6 x Gram MSE at conv1_1..conv5_1, fp32) of a (1, 3, H, W) image
    in [0, 1] against Gram targets."""
    ours = style_grams(model, normalize(image))
    return PAPER_WEIGHTS[1] * sum(F.mse_loss(g, t).item() for g, t in zip(ours, grams, strict=True))


@dataclass(frozen=True)
class CropScores:
    lpips: float  # to the content's crop: does the subject's detail survive at 1:1
    style: float  # against the style image resized to the crop's size: does the crop read as paint

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class CanvasJudge:
    """A large canvas judged where painters look: the whole seen at ``side`` px (a `Judge` of the
    content at that size: style term, SSIM, LPIPS) and fixed 1:1 crops (``crops``: name ->
    (top, left, height, width) in canvas px), each with its LPIPS to the content's crop and its
    style term against the style image resized to the crop's long side."""

    def __init__(
        self,
        model: VGGFeatures,
        lpips: LPIPS,
        content: Layer,
        style: Layer,
        crops: dict[str, tuple[int, int, int, int]],
        side: int = 384,
    ) -> None:
        self.model, self.lpips, self.crops = model, lpips, crops
        canvas = torch.from_numpy(content.rgb)[None]
        self.shape = tuple(canvas.shape[-2:])
        small = resize_long_side(canvas, side)[0].numpy()
        self.whole = Judge(model, lpips, Layer(np.ascontiguousarray(small)), style)
        style_rgb = torch.from_numpy(style.rgb)[None]
        self.content_crops = {name: _crop(canvas, box) for name, box in crops.items()}
        self.crop_grams = {
            name: style_grams(model, normalize(resize_long_side(style_rgb, max(box[2:]))))
            for name, box in crops.items()
        }

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor | np.ndarray) -> dict[str, object]:
        """``{"whole": Scores, "crops": {name: CropScores}}`` of a (3, H, W) canvas in [0, 1]."""
        image = torch.as_tensor(rgb)[None].float().clamp(0, 1)
        if tuple(image.shape[-2:]) != self.shape:
            raise ValueError(f"canvas is {tuple(image.shape[-2:])}, judge is for {self.shape}")
        crops = {}
        for name, box in self.crops.items():
            crop = _crop(image, box)
            crops[name] = CropScores(
                lpips=float(self.lpips(crop, self.content_crops[name])[0]),
                style=paper_style_term(self.model, crop, self.crop_grams[name]),
            )
        return {"whole": self.whole(image[0]), "crops": crops}


def _crop(image: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    top, left, height, width = box
    return image[..., top : top + height, left : left + width].contiguous()
