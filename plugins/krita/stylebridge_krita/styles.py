"""Style images: the built-in paintings shipped with the plug-in, files, and how they load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .qt import QtCore, QtGui, image_bytes
from .stylebridge_wire import Image, catalogue
from .stylebridge_wire.catalogue import Style

STYLES_DIR = Path(__file__).resolve().parent / "styles"
FILE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"


class StyleError(ValueError):
    """A style that cannot be found or read; the message names it."""


def builtin_styles() -> list[Style]:
    """The paintings shipped with the plug-in (styles/index.tsv)."""
    return list(catalogue.builtin_styles(str(STYLES_DIR)).values())


def is_builtin(style: Style) -> bool:
    return Path(style.path).parent == STYLES_DIR


def resolve(name: str | os.PathLike[str]) -> Style:
    """A built-in's title or short name ("starry_night", "The Scream"), or an image file."""
    text = os.fspath(name)
    builtins = catalogue.builtin_styles(str(STYLES_DIR))
    found = catalogue.find_builtin(text, builtins)
    if found is not None:
        return found
    try:
        return catalogue.file_style(text)
    except ValueError:
        names = ", ".join(builtins)
        raise StyleError(
            f"Style {text!r} is neither an image file nor a built-in ({names})."
        ) from None


def load(style: Style, max_side: int = catalogue.MAX_STYLE_SIDE) -> Image:
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


def title_of(ref: Any) -> str:
    """A style's title: a built-in's or a file's (a name), or a canvas style's own."""
    return resolve(ref).title if isinstance(ref, (str, os.PathLike)) else ref.title


def short_title_of(ref: Any) -> str:
    """A style's title in a result layer's name (a canvas style's without its extension)."""
    return title_of(ref) if isinstance(ref, (str, os.PathLike)) else ref.short


def load_any(ref: Any) -> Image:
    """A style as an 8-bit RGB protocol image: a built-in or file by name, or a canvas style
    (an open document or layer, canvas.py), read now."""
    return load(resolve(ref)) if isinstance(ref, (str, os.PathLike)) else ref.load()


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
