"""A fake of Krita's ``krita`` module: enough of `Krita`, `Document`, `Node` and `Selection` for
the plug-in's host edge (host.py), its job runner (runner.py) and its scripting entry point
(api.py), without Krita.

Install it for a test with ``monkeypatch.setitem(sys.modules, "krita", tests.fakes.krita)``;
`Krita.instance()` is then the application (`reset` gives a fresh one).

Pixels are kept the way Krita hands them out: ``pixelData(x, y, w, h)`` returns the layer's
bytes in its own colour model and depth (BGRA for 8 and 16 bit RGBA, zeros outside the layer),
``setPixelData`` writes them. The document records what Krita would make an undo step of
(`Document.history`: adding and removing nodes; measured on Krita 5.1.5, ``setPixelData``,
``setOpacity``, ``setLocked`` and ``setName`` are not), so a test can count the steps a job
leaves in the history.

Colour profiles are names, as Krita gives them. A document's default is the sRGB-curve profile
of its model, which the plug-in sends as it is (Krita 5.1.5 itself gives scripts' U16 and float
documents the linear sRGB-elle-V2-g10.icc). `Document.setColorSpace` converts every layer the
way Krita does, but only the transfer curve (named by the profile: g10 linear, g22 gamma 2.2,
srgbtrc and "sRGB built-in" the sRGB curve), not the primaries; as in Krita, a V2 sRGB-curve
profile (a tabulated curve) clips to 0..1, the others do not: enough to see which way and how
often the plug-in converts.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

PIXEL_BYTES = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5}
DEPTH_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
_uids = itertools.count(1)


SRGB_CURVE = {"RGBA": "sRGB-elle-V2-srgbtrc.icc", "GRAYA": "Gray-D50-elle-V2-srgbtrc.icc"}
_SAMPLE = {"U8": ("B", 255.0), "U16": ("H", 65535.0), "F16": ("e", 1.0), "F32": ("f", 1.0)}


def pixel_size(model: str, depth: str) -> int:
    return PIXEL_BYTES.get(model, 4) * DEPTH_BYTES.get(depth, 1)


def to_linear(value: float, profile: str) -> float:
    if "g10" in profile:
        return value
    if "g22" in profile:
        return max(0.0, value) ** 2.2
    if "srgbtrc" in profile or profile == "sRGB built-in":
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    raise ValueError(f"the fake knows no curve for {profile!r}")


def from_linear(value: float, profile: str) -> float:
    if "g10" in profile:
        return value
    if "g22" in profile:
        return max(0.0, value) ** (1 / 2.2)
    if "srgbtrc" in profile or profile == "sRGB built-in":
        return value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055
    raise ValueError(f"the fake knows no curve for {profile!r}")


def decode(data: bytes, model: str, depth: str) -> list[float]:
    """Krita's bytes -> samples 0..1 in R, G, B, A (or gray, alpha) order."""
    code, scale = _SAMPLE[depth]
    values = [
        v / scale for v in struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data)
    ]
    if model == "RGBA" and depth in ("U8", "U16"):  # BGRA
        for i in range(0, len(values), 4):
            values[i], values[i + 2] = values[i + 2], values[i]
    return values


def encode(values: list[float], model: str, depth: str) -> bytes:
    """Samples 0..1 (R, G, B, A order) -> Krita's bytes."""
    values = list(values)
    if model == "RGBA" and depth in ("U8", "U16"):
        for i in range(0, len(values), 4):
            values[i], values[i + 2] = values[i + 2], values[i]
    code, scale = _SAMPLE[depth]
    if scale > 1:
        values = [round(min(1.0, max(0.0, v)) * scale) for v in values]
    return struct.pack(f"<{len(values)}{code}", *values)


def convert(data: bytes, source: tuple[str, str, str], target: tuple[str, str, str]) -> bytes:
    """Pixels from one (model, depth, profile) to another of the same model: the curve."""
    (model, depth, profile), (_, new_depth, new_profile) = source, target
    values = decode(data, model, depth)
    step = PIXEL_BYTES[model]
    tabulated = any("V2-srgbtrc" in p for p in (profile, new_profile))
    for i, v in enumerate(values):
        if i % step != step - 1:  # colour, not alpha
            linear = to_linear(min(1.0, max(0.0, v)) if tabulated else v, profile)
            linear = min(1.0, max(0.0, linear)) if tabulated else linear
            values[i] = from_linear(linear, new_profile)
    return encode(values, model, new_depth)


def ramp(size: int) -> bytes:
    """``size`` bytes counting 0..255 over and over: layer pixels that are not blank."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class Rect:
    """QRect's accessors."""

    def __init__(self, x: int, y: int, w: int, h: int) -> None:
        self._r = (x, y, w, h)

    def x(self) -> int:
        return self._r[0]

    def y(self) -> int:
        return self._r[1]

    def width(self) -> int:
        return self._r[2]

    def height(self) -> int:
        return self._r[3]


class Canvas:
    """Pixels over a ``width`` x ``height`` area; reads outside it give zeros."""

    def __init__(self, width: int, height: int, pixel: int, data: bytes | None = None) -> None:
        self.w, self.h, self.pixel = width, height, pixel
        size = width * height * pixel
        self.data = bytearray(data[:size] if data is not None else bytes(size))

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        out = bytearray()
        for row in range(y, y + h):
            for col in range(x, x + w):
                inside = 0 <= row < self.h and 0 <= col < self.w
                start = (row * self.w + col) * self.pixel
                out += self.data[start : start + self.pixel] if inside else bytes(self.pixel)
        return bytes(out)

    def setPixelData(self, data: bytes, x: int, y: int, w: int, h: int) -> None:
        data = bytes(data)
        if len(data) != w * h * self.pixel:
            raise ValueError(f"{len(data)} bytes for {w}x{h} pixels of {self.pixel} bytes")
        for row in range(h):
            for col in range(w):
                if 0 <= y + row < self.h and 0 <= x + col < self.w:
                    start = ((y + row) * self.w + x + col) * self.pixel
                    src = (row * w + col) * self.pixel
                    self.data[start : start + self.pixel] = data[src : src + self.pixel]


class Node(Canvas):
    """A layer: a canvas the document's size in the document's colour space (or its own)."""

    def __init__(
        self,
        document: Document | None,
        name: str,
        kind: str = "paintlayer",
        model: str | None = None,
        depth: str | None = None,
        data: bytes | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self.document = document
        self.model = model or (document.model if document else "RGBA")
        self.depth = depth or (document.depth if document else "U8")
        self.profile = document.profile if document else SRGB_CURVE[self.model]
        w = width if width is not None else (document.w if document else 0)
        h = height if height is not None else (document.h if document else 0)
        super().__init__(w, h, pixel_size(self.model, self.depth), data)
        self._name = name
        self.kind = kind
        self._opacity = 255
        self._visible = True
        self._locked = False
        self._uid = next(_uids)
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.bounds_rect: tuple[int, int, int, int] | None = None  # None: the whole canvas
        self.inserted_as: dict[str, Any] | None = None  # its state when it was added

    def __repr__(self) -> str:
        return f"<Node {self._name!r}>"

    # --- what a node says about itself
    def type(self) -> str:
        return self.kind

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = name

    def uniqueId(self) -> int:
        return self._uid

    def bounds(self) -> Rect:
        return Rect(*(self.bounds_rect or (0, 0, self.w, self.h)))

    def colorModel(self) -> str:
        return self.model

    def colorDepth(self) -> str:
        return self.depth

    def colorProfile(self) -> str:
        return self.profile

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        """Convert this layer alone to the curve of ``profile`` at ``depth``."""
        if model != self.model:
            return False
        source, target = (self.model, self.depth, self.profile), (model, depth, profile)
        self.data = bytearray(convert(bytes(self.data), source, target))
        self.depth, self.profile, self.pixel = depth, profile, pixel_size(model, depth)
        return True

    def opacity(self) -> int:
        return self._opacity

    def visible(self) -> bool:
        return self._visible

    def setVisible(self, value: bool) -> None:
        self._visible = bool(value)

    def thumbnail(self, w: int, h: int) -> Any:
        """The layer's pixels scaled to fit ``w`` x ``h``: an ARGB32 QImage."""
        return _thumbnail(bytes(self.data), self.w, self.h, self, w, h)

    def setOpacity(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise ValueError(f"Krita's opacity is an int 0..255, got {value!r}")
        self._opacity = value

    def locked(self) -> bool:
        return self._locked

    def setLocked(self, value: bool) -> None:
        self._locked = bool(value)

    # --- the tree
    def parentNode(self) -> Node | None:
        return self.parent

    def childNodes(self) -> list[Node]:
        return list(self.children)

    def addChildNode(self, child: Node, above: Node | None) -> bool:
        """Insert ``child`` right above ``above`` (None: at the bottom); one undo step."""
        index = 0 if above is None else self.children.index(above) + 1
        self.children.insert(index, child)
        child.parent = self
        child.inserted_as = {"name": child.name(), "opacity": child.opacity(),
                             "locked": child.locked()}  # fmt: skip
        if self.document is not None:
            self.document.history.append(("add", child.name()))
        return True

    def remove(self) -> bool:
        """Take the node out of its parent; one undo step."""
        if self.parent is None:
            return False
        self.parent.children.remove(self)
        self.parent = None
        if self.document is not None:
            self.document.history.append(("remove", self.name()))
        return True


class Selection(Canvas, Rect):
    """A global selection: 8-bit coverage over the canvas and its bounding box."""

    def __init__(self, width: int = 0, height: int = 0, box: tuple[int, int, int, int] = (0,) * 4):
        Canvas.__init__(self, width, height, 1)
        Rect.__init__(self, *box)
        x, y, w, h = box
        for row in range(y, y + h):
            self.data[row * width + x : row * width + x + w] = b"\xff" * w


class Document:
    """A document of ``width`` x ``height`` in ``model``/``depth``; its root holds the layers."""

    def __init__(
        self,
        width: int,
        height: int,
        model: str = "RGBA",
        depth: str = "U8",
        selection: Selection | None = None,
        node_by_unique_id: bool = True,
        profile: str | None = None,
    ) -> None:
        self.w, self.h, self.model, self.depth = width, height, model, depth
        self.profile = profile or SRGB_CURVE.get(model, "")
        self.closed = False
        self.sel = selection
        self.root = Node(self, "root", "grouplayer")
        self.active: Node | None = None
        self.history: list[tuple[str, str]] = []  # undo steps: ("add" | "remove", node name)
        self.projections = 0
        self.title, self.path = "Untitled", ""
        if node_by_unique_id:  # Krita 5.2+; without it (5.1) the plug-in walks the tree
            self.nodeByUniqueId = self._node_by_unique_id

    def add_layer(
        self,
        name: str = "Paint Layer 1",
        data: bytes | None = None,
        model: str | None = None,
        depth: str | None = None,
        kind: str = "paintlayer",
    ) -> Node:
        """A layer on top of the stack, made active (set-up, not an undo step)."""
        node = Node(self, name, kind, model, depth, data)
        self.root.children.append(node)
        node.parent = self.root
        self.active = node
        return node

    def names(self) -> list[str]:
        """The top-level layers' names, bottom first."""
        return [node.name() for node in self.root.children]

    # --- Krita's API
    def width(self) -> int:
        return self.w

    def height(self) -> int:
        return self.h

    def colorModel(self) -> str:
        return self.model

    def colorDepth(self) -> str:
        return self.depth

    def colorProfile(self) -> str:
        return self.profile

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        """Convert every layer (their own space must be the document's) to the curve of
        ``profile`` at ``depth``; Krita makes an undo step of it."""
        if model != self.model:
            return False
        source, target = (self.model, self.depth, self.profile), (model, depth, profile)
        for node in self.root.children:
            node.data = bytearray(convert(bytes(node.data), source, target))
            node.depth, node.profile, node.pixel = depth, profile, pixel_size(model, depth)
        self.depth, self.profile = depth, profile
        self.history.append(("convert", profile))
        return True

    def close(self) -> bool:
        self.closed = True
        app = Krita.instance()
        if self in app.open_documents:
            app.open_documents.remove(self)
        return True

    def selection(self) -> Selection | None:
        return self.sel

    def setSelection(self, selection: Selection | None) -> None:
        self.sel = selection

    def rootNode(self) -> Node:
        return self.root

    def activeNode(self) -> Node | None:
        return self.active

    def setActiveNode(self, node: Node) -> None:
        self.active = node

    def createNode(self, name: str, kind: str) -> Node:
        return Node(self, name, kind)

    def _node_by_unique_id(self, uid: Any) -> Node | None:
        def find(node: Node) -> Node | None:
            for child in node.children:
                if child.uniqueId() == uid:
                    return child
                found = find(child)
                if found is not None:
                    return found
            return None

        return find(self.root)

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        """The projection: here, the top visible paint layer's pixels (enough for tests)."""
        layers = [n for n in self.root.children if n.kind == "paintlayer"]
        if not layers:
            return bytes(w * h * pixel_size(self.model, self.depth))
        return layers[-1].pixelData(x, y, w, h)

    def refreshProjection(self) -> None:
        self.projections += 1

    def name(self) -> str:
        return self.title

    def fileName(self) -> str:
        return self.path

    def thumbnail(self, w: int, h: int) -> Any:
        """The projection scaled to fit ``w`` x ``h``, as Krita gives it: an ARGB32 QImage."""
        return _thumbnail(self.pixelData(0, 0, self.w, self.h), self.w, self.h, self, w, h)

    def waitForDone(self) -> None:
        pass


def _thumbnail(data: bytes, width: int, height: int, owner: Any, w: int, h: int) -> Any:
    """8-bit RGBA (Krita's BGRA) pixels as a QImage scaled to fit ``w`` x ``h`` (PyQt6, which
    the plug-in tests run under, imported only when a thumbnail is asked for)."""
    from PyQt6 import QtCore, QtGui

    if (owner.model, owner.depth) != ("RGBA", "U8"):
        raise ValueError("the fake's thumbnails are of 8-bit RGBA pixels only")
    image = QtGui.QImage(data, width, height, 4 * width, QtGui.QImage.Format.Format_ARGB32)
    return image.copy().scaled(w, h, QtCore.Qt.AspectRatioMode.KeepAspectRatio)


class Extension:
    def __init__(self, parent: Any = None) -> None:
        self.parent = parent


class Krita:
    """The application: documents, settings (kritarc), extensions."""

    _instance: Krita | None = None

    def __init__(self) -> None:
        self.open_documents: list[Document] = []
        self.created: list[Document] = []  # by createDocument, open or closed
        self.active_document: Document | None = None
        self.settings: dict[tuple[str, str], str] = {}
        self.extensions: list[Any] = []

    @classmethod
    def instance(cls) -> Krita:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def activeDocument(self) -> Document | None:
        return self.active_document

    def documents(self) -> list[Document]:
        return list(self.open_documents)

    def createDocument(
        self, width: int, height: int, name: str, model: str, depth: str, profile: str,
        resolution: float,
    ) -> Document:  # fmt: skip
        """A new document with one transparent layer, listed among the documents (no view)."""
        document = Document(width, height, model, depth, profile=profile or None)
        document.add_layer("Background")
        self.open_documents.append(document)
        self.created.append(document)
        return document

    def activeWindow(self) -> None:
        return None

    def readSetting(self, group: str, key: str, default: str) -> str:
        return self.settings.get((group, key), default)

    def writeSetting(self, group: str, key: str, value: str) -> None:
        self.settings[(group, key)] = value

    def addExtension(self, extension: Any) -> None:
        self.extensions.append(extension)


def reset() -> Krita:
    """A fresh application (no documents, no settings)."""
    Krita._instance = Krita()
    return Krita._instance


def open_document(document: Document) -> Document:
    """Make ``document`` the application's active document."""
    app = Krita.instance()
    app.open_documents.append(document)
    app.active_document = document
    return document
