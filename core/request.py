"""One job as a server hands it to the engine (`core.jobs.run`): the pixels, the settings
already validated, and how to report. No torch: the server's socket thread builds it, once,
when it accepts the job; the worker (or a cluster's actor) runs it as it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .settings import Settings


@dataclass(frozen=True)
class JobRequest:
    content: np.ndarray  # H x W x C: uint8, uint16 or float32
    styles: Sequence[np.ndarray]
    settings: Settings  # make_settings' result: every value checked
    style_weights: Sequence[float] | None = None  # one per style; None: equal
    mask: np.ndarray | None = None  # H x W x 1, the selection: the result's alpha is cut by it
    preview_interval: float | None = None  # seconds between preview frames; None: no previews
    preview_side: int | None = None  # a preview's largest side; None: the working size
