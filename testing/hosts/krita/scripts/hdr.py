"""Values beyond 0..1 round trips at balance 0 (the engine hands the content back): float
documents whose pixels hold HDR highlights (linear 4.0 and more) and colours outside sRGB (pure
Rec. 2020 primaries), written straight into the document's own space. Reported: what the
plug-in sends (float sRGB: beyond 0..1 there), the source and result layers as stored, both as
Krita's CIE Lab (LABA F32), and which pixels are the special ones."""

import os
import runpy
import struct

from krita import Krita

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))
W, H = 64, 48
HDR = [(4.0, 4.0, 4.0), (2.0, 0.5, 0.25), (16.0, 8.0, 1.0)]  # linear light above 1.0
WIDE = [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.6, 0.9)]  # Rec. 2020 colours outside sRGB
CASES = {  # name: (depth, profile, special colours, in the document's own encoding)
    "hdr-linear-f32": ("F32", "sRGB-elle-V2-g10.icc", HDR),
    "hdr-linear-f16": ("F16", "sRGB-elle-V2-g10.icc", HDR),
    "wide-rec2020-f32": ("F32", "Rec2020-elle-V4-g10.icc", WIDE + HDR[:1]),
    "hdr-srgb-f32": ("F32", "sRGB-elle-V2-srgbtrc.icc", [(1.8248, 1.8248, 1.8248)]),  # as is
}
BLOCK = 8  # each special colour fills an 8x8 block along the top row


def floats(data):
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def special_pixels(count):
    """Indices (row-major) of the pixels of the first ``count`` blocks."""
    return [y * W + x for y in range(BLOCK) for x in range(count * BLOCK)]


def values(specials):
    """RGBA floats: the common pattern as values 0..1, the special colours in their blocks."""
    pattern = common["pattern_rgba8"](W, H)
    out = []
    for i in range(W * H):
        x, y = i % W, i // W
        k = x // BLOCK
        if y < BLOCK and k < len(specials):
            out += [*specials[k], 1.0]
        else:
            out += [v / 255 for v in pattern[4 * i : 4 * i + 4]]
    return out


def document_in(name, depth, profile, specials):
    doc, layer = common["new_document"](W, H, "RGBA", "F32", name)
    if not doc.setColorSpace("RGBA", depth, profile) or doc.colorProfile() != profile:
        raise RuntimeError(f"Krita refused {depth} {profile}")
    code = "e" if depth == "F16" else "f"
    data = values(specials)
    layer.setPixelData(struct.pack(f"<{len(data)}{code}", *data), 0, 0, W, H)
    doc.refreshProjection()
    doc.waitForDone()
    return doc, layer


def main():
    import stylebridge_krita
    from stylebridge_krita import host

    # Krita's CIE Lab (L 0..100), by its profile's name: a layer converts only to a named one
    LAB = host.Space("LABA", "F32", Krita.instance().profiles("LABA", "F32")[0])
    report = {}
    for name, (depth, profile, specials) in CASES.items():
        doc, source = document_in(name, depth, profile, specials)
        sent = host.capture(doc, source).content
        node = stylebridge_krita.stylize_active_layer(
            "the_scream", preset="fast", size=48, steps=2, seed=1, balance=0.0
        )
        space = host.Space("RGBA", depth, profile)

        def lab(n, space=space):
            return floats(host.convert(bytes(n.pixelData(0, 0, W, H)), W, H, space, LAB))

        report[name] = {
            "doc_space": [doc.colorModel(), doc.colorDepth(), doc.colorProfile()],
            "result_space": [node.colorModel(), node.colorDepth(), node.colorProfile()],
            "sent_dtype": sent.dtype,
            "sent": floats(sent.data),
            "source": common["decode"](bytes(source.pixelData(0, 0, W, H)), "RGBA", depth),
            "result": common["decode"](bytes(node.pixelData(0, 0, W, H)), "RGBA", depth),
            "source_lab": lab(source),
            "result_lab": lab(node),
            "special": special_pixels(len(specials)),
        }
        doc.setModified(False)
        doc.close()
    report["documents_left"] = [d.name() for d in Krita.instance().documents()]
    return report
