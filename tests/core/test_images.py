"""core/images.py: every mode in and out, exact conversions, bad input, bombs, atomic saves.

Fixtures are generated here in tmp_path (Pillow, pypng, numpy); nothing binary is committed.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import png
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile, ImageOps

from stylebridge.core import images
from stylebridge.core.errors import InputError
from stylebridge.core.images import (
    MIN_SIDE,
    Layer,
    layer_from_array,
    layer_from_pil,
    layer_to_array,
    layer_to_pil,
    load_image,
    save_image,
)
from stylebridge.core.settings import DEFAULT_MAX_PIXELS

H, W = 40, 48  # over MIN_SIDE, not square so that a transposition shows
NATIVE = {8: np.uint8, 16: np.uint16, 32: np.float32}


def noise(shape: tuple[int, ...], dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def write_png16(path: Path, arr: np.ndarray, **kw) -> Path:
    """arr: (H, W, C) uint16; C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA."""
    h, w, c = arr.shape
    writer = png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16, **kw)
    with open(path, "wb") as f:
        writer.write(f, arr.reshape(h, w * c))
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(path: Path, width: int, height: int, depth: int = 8, colour: int = 2) -> Path:
    """A PNG that claims a size in IHDR and holds almost no data: a bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    body = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def add_exif_chunk(path: Path, orientation: int) -> None:
    """Insert an eXIf chunk (after IHDR) into a PNG written by pypng."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    data = data[6:] if data.startswith(b"Exif\x00\x00") else data  # eXIf holds bare TIFF
    chunks = list(png.Reader(filename=str(path)).chunks())
    chunks.insert(1, (b"eXIf", data))
    with open(path, "wb") as f:
        png.write_chunks(f, chunks)


def planes(layer: Layer, depth: int | None = None) -> np.ndarray:
    return layer_to_array(layer, NATIVE[depth or layer.bit_depth])


# --------------------------------------------------------------------------------------------
# Every mode: load -> save -> load keeps pixels, mode family and bit depth


def _pil(img: Image.Image, path: Path, **save) -> Path:
    img.save(path, **save)
    return path


def _palette(transparent: bool) -> Image.Image:
    img = Image.fromarray(noise((H, W, 3))).quantize(16)
    if transparent:
        img.info["transparency"] = 3
    return img


# id -> (build(tmp_path) -> file, expected (H, W, C) pixels, grayscale, has alpha, bit depth)
Case = tuple[Callable[[Path], Path], np.ndarray, bool, bool, int]


def _cases() -> dict[str, Case]:
    rgb8, rgba8 = noise((H, W, 3)), noise((H, W, 4))
    gray8, la8 = noise((H, W)), noise((H, W, 2))
    g16, la16 = noise((H, W, 1), np.uint16), noise((H, W, 2), np.uint16, 1)
    rgb16, rgba16 = noise((H, W, 3), np.uint16, 2), noise((H, W, 4), np.uint16, 3)
    bits = noise((H, W)) > 127
    ints = noise((H, W), np.uint16).astype(np.int32)
    big = (noise((H, W), np.uint16).astype(np.int64) * 30000).astype(np.int32)
    floats = noise((H, W), np.float32)
    pal, pal_t = _palette(False), _palette(True)
    pal_alpha = np.where(np.asarray(pal_t) == 3, 0, 255).astype(np.uint8)
    cmyk = Image.fromarray(noise((H, W, 4)), "CMYK")
    ycc = Image.fromarray(rgb8).convert("YCbCr")
    pa = Image.fromarray(la8).convert("PA")
    key = int(gray8[0, 0])
    gray_t = np.where(gray8 == key, 0, 255).astype(np.uint8)
    return {
        "1": (
            lambda d: _pil(Image.fromarray(bits), d / "a.png"),
            np.where(bits, 255, 0).astype(np.uint8)[..., None],
            True,
            False,
            8,
        ),
        "L": (
            lambda d: _pil(Image.fromarray(gray8), d / "a.png"),
            gray8[..., None],
            True,
            False,
            8,
        ),
        "L+tRNS": (
            lambda d: _pil(Image.fromarray(gray8), d / "a.png", transparency=key),
            np.stack([gray8, gray_t], 2),
            True,
            True,
            8,
        ),
        "LA": (lambda d: _pil(Image.fromarray(la8), d / "a.png"), la8, True, True, 8),
        "RGB": (lambda d: _pil(Image.fromarray(rgb8), d / "a.png"), rgb8, False, False, 8),
        "RGBA": (lambda d: _pil(Image.fromarray(rgba8), d / "a.png"), rgba8, False, True, 8),
        "P": (lambda d: _pil(pal, d / "a.png"), np.asarray(pal.convert("RGB")), False, False, 8),
        "P+transparency": (
            lambda d: _pil(pal_t, d / "a.png", transparency=3),
            np.dstack([np.asarray(pal_t.convert("RGB")), pal_alpha]),
            False,
            True,
            8,
        ),
        "P+transparency-gif": (
            lambda d: _pil(pal_t, d / "a.gif", transparency=3),
            np.dstack([np.asarray(pal_t.convert("RGB")), pal_alpha]),
            False,
            True,
            8,
        ),
        "PA": (lambda d: _pil(pa, d / "a.tif"), np.asarray(pa.convert("RGBA")), False, True, 8),
        "CMYK": (
            lambda d: _pil(cmyk, d / "a.tif"),
            np.asarray(cmyk.convert("RGB")),
            False,
            False,
            8,
        ),
        "CMYK-jpeg": (
            lambda d: _pil(cmyk, d / "a.jpg", quality=100),
            None,
            False,
            False,
            8,  # lossy: checked against Pillow's own decode
        ),
        "YCbCr": (
            lambda d: _pil(ycc, d / "a.tif"),
            np.asarray(ycc.convert("RGB")),
            False,
            False,
            8,
        ),
        "I;16-png": (
            lambda d: _pil(Image.fromarray(g16[..., 0]), d / "a.png"),
            g16,
            True,
            False,
            16,
        ),
        "I;16B-tiff": (
            lambda d: _pil(Image.fromarray(g16[..., 0].astype(">u2")), d / "a.tif"),
            g16,
            True,
            False,
            16,
        ),
        "I-16bit-values": (
            lambda d: _pil(Image.fromarray(ints), d / "a.tif"),
            ints.astype(np.uint16)[..., None],
            True,
            False,
            16,
        ),
        "I-beyond-16bit": (
            lambda d: _pil(Image.fromarray(big), d / "a.tif"),
            (big / np.iinfo(np.int32).max).astype(np.float32)[..., None],
            True,
            False,
            32,
        ),
        "F": (
            lambda d: _pil(Image.fromarray(floats), d / "a.tif"),
            floats[..., None],
            True,
            False,
            32,
        ),
        "png16-gray": (lambda d: write_png16(d / "a.png", g16), g16, True, False, 16),
        "png16-gray+alpha": (lambda d: write_png16(d / "a.png", la16), la16, True, True, 16),
        "png16-RGB": (lambda d: write_png16(d / "a.png", rgb16), rgb16, False, False, 16),
        "png16-RGBA": (lambda d: write_png16(d / "a.png", rgba16), rgba16, False, True, 16),
        "png16-RGB+tRNS": (
            lambda d: write_png16(
                d / "a.png", rgb16, transparent=tuple(int(v) for v in rgb16[0, 0])
            ),
            np.dstack([rgb16, np.where((rgb16 == rgb16[0, 0]).all(2), 0, 65535).astype(np.uint16)]),
            False,
            True,
            16,
        ),
        "png16-interlaced": (
            lambda d: write_png16(d / "a.png", rgba16, interlace=True),
            rgba16,
            False,
            True,
            16,
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_mode_round_trip(case: str, tmp_path: Path) -> None:
    build, expected, gray, alpha, depth = CASES[case]
    source = build(tmp_path)
    first = load_image(source)
    assert (first.grayscale, first.alpha is not None, first.bit_depth) == (gray, alpha, depth)
    assert first.size == (W, H)
    assert first.rgb.dtype == np.float32 and first.rgb.shape == (3, H, W)
    assert float(first.rgb.min()) >= 0 and float(first.rgb.max()) <= 1
    if gray:  # three equal channels
        assert np.array_equal(first.rgb[0], first.rgb[1])
        assert np.array_equal(first.rgb[0], first.rgb[2])
    if expected is None:
        expected = np.asarray(Image.open(source).convert("RGB"))
    got = planes(first)
    if depth == 32:
        np.testing.assert_allclose(got, expected, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)

    out = tmp_path / "out.png"
    save_image(first, out)
    second = load_image(out)
    assert (second.grayscale, second.alpha is not None) == (gray, alpha)
    if depth == 32:  # PNG holds at most 16 bits: float sources come back 16-bit
        assert second.bit_depth == 16
        np.testing.assert_allclose(planes(second, 32), planes(first), atol=0.5 / 65535 + 1e-7)
    else:
        assert second.bit_depth == depth
        np.testing.assert_array_equal(planes(second), got)
        with Image.open(out) as img:  # and the file itself is in the same family
            assert img.mode == _png_mode(gray, alpha, depth)


def _png_mode(gray: bool, alpha: bool, depth: int) -> str:
    if depth == 8:
        return ("LA" if alpha else "L") if gray else ("RGBA" if alpha else "RGB")
    # What Pillow reports for the 16-bit files pypng wrote (it reads them reduced).
    return "RGBA" if alpha else ("I;16" if gray else "RGB")


def test_16bit_png_header_and_values_not_multiples_of_257(tmp_path: Path) -> None:
    arr = np.array([[[1, 2, 65534], [257, 4097, 60001]]], np.uint16).repeat(32, 0).repeat(16, 1)
    assert (arr % 257 != 0).any()
    layer = load_image(write_png16(tmp_path / "a.png", arr))
    assert layer.bit_depth == 16 and not layer.grayscale
    np.testing.assert_array_equal(layer_to_array(layer, np.uint16), arr)
    save_image(layer, tmp_path / "b.png")
    _, _, rows, info = png.Reader(filename=str(tmp_path / "b.png")).read()
    assert info["bitdepth"] == 16 and not info["greyscale"] and not info["alpha"]
    np.testing.assert_array_equal(np.vstack([np.asarray(r) for r in rows]).reshape(arr.shape), arr)


def test_alpha_passes_through_untouched(tmp_path: Path) -> None:
    rgba = noise((H, W, 4), np.uint16, 7)
    rgba[..., 3][:, :10] = 0  # fully clear pixels keep their colour: straight, not premultiplied
    layer = load_image(write_png16(tmp_path / "a.png", rgba))
    np.testing.assert_array_equal(layer_to_array(layer, np.uint16), rgba)
    assert np.array_equal(layer.alpha[0], rgba[..., 3].astype(np.float32) / np.float32(65535))
    for ext in (".png", ".tif", ".webp"):
        save_image(layer, tmp_path / f"b{ext}")
        back = load_image(tmp_path / f"b{ext}")
        assert back.alpha is not None
        np.testing.assert_array_equal(
            layer_to_array(back, np.uint8)[..., 3], layer_to_array(layer, np.uint8)[..., 3]
        )


# --------------------------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation: int, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(noise((H, W, 3))).save(path, exif=exif)
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    np.testing.assert_array_equal(layer_to_array(load_image(path), np.uint8), expected)


def test_exif_orientation_6_rotates_jpeg(tmp_path: Path) -> None:
    arr = np.zeros((H, W, 3), np.uint8)
    arr[: H // 2, : W // 2] = (255, 0, 0)  # red top-left quadrant
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(tmp_path / "o.jpg", exif=exif, quality=95)
    layer = load_image(tmp_path / "o.jpg")
    assert layer.size == (H, W)  # width and height swapped
    got = layer_to_array(layer, np.uint8)
    top_right = got[: W // 2 - 4, H // 2 + 4 :].reshape(-1, 3).mean(0)
    assert top_right[0] > 200 and top_right[1] < 50  # top-left went to the top right
    assert got[W // 2 + 4 :, : H // 2 - 4].mean() < 30


def test_exif_orientation_6_rotates_16bit_png(tmp_path: Path) -> None:
    arr = noise((H, W, 3), np.uint16, 5)
    path = write_png16(tmp_path / "o.png", arr)
    add_exif_chunk(path, 6)
    layer = load_image(path)
    assert layer.size == (H, W) and layer.bit_depth == 16
    np.testing.assert_array_equal(layer_to_array(layer, np.uint16), np.rot90(arr, -1))


# --------------------------------------------------------------------------------------------
# Saving: formats, atomicity


def test_jpeg_drops_alpha_over_white_and_keeps_gray(tmp_path: Path) -> None:
    rgb = np.zeros((3, H, W), np.float32)
    alpha = np.ones((1, H, W), np.float32)
    alpha[:, :, : W // 2] = 0  # left half clear
    save_image(Layer(rgb, alpha, False, 8), tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.mode == "RGB"
        got = np.asarray(img)
    assert got[:, : W // 2 - 4].min() > 245 and got[:, W // 2 + 4 :].max() < 10
    gray = load_image(tmp_path / "a.jpg")
    save_image(Layer(np.repeat(gray.rgb[:1], 3, axis=0), None, True, 8), tmp_path / "g.JPEG")
    with Image.open(tmp_path / "g.JPEG") as img:
        assert img.mode == "L" and img.format == "JPEG"


@pytest.mark.parametrize("ext", [".webp", ".jpeg"])
def test_8bit_formats_save_8bit_and_say_so(ext: str, tmp_path: Path) -> None:
    arr = noise((H, W, 3), np.uint16)
    arr[:] = arr[:1, :1]  # flat colour: lossy formats keep it closely
    layer = layer_from_array(arr)
    save_image(layer, tmp_path / f"a{ext}")
    back = load_image(tmp_path / f"a{ext}")
    assert back.bit_depth == 8 and back.size == (W, H)
    diff = np.abs(layer_to_array(back, np.float32) - layer_to_array(layer, np.float32))
    assert diff.max() <= 4 / 255
    warning = images.output_warning(layer, tmp_path / f"a{ext}")
    assert warning == f"{tmp_path / f'a{ext}'} is 8-bit: the 16-bit content loses depth"


@pytest.mark.parametrize("ext", [".tif", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_tiff_keeps_depth_channels_and_values(ext, dtype, channels, tmp_path: Path) -> None:
    arr = noise((H, W, channels), dtype)
    layer = layer_from_array(arr)
    save_image(layer, tmp_path / f"a{ext}")
    back = load_image(tmp_path / f"a{ext}")
    assert back.bit_depth == layer.bit_depth and back.grayscale == layer.grayscale
    assert np.array_equal(layer_to_array(back, dtype), arr)
    assert images.output_warning(layer, tmp_path / f"a{ext}") is None


def test_png_of_a_float_layer_is_16bit_and_says_so(tmp_path: Path) -> None:
    layer = layer_from_array(noise((H, W, 3), np.float32))
    save_image(layer, tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").bit_depth == 16
    warning = images.output_warning(layer, tmp_path / "a.png")
    assert warning == f"{tmp_path / 'a.png'} is 16-bit: the 32-bit float content loses depth"


def hdr_array() -> np.ndarray:
    """Float RGBA with an HDR highlight (4.0), a colour outside sRGB (-0.2), alpha 1.5."""
    arr = noise((H, W, 4), np.float32)
    arr[:4, :4, :3] = 4.0
    arr[-4:, -4:, 1] = -0.2
    arr[0, -1, 3] = 1.5
    return arr


def test_float_values_beyond_0_1_ride_aside_and_come_back_in_float(tmp_path: Path) -> None:
    arr = hdr_array()
    layer = layer_from_array(arr)
    assert layer.rgb.min() == 0 and layer.rgb.max() == 1  # what the engine sees
    assert layer.excess[:, 0, 0].tolist() == [3.0] * 3
    assert layer.excess[1, -1, -1] == np.float32(-0.2) and layer.excess[0, -1, -1] == 0
    expected = arr.copy()
    expected[0, -1, 3] = 1.0  # alpha is opacity: clamped
    assert np.array_equal(layer_to_array(layer, np.float32), expected)  # exactly
    save_image(layer, tmp_path / "a.tif")
    assert np.array_equal(
        load_image(tmp_path / "a.tif").unclipped(), expected[..., :3].transpose(2, 0, 1)
    )
    assert images.output_warning(layer, tmp_path / "a.tif") is None
    assert layer_from_array(noise((H, W, 3), np.float32)).excess is None  # nothing aside


def test_integer_outputs_clip_what_lies_beyond_0_1_and_say_so(tmp_path: Path) -> None:
    layer = layer_from_array(hdr_array())
    ints = layer_to_array(layer, np.uint16)
    assert ints[0, 0, :3].tolist() == [65535] * 3 and ints[-1, -1, 1] == 0
    save_image(layer, tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png").rgb, layer_from_array(ints).rgb)
    warning = images.output_warning(layer, tmp_path / "a.png")
    assert warning == (
        f"{tmp_path / 'a.png'} is 16-bit: the 32-bit float content loses depth; 1.11% of the "
        "samples lie beyond [0, 1] (from -0.2 to 4), so they are clipped"
    )


def test_unsupported_extension_lists_the_supported(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        save_image(layer_from_array(noise((H, W, 3))), tmp_path / "out.bmp")
    assert "out.bmp" in str(e.value) and ".png" in str(e.value) and ".webp" in str(e.value)
    with pytest.raises(InputError, match="no extension"):
        save_image(layer_from_array(noise((H, W, 3))), tmp_path / "out")


def test_save_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as e:
        save_image(layer_from_array(noise((H, W, 3))), tmp_path / "nope" / "out.png")
    assert "out.png" in str(e.value)


def test_atomic_save_keeps_old_file_when_writer_fails(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"the old image")

    def half_then_crash(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise RuntimeError("crash in the middle")

    monkeypatch.setattr(Image.Image, "save", half_then_crash)
    with pytest.raises(RuntimeError, match="crash in the middle"):
        save_image(layer_from_array(noise((H, W, 3))), out)
    assert out.read_bytes() == b"the old image"
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left behind


def test_atomic_save_disk_full_is_input_error(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"the old image")

    def disk_full(array: np.ndarray, **settings) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.imagecodecs, "png_encode", disk_full)
    with pytest.raises(InputError, match="no space left on device") as e:
        save_image(layer_from_array(noise((H, W, 3), np.uint16)), out)
    assert "out.png" in str(e.value)
    assert out.read_bytes() == b"the old image"
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_replaces_and_keeps_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    out.chmod(0o640)
    save_image(layer_from_array(noise((H, W, 3))), out)
    assert (out.stat().st_mode & 0o777) == 0o640
    assert load_image(out).size == (W, H)
    save_image(layer_from_array(noise((H, W, 3))), tmp_path / "new.png")
    umask = os.umask(0)
    os.umask(umask)
    assert ((tmp_path / "new.png").stat().st_mode & 0o777) == 0o666 & ~umask


# --------------------------------------------------------------------------------------------
# Bad input: one line naming the file and what is wrong


def _truncated(src: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = src(d)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return build


def _big_png8(d: Path) -> Path:
    return _pil(Image.fromarray(noise((64, 64, 3))), d / "cut.png")


def _big_jpeg(d: Path) -> Path:
    return _pil(Image.fromarray(noise((64, 64, 3))), d / "cut.jpg", quality=90)


def _big_png16(d: Path) -> Path:
    return write_png16(d / "cut16.png", noise((64, 64, 3), np.uint16))


def _directory(d: Path) -> Path:
    (d / "folder.png").mkdir()
    return d / "folder.png"


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return build


BAD: dict[str, tuple[Callable[[Path], Path], dict, str]] = {
    "missing": (lambda d: d / "nope.png", {}, "does not exist"),
    "missing-parent": (lambda d: d / "nope" / "x.png", {}, "does not exist"),
    "directory": (_directory, {}, "is a directory"),
    "empty": (_write("empty.png", b""), {}, "is empty (0 bytes)"),
    "truncated-png": (_truncated(_big_png8), {}, "is truncated or corrupt"),
    "truncated-jpeg": (_truncated(_big_jpeg), {}, "is truncated or corrupt"),
    "truncated-png16": (_truncated(_big_png16), {}, "is truncated or corrupt"),
    "text-named-png": (
        _write("notes.png", b"# shopping list\neggs\nmilk\n" * 20),
        {},
        "is a text file, not a PNG image",
    ),
    "unknown-format": (
        _write("blob.xyz", noise((300,)).tobytes()),
        {},
        "is not an image in any format Pillow reads (unknown format)",
    ),
    "garbage-named-jpg": (
        _write("photo.jpg", b"\x01\x02" + noise((300,), seed=1).tobytes()),
        {},
        "is not a JPEG image, nor any format Pillow reads (unknown format)",
    ),
    "too-small": (
        lambda d: _pil(Image.new("RGB", (20, 500)), d / "thin.png"),
        {},
        "is 20x500 px; the smallest side must be at least 32 px",
    ),
    "too-small-custom": (
        lambda d: _pil(Image.new("RGB", (64, 48)), d / "small.png"),
        {"min_side": 50},
        "is 64x48 px; the smallest side must be at least 50 px",
    ),
    "too-many-pixels": (
        lambda d: png_header_only(d / "huge.png", 20000, 20000),
        {},
        "is 20000x20000 px = 400.0 MP, over the limit of 67.1 MP; raise it with --max-pixels",
    ),
    "too-many-pixels-custom": (
        lambda d: _pil(Image.new("RGB", (64, 64)), d / "limit.png"),
        {"max_pixels": 4000},
        "is 64x64 px = 0.0041 MP, over the limit of 0.004 MP; raise it with --max-pixels",
    ),
    "too-many-pixels-png16": (
        lambda d: png_header_only(d / "huge16.png", 20000, 20000, depth=16),
        {},
        "is 20000x20000 px = 400.0 MP, over the limit of 67.1 MP",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_line_naming_file_and_reason(case: str, tmp_path: Path) -> None:
    build, kwargs, reason = BAD[case]
    path = build(tmp_path)
    with pytest.raises(InputError) as e:
        load_image(path, **kwargs)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert reason in message, message
    error = e.value  # no chained Pillow traceback under the message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_unreadable_file(tmp_path: Path, monkeypatch) -> None:
    path = _pil(Image.new("RGB", (64, 64)), tmp_path / "locked.png")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make open() refuse as it would

        def refuse(file, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(file))

        monkeypatch.setattr(images, "open", refuse, raising=False)
    try:
        with pytest.raises(InputError) as e:
            load_image(path)
    finally:
        path.chmod(0o644)
    assert str(e.value) == f"{path} cannot be read: permission denied"


def test_path_types(tmp_path: Path) -> None:
    path = _pil(Image.new("L", (32, 32)), tmp_path / "x.png")
    assert load_image(str(path)).size == load_image(path).size == (32, 32)


@pytest.mark.parametrize("depth", [8, 16])
def test_decompression_bomb_refused_fast_without_decoding(
    depth: int, tmp_path: Path, monkeypatch
) -> None:
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000, depth=depth)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(png.Reader, "read", no_decoding)
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"100000x100000 px = 10000\.0 MP, over the limit"):
        load_image(path)
    assert time.perf_counter() - start < 0.5


def test_our_limit_governs_pillows(tmp_path: Path, monkeypatch) -> None:
    """A limit raised by the user beats Pillow's global one; Pillow's is restored after."""
    path = _pil(Image.fromarray(noise((64, 64, 3))), tmp_path / "a.png")
    tif = _pil(Image.fromarray(noise((64, 64, 3))), tmp_path / "a.tif")  # TIFF checks on load
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 4096 px
    assert load_image(path).size == load_image(tif).size == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(InputError, match="over the limit"):
        load_image(path, max_pixels=4000)


def test_truncated_refused_even_if_pillow_is_told_to_accept(tmp_path: Path, monkeypatch) -> None:
    path = _truncated(_big_png8)(tmp_path)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(InputError, match="truncated"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_pillow_bomb_error_becomes_input_error(monkeypatch) -> None:
    img = Image.new("RGB", (64, 64))

    def bomb():
        raise Image.DecompressionBombError("Image size (4096 pixels) exceeds limit")

    monkeypatch.setattr(img, "load", bomb)
    with pytest.raises(InputError, match=r"^pasted is 64x64 px = 0\.0041 MP, over the limit"):
        layer_from_pil(img, name="pasted")


def test_layer_from_pil_checks_size_and_keeps_caller_image() -> None:
    img = Image.fromarray(noise((H, W, 3)))
    exif = img.getexif()
    exif[0x0112] = 8
    layer = layer_from_pil(img, name="clipboard")
    assert layer.size == (H, W) and img.size == (W, H)
    with pytest.raises(InputError, match=r"^clipboard is 48x40 px; the smallest side"):
        layer_from_pil(img, name="clipboard", min_side=41)


# --------------------------------------------------------------------------------------------
# Arrays and exact conversions


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [0, 1, 2, 3, 4])  # 0: a plain (H, W) array
def test_array_round_trip(dtype, channels: int) -> None:
    shape = (H, W) if channels == 0 else (H, W, channels)
    arr = noise(shape, dtype)
    layer = layer_from_array(arr)
    c = max(channels, 1)
    assert layer.grayscale == (c <= 2) and (layer.alpha is not None) == (c in (2, 4))
    assert layer.bit_depth == {np.uint8: 8, np.uint16: 16, np.float32: 32}[dtype]
    back = layer_to_array(layer, dtype)
    assert back.dtype == np.dtype(dtype) and back.shape == (H, W, c)
    np.testing.assert_array_equal(back, arr.reshape(H, W, c))


def test_every_integer_value_round_trips_exactly() -> None:
    u16 = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    np.testing.assert_array_equal(layer_to_array(layer_from_array(u16), np.uint16), u16)
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    layer = layer_from_array(u8)
    np.testing.assert_array_equal(layer_to_array(layer, np.uint8), u8)
    np.testing.assert_array_equal(layer_to_array(layer, np.uint16), u8.astype(np.uint16) * 257)


def test_layer_to_array_rounds_to_nearest_and_clamps() -> None:
    values = [0.49 / 255, 0.51 / 255, 254.49 / 255, -0.2, 1.7, float("nan")]
    rgb = np.ascontiguousarray(np.broadcast_to(np.float32(values).reshape(1, 1, 6), (3, 1, 6)))
    assert layer_to_array(Layer(rgb), np.uint8)[0, :, 0].tolist() == [0, 1, 254, 0, 255, 0]
    floats = layer_to_array(Layer(rgb), np.float32)[0, :, 0]
    assert floats[3:].tolist() == [0.0, 1.0, 0.0]


def test_grayscale_with_unequal_channels_saves_their_mean() -> None:
    rgb = np.stack([np.full((32, 32), v, np.float32) for v in (0.0, 0.5, 1.0)])
    assert layer_to_array(Layer(rgb, None, True, 8), np.uint8).shape == (32, 32, 1)
    assert np.all(layer_to_array(Layer(rgb, None, True, 8), np.uint8) == 128)


@pytest.mark.parametrize(
    ("arr", "reason"),
    [
        (np.zeros((4, 4, 5), np.uint8), "HxW or HxWxC with C from 1 to 4"),
        (np.zeros((2, 4, 4, 3), np.uint8), "HxW or HxWxC"),
        (np.zeros((4, 4, 3), np.int32), "has dtype int32"),
        (np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
        (np.zeros((0, 4, 3), np.uint8), "is empty"),
    ],
)
def test_bad_arrays(arr: np.ndarray, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as e:
        layer_from_array(arr, name="upload")
    assert str(e.value).startswith("upload ")


def test_layer_to_array_rejects_other_dtypes() -> None:
    with pytest.raises(ValueError, match="uint8, uint16 and float32"):
        layer_to_array(layer_from_array(noise((4, 4))), np.int16)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.uint16, hnp.array_shapes(min_dims=3, max_dims=3, max_side=9).filter(lambda s: s[2] <= 4)
    )
)
def test_uint16_round_trip_hypothesis(arr: np.ndarray) -> None:
    layer = layer_from_array(arr)
    np.testing.assert_array_equal(layer_to_array(layer, np.uint16), arr)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.uint16, st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 4))))
def test_uint16_file_round_trip_hypothesis(arr: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.png"
        save_image(layer_from_array(arr), path)
        back = load_image(path, min_side=1)
    assert back.bit_depth == 16
    np.testing.assert_array_equal(layer_to_array(back, np.uint16), arr)


# --------------------------------------------------------------------------------------------
# Layer and Pillow conversions


def test_layer_basics() -> None:
    layer = layer_from_array(noise((H, W, 4), np.uint16))
    assert layer.size == (W, H)
    new = layer.with_rgb(np.zeros((3, H, W), np.float32))
    assert new.alpha is layer.alpha and new.bit_depth == 16 and not new.grayscale
    with pytest.raises(ValueError, match="shape"):
        layer.with_rgb(np.zeros((3, W, H), np.float32))
    with pytest.raises(ValueError):
        Layer(np.zeros((H, W), np.float32))
    with pytest.raises(ValueError):
        Layer(np.zeros((3, H, W), np.float32), np.zeros((1, H, W + 1), np.float32))
    with pytest.raises(ValueError):
        Layer(np.zeros((3, H, W), np.float32), None, False, 12)
    with pytest.raises(ValueError, match="excess"):
        Layer(np.zeros((3, H, W), np.float32), excess=np.zeros((3, H, W), np.float64))
    hdr = layer_from_array(np.full((H, W, 3), 2.0, np.float32))
    assert hdr.with_rgb(np.zeros((3, H, W), np.float32)).excess is hdr.excess  # rides along
    assert Layer(np.zeros((3, H, W), np.float32)) != Layer(
        np.zeros((3, H, W), np.float32)
    )  # identity, no array ==


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_layer_to_pil_is_8bit(channels: int, mode: str) -> None:
    arr = noise((H, W, channels), np.uint16)
    img = layer_to_pil(layer_from_array(arr))
    assert img.mode == mode and img.size == (W, H)
    expected = np.rint(arr / 257).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(img).reshape(H, W, channels), expected)


def test_constants() -> None:
    assert MIN_SIDE == 32 and DEFAULT_MAX_PIXELS == 8192 * 8192
