"""Small test pictures as numpy arrays, shared by the server-side tests."""

from __future__ import annotations

import numpy as np


def rgba(h: int = 48, w: int = 64, seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    """Smooth colour ramps (noise content can be a loss minimum already) and a random alpha."""
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    y, x = np.mgrid[0:h, 0:w]
    ramps = [x / w, y / h, ((x + y + seed * 7) % 16) / 16]
    image = np.stack([*ramps, rng.random((h, w))], axis=2)
    return (image * top).round().astype(dtype)


STYLE = np.random.default_rng(9).integers(0, 255, (64, 64, 3), dtype=np.uint8)
