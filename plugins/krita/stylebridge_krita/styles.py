"""Style images: the built-in paintings shipped with the plug-in, files, and how they load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .qt import QtCore, QtGui, image_bytes
from .stylebridge_wire import Image

STYLES_DIR = Path(__file__).resolve().parent / "styles"
MAX_STYLE_SIDE = 1024  # the server works at a few hundred px; no need to send more
FILE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"


class StyleError(ValueError):
    """A style that cannot be found or read; the message names it."""


@dataclass(frozen=True)
class Style:
    path: str
    title: str

    @property
    def builtin(self) -> bool:
        return Path(self.path).parent == STYLES_DIR


def builtin_styles() -> list[Style]:
    """The paintings listed in styles/index.tsv (file, tab, title)."""
    index = STYLES_DIR / "index.tsv"
    styles = []
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.strip():
            file, title = line.split("\t", 1)
            styles.append(Style(str(STYLES_DIR / file), title))
    return styles


def resolve(name: str | os.PathLike[str]) -> Style:
    """A built-in's title or short name ("starry_night", "The Scream"), or an image file."""
    text = os.fspath(name)
    key = text.strip().lower()
    for style in builtin_styles():
        stem = Path(style.path).stem
        if key in (style.title.lower(), stem, stem.split("_")[0], style.path.lower()) or (
            key and style.title.lower().startswith(key)
        ):
            return style
    path = Path(text).expanduser()
    if not path.is_file():
        names = ", ".join(Path(s.path).stem for s in builtin_styles())
        raise StyleError(f"Style {text!r} is neither an image file nor a built-in ({names}).")
    return Style(str(path), path.stem.replace("_", " "))


def load(style: Style, max_side: int = MAX_STYLE_SIDE) -> Image:
    """The style as an 8-bit RGB protocol image, at most ``max_side`` px a side."""
    reader = QtGui.QImageReader(style.path)
    reader.setAutoTransform(True)  # EXIF orientation
    image = reader.read()
    if image.isNull():
        raise StyleError(f"Cannot read the style image {style.path}: {reader.errorString()}")
    if max(image.width(), image.height()) > max_side:
        image = image.scaled(
            max_side,
            max_side,
            QtCore.Qt.AspectRatioMode.KeepAspectRatio,
            QtCore.Qt.TransformationMode.SmoothTransformation,
        )
    rgb = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    return Image(rgb.width(), rgb.height(), 3, "uint8", image_bytes(rgb))


def thumbnail(style: Style, side: int = 48) -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(style.path)
    if pixmap.isNull():
        return QtGui.QIcon()
    return QtGui.QIcon(
        pixmap.scaled(
            side,
            side,
            QtCore.Qt.AspectRatioMode.KeepAspectRatioByExpanding,
            QtCore.Qt.TransformationMode.SmoothTransformation,
        )
    )
