"""The canvas as the dialog sees it (a Krita edge): the active document and layer (what Apply
stylises, and its size for the time estimate, read without a pixel), and the open documents and
layers a painter keeps as references, offered as styles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .host import PREVIEW_SUFFIX, SCRATCH_NAME, Capture, capture_steps, work_size
from .qt import QtCore, QtGui, image_bytes
from .slices import Work
from .stylebridge_wire import Image, catalogue
from .styles import StyleError

# what a layer holds that can be a style (masks and the selection cannot)
PIXEL_LAYERS = ("paintlayer", "grouplayer", "filelayer", "vectorlayer", "filllayer", "clonelayer")


def _app() -> Any:
    from krita import Krita

    return Krita.instance()


def document_title(document: Any) -> str:
    path = document.fileName() or ""
    return path.replace("\\", "/").rsplit("/", 1)[-1] or document.name() or "Untitled"


def find_node(document: Any, uid: Any) -> Any:
    """The node of ``document`` with ``uid``, or None."""
    if hasattr(document, "nodeByUniqueId"):  # Krita 5.2+
        return document.nodeByUniqueId(uid)
    stack = list(document.rootNode().childNodes())
    while stack:
        node = stack.pop()
        if node.uniqueId() == uid:
            return node
        stack.extend(node.childNodes())
    return None


@dataclass(frozen=True)
class CanvasStyle:
    """An open document (``uid`` None) or a layer of one as a style, read when a job starts:
    its picture as Krita renders it (the document's projection or the layer's own pixels)."""

    title: str
    document: Any
    uid: Any = None

    @property
    def short(self) -> str:
        """The title in a result layer's name: a file's name without its extension, a layer's
        name without "Layer: "."""
        if self.uid is not None:
            return self.title.split(": ", 1)[-1]
        stem, dot, _ = self.title.rpartition(".")
        return stem if dot and stem else self.title

    @property
    def key(self) -> str:
        return f"canvas:{id(self.document)}:{self.uid}"

    def _picture(self) -> Any:
        # Krita hands out a new wrapper of a document on every call: compared by ==
        if not any(d == self.document for d in _app().documents()):
            raise StyleError(f"{self.title} is no longer open: choose another style.")
        if self.uid is None:
            return self.document, (self.document.width(), self.document.height())
        node = find_node(self.document, self.uid)
        if node is None:
            raise StyleError(f"The layer {self.title} is gone: choose another style.")
        bounds = node.bounds()
        return node, (bounds.width(), bounds.height())

    def load(self, max_side: int = catalogue.MAX_STYLE_SIDE) -> Image:
        """8-bit RGB, at most ``max_side`` a side, transparency over white."""
        source, (width, height) = self._picture()
        if width < 1 or height < 1:
            raise StyleError(f"{self.title} is empty: choose another style.")
        w, h = catalogue.fitted_size(width, height, max_side)
        return _rgb(source.thumbnail(w, h))

    def icon(self, side: int = 32) -> Any:
        try:
            source, _ = self._picture()
            return QtGui.QIcon(QtGui.QPixmap.fromImage(source.thumbnail(side, side)))
        except (StyleError, RuntimeError):
            return QtGui.QIcon()


def _rgb(thumbnail: Any) -> Image:
    """A Krita thumbnail (a QImage with alpha) as 8-bit RGB over white."""
    fmt = QtGui.QImage.Format
    rgb = QtGui.QImage(thumbnail.width(), thumbnail.height(), fmt.Format_RGB888)
    rgb.fill(QtCore.Qt.GlobalColor.white)
    painter = QtGui.QPainter(rgb)
    painter.drawImage(0, 0, thumbnail)
    painter.end()
    return Image(rgb.width(), rgb.height(), 3, "uint8", image_bytes(rgb))


class ActiveCanvas:
    """Krita's active document and layer."""

    def target(self) -> tuple[Any, Any]:
        document = _app().activeDocument()
        return document, (document.activeNode() if document is not None else None)

    def capture_steps(self, source: str) -> Work[Capture]:
        """The capture of what Apply stylises now (the target is fixed at this call; the
        pixels are read by the job's slices)."""
        return capture_steps(*self.target(), source)

    def work_size(self, source: str) -> tuple[int, int] | None:
        return work_size(*self.target(), source)

    def styles(self) -> list[CanvasStyle]:
        """The other open documents, then the layers of the active one (top first)."""
        app = _app()
        active = app.activeDocument()
        found = [
            CanvasStyle(document_title(d), d)
            for d in app.documents()
            if d != active and d.name() != SCRATCH_NAME
        ]
        if active is not None:
            stack = list(active.rootNode().childNodes())
            layers = []
            while stack:
                node = stack.pop(0)
                if node.type() in PIXEL_LAYERS and not node.name().endswith(PREVIEW_SUFFIX):
                    layers.append(CanvasStyle(f"Layer: {node.name()}", active, node.uniqueId()))
                if node.type() == "grouplayer":
                    stack[:0] = node.childNodes()
            found += reversed(layers)
        return found
