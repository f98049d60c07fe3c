"""A preview frame (8-bit, the server's sRGB) shown in a linear-light document: the preview
layer holds it converted to the document's profile, as the result will be."""

import os
import runpy

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))


def main():
    from stylebridge_krita import host
    from stylebridge_krita.stylebridge_wire import Image

    W, H = 32, 24
    report = {}
    for depth in ("U8", "U16", "F32"):  # U16 and F32: linear light, Krita's scripting default
        doc, source = common["new_document"](W, H, "RGBA", depth, f"preview-{depth}")
        cap = host.capture(doc, source)
        layer = host.ResultLayer(cap, "preview test")
        layer.show_preview(Image(8, 6, 3, "uint8", bytes((128, 128, 128)) * 48))
        doc.waitForDone()
        pixel = common["decode"](bytes(layer.node.pixelData(W // 2, H // 2, 1, 1)), "RGBA", depth)
        report[depth] = {"profile": doc.colorProfile(), "grey": pixel[0][0]}
        layer.discard()
        doc.setModified(False)
        doc.close()
    return report
