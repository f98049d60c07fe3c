"""Colour round trips at balance 0 (the engine hands the content back) of documents in other
profiles than Krita's sRGB, and of an sRGB one as the control. Each holds `pattern_rgba8`'s
sRGB colours, converted by Krita into its space (so they lie inside sRGB's gamut). Reported:
what the plug-in sends (its own capture), the source and result layers as stored, both as
Krita's CIE Lab (LABA F32), the result as float sRGB, and the scratch documents left open."""

import os
import runpy
import struct

from krita import Krita

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))
W, H = 64, 48
CASES = {  # name: (depth, profile)
    "srgb-u8": ("U8", "sRGB-elle-V2-srgbtrc.icc"),
    "linear-f32": ("F32", "sRGB-elle-V2-g10.icc"),
    "linear-f16": ("F16", "sRGB-elle-V2-g10.icc"),
    "linear-u16": ("U16", "sRGB-elle-V2-g10.icc"),
    "clay-u16": ("U16", "ClayRGB-elle-V2-g22.icc"),
    "rec2020-linear-f32": ("F32", "Rec2020-elle-V4-g10.icc"),
}


def floats(data):
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def document_in(name, depth, profile):
    """The pattern in sRGB (F32), then converted by Krita to ``depth`` and ``profile``."""
    doc, layer = common["new_document"](W, H, "RGBA", "F32", name)
    if not doc.setColorSpace("RGBA", "F32", "sRGB-elle-V2-srgbtrc.icc"):  # values as sRGB
        raise RuntimeError("no sRGB")
    layer.setPixelData(common["encode"](common["pattern_rgba8"](W, H), "RGBA", "F32"), 0, 0, W, H)
    if not doc.setColorSpace("RGBA", depth, profile):
        raise RuntimeError(f"Krita refused {depth} {profile}")
    doc.waitForDone()
    return doc, layer


def seen_as(host, node, depth, profile, target):
    """The layer converted by Krita to ``target`` (through the plug-in's scratch conversion)."""
    data = bytes(node.pixelData(0, 0, W, H))
    return floats(host.convert(data, W, H, host.Space("RGBA", depth, profile), target))


def main():
    import stylebridge_krita
    from stylebridge_krita import host

    # Krita's CIE Lab (L 0..100), by its profile's name: a layer converts only to a named one
    LAB = host.Space("LABA", "F32", Krita.instance().profiles("LABA", "F32")[0])
    report = {}
    for name, (depth, profile) in CASES.items():
        doc, source = document_in(name, depth, profile)
        sent = host.capture(doc, source).content
        node = stylebridge_krita.stylize_active_layer(
            "the_scream", preset="fast", size=48, steps=2, seed=1, balance=0.0
        )
        report[name] = {
            "doc_space": [doc.colorModel(), doc.colorDepth(), doc.colorProfile()],
            "result_space": [node.colorModel(), node.colorDepth(), node.colorProfile()],
            "sent_dtype": sent.dtype,
            "sent": floats(sent.data) if sent.dtype == "float32" else list(sent.data),
            "source": common["decode"](bytes(source.pixelData(0, 0, W, H)), "RGBA", depth),
            "result": common["decode"](bytes(node.pixelData(0, 0, W, H)), "RGBA", depth),
            "result_srgb": seen_as(host, node, depth, profile, host.Space.working("RGBA")),
            "source_lab": seen_as(host, source, depth, profile, LAB),
            "result_lab": seen_as(host, node, depth, profile, LAB),
        }
        doc.setModified(False)
        doc.close()
    report["documents_left"] = [d.name() for d in Krita.instance().documents()]
    return report
