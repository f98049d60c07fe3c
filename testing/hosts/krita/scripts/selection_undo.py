"""Feathered selection -> new layer above the source, transparent outside; one undo removes it."""

import os
import runpy
import time

from krita import Krita, Selection

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))


def main():
    import stylebridge_krita

    W, H = 96, 64
    doc, source = common["new_document"](W, H)
    top = doc.createNode("Top", "paintlayer")  # a layer above the source: the result goes between
    doc.rootNode().addChildNode(top, source)
    sel = Selection()
    sel.select(32, 16, 32, 32, 255)
    sel.feather(4)
    doc.setSelection(sel)
    common["activate"](doc, source)  # after setSelection, which activates the top layer
    before = common["names"](doc)
    started = time.monotonic()
    strength = 0.7
    node = stylebridge_krita.stylize_active_layer(
        "starry_night", strength=strength, balance=0.6, preset="fast", size=64, steps=12, seed=1
    )
    elapsed = time.monotonic() - started
    doc.waitForDone()
    after = common["names"](doc)
    result = common["decode"](bytes(node.pixelData(0, 0, W, H)), "RGBA", "U8")
    original = common["decode"](bytes(source.pixelData(0, 0, W, H)), "RGBA", "U8")
    common["undo"](doc)
    after_undo = common["names"](doc)
    return {
        "before": before,
        "after": after,
        "after_undo": after_undo,
        "elapsed": elapsed,
        "name": node.name(),
        "locked": node.locked(),
        "opacity": node.opacity(),
        "strength": strength,
        "width": W,
        "height": H,
        "result": result,
        "original": original,
        "krita_version": Krita.instance().version(),
        "qt": common["qt_major"](),
        "plugin_file": stylebridge_krita.__file__,
        # Krita loaded the plug-in itself: its extension made the menu action in the window
        "action": Krita.instance().action("stylebridge_stylize") is not None,
    }
