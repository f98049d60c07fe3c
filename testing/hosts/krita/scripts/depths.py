"""Every supported depth and model gives a visibly stylised layer; CMYK gets a clear message."""

import os
import runpy

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))
CASES = [
    ("RGBA", "U8"),
    ("RGBA", "U16"),
    ("RGBA", "F16"),
    ("RGBA", "F32"),
    ("GRAYA", "U8"),
    ("GRAYA", "U16"),
]


def main():
    import stylebridge_krita

    W, H = 64, 48
    report = {}
    for model, depth in CASES:
        doc, source = common["new_document"](W, H, model, depth, f"{model}-{depth}")
        node = stylebridge_krita.stylize_active_layer(
            "the_scream", preset="fast", size=48, steps=16, seed=2
        )
        result = common["decode"](bytes(node.pixelData(0, 0, W, H)), model, depth)
        original = common["decode"](bytes(source.pixelData(0, 0, W, H)), model, depth)
        report[f"{model}-{depth}"] = {
            "depth": node.colorDepth(),
            "model": node.colorModel(),
            "result": result,
            "original": original,
        }
        doc.setModified(False)
        doc.close()
    for depth in ("F16", "F32"):  # the float layouts' channel order, from Krita's own conversion
        doc, layer = common["new_document"](2, 2, "RGBA", "U8", "order")
        layer.setPixelData(bytes((0, 0, 255, 255)) * 4, 0, 0, 2, 2)  # U8 is BGRA: pure red
        doc.setColorSpace("RGBA", depth, "")
        doc.waitForDone()
        report["order-" + depth] = common["decode"](
            bytes(layer.pixelData(0, 0, 1, 1)), "RGBA", depth
        )[0]
        doc.setModified(False)
        doc.close()
    doc, source = common["new_document"](32, 32, "RGBA", "U8", "cmyk")
    doc.setColorSpace("CMYKA", "U8", "")
    doc.waitForDone()
    try:
        stylebridge_krita.stylize_active_layer("the_scream", steps=2)
        report["cmyk"] = "no error"
    except stylebridge_krita.StyleTransferError as exc:
        report["cmyk"] = str(exc)
    report["cmyk_layers"] = common["names"](doc)
    return report
