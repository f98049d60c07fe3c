"""Krita pixel layouts <-> the protocol's images. Pure Python, no Krita, no Qt.

Measured on Krita 5.1.5 (`Node.pixelData`): RGBA U8 and U16 are stored BGRA, RGBA F16 and
F32 are RGBA; GRAYA is gray + alpha at every depth; a selection is one byte a pixel. Samples
are little-endian. F16 has no protocol dtype, so it travels as float32.
"""

from __future__ import annotations

import array
import functools
import struct
import sys
from dataclasses import dataclass

from .stylebridge_wire import Image
from .stylebridge_wire.pixels import float_to_half, half_to_float, swap_red_blue

SUPPORTED_MODELS = {"RGBA": 4, "GRAYA": 2}
SUPPORTED_DEPTHS = ("U8", "U16", "F16", "F32")


class UnsupportedFormat(ValueError):
    """A colour model or depth the plug-in cannot stylise; the message says what to do."""


@dataclass(frozen=True)
class PixelFormat:
    """How one Krita colour space lays out its pixels."""

    model: str  # "RGBA" or "GRAYA"
    depth: str  # "U8", "U16", "F16", "F32"

    @classmethod
    def of(cls, model: str, depth: str) -> PixelFormat:
        if model not in SUPPORTED_MODELS:
            raise UnsupportedFormat(
                f"Style transfer works on RGB and grayscale layers; this one is {model} "
                f"({depth}). Convert it with Image > Convert Image Color Space first."
            )
        if depth not in SUPPORTED_DEPTHS:
            raise UnsupportedFormat(
                f"Unsupported colour depth {depth} (supported: U8, U16, F16, F32)"
            )
        return cls(model, depth)

    @property
    def channels(self) -> int:
        return SUPPORTED_MODELS[self.model]

    @property
    def sample_bytes(self) -> int:
        return {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[self.depth]

    @property
    def dtype(self) -> str:
        """The protocol dtype this format travels as."""
        return {"U8": "uint8", "U16": "uint16", "F16": "float32", "F32": "float32"}[self.depth]

    @property
    def bgr(self) -> bool:
        return self.model == "RGBA" and self.depth in ("U8", "U16")

    def to_image(self, data: bytes, width: int, height: int) -> Image:
        """Krita's bytes for a ``width`` x ``height`` rectangle -> a protocol image."""
        if self.depth == "F16":
            data = half_to_float(data)
        elif self.bgr:
            data = swap_red_blue(data, self.sample_bytes)
        return Image(width, height, self.channels, self.dtype, data)

    def from_image(self, image: Image) -> bytes:
        """A protocol image in this format's dtype and channels -> Krita's bytes."""
        if (image.channels, image.dtype) != (self.channels, self.dtype):
            raise ValueError(
                f"expected {self.channels} channels of {self.dtype}, "
                f"got {image.channels} of {image.dtype}"
            )
        if self.depth == "F16":
            return float_to_half(image.data)
        if self.bgr:
            return swap_red_blue(image.data, self.sample_bytes)
        return image.data

    def from_rgba8(self, bgra: bytes) -> bytes:
        """8-bit BGRA (QImage's ARGB32 in memory) -> this format, for preview frames.

        Everything runs in C: one ``bytes.translate`` table per output byte of a sample,
        interleaved with slice assignment.
        """
        if self.model == "GRAYA":  # preview frames are gray already when the content is
            bgra = _interleave([bgra[1::4], bgra[3::4]], 1)
        channels = self.channels
        if self.depth == "U8":
            out = bytearray(bgra)
        elif self.depth == "U16":
            out = _interleave([bgra, bgra], 1)  # v * 257 little-endian is the bytes (v, v)
        else:
            tables = _FLOAT_TABLES[self.depth]
            out = _interleave([bgra.translate(t) for t in tables], 1)
        if self.bgr or channels == 2:
            return bytes(out)
        return swap_red_blue(bytes(out), self.sample_bytes)


def _interleave(planes: list[bytes], size: int) -> bytearray:
    """Interleave equally long byte planes, ``size`` bytes from each at a time."""
    step = size * len(planes)
    out = bytearray(len(planes[0]) * len(planes))
    for i, plane in enumerate(planes):
        for b in range(size):
            out[i * size + b :: step] = plane[b::size]
    return out


def _float_tables(fmt: str) -> list[bytes]:
    """256-entry translate tables: byte k of the encoding of v / 255, for each k."""
    encoded = [struct.pack(fmt, v / 255) for v in range(256)]
    return [bytes(e[k] for e in encoded) for k in range(len(encoded[0]))]


_FLOAT_TABLES = {"F32": _float_tables("<f"), "F16": _float_tables("<e")}


def alpha8(image: Image) -> bytes:
    """The alpha plane of a protocol image as one byte a pixel (all 255 when it has none)."""
    if image.channels in (1, 3):
        return b"\xff" * (image.width * image.height)
    step = image.channels
    if image.dtype == "uint8":
        return image.data[step - 1 :: step]
    if image.dtype == "uint16":
        return image.data[2 * step - 1 :: 2 * step]  # the high byte of each alpha sample
    # float32: the high half of each alpha sample (its top 7 mantissa bits, within 1/256 of the
    # value) looked up in a table, so that no Python code runs per pixel
    pixel = 4 * step
    halves = _interleave([image.data[pixel - 2 :: pixel], image.data[pixel - 1 :: pixel]], 1)
    highs = array.array("H", bytes(halves))
    if sys.byteorder == "big":
        highs.byteswap()
    return bytes(map(_alpha_table().__getitem__, highs))


@functools.lru_cache(maxsize=None)
def _alpha_table() -> bytes:
    """The 8-bit alpha of each float32 high half, taken at the middle of the low halves."""
    halves = [0x8000] * 131072  # (low, high) of each little-endian float32
    halves[1::2] = range(65536)
    values = struct.unpack("<65536f", struct.pack("<131072H", *halves))
    return bytes(0 if v != v else min(255, max(0, round(v * 255))) for v in values)
