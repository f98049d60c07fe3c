"""Times, inside Krita, the plug-in's way out (read a layer, make the server's content) and way
in (the server's answer to the result layer's bytes) for a large RGBA layer at each depth and
profile of CASES: before issue 18 (the layer's own bytes, no conversion) and now (Krita's
conversion to float sRGB and back where the profile is not Krita's sRGB). For
benchmarks/krita_colour.py; KRITA_TIMING_SIZE is "WIDTHxHEIGHT"."""

import os
import struct
import time

from krita import Krita

CASES = [  # (depth, profile)
    ("U16", "sRGB-elle-V2-g10.icc"),
    ("U16", "sRGB-elle-V2-srgbtrc.icc"),
    ("F16", "sRGB-elle-V2-g10.icc"),
    ("F16", "sRGB-elle-V2-srgbtrc.icc"),
    ("F32", "sRGB-elle-V2-g10.icc"),
]
CODES = {"U16": ("H", 65535), "F16": ("e", 1.0), "F32": ("f", 1.0)}


def layer_bytes(width, height, depth):
    """Opaque ramps: one row built in Python, repeated."""
    code, full = CODES[depth]
    row = []
    for x in range(width):
        v = x / (width - 1)
        row += [v * full, (1 - v) * full, 0.5 * full, full]
    if code == "H":
        row = [round(v) for v in row]
    return struct.pack(f"<{len(row)}{code}", *row) * height


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main():
    from stylebridge_krita import host
    from stylebridge_krita.formats import PixelFormat

    width, height = (int(v) for v in os.environ.get("KRITA_TIMING_SIZE", "4000x3000").split("x"))
    report = {"size": [width, height], "numpy": _has_numpy()}
    for depth, profile in CASES:
        doc = Krita.instance().createDocument(width, height, "timing", "RGBA", depth, profile, 72.0)
        layer = doc.rootNode().childNodes()[0]
        layer.setPixelData(layer_bytes(width, height, depth), 0, 0, width, height)
        fmt = PixelFormat.of("RGBA", depth)
        read, raw = timed(layer.pixelData, 0, 0, width, height)
        raw = bytes(raw)
        before_out, image = timed(fmt.to_image, raw, width, height)
        before_in, _ = timed(fmt.from_image, image)
        after_out, cap = timed(host.capture, doc, layer)
        after_in, _ = timed(cap.result_bytes, cap.content)
        report[f"{depth} {profile}"] = {
            "read": read,
            "before_out": read + before_out,
            "before_in": before_in,
            "after_out": after_out,
            "after_in": after_in,
            "travels": [cap.travel.depth, cap.travel.profile],
        }
        doc.close()
    return report


def _has_numpy():
    from stylebridge_krita.stylebridge_wire import pixels

    return pixels._np is not None
