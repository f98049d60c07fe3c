"""Codec benchmark (`make bench-codecs`): 16-bit PNG decoders and encoders against pypng, the
CLI's file path for a 4000x3000 16-bit RGBA PNG and TIFF before and after, and the cost and
precision of the ICC conversion.

Every speed is a ratio against pypng (or the path before) measured in this same run.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import png
from PIL import Image, ImageCms

from stylebridge.core.images import (
    layer_from_array,
    layer_from_pil,
    layer_to_array,
    layer_to_pil,
    load_image,
    save_image,
)
from stylebridge.core.profiles import srgb_icc
from testing.colour_set import profiles

HEIGHT, WIDTH = 3000, 4000


def picture() -> np.ndarray:
    """4000x3000 16-bit RGBA: smooth ramps with sensor-like noise (compresses like a photo)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    rgba = np.stack([x / WIDTH, y / HEIGHT, (x + y) / (WIDTH + HEIGHT), 0.5 + x / WIDTH / 2], -1)
    noise = np.random.default_rng(0).normal(0, 200, rgba.shape).astype(np.float32)
    return np.clip(rgba * 65535 + noise, 0, 65535).astype(np.uint16)


def seconds(work: Callable[[], object], repeat: int = 3) -> float:
    """The best of ``repeat`` wall times: the machine is shared."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def ratio(before: float, after: float) -> str:
    return f"{before / after:.1f}x faster" if after <= before else f"{after / before:.1f}x slower"


def pypng_decode(data: bytes) -> np.ndarray:
    width, height, rows, info = png.Reader(bytes=data).read()
    flat = np.empty((height, width * info["planes"]), dtype=np.uint16)
    for i, row in enumerate(rows):
        flat[i] = row
    return flat.reshape(height, width, info["planes"])


def pypng_encode(array: np.ndarray) -> bytes:
    h, w, c = array.shape
    buffer = io.BytesIO()
    png.Writer(w, h, greyscale=False, alpha=c == 4, bitdepth=16).write(
        buffer, array.reshape(h, w * c)
    )
    return buffer.getvalue()


def cv2_decode(data: bytes) -> np.ndarray:
    bgra = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)  # OpenCV's order is BGR(A)


def cv2_encode(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA))[1].tobytes()


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:  # RGBA: 8 bits of the 16
        return np.asarray(img)


def libpng_fast(array: np.ndarray) -> bytes:
    """stylebridge's settings (OpenCV's): level 1, run-length strategy, the Sub filter."""
    return imagecodecs.png_encode(
        array,
        level=imagecodecs.PNG.COMPRESSION.SPEED,
        strategy=imagecodecs.PNG.STRATEGY.RLE,
        filter=imagecodecs.PNG.FILTER.SUB,
    )


def png_codecs(array: np.ndarray) -> None:
    # pypng writes rows unfiltered, which its own decoder undoes fastest; libpng (most programs)
    # chooses a filter per row, which pypng undoes in Python, row by row.
    files = {"pypng": pypng_encode(array), "libpng defaults": imagecodecs.png_encode(array)}
    for writer, data in files.items():
        print(
            f"\n16-bit RGBA PNG {WIDTH}x{HEIGHT} written by {writer}, {len(data) / 2**20:.0f} MiB"
        )
        base = seconds(lambda data=data: pypng_decode(data), repeat=1)
        print("| decoder | s | vs pypng | keeps 16 bits |\n|---|---|---|---|")
        print(f"| pypng | {base:.2f} | 1 | yes |")
        for name, decode in (
            ("imagecodecs.png_decode (libpng; chosen)", imagecodecs.png_decode),
            ("cv2.imdecode IMREAD_UNCHANGED (+ BGRA->RGBA)", cv2_decode),
            ("Pillow", pillow_decode),
        ):
            kept = np.array_equal(decode(data), array)
            t = seconds(lambda decode=decode, data=data: decode(data))
            print(f"| {name} | {t:.2f} | {ratio(base, t)} | {'yes' if kept else 'no'} |")
    base = seconds(lambda: pypng_encode(array), repeat=1)
    print("\n| encoder | s | vs pypng | MiB |\n|---|---|---|---|")
    print(f"| pypng | {base:.2f} | 1 | {len(files['pypng']) / 2**20:.0f} |")
    for name, encode in (
        ("imagecodecs.png_encode, libpng defaults", imagecodecs.png_encode),
        ("imagecodecs.png_encode, OpenCV's settings (chosen)", libpng_fast),
        ("cv2.imencode (level 1, RLE, Sub)", cv2_encode),
    ):
        size = len(encode(array)) / 2**20
        t = seconds(lambda encode=encode: encode(array))
        print(f"| {name} | {t:.2f} | {ratio(base, t)} | {size:.0f} |")


def file_path(array: np.ndarray, folder: Path) -> None:
    """The CLI's own calls, save_image and load_image (float32 layers, an fsync'ed atomic
    write), against what they did before this change, with the same layer conversions: pypng
    for 16-bit PNG, Pillow at 8 bits for TIFF."""
    layer = layer_from_array(array)
    print(f"\nCLI file path, 16-bit RGBA {WIDTH}x{HEIGHT} (save_image / load_image)")
    print("| file | before: write / read s | after: write / read s | depth before / after |")
    print("|---|---|---|---|")
    old_png, old_tif = folder / "old.png", folder / "old.tif"
    before = {
        ".png": (
            seconds(lambda: old_png.write_bytes(pypng_encode(layer_to_array(layer, np.uint16)))),
            seconds(lambda: layer_from_array(pypng_decode(old_png.read_bytes())), repeat=1),
            16,
        ),
        ".tif": (
            seconds(lambda: layer_to_pil(layer).save(old_tif, format="TIFF")),
            seconds(lambda: layer_from_pil(Image.open(old_tif))),
            8,
        ),
    }
    other = folder / "other.png"  # written as most programs write, with libpng's defaults
    other.write_bytes(imagecodecs.png_encode(array))
    read_before = seconds(lambda: layer_from_array(pypng_decode(other.read_bytes())), repeat=1)
    read = seconds(lambda: load_image(other))
    print(
        f"| .png from libpng's defaults, read | - / {read_before:.2f} | - / {read:.2f} "
        f"({ratio(read_before, read)}) | 16 / 16 |"
    )
    for ext, (write_before, read_before, depth) in before.items():
        path = folder / f"new{ext}"
        write = seconds(lambda path=path: save_image(layer, path))
        read = seconds(lambda path=path: load_image(path))
        print(
            f"| {ext} | {write_before:.2f} / {read_before:.2f} | {write:.2f} / {read:.2f} "
            f"({ratio(write_before, write)} / {ratio(read_before, read)}) | {depth} / "
            f"{load_image(path).bit_depth} |"
        )


def conversion(array: np.ndarray) -> None:
    """An Adobe RGB file to sRGB and back: LittleCMS on float32 (imagecodecs, chosen), on
    16-bit integers (imagecodecs) and on 8 bits (Pillow's ImageCms, the only depth it takes
    for RGB): time for 12 MP and the worst error of the round trip, on colours inside sRGB."""
    adobe, srgb = profiles()["adobe"], srgb_icc()
    rgb16 = imagecodecs.cms_transform(
        np.ascontiguousarray(array[:, :, :3]), srgb, adobe, colorspace="rgb", outcolorspace="rgb"
    )  # Adobe RGB pixels that sRGB holds
    print("\nICC conversion, Adobe RGB <-> sRGB, 4000x3000 RGB")
    print("| path | s one way | round trip worst error |\n|---|---|---|")

    def cms(values, source, target, **kw):
        return imagecodecs.cms_transform(
            values, source, target, colorspace="rgb", outcolorspace="rgb", **kw
        )

    f = rgb16.astype(np.float32) / 65535
    t = seconds(lambda: cms(f, adobe, srgb, outdtype=np.float32), repeat=1)
    back = cms(cms(f, adobe, srgb, outdtype=np.float32), srgb, adobe, outdtype=np.float32)
    print(f"| LittleCMS float32 (chosen) | {t:.2f} | {np.abs(back - f).max() * 65535:.2f}/65535 |")
    t = seconds(lambda: cms(rgb16, adobe, srgb), repeat=1)
    back16 = cms(cms(rgb16, adobe, srgb), srgb, adobe)
    worst = np.abs(back16.astype(np.int64) - rgb16).max()
    print(f"| LittleCMS 16-bit integer | {t:.2f} | {worst}/65535 |")
    rgb8 = np.round(rgb16 / 257).astype(np.uint8)
    to_srgb = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(adobe)),
        ImageCms.ImageCmsProfile(io.BytesIO(srgb)),
        "RGB",
        "RGB",
    )
    to_adobe = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(srgb)),
        ImageCms.ImageCmsProfile(io.BytesIO(adobe)),
        "RGB",
        "RGB",
    )
    image = Image.fromarray(rgb8)
    t = seconds(lambda: ImageCms.applyTransform(image, to_srgb), repeat=1)
    back8 = np.asarray(ImageCms.applyTransform(ImageCms.applyTransform(image, to_srgb), to_adobe))
    worst = np.abs(back8.astype(np.int64) * 257 - rgb16).max()
    print(f"| Pillow ImageCms, 8-bit | {t:.2f} | {worst}/65535 (the 16-bit source) |")


def main() -> None:
    array = picture()
    png_codecs(array)
    with tempfile.TemporaryDirectory() as tmp:
        file_path(array, Path(tmp))
    conversion(array)


if __name__ == "__main__":
    main()
