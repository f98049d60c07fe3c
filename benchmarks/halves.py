"""Krita's F16 layers on the wire: a 4000x3000 RGBA float16 layer converted to float32 (the
way out) and back (the way in), by the code before issue 18 (a Python generator clamping each
sample on the way in, measured in the same run) and by `stylebridge_wire.pixels` now, with
numpy and without it (the Debian Pythons Krita and GIMP run in have none). Wall time, best of
``--repeat``; docs/benchmarks.md, "Colour and bit depth", "Hosts".

`python -m benchmarks.halves [--width W --height H --repeat N]`
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable

import numpy as np

from stylebridge.wire import pixels

_CHUNK = 1 << 20


def before_half_to_float(data: bytes) -> bytes:
    """The conversion out, as it was: struct in chunks (already a C loop)."""
    count = len(data) // 2
    parts = []
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        values = struct.unpack_from(f"<{n}e", data, 2 * start)
        parts.append(struct.pack(f"<{n}f", *values))
    return b"".join(parts)


def before_float_to_half(data: bytes) -> bytes:
    """The conversion in, as it was: a generator clamping every sample to 0..1."""
    count = len(data) // 4
    parts = []
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        values = struct.unpack_from(f"<{n}f", data, 4 * start)
        parts.append(struct.pack(f"<{n}e", *(min(1.0, max(0.0, v)) for v in values)))
    return b"".join(parts)


def layer_f16(width: int, height: int) -> bytes:
    """An RGBA float16 layer: smooth ramps with noise, values in 0..1."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    values = np.clip(ramp + rng.normal(0, 0.02, (height, width, 4)).astype(np.float32), 0, 1)
    values[..., 3] = 1
    return values.astype("<f2").tobytes()


def best(fn: Callable[[bytes], bytes], data: bytes, repeat: int) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(data)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    halves = layer_f16(args.width, args.height)
    print(f"RGBA F16 {args.width}x{args.height}: {len(halves) / 2**20:.0f} MiB of halves")
    t_out, floats = best(before_half_to_float, halves, args.repeat)
    t_in, back = best(before_float_to_half, floats, args.repeat)
    assert back == halves
    print(f"before            out {t_out:6.2f} s   in {t_in:6.2f} s")
    numpy = pixels._np
    for name, module in (("numpy", numpy), ("stdlib", None)):
        pixels._np = module
        try:
            out, got = best(pixels.half_to_float, halves, args.repeat)
            back_in, back = best(pixels.float_to_half, got, args.repeat)
        finally:
            pixels._np = numpy
        assert (got, back) == (floats, halves)  # the same bytes as before
        print(
            f"after, {name:<7}   out {out:6.2f} s ({t_out / out:5.1f}x)   "
            f"in {back_in:6.2f} s ({t_in / back_in:5.1f}x)"
        )


if __name__ == "__main__":
    main()
