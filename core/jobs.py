"""The engine as a server runs it: one job's arrays in, the result's array out.

Everything a job needs that touches tensors or the device lives here, so that the server's
modules (sockets, queue, protocol) import no torch: the style Gram cache, the job itself
(settings, layers, the mask in alpha, the result in the content's dtype), what an out-of-memory
error looks like, threads, and the memory given back between jobs. (The engine's progress
already carries its preview frames as 8-bit arrays.)
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .engine import Engine, Progress
from .images import Layer, layer_from_array, layer_to_array
from .request import JobRequest
from .settings import Settings


class GramCache(collections.OrderedDict):
    """LRU of style Gram targets, bounded in bytes (Grams of big layers are a few MB each)."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.bytes = 0

    @staticmethod
    def _size(grams: list[torch.Tensor]) -> int:
        return sum(g.numel() * g.element_size() for g in grams)

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, grams: list[torch.Tensor]) -> None:
        if key in self:
            self.bytes -= self._size(super().__getitem__(key))
        super().__setitem__(key, grams)
        self.bytes += self._size(grams)
        while self.bytes > self.max_bytes and len(self) > 1:
            _, old = self.popitem(last=False)
            self.bytes -= self._size(old)

    def clear(self) -> None:
        super().clear()
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self), "bytes": self.bytes}


@dataclass
class JobResult:
    image: np.ndarray  # H x W x C in the content's dtype; alpha x mask with a selection
    steps: int
    elapsed: float
    losses: dict[str, float]
    cancelled: bool
    settings: Settings  # what the job ran with: the preset's values with the request's changes
    notes: list[str]  # a sentence each a painter should know about the result


def run(
    engine: Engine,
    request: JobRequest,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> JobResult:
    """One job on a warm engine (its device, whatever the settings say). Raises InputError
    for an image the engine refuses, anything else for a failure of the engine itself."""
    settings = dataclasses.replace(request.settings, device="auto")
    result = engine.stylize(
        layer_from_array(request.content),
        [layer_from_array(s) for s in request.styles],
        settings,
        style_weights=request.style_weights,
        on_progress=on_progress,
        should_stop=should_stop,
        preview_interval=request.preview_interval,
        preview_side=request.preview_side,
    )
    layer = apply_mask(result.layer, request.mask)
    return JobResult(
        layer_to_array(layer, request.content.dtype),
        result.steps,
        result.elapsed,
        result.losses,
        result.cancelled,
        settings,
        result.notes,
    )


def apply_mask(layer: Layer, mask: np.ndarray | None) -> Layer:
    """A selection: the result's alpha is the content's alpha times the mask (one channel)."""
    if mask is None:
        return layer
    m = layer_from_array(mask, name="mask").rgb[:1]  # the images module's exact scaling
    alpha = m if layer.alpha is None else layer.alpha * m
    return dataclasses.replace(layer, alpha=alpha.astype(np.float32, copy=False))


def out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError | MemoryError)


def set_threads(threads: int | None) -> int:
    """torch's CPU threads (Ray sets OMP_NUM_THREADS=1 in CPU actors); returns the count."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def device_memory() -> int | None:
    """Bytes allocated on the CUDA device, None without one."""
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else None


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc (not musl, not macOS)
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


def release_free_memory() -> None:
    """glibc keeps heap pages a finished job freed: replaying the same 60 small jobs of varied
    sizes grew RSS by ~45 MB each time; trimmed between jobs it stays flat."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def release_model_memory() -> None:
    """After the model was dropped (idle unload): give its memory back, the GPU's above all."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
