"""Pick the torch device: CUDA, then MPS, then CPU, unless one is forced."""

from __future__ import annotations

import torch

from .errors import InputError


def pick_device(name: str = "auto") -> torch.device:
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise InputError("device: cuda was asked for but no CUDA GPU is available")
    if name == "mps" and not mps:
        raise InputError("device: mps was asked for but Metal (MPS) is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise InputError(f"device: {name!r} is not one of auto, cpu, cuda, mps")
    return torch.device(name)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 autocast where the device runs it (CPU and CUDA); MPS stays in float32."""
    if precision != "bf16" or device.type == "mps":
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return None
    return torch.bfloat16
