"""Image files in and out of ``Layer``s: every format Pillow reads, 16-bit PNG through
imagecodecs (libpng), 8/16-bit and float TIFF through tifffile, ICC profiles (core/profiles.py).

A ``Layer`` is what the engine works on: sRGB as float32 in [0, 1] plus what it needs to write
the result back the way the source was (straight alpha, grayscale, bit depth, ICC profile, and
what the source held beyond [0, 1]: HDR highlights, colours outside sRGB). It
holds numpy arrays: file I/O and the client paths never import torch; the engine makes tensors
of them. Loading validates the file and its size from the header before decoding anything, and
every failure is an ``InputError`` whose message is one line naming the file and what is wrong.
What a file loses on the way out (bit depth; colours beyond [0, 1] in an integer file) is
said in one line by ``output_warning``: the CLI prints it before the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import stat
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import InputError
from .profiles import Profile, cmyk_to_srgb, from_srgb, read_profile, to_srgb
from .settings import DEFAULT_MAX_PIXELS

# VGG16 pools four times before relu5_3 (features[29]), dividing each side by 16: at 32 px the
# deepest layer the engine reads is still 2x2, below that the style statistics degenerate.
MIN_SIDE = 32

JPEG_QUALITY = 95
WEBP_QUALITY = 95

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# OpenCV's settings: level 1, run-length strategy, the Sub filter. On a 4000x3000 16-bit RGBA
# photo-like picture, 4x faster than libpng's defaults for a file as small (docs/benchmarks.md).
_PNG16 = {
    "level": imagecodecs.PNG.COMPRESSION.SPEED,
    "strategy": imagecodecs.PNG.STRATEGY.RLE,
    "filter": imagecodecs.PNG.FILTER.SUB,
}
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
# Clipping to [0, 1] is worth a warning when it moves a sample by more than 2/255 of full light:
# these are those bounds in sRGB's encoding (slope 12.92 at black, exponent 1/2.4 at white),
# used for every profile's encoding (near enough for a warning).
# Within them lies quantisation noise: an 8-bit Adobe RGB or P3 file's colours at sRGB's edge
# reach -0.031 and 1.0021 (its rounding leaks through the matrix into a channel at 0 or 1).
_CLIP_LOW, _CLIP_HIGH = -2 * 12.92 / 255, 1.055 * (1 + 2 / 255) ** (1 / 2.4) - 0.055
_EXIF_ORIENTATION = 0x0112
_FULL_SCALE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}
# What an extension promises, for the message about a file that is not what its name says.
_FORMAT_NAMES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WebP",
    ".gif": "GIF",
    ".bmp": "BMP",
}


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class Layer:
    """One image as the engine sees it.

    ``rgb``: float32 (3, H, W) in [0, 1]; for a grayscale source the three channels are equal.
    ``alpha``: float32 (1, H, W) in [0, 1], straight (not premultiplied), or None.
    ``grayscale``: the source had no colour; ``bit_depth``: 8, 16, or 32 for float sources.
    ``profile``: the source's ICC profile (``rgb`` is already converted from it to sRGB; the
    file written is converted back into it), None for an untagged (sRGB) source.
    ``excess``: float32 (3, H, W), the source's sRGB minus ``rgb`` (HDR highlights above 1.0,
    colours outside sRGB's gamut below 0 or above 1), None when nothing lay outside [0, 1].
    The engine works on ``rgb`` alone; a result keeps its content's excess (``with_rgb``) and
    ``unclipped`` adds it back, so a float output holds what the source held.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    grayscale: bool = False
    bit_depth: int = 8
    profile: Profile | None = None
    excess: np.ndarray | None = None

    def __post_init__(self) -> None:
        rgb, alpha = self.rgb, self.alpha
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[0] != 3:
            raise ValueError(f"Layer.rgb must be a (3, H, W) array, got {_shape(rgb)}")
        if rgb.dtype != np.float32:
            raise ValueError(f"Layer.rgb must be float32, got {rgb.dtype}")
        if alpha is not None:
            if not isinstance(alpha, np.ndarray) or alpha.shape != (1, *rgb.shape[1:]):
                raise ValueError(
                    f"Layer.alpha must be a (1, {rgb.shape[1]}, {rgb.shape[2]}) array, "
                    f"got {_shape(alpha)}"
                )
            if alpha.dtype != np.float32:
                raise ValueError(f"Layer.alpha must be float32, got {alpha.dtype}")
        if self.bit_depth not in (8, 16, 32):
            raise ValueError(f"Layer.bit_depth must be 8, 16 or 32, got {self.bit_depth}")
        excess = self.excess
        if excess is not None and (
            not isinstance(excess, np.ndarray)
            or excess.shape != rgb.shape
            or excess.dtype != np.float32
        ):
            raise ValueError(
                f"Layer.excess must be a float32 {tuple(rgb.shape)} array, got {_shape(excess)}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), Pillow's order."""
        return int(self.rgb.shape[2]), int(self.rgb.shape[1])

    def with_rgb(self, rgb: np.ndarray) -> Layer:
        """The same layer (alpha, grayscale, bit depth, profile, excess) with new colour of the
        same size."""
        if not isinstance(rgb, np.ndarray) or rgb.shape != self.rgb.shape:
            raise ValueError(
                f"with_rgb needs an array of shape {self.rgb.shape}, got {_shape(rgb)}"
            )
        return dataclasses.replace(self, rgb=rgb)

    def unclipped(self) -> np.ndarray:
        """``rgb`` plus ``excess``: the colour with the source's values beyond [0, 1] back.
        ``rgb`` is clamped first: beyond [0, 1] only the excess goes, whatever made ``rgb``."""
        rgb = np.clip(self.rgb, 0.0, 1.0)
        return rgb if self.excess is None else np.add(rgb, self.excess, out=rgb)


def _shape(x: object) -> str:
    return str(tuple(x.shape)) if isinstance(x, np.ndarray) else type(x).__name__


@dataclass(frozen=True)
class _Format:
    """What an output format holds and how it is written. Every one embeds an ICC profile."""

    depths: tuple[int, ...]  # bit depths it holds; 32 is float
    alpha: bool  # without it, a layer with alpha is composited over white
    write: Callable[[np.ndarray, Layer, IO[bytes]], None]  # (H, W, C) array at a held depth


# --------------------------------------------------------------------------------------------
# Loading


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> Layer:
    """Read an image file into a ``Layer``, honouring its EXIF orientation.

    Raises ``InputError`` (one line naming the file) for a missing, unreadable, empty, truncated,
    mislabelled or unknown file, and for an image whose header says it is smaller than
    ``min_side`` on a side or has more than ``max_pixels`` pixels; the size is checked before
    anything is decoded, so a decompression bomb costs nothing.
    """
    name = os.fspath(path)
    name = name if isinstance(name, str) else os.fsdecode(name)
    _check_readable_file(name)
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed below, errors mapped first
    except OSError as e:
        raise InputError(f"{name} cannot be read: {_os_reason(e)}") from None
    with f:
        try:
            head = f.read(64)
            f.seek(0)
        except OSError as e:
            raise InputError(f"{name} cannot be read: {_os_reason(e)}") from None
        ihdr = _png_header(head)
        if ihdr is not None and ihdr[2] == 16:
            # Pillow reduces 16-bit colour (and gray+alpha) PNGs to 8 bits; libpng keeps all 16.
            _check_size(name, ihdr[0], ihdr[1], max_pixels, min_side)
            return _load_png16(f, name)
        if head.startswith(_TIFF_SIGNATURES):
            layer = _load_tiff(f, name, max_pixels, min_side)
            if layer is not None:
                return layer
            f.seek(0)
        try:
            # Pillow's own bomb check is off while it reads the header: ours, right after, knows
            # the caller's limit and names the dimensions.
            with _pillow_globals(None):
                img = Image.open(f)
        except UnidentifiedImageError:
            raise InputError(f"{name} {_unidentified_reason(name, head)}") from None
        except Exception as e:  # a plugin choking on a malformed header: any exception type
            raise InputError(f"{name} is corrupt: {_reason(e)}") from None
        with img:
            return layer_from_pil(img, name=name, max_pixels=max_pixels, min_side=min_side)


def layer_from_pil(
    img: Image.Image,
    *,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> Layer:
    """A Pillow image (opened lazily or already decoded) as a ``Layer``.

    The size is checked before decoding; EXIF orientation is applied; CMYK, YCbCr and other
    colour modes become RGB, a palette with transparency becomes RGBA; 16-bit grayscale (I;16,
    I with values up to 65535) keeps 16 bits, F (and I beyond 16 bits) keeps float; an embedded
    ICC profile (of an RGB or gray image) is applied and kept. ``name`` stands for the image in
    error messages. The caller's image is not modified.
    """
    width, height = img.size
    _check_size(name, width, height, max_pixels, min_side)
    try:
        # Full decode now, with truncated files refused (whatever LOAD_TRUNCATED_IMAGES says
        # elsewhere in the process) and Pillow's bomb limit agreeing with ours.
        with _pillow_globals(max_pixels):
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(_too_many_pixels(name, width, height, max_pixels)) from None
    except Exception as e:  # truncated or corrupt data surfaces as OSError, SyntaxError, ...
        raise InputError(f"{name} is truncated or corrupt: {_reason(e)}") from None
    orientation, icc = _orientation(img), img.info.get("icc_profile")
    try:
        if img.mode == "CMYK" and icc:  # converted through its profile; the result is sRGB
            img, icc = cmyk_to_srgb(img, read_profile(icc, name, space="CMYK")), None
        planes, grayscale, has_alpha, depth = _pil_planes(img)
    except (ValueError, OSError) as e:  # a mode Pillow cannot convert (e.g. LAB without ICC)
        raise InputError(
            f"{name} has colour mode {img.mode}, which cannot be read: {_reason(e)}"
        ) from None
    planes = _orient(planes, orientation)
    profile = _embedded_profile(icc, name, grayscale)
    return _layer_from_planes(planes, grayscale, has_alpha, depth, profile, name)


def layer_from_array(arr: np.ndarray, *, name: str = "array") -> Layer:
    """An (H, W) or (H, W, C) array as a ``Layer``: C = 1 L, 2 LA, 3 RGB, 4 RGBA.

    uint8 -> 8-bit, uint16 -> 16-bit, float32 (or float64) -> 32-bit, full scale 1.0; float
    colour beyond [0, 1] is kept as the layer's ``excess`` (alpha is clamped). No size limits
    are applied: callers that take arrays from users check them.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise InputError(f"{name} must be HxW or HxWxC with C from 1 to 4, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        depth = 8
    elif a.dtype == np.uint16:
        depth = 16
    elif a.dtype in (np.float32, np.float64):
        if not np.isfinite(a).all():
            raise InputError(f"{name} contains NaN or infinite values")
        depth = 32
    else:
        raise InputError(f"{name} has dtype {a.dtype}; use uint8, uint16 or float32")
    channels = a.shape[2]
    return _layer_from_planes(a, channels <= 2, channels in (2, 4), depth, None, name)


# --------------------------------------------------------------------------------------------
# Writing


def layer_to_array(layer: Layer, dtype: np.dtype | type) -> np.ndarray:
    """(H, W, C) array, C = 1/2 for grayscale (+alpha) and 3/4 for colour (+alpha).

    uint8 and uint16 are rounded half-to-even after clamping, so that integer -> float -> integer
    is exact; float32 is the layer's values with its ``excess`` added back (unbounded).
    """
    return _to_array(layer.unclipped(), layer.alpha, layer.grayscale, dtype)


def _to_array(
    colour: np.ndarray, alpha: np.ndarray | None, grayscale: bool, dtype: np.dtype | type
) -> np.ndarray:
    """``layer_to_array`` of (3, H, W) colour, possibly beyond [0, 1], and (1, H, W) alpha."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)):
        raise ValueError(f"layer_to_array supports uint8, uint16 and float32, not {dt}")
    colour = _gray_plane(colour) if grayscale else colour
    planes = colour if alpha is None else np.concatenate([colour, alpha])
    # A C-ordered copy, (H, W, C), edited in place below: the arrays can be large.
    x = np.array(planes.transpose(1, 2, 0), dtype=np.float32, order="C")
    np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    if dt == np.float32:
        return x  # a float file or reply holds what lies beyond [0, 1]: nothing is clipped
    full = _FULL_SCALE[dt]
    # For v = x / full the float32 product is within 0.01 of x, so rint (half to even) gives x.
    x *= np.float32(full)
    np.clip(x, 0, full, out=x)
    return np.rint(x, out=x).astype(dt)


def layer_to_pil(layer: Layer) -> Image.Image:
    """An 8-bit Pillow image: L, LA, RGB or RGBA (for previews and contact sheets)."""
    arr = layer_to_array(layer, np.uint8)
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]  # Pillow wants (H, W) for L
    return Image.fromarray(np.ascontiguousarray(arr))  # mode follows the channel count


def save_image(layer: Layer, path: str | os.PathLike) -> None:
    """Write ``layer`` to ``path``, the format chosen by the extension, atomically.

    The colour is converted from sRGB into ``layer.profile`` and the profile embedded; the bit
    depth is the layer's where the format holds it, else the deepest it holds below
    (``output_warning`` says what that loses):

    - ``.png``: 8 or 16-bit (a float layer: 16), grayscale stays gray, alpha is kept;
    - ``.tif``/``.tiff``: 8, 16-bit or 32-bit float, Deflate with a predictor, alpha kept
      (unassociated);
    - ``.jpg``/``.jpeg``: 8-bit RGB or L, quality 95; JPEG has no alpha, so a layer with alpha is
      composited over white first;
    - ``.webp``: 8-bit, quality 95, alpha kept; no grayscale mode, so a gray layer is RGB.

    The file is written next to the target and moved over it with ``os.replace``: an error
    or a crash never leaves a half-written file in place of an existing one. An unsupported
    extension or an unwritable destination raises ``InputError``.
    """
    name = os.fspath(path)
    name = name if isinstance(name, str) else os.fsdecode(name)
    fmt = _output_format(name)
    depth = _held_depth(layer.bit_depth, fmt)
    colour, alpha = layer.unclipped(), layer.alpha
    if not fmt.alpha and alpha is not None:
        colour, alpha = colour * alpha + (1 - alpha), None
    # Into the profile before any clipping: an sRGB value beyond [0, 1] may lie inside it.
    array = _to_array(_in_profile(colour, layer), alpha, layer.grayscale, _DEPTH_DTYPES[depth])
    _atomic_write(name, lambda f: fmt.write(array, layer, f))


def output_warning(layer: Layer, path: str | os.PathLike) -> str | None:
    """One line saying what writing ``layer`` to ``path`` loses, or None: bit depth, and in an
    integer file the colour that lies beyond [0, 1] in the layer's profile (HDR highlights, or
    colours outside sRGB written as sRGB), which is clipped."""
    name = os.fsdecode(os.fspath(path))
    held = _held_depth(layer.bit_depth, _output_format(name))
    lost = []
    if held != layer.bit_depth:
        lost.append(f"the {_DEPTH_WORDS[layer.bit_depth]} content loses depth")
    clipped = _clipped_samples(layer) if held != 32 else None
    if clipped is not None:
        fraction, lo, hi = clipped
        profile = layer.profile
        where = "" if profile is None or profile.is_srgb else f" in {profile.name}"
        lost.append(
            f"{fraction:.2%} of the samples lie beyond [0, 1]{where} "
            f"(from {lo:.3g} to {hi:.3g}), so they are clipped"
        )
    return f"{name} is {_DEPTH_WORDS[held]}: {'; '.join(lost)}" if lost else None


def _clipped_samples(layer: Layer) -> tuple[float, float, float] | None:
    """(fraction, lowest, highest) of the colour samples an integer file would clip by more
    than quantisation noise, in the layer's profile; None when there are none."""
    if layer.excess is None:
        return None
    values = _in_profile(layer.unclipped(), layer)
    lo, hi = float(values.min()), float(values.max())
    if lo >= _CLIP_LOW and hi <= _CLIP_HIGH:
        return None
    outside = np.count_nonzero((values < _CLIP_LOW) | (values > _CLIP_HIGH))
    return outside / values.size, lo, hi


def _output_format(name: str) -> _Format:
    ext = Path(name).suffix.lower()
    if ext not in _FORMATS:
        what = f"extension {ext}" if ext else "no extension"
        raise InputError(f"{name} has {what}; images can be saved as {', '.join(_FORMATS)}")
    return _FORMATS[ext]


def _held_depth(depth: int, fmt: _Format) -> int:
    return depth if depth in fmt.depths else max(d for d in fmt.depths if d < depth)


def _in_profile(colour: np.ndarray, layer: Layer) -> np.ndarray:
    """(3, H, W) sRGB ``colour`` of ``layer`` converted into its profile, for writing.
    LittleCMS on float is unbounded where the profile's curves are (parametric ones): values
    beyond [0, 1] stay beyond it unless the profile itself cannot hold them."""
    profile = layer.profile
    if profile is None or profile.is_srgb:
        return colour
    colour = colour[:1] if layer.grayscale else colour
    converted = from_srgb(np.ascontiguousarray(colour.transpose(1, 2, 0)), profile)
    rgb = converted.transpose(2, 0, 1)
    return np.ascontiguousarray(np.repeat(rgb, 3, 0) if layer.grayscale else rgb)


def _icc(layer: Layer) -> bytes | None:
    return layer.profile.icc if layer.profile is not None else None


def _pil_image(array: np.ndarray) -> Image.Image:
    """An (H, W, C) uint8 array as L, LA, RGB or RGBA."""
    return Image.fromarray(np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array))


def _write_png(array: np.ndarray, layer: Layer, f: IO[bytes]) -> None:
    icc = _icc(layer)
    if array.dtype == np.uint8:
        _pil_image(array).save(f, format="PNG", icc_profile=icc)
        return
    # Pillow has no 16-bit colour or gray+alpha mode; libpng writes every one.
    data = imagecodecs.png_encode(array if array.shape[2] > 1 else array[:, :, 0], **_PNG16)
    f.write(_png_with_profile(data, icc) if icc else data)


def _write_tiff(array: np.ndarray, layer: Layer, f: IO[bytes]) -> None:
    colour = array.shape[2] in (3, 4)
    buffer = io.BytesIO()  # tifffile wants a named file or a buffer, not a bare descriptor
    tifffile.imwrite(
        buffer,
        array if array.shape[2] > 1 else array[:, :, 0],
        photometric="rgb" if colour else "minisblack",
        extrasamples=["unassalpha"] if array.shape[2] in (2, 4) else None,
        compression="zlib",  # Deflate: every TIFF reader has it; level 1: at 4000x3000
        compressionargs={"level": 1},  # 16-bit, 2.5x faster than 6 and no larger
        predictor=True,  # horizontal differencing for integers, floating-point for float
        iccprofile=_icc(layer),
    )
    f.write(buffer.getbuffer())


def _write_jpeg(array: np.ndarray, layer: Layer, f: IO[bytes]) -> None:
    _pil_image(array).save(f, format="JPEG", quality=JPEG_QUALITY, icc_profile=_icc(layer))


def _write_webp(array: np.ndarray, layer: Layer, f: IO[bytes]) -> None:
    if array.shape[2] <= 2:  # WebP has no gray mode: L -> RGB, LA -> RGBA
        array = np.concatenate([np.repeat(array[:, :, :1], 3, 2), array[:, :, 1:]], axis=2)
    _pil_image(array).save(f, format="WEBP", quality=WEBP_QUALITY, icc_profile=_icc(layer))


# One table of what each output format holds (every one embeds an ICC profile).
_FORMATS = {
    ".png": _Format((8, 16), True, _write_png),
    ".jpg": _Format((8,), False, _write_jpeg),
    ".jpeg": _Format((8,), False, _write_jpeg),
    ".tif": _Format((8, 16, 32), True, _write_tiff),
    ".tiff": _Format((8, 16, 32), True, _write_tiff),
    ".webp": _Format((8,), True, _write_webp),
}
SAVE_EXTENSIONS = tuple(_FORMATS)
_DEPTH_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.float32}
_DEPTH_WORDS = {8: "8-bit", 16: "16-bit", 32: "32-bit float"}


def _atomic_write(name: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the target's folder, then ``os.replace`` it over."""
    if os.path.isdir(name):
        raise InputError(f"{name} is a directory; give a file name to save to")
    folder = os.path.dirname(os.path.abspath(name))
    try:
        mode = stat.S_IMODE(os.stat(name).st_mode)  # replacing: keep the old permissions
    except OSError:
        mode = 0o666 & ~_umask()  # what a plain open() would have given
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(name)}.", suffix=".tmp")
    except FileNotFoundError:
        raise InputError(f"{name} cannot be saved: folder {folder} does not exist") from None
    except OSError as e:
        raise InputError(f"{name} cannot be saved: {_os_reason(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, mode)
        os.replace(tmp, name)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise InputError(f"{name} cannot be saved: {_os_reason(e)}") from None
        raise


def _umask() -> int:
    # Reading the umask through os.umask means setting it; /proc avoids that race on Linux.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------
# Validation and error messages


def _check_readable_file(name: str) -> None:
    try:
        st = os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{name} does not exist") from None
    except OSError as e:
        raise InputError(f"{name} cannot be read: {_os_reason(e)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name} is a directory, not an image file")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise InputError(f"{name} is empty (0 bytes)")


def _check_size(name: str, width: int, height: int, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise InputError(_too_many_pixels(name, width, height, max_pixels))
    if min(width, height) < min_side:
        raise InputError(
            f"{name} is {width}x{height} px; the smallest side must be at least {min_side} px"
        )


def _too_many_pixels(name: str, width: int, height: int, max_pixels: int) -> str:
    return (
        f"{name} is {width}x{height} px = {_megapixels(width * height)} MP, over the limit of "
        f"{_megapixels(max_pixels)} MP; raise it with --max-pixels"
    )


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.1f}" if mp >= 0.1 else f"{mp:.2g}"  # small limits (tests) stay readable


def _unidentified_reason(name: str, head: bytes) -> str:
    expected = _FORMAT_NAMES.get(Path(name).suffix.lower())
    if _looks_like_text(head):
        return f"is a text file, not {'a ' + expected if expected else 'an'} image"
    if expected:
        return f"is not a {expected} image, nor any format Pillow reads (unknown format)"
    return "is not an image in any format Pillow reads (unknown format)"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # only a multibyte character cut at the end is forgiven
            return False
        text = head[: e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\f\v" for c in text)


def _reason(e: BaseException) -> str:
    """Pillow's or pypng's message, on one line and short."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _os_reason(e: OSError) -> str:
    # "Permission denied" -> "x.png cannot be read: permission denied"
    text = e.strerror or _reason(e)
    return text[:1].lower() + text[1:]


# --------------------------------------------------------------------------------------------
# Pillow

# Pillow's decompression-bomb limit and truncated-file flag are process globals. They are set
# only around our own open/load calls and under a lock, so our per-call limit governs those
# calls and everybody else's settings are back as soon as we are done.
_PIL_LOCK = threading.RLock()


@contextlib.contextmanager
def _pillow_globals(max_pixels: int | None) -> Iterator[None]:
    with _PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = max_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


_GRAY_MODES = ("1", "L", "LA", "La")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")


def _pil_planes(img: Image.Image) -> tuple[np.ndarray, bool, bool, int]:
    """(H, W, C) uint8/uint16/float32 planes, grayscale, has alpha, bit depth."""
    mode = img.mode
    transparency = img.info.get("transparency")
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img)
        if mode == "I" and (values.min() < 0 or values.max() > 65535):
            # Beyond 16 bits: keep float, full scale = the int32 maximum, negatives clamp to 0.
            scaled = np.clip(values.astype(np.float64), 0, None) / np.iinfo(np.int32).max
            return scaled.astype(np.float32)[:, :, None], True, False, 32
        gray = values.astype(np.uint16)  # native byte order whatever I;16B/I;16L said
        if isinstance(transparency, int):  # a tRNS gray key: that value is transparent
            alpha = np.where(gray == transparency, 0, 65535).astype(np.uint16)
            return np.stack([gray, alpha], axis=2), True, True, 16
        return gray[:, :, None], True, False, 16
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return values[:, :, None], True, False, 32  # beyond [0, 1]: kept as the excess
    has_alpha = (
        mode in _ALPHA_MODES
        or transparency is not None
        or (mode == "P" and img.palette is not None and img.palette.mode.endswith("A"))
    )
    # Gray stays gray; everything else (RGB, P, PA, CMYK, YCbCr, HSV, ...) Pillow makes RGB.
    gray = mode in _GRAY_MODES
    target = ("LA" if has_alpha else "L") if gray else ("RGBA" if has_alpha else "RGB")
    planes = np.asarray(img if mode == target else img.convert(target))
    if planes.ndim == 2:
        planes = planes[:, :, None]
    return planes, gray, has_alpha, 8


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not stop the image from loading
        return 1


def _orient(planes: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1-8 to (H, W, C), as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return planes[:, ::-1]
    if orientation == 3:
        return planes[::-1, ::-1]
    if orientation == 4:
        return planes[::-1]
    if orientation == 5:
        return planes.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(planes, -1)
    if orientation == 7:
        return planes.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(planes, 1)
    return planes


def _layer_from_planes(
    planes: np.ndarray,
    grayscale: bool,
    has_alpha: bool,
    depth: int,
    profile: Profile | None,
    name: str,
) -> Layer:
    """(H, W, C) integer or float planes -> Layer; integers divide by their full scale, colour
    is converted from ``profile`` to sRGB, and what then lies beyond [0, 1] becomes the layer's
    ``excess`` (even from an integer file: a wide-gamut colour converts back into its profile
    intact)."""
    full = _FULL_SCALE.get(planes.dtype)
    if full is not None:
        # float32 division is correctly rounded, so rint(v * full) gives x back exactly.
        values = planes.astype(np.float32)  # a copy: the caller's array is never shared
        values /= np.float32(full)
    else:
        values = np.array(planes, dtype=np.float32)
    colours = 1 if grayscale else 3
    if profile is not None:
        values[:, :, :colours] = to_srgb(values[:, :, :colours], profile)
    values = values.transpose(2, 0, 1)
    colour = np.repeat(values[:1], 3, axis=0) if grayscale else np.ascontiguousarray(values[:3])
    excess = None
    # integers in sRGB lie in [0, 1] already; float or converted colour may not
    if (full is None or profile is not None) and (colour.min() < 0 or colour.max() > 1):
        rgb = np.clip(colour, 0.0, 1.0)  # the engine's range; the rest is kept aside
        excess = np.subtract(colour, rgb, out=colour)
    else:
        rgb = np.clip(colour, 0.0, 1.0, out=colour)  # in place: large layers, no copy
    alpha = np.ascontiguousarray(np.clip(values[-1:], 0.0, 1.0)) if has_alpha else None
    return Layer(rgb, alpha, grayscale, depth, profile, excess)


def _embedded_profile(icc: bytes | None, name: str, grayscale: bool) -> Profile | None:
    return read_profile(icc, name, space="GRAY" if grayscale else "RGB") if icc else None


def _gray_plane(rgb: np.ndarray) -> np.ndarray:
    """The one channel of a grayscale layer: channel 0 when all three agree (exact), else
    their mean, as the engine collapses a stylised grayscale result."""
    if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
        return rgb[:1]
    return rgb.mean(0, keepdims=True, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# 16-bit PNG through imagecodecs (libpng): about 19x pypng's decode (docs/benchmarks.md)


def _png_header(head: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from a PNG's IHDR, or None if not a PNG."""
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, depth, colour_type = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, colour_type


def _load_png16(f: IO[bytes], name: str) -> Layer:
    """A 16-bit PNG of any colour type, every bit kept. The caller checked the size."""
    data = f.read()
    try:
        # Pillow reads the chunks before the pixels (iCCP, tRNS) without decoding them.
        with Image.open(io.BytesIO(data)) as img:
            info = dict(img.info)
        planes = imagecodecs.png_decode(data)
    except Exception as e:  # PngError, SyntaxError, zlib.error...: a broken file
        raise InputError(f"{name} is truncated or corrupt: {_reason(e)}") from None
    if planes.ndim == 2:
        planes = planes[:, :, None]
    channels = planes.shape[2]
    grayscale, has_alpha = channels <= 2, channels in (2, 4)
    key = info.get("transparency")
    if key is not None and not has_alpha:  # tRNS colour key: pixels of that value are clear
        clear = np.all(planes == np.asarray(key, dtype=np.uint16), axis=2, keepdims=True)
        planes = np.concatenate([planes, np.where(clear, 0, 65535).astype(np.uint16)], axis=2)
        has_alpha = True
    planes = _orient(planes, _png_orientation(data))
    profile = _embedded_profile(info.get("icc_profile"), name, grayscale)
    return _layer_from_planes(planes, grayscale, has_alpha, 16, profile, name)


def _png_with_profile(data: bytes, icc: bytes) -> bytes:
    """``data`` (a PNG from libpng) with an iCCP chunk after IHDR: libpng's encoder here
    takes no profile. IHDR is always the first chunk, 13 bytes long."""
    body = b"ICC profile\x00\x00" + zlib.compress(icc)  # name, NUL, method 0 (deflate)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + body))
    end_of_ihdr = len(_PNG_SIGNATURE) + 8 + 13 + 4
    return data[:end_of_ihdr] + chunk + data[end_of_ihdr:]


def _png_orientation(data: bytes) -> int:
    """EXIF orientation from a PNG's eXIf chunk (pypng skips it), 1 when there is none."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf":
            exif = Image.Exif()
            try:
                exif.load(data[pos + 8 : pos + 8 + length])
                return int(exif.get(_EXIF_ORIENTATION, 1))
            except Exception:  # broken EXIF: ignore it, as for Pillow-read files
                return 1
        if kind == b"IEND":
            break
        pos += 12 + length
    return 1


# --------------------------------------------------------------------------------------------
# TIFF through tifffile: 8 and 16-bit integer and float gray or RGB(A) at their depth

_TIFF_PHOTOMETRIC = {tifffile.PHOTOMETRIC.MINISBLACK: 1, tifffile.PHOTOMETRIC.RGB: 3}
_TIFF_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}
_TIFF_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_TIFF_ICC, _TIFF_ORIENTATION = 34675, 274
_TIFF_ASSOCIATED_ALPHA = tifffile.EXTRASAMPLE.ASSOCALPHA


def _load_tiff(f: IO[bytes], name: str, max_pixels: int, min_side: int) -> Layer | None:
    """The first page of a gray or RGB(A) TIFF at its depth (a 16-bit float one as 32-bit
    float), or None for the kinds Pillow's path reads (palette, CMYK, YCbCr, bilevel...)."""
    try:
        with tifffile.TiffFile(f) as tif:
            page = tif.pages.first
            colours = _TIFF_PHOTOMETRIC.get(page.photometric)
            dtype = np.dtype(page.dtype) if page.dtype is not None else None
            if colours is None or (dtype not in _TIFF_DEPTHS and dtype not in _TIFF_FLOATS):
                return None
            extra = page.samplesperpixel - colours
            if extra not in (0, 1):
                return None
            _check_size(name, page.imagewidth, page.imagelength, max_pixels, min_side)
            if page.compression not in tifffile.TIFF.DECOMPRESSORS:
                raise InputError(
                    f"{name} uses TIFF compression {_tiff_compression(page.compression)}, "
                    "which stylebridge cannot decode; save it uncompressed, LZW or Deflate"
                )
            planes, tags = _tiff_yxs(page.asarray(), page.axes), page.tags
            associated = extra == 1 and page.extrasamples[:1] == (_TIFF_ASSOCIATED_ALPHA,)
            icc = tags[_TIFF_ICC].value if _TIFF_ICC in tags else None
            orientation = tags[_TIFF_ORIENTATION].value if _TIFF_ORIENTATION in tags else 1
    except (InputError, MemoryError):
        raise
    except Exception as e:  # TiffFileError, ValueError, a codec's error: a broken file
        raise InputError(f"{name} is truncated or corrupt: {_reason(e)}") from None
    if associated:  # premultiplied: the Layer's alpha is straight
        planes = _unpremultiply(planes)
    depth = _TIFF_DEPTHS.get(dtype, 32)
    if depth == 32:
        planes = np.nan_to_num(planes.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    planes = _orient(planes, int(orientation))
    profile = _embedded_profile(icc, name, colours == 1)
    return _layer_from_planes(planes, colours == 1, extra == 1, depth, profile, name)


def _tiff_compression(code: int) -> str:
    try:
        return f"{tifffile.COMPRESSION(code).name} ({int(code)})"
    except ValueError:
        return str(int(code))


def _tiff_yxs(planes: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's array as (H, W, C): its axes are YX, YXS (contiguous) or SYX (planar)."""
    if axes == "YX":
        return planes[:, :, None]
    if axes == "SYX":
        return np.moveaxis(planes, 0, 2)
    if axes == "YXS":
        return planes
    raise ValueError(f"unexpected TIFF axes {axes}")


def _unpremultiply(planes: np.ndarray) -> np.ndarray:
    values = planes.astype(np.float32)
    alpha = values[:, :, -1:]
    np.divide(values[:, :, :-1], alpha, out=values[:, :, :-1], where=alpha > 0)
    full = _FULL_SCALE.get(planes.dtype)
    if full is None:
        return values
    values[:, :, :-1] *= full
    return np.rint(np.clip(values, 0, full)).astype(planes.dtype)
