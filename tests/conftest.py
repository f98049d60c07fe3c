"""Shared fixtures: the real VGG16 weights (resolved once), small images, the shared paintings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(scope="session")
def weights():
    from stylebridge.core.weights import resolve_weights

    return resolve_weights(allow_download=False)


@pytest.fixture(scope="session")
def engine():
    from stylebridge.core.engine import Engine

    torch.set_num_threads(2)
    return Engine(device="cpu")


@pytest.fixture(scope="session")
def assets():
    from stylebridge.core import assets

    return assets


@pytest.fixture
def shared_images() -> Path:
    if not (SHARED_IMAGES / "starry_night.jpg").is_file():
        pytest.skip(f"the shared paintings are absent ({SHARED_IMAGES}); they are optional")
    return SHARED_IMAGES
