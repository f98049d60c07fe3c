"""Krita's side of the plug-in: the `stylebridge_stylize` action opens the dialog."""

from __future__ import annotations

from typing import Any

from krita import Extension, Krita

from .canvas import ActiveCanvas
from .dialog import StyleDialog
from .prefs import Prefs
from .qt import slot

ACTION_ID = "stylebridge_stylize"


class StyleBridgeExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self.dialog: StyleDialog | None = None

    def setup(self) -> None:
        pass

    def createActions(self, window: Any) -> None:
        action = window.createAction(ACTION_ID, "Style Transfer...", "tools/scripts")
        action.triggered.connect(self.show_dialog)

    @slot
    def show_dialog(self) -> StyleDialog:
        if self.dialog is None:
            window = Krita.instance().activeWindow()
            parent = window.qwindow() if window is not None else None
            self.dialog = StyleDialog(ActiveCanvas(), Prefs.krita(), parent)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()  # showing it checks the server
        return self.dialog
