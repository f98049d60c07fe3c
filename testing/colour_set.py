"""The colour test set: small images tagged sRGB, Display P3, Adobe RGB and linear-light
variants, at 8/16-bit integer and 16/32-bit float, written into a folder.

The tests (tests/server/test_colour.py, the hosts' colour tests) and benchmarks/colour_set.py
(`python -m benchmarks.colour_set [FOLDER] [--delta-e]`: the set, and each file's mean
CIEDE2000 through `stylebridge stylize --strength 0`, docs/benchmarks.md) share it.

The profiles are LittleCMS's (imagecodecs.cms_profile): its sRGB and Adobe RGB (compatible),
and RGB profiles built from the published primaries (Display P3: P3 primaries, D65, the sRGB
curve; the linear variants: gamma 1). Only their description is set here, so that messages name
them. Every picture lies inside sRGB's gamut (made in sRGB and converted into its profile), so a
round trip through the engine's sRGB can be exact; `gamut.tif` does not, on purpose: its colours
outside sRGB ride along as the layer's excess beyond [0, 1] and come back from a float file.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import png
import tifffile
from PIL import Image

from stylebridge.core import assets
from testing.servers import clean_env

with warnings.catch_warnings():  # colour-science warns that SciPy is absent: CIEDE2000 needs none
    warnings.simplefilter("ignore")
    import colour

D65 = [0.3127, 0.3290, 1.0]
P3_PRIMARIES = [0.680, 0.320, 1.0, 0.265, 0.690, 1.0, 0.150, 0.060, 1.0]
SRGB_PRIMARIES = [0.640, 0.330, 1.0, 0.300, 0.600, 1.0, 0.150, 0.060, 1.0]
HEIGHT, WIDTH = 48, 64  # over the engine's 32 px minimum; not square


def srgb_curve(samples: int = 4096) -> np.ndarray:
    """The sRGB transfer curve (IEC 61966-2-1) as a uint16 table, for Display P3."""
    v = np.linspace(0, 1, samples)
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return np.round(linear * 65535).astype(np.uint16)


def named(icc: bytes, text: str) -> bytes:
    """``icc`` with its description tag replaced by ``text`` (an ICC v4 'mluc' tag, en-US),
    appended at the end; the profile ID is zeroed (allowed: 'not computed')."""
    utf16 = text.encode("utf-16-be")
    tag = b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(utf16), 28)
    tag += utf16 + bytes(-len(utf16) % 4)
    count = struct.unpack(">I", icc[128:132])[0]
    data = bytearray(icc + bytes(-len(icc) % 4))
    offset = len(data)
    for i in range(count):
        entry = 132 + 12 * i
        if data[entry : entry + 4] == b"desc":
            data[entry + 4 : entry + 12] = struct.pack(">II", offset, len(tag))
    data += tag
    data[0:4] = struct.pack(">I", len(data))
    data[84:100] = bytes(16)
    return bytes(data)


def profiles() -> dict[str, bytes]:
    rgb = imagecodecs.cms_profile
    return {
        "srgb": rgb("srgb"),
        "adobe": rgb("adobergb"),
        "p3": named(
            rgb("rgb", whitepoint=D65, primaries=P3_PRIMARIES, transferfunction=srgb_curve()),
            "Display P3",
        ),
        "p3-linear": named(
            rgb("rgb", whitepoint=D65, primaries=P3_PRIMARIES, gamma=1.0), "Linear Display P3"
        ),
        "srgb-linear": named(
            rgb("rgb", whitepoint=D65, primaries=SRGB_PRIMARIES, gamma=1.0), "Linear sRGB"
        ),
        "gray": named(rgb("gray", gamma=2.2), "Gray gamma 2.2"),
    }


@dataclass(frozen=True)
class Sample:
    """One file of the set: its name, profile (key of ``profiles()``), dtype and channels."""

    name: str
    profile: str
    dtype: str  # uint8, uint16, float16, float32
    channels: int  # 1 gray, 3 RGB, 4 RGBA


SAMPLES = (
    Sample("srgb-8.png", "srgb", "uint8", 3),
    Sample("p3-8.png", "p3", "uint8", 4),
    Sample("adobe-8.tif", "adobe", "uint8", 3),
    Sample("p3-16.png", "p3", "uint16", 4),
    Sample("adobe-16.png", "adobe", "uint16", 3),
    Sample("adobe-16.tif", "adobe", "uint16", 4),
    Sample("p3-linear-16.tif", "p3-linear", "uint16", 3),
    Sample("gray-16.png", "gray", "uint16", 1),
    Sample("adobe-f32.tif", "adobe", "float32", 3),
    Sample("srgb-linear-f32.tif", "srgb-linear", "float32", 4),
    Sample("p3-f16.tif", "p3", "float16", 3),
)


def srgb_picture(channels: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3 or 1) float32 in [0, 1]: hue and lightness ramps, a gray ramp, fine noise."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    hue = x / WIDTH * 6
    sat = np.clip(np.stack([abs(hue - 3) - 1, 2 - abs(hue - 2), 2 - abs(hue - 4)], -1), 0, 1)
    light = (y / HEIGHT)[:, :, None]
    rgb = sat * light + (1 - light) * 0.5 * (x / WIDTH)[:, :, None]
    rgb[:6] = (x[:6] / WIDTH)[:, :, None]  # a neutral ramp along the top
    rgb += np.random.default_rng(seed).normal(0, 0.01, rgb.shape).astype(np.float32)
    rgb = np.clip(rgb, 0, 1).astype(np.float32)
    return rgb.mean(axis=2, keepdims=True) if channels == 1 else rgb


def encode(picture_srgb: np.ndarray, icc: bytes, gray: bool) -> np.ndarray:
    """sRGB float pixels converted into the profile ``icc`` (LittleCMS, float32)."""
    space = "gray" if gray else "rgb"
    pixels = picture_srgb[:, :, 0] if gray else picture_srgb
    srgb = imagecodecs.cms_profile("srgb")
    if gray:  # a gray profile takes neutral sRGB in
        pixels = np.repeat(picture_srgb, 3, axis=2)
    out = imagecodecs.cms_transform(
        np.ascontiguousarray(pixels, dtype=np.float32),
        srgb,
        icc,
        colorspace="rgb",
        outcolorspace=space,
        outdtype=np.float32,
    )
    return np.clip(out.reshape(*picture_srgb.shape[:2], -1), 0, 1)


def to_dtype(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith("float"):
        return values.astype(dtype)
    full = np.iinfo(dtype).max
    return np.round(values * full).astype(dtype)


def write_sample(sample: Sample, folder: Path, icc: bytes) -> Path:
    pixels = encode(srgb_picture(sample.channels), icc, sample.channels == 1)
    if sample.channels == 4:
        ramp = np.linspace(0.2, 1, WIDTH, dtype=np.float32)
        pixels = np.concatenate([pixels, np.broadcast_to(ramp, (HEIGHT, WIDTH))[:, :, None]], 2)
    array = to_dtype(pixels, sample.dtype)
    path = folder / sample.name
    if path.suffix == ".tif":
        colour = sample.channels >= 3
        tifffile.imwrite(
            path,
            array if sample.channels > 1 else array[:, :, 0],
            photometric="rgb" if colour else "minisblack",
            extrasamples=["unassalpha"] if sample.channels == 4 else None,
            iccprofile=icc,
        )
    elif array.dtype == np.uint8:
        Image.fromarray(array if sample.channels > 1 else array[:, :, 0]).save(
            path, icc_profile=icc
        )
    else:
        write_png16(path, array, icc)
    return path


def write_png16(path: Path, array: np.ndarray, icc: bytes) -> None:
    """A 16-bit PNG with an iCCP chunk, by pypng (independent of stylebridge's writer)."""
    h, w, c = array.shape
    buffer = io.BytesIO()
    png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16).write(
        buffer, array.reshape(h, w * c)
    )
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    chunks.insert(1, (b"iCCP", b"profile\x00\x00" + zlib.compress(icc)))
    with open(path, "wb") as f:
        png.write_chunks(f, chunks)


def write_gamut(folder: Path, icc: bytes) -> Path:
    """Adobe RGB float colours well outside sRGB (saturated greens and cyans)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    pixels = np.stack([x / WIDTH * 0.3, np.full_like(x, 0.9), y / HEIGHT * 0.6], -1)
    path = folder / "gamut.tif"
    tifffile.imwrite(path, pixels.astype(np.float32), photometric="rgb", iccprofile=icc)
    return path


def write_colour_set(folder: Path) -> list[Path]:
    """Write every sample of ``SAMPLES`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    icc = profiles()
    return [write_sample(s, folder, icc[s.profile]) for s in SAMPLES]


def read_raw(path: Path) -> tuple[np.ndarray, bytes | None]:
    """(H, W, C) float64 in [0, 1] and the ICC profile, read without stylebridge: tifffile,
    pypng for 16-bit PNG, Pillow for 8-bit."""
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            array, icc = page.asarray(), page.tags.get(34675)
            icc = icc.value if icc is not None else None
    else:
        with Image.open(path) as img:
            icc = img.info.get("icc_profile")
        reader = png.Reader(filename=str(path))
        width, height, rows, info = reader.asDirect()
        array = np.vstack([np.asarray(r) for r in rows]).reshape(height, width, info["planes"])
    array = array.reshape(*array.shape[:2], -1)
    if array.dtype.kind in "ui":
        return array / np.iinfo(array.dtype).max, icc
    return array.astype(np.float64), icc


def to_lab(path: Path) -> np.ndarray:
    """A file's colours (alpha dropped) as CIE Lab (D50), through its profile (untagged:
    sRGB) by LittleCMS to XYZ, unbounded: colours outside sRGB stay what they are."""
    array, icc = read_raw(path)
    gray = array.shape[2] <= 2
    pixels = array[:, :, 0] if gray else array[:, :, :3]
    xyz = imagecodecs.cms_transform(
        np.ascontiguousarray(pixels, dtype=np.float32),
        icc or imagecodecs.cms_profile("srgb"),
        imagecodecs.cms_profile("xyz"),
        colorspace="gray" if gray else "rgb",
        outcolorspace="xyz",
        outdtype=np.float32,
    )
    d50 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    return colour.XYZ_to_Lab(xyz.astype(np.float64), d50)


def delta_e(a: Path, b: Path) -> np.ndarray:
    """CIEDE2000 between two files' colours, per pixel (alpha ignored: it travels untouched)."""
    return colour.delta_E(to_lab(a), to_lab(b), method="CIE 2000")


def mean_delta_e(a: Path, b: Path) -> float:
    return float(np.mean(delta_e(a, b)))


def stylize_at_strength_0(
    content: Path, out: Path, runtime: Path, *extra: str
) -> subprocess.CompletedProcess:
    """`stylebridge stylize CONTENT STYLE -o OUT --strength 0` against the server whose
    discovery file is in ``runtime``, with the demo painting as the style."""
    style = str(assets.DEFAULT_STYLE)
    cmd = [sys.executable, "-m", "stylebridge.server.cli", "stylize", str(content), style]
    cmd += ["-o", str(out), "--strength", "0", "--size", "64", "--steps", "3", "-q", *extra]
    env = clean_env(STYLEBRIDGE_RUNTIME_DIR=str(runtime))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
