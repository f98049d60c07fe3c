"""The Krita edge: read the source pixels and selection, own the preview/result layer.

Everything that touches Krita's API (documents, nodes, selections) lives here; the rest of the
plug-in works on protocol `Image`s. Measured on Krita 5.1.5: ``addChildNode`` is one undo step,
``setPixelData`` and ``setLocked`` are not, so the preview layer is added once and becomes the
result: the document's history gets exactly one step ("add layer") for a whole job.

Colour: the server works in sRGB (its curve and primaries), full scale 1.0. A layer in any
other profile (linear light, which Krita 5.1.5 gives scripts' U16 and float documents by
default; a wide gamut) is converted by Krita itself (LittleCMS) to float sRGB on the way out and
the result back to the document's space on the way in, in a scratch document, so that the
user's document and its history are untouched. The float sRGB is LittleCMS's own "sRGB built-in"
(gray: the V4 sRGB-curve profile): their parametric curves are unbounded in float, so HDR values
above 1.0 and colours outside sRGB cross as values beyond 0..1, which the server keeps and hands
back (measured on Krita 5.1.5 and 6.0.4: linear 4.0 -> 1.8248 -> 4.0). Krita's V2 sRGB profiles
have tabulated curves that clip to 0..1 (linear 2.0 -> 1.0), and Krita 5.1.5 and 6.0.4 offer no
V4 sRGB-curve RGB profile (a name Krita does not know converts to its default, silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .formats import PixelFormat, UnsupportedFormat, alpha8
from .qt import Qt, QtGui, image_bytes
from .stylebridge_wire import Image
from .stylebridge_wire.pixels import Rect, context_margin, expand_box, intersect_box, is_blank

PREVIEW_SUFFIX = " (stylising...)"
# The server's working space: sRGB profiles with parametric curves (unbounded: see above), in
# float so that no conversion quantises.
WORKING_PROFILES = {"RGBA": "sRGB built-in", "GRAYA": "Gray-D50-elle-V4-srgbtrc.icc"}
WORKING_DEPTH = "F32"
# Layers already in sRGB travel as they are: the working profiles and Krita's default ones (V2).
SRGB_PROFILES = {
    *WORKING_PROFILES.values(),
    "sRGB-elle-V2-srgbtrc.icc",
    "Gray-D50-elle-V2-srgbtrc.icc",
}


class HostError(ValueError):
    """Nothing to stylise, or not in a form the plug-in can use; the message says why."""


@dataclass(frozen=True)
class Space:
    """A Krita colour space: model, depth and profile name, as Krita's calls take them."""

    model: str
    depth: str
    profile: str

    @classmethod
    def working(cls, model: str) -> Space:
        return cls(model, WORKING_DEPTH, WORKING_PROFILES[model])


def convert(data: bytes, width: int, height: int, source: Space, target: Space) -> bytes:
    """``data`` (``width`` x ``height`` pixels in ``source``) converted to ``target`` by Krita,
    in a scratch document of its own (never shown, closed at once)."""
    from krita import Krita

    doc = Krita.instance().createDocument(
        width, height, "stylebridge colour", source.model, source.depth, source.profile, 72.0
    )
    try:
        node = doc.rootNode().childNodes()[0]
        node.setPixelData(data, 0, 0, width, height)
        if not doc.setColorSpace(target.model, target.depth, target.profile):
            raise HostError(f"Krita cannot convert {source.profile} to {target.profile}.")
        doc.waitForDone()
        return bytes(node.pixelData(0, 0, width, height))
    finally:
        doc.close()


@dataclass
class Capture:
    """What goes to the server, and where its answer goes back."""

    document: Any
    source: Any  # the node the result goes above
    fmt: PixelFormat  # the document's, which the result layer has
    box: Rect  # document coordinates of ``content``
    content: Image
    mask: Image | None  # the selection inside ``box``, None without a selection
    travel: Space  # the space ``content`` is in: the source's, or the working space
    space: Space  # the document's, which the result layer is in

    def result_bytes(self, result: Image) -> bytes:
        """The server's answer as the result layer's bytes, in the document's space."""
        data = PixelFormat.of(self.travel.model, self.travel.depth).from_image(result)
        if self.travel == self.space:
            return data
        return convert(data, result.width, result.height, self.travel, self.space)

    def in_document_profile(self, frame: Any) -> Any:
        """An 8-bit sRGB preview frame (an ARGB32 QImage, the server's colours) in the
        document's profile, still 8-bit: Krita converts it at the frame's own small size, a
        few milliseconds, so a linear or wide-gamut document shows the preview's true colours.
        (A grayscale one shows it unconverted.)"""
        if self.travel == self.space or self.space.model != "RGBA":
            return frame
        w, h = frame.width(), frame.height()
        source = Space("RGBA", "U8", WORKING_PROFILES["RGBA"])
        data = convert(image_bytes(frame), w, h, source, Space("RGBA", "U8", self.space.profile))
        return QtGui.QImage(data, w, h, 4 * w, QtGui.QImage.Format.Format_ARGB32).copy()

    def preview_alpha(self) -> Any:
        """An Alpha8 QImage: the content's alpha times the selection, for preview frames."""
        w, h = self.box.width, self.box.height
        alpha = _alpha_image(alpha8(self.content), w, h)
        if self.mask is not None:
            painter = QtGui.QPainter(alpha)
            painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_DestinationIn)
            painter.drawImage(0, 0, _alpha_image(self.mask.data, w, h))
            painter.end()
        return alpha


def _alpha_image(data: bytes, width: int, height: int) -> Any:
    image = QtGui.QImage(data, width, height, width, QtGui.QImage.Format.Format_Alpha8)
    return image.copy()  # own the buffer: ``data`` is a temporary


def _rect(rect: Any) -> Rect:
    return Rect(rect.x(), rect.y(), rect.width(), rect.height())


def capture(document: Any, node: Any, source: str = "layer") -> Capture:
    """Read the active layer (or the visible image) and the selection of ``document``."""
    if document is None:
        raise HostError("No document is open.")
    canvas = Rect(0, 0, document.width(), document.height())
    if source == "layer":
        if node is None or node.type() not in ("paintlayer", "grouplayer", "filelayer"):
            kind = "no layer" if node is None else f"a {node.type()}"
            raise HostError(f"Select a paint layer to stylise (the active node is {kind}).")
        area = intersect_box(_rect(node.bounds()), canvas)
        if area is None:
            raise HostError(f"The layer {node.name()!r} is empty.")
        fmt = PixelFormat.of(node.colorModel(), node.colorDepth())
        doc_fmt = PixelFormat.of(document.colorModel(), document.colorDepth())
        if fmt != doc_fmt:
            raise UnsupportedFormat(
                f"The layer {node.name()!r} is {fmt.model} {fmt.depth} but the image is "
                f"{doc_fmt.model} {doc_fmt.depth}; convert the layer to the image's colour space."
            )
        read, profile = node.pixelData, node.colorProfile()
    else:
        area = canvas
        fmt = PixelFormat.of(document.colorModel(), document.colorDepth())
        read, profile = document.pixelData, document.colorProfile()

    selection = document.selection()
    if selection is not None and selection.width() > 0 and selection.height() > 0:
        selected = intersect_box(_rect(selection), canvas)
        if selected is None:
            raise HostError("The selection lies outside the image.")
        box = expand_box(
            selected, context_margin(selected.width, selected.height), canvas.width, canvas.height
        )
    else:
        selection, box = None, area

    content, travel = _read_content(read, box, Space(fmt.model, fmt.depth, profile))
    if source == "layer" and is_blank(content):
        raise HostError(f"The layer {node.name()!r} is empty where it would be stylised.")
    mask = None
    if selection is not None:
        x, y, w, h = box
        mask = Image(w, h, 1, "uint8", bytes(selection.pixelData(x, y, w, h)))
        if is_blank(mask):
            raise HostError("The selection is empty.")
    space = Space(fmt.model, fmt.depth, document.colorProfile())
    return Capture(document, node, fmt, box, content, mask, travel, space)


def _read_content(read: Any, box: Rect, space: Space) -> tuple[Image, Space]:
    """The pixels of ``box`` (``read`` gives them in ``space``) as the server's content, and
    the space they travel in: as read when in an sRGB profile, else the working space."""
    x, y, w, h = box
    data = bytes(read(x, y, w, h))
    travel = space
    if space.profile not in SRGB_PROFILES:
        travel = Space.working(space.model)
        data = convert(data, w, h, space, travel)
    return PixelFormat.of(travel.model, travel.depth).to_image(data, w, h), travel


class ResultLayer:
    """The temporary, locked preview layer that turns into the result layer.

    Created above the source (for the visible image: at the top of the stack) in the
    document's colour space, at ``opacity`` (the strength: the artist changes it later without
    running again); preview frames are scaled to the box and written into it; the result
    replaces them, renames and unlocks it. `discard` removes it.
    """

    def __init__(self, cap: Capture, title: str, opacity: float = 1.0) -> None:
        self.cap = cap
        self.title = title
        self._alpha = cap.preview_alpha()
        doc = cap.document
        self.node = doc.createNode(title + PREVIEW_SUFFIX, "paintlayer")
        # before insertion: neither is an undo step, and no stray strokes land on the preview
        self.node.setOpacity(round(255 * min(1.0, max(0.0, opacity))))
        self.node.setLocked(True)
        parent = cap.source.parentNode() if cap.source is not None else None
        if parent is None:  # the visible image: on top of everything
            parent = doc.rootNode()
            children = parent.childNodes()
            parent.addChildNode(self.node, children[-1] if children else None)
        else:
            parent.addChildNode(self.node, cap.source)
        self._uid = self.node.uniqueId()

    def alive(self) -> bool:
        """False once the user removed the layer (or undid its creation) while it ran."""
        doc = self.cap.document
        if hasattr(doc, "nodeByUniqueId"):  # Krita 5.2+
            return doc.nodeByUniqueId(self._uid) is not None
        return _contains(doc.rootNode(), self._uid)  # 5.1: walk the tree

    def show_preview(self, frame: Image) -> None:
        """An 8-bit RGB preview frame in the document's profile, scaled to the box and
        masked, written into the layer."""
        x, y, w, h = self.cap.box
        fmt = QtGui.QImage.Format
        small = QtGui.QImage(
            frame.data, frame.width, frame.height, 3 * frame.width, fmt.Format_RGB888
        ).convertToFormat(fmt.Format_ARGB32)
        small = self.cap.in_document_profile(small)
        smooth = Qt.TransformationMode.SmoothTransformation
        scaled = small.scaled(w, h, transformMode=smooth).convertToFormat(fmt.Format_ARGB32)
        scaled.setAlphaChannel(self._alpha)
        straight = scaled.convertToFormat(fmt.Format_ARGB32)  # Qt may premultiply: undo that
        self.node.setPixelData(self.cap.fmt.from_rgba8(image_bytes(straight)), x, y, w, h)
        self.cap.document.refreshProjection()

    def finish(self, result: Image) -> Any:
        """Write the result, name the layer after the style, unlock it; returns the node."""
        x, y, w, h = self.cap.box
        if (result.width, result.height) != (w, h):
            raise HostError(
                f"The server answered {result.width}x{result.height}, expected {w}x{h}."
            )
        self.node.setPixelData(self.cap.result_bytes(result), x, y, w, h)
        self.node.setName(self.title)
        self.node.setLocked(False)
        self.cap.document.refreshProjection()
        return self.node

    def discard(self) -> None:
        if self.alive():
            self.node.remove()
            self.cap.document.refreshProjection()


def _contains(node: Any, uid: Any) -> bool:
    return any(c.uniqueId() == uid or _contains(c, uid) for c in node.childNodes())
