"""The non-modal "Style Transfer" dialog: choose styles and options, Apply, watch, Cancel."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import styles as style_files
from .options import SOURCES, Options
from .prefs import Prefs
from .qt import QtCore, QtWidgets, plain_label, slot
from .runner import StyleRun, describe
from .server_panel import ServerPanel
from .stylebridge_wire import ClientError
from .stylebridge_wire.messages import Progress
from .stylebridge_wire.progress import step_text
from .stylebridge_wire.vocabulary import Control, Vocabulary, default

W = QtWidgets
MAX_RECENT = 8
CLIENT_TIMEOUT = 15.0  # s of silence before a job's liveness ping
SLIDER_STEPS = 100  # a 0..1 control as a slider: hundredths
QT_INT_MAX = 2**31 - 1  # QSpinBox holds a C int


def _combo(labels: dict[str, str], current: str | None = None) -> Any:
    box = W.QComboBox()
    for key, label in labels.items():
        box.addItem(label, key)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class ControlField:
    """One vocabulary control as a widget: a slider for 0..1, a list for choices, else a spin
    box whose 0 means "the preset's" when 0 is not a value the control takes."""

    def __init__(self, control: Control) -> None:
        self.control = c = control
        if c.choices is not None:
            self.widget = self.input = _combo(c.choices, c.default)
        elif c.type is float and c.min == 0 and c.max == 1:
            self.input = W.QSlider(QtCore.Qt.Orientation.Horizontal)
            self.input.setRange(0, SLIDER_STEPS)
            shown = plain_label()
            self.input.valueChanged.connect(lambda v: shown.setText(f"{v} %"))
            self.widget = W.QWidget()
            row = W.QHBoxLayout(self.widget)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(self.input, 1)
            row.addWidget(shown)
        else:
            spin = W.QDoubleSpinBox() if c.type is float else W.QSpinBox()
            low = 0 if c.zero_means_preset else c.min
            spin.setRange(low, min(c.max if c.max is not None else QT_INT_MAX, QT_INT_MAX))
            if c.zero_means_preset:
                spin.setSpecialValueText("no limit" if c.optional else "preset default")
            if c.unit:
                spin.setSuffix(f" {c.unit}")
            self.widget = self.input = spin
        self.widget.setToolTip(c.help)
        self.set(c.dialog_default)

    def value(self) -> Any:
        c = self.control
        if c.choices is not None:
            return self.input.currentData()
        if isinstance(self.input, W.QSlider):
            return self.input.value() / SLIDER_STEPS
        value = self.input.value()
        return None if c.zero_means_preset and value == 0 else c.type(value)

    def set(self, value: Any) -> None:
        if self.control.choices is not None:
            index = self.input.findData(value)
            if index >= 0:
                self.input.setCurrentIndex(index)
        elif isinstance(self.input, W.QSlider):
            self.input.setValue(round(SLIDER_STEPS * float(value)))
        else:
            self.input.setValue(0 if value is None else value)

    def load(self, text: str) -> None:
        """From the preferences' text; an unreadable or stale value keeps the default."""
        if not text:
            return
        with contextlib.suppress(ValueError, TypeError):
            self.set(self.control.check(self.control.type(json.loads(text))))

    def save(self) -> str:
        return json.dumps(self.value())


class StyleDialog(W.QDialog):
    """``capture_source(source)`` reads the document (host edge); it is injected so that the
    dialog is built and exercised in tests without Krita. Its preset list and controls are
    built from ``vocabulary`` (the engine's declarations)."""

    def __init__(
        self,
        capture_source: Callable[[str], Any],
        prefs: Prefs,
        parent: Any = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Style Transfer")
        self.setModal(False)
        self.capture_source = capture_source
        self.prefs = prefs
        self.vocabulary = vocabulary or default()
        self.run: StyleRun | None = None
        self.last_node: Any = None
        self._build()
        self._load_prefs()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = W.QVBoxLayout(self)

        style_box = W.QGroupBox("Styles")
        style_layout = W.QVBoxLayout(style_box)
        self.style_table = W.QTableWidget(0, 2)
        self.style_table.setHorizontalHeaderLabels(["Painting", "Blend"])
        header = self.style_table.horizontalHeader()
        header.setSectionResizeMode(0, W.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, W.QHeaderView.ResizeMode.ResizeToContents)
        self.style_table.verticalHeader().setVisible(False)
        self.style_table.setIconSize(QtCore.QSize(40, 40))
        self.style_table.setSelectionBehavior(W.QAbstractItemView.SelectionBehavior.SelectRows)
        style_layout.addWidget(self.style_table)
        row = W.QHBoxLayout()
        self.add_button = W.QPushButton("Add style")
        self.add_menu = W.QMenu(self)
        self.add_button.setMenu(self.add_menu)
        self.add_menu.aboutToShow.connect(self._fill_add_menu)
        self.remove_button = W.QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected_style)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        style_layout.addLayout(row)
        layout.addWidget(style_box)

        form = W.QFormLayout()
        presets = {name: p.label for name, p in self.vocabulary.presets.items()}
        self.preset = _combo(presets, self.vocabulary.default_preset)
        form.addRow("Quality", self.preset)
        self.fields = {c.name: ControlField(c) for c in self.vocabulary.dialog_controls()}
        for f in self.fields.values():
            form.addRow(f.control.label, f.widget)
        self.source = _combo(SOURCES, "layer")
        form.addRow("Source", self.source)
        layout.addLayout(form)

        self.progress = W.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.message = plain_label("Choose a style and press Apply.")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

        self.server = ServerPanel(self.prefs, self)
        layout.addWidget(self.server)

        buttons = W.QDialogButtonBox()
        self.apply_button = buttons.addButton("Apply", W.QDialogButtonBox.ButtonRole.ApplyRole)
        self.cancel_button = buttons.addButton("Cancel", W.QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button = buttons.addButton(
            "Close", W.QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        layout.addWidget(buttons)
        self._set_running(False)

    # ------------------------------------------------------------------ styles
    def add_style(self, name: str, weight: float = 1.0) -> None:
        style = style_files.resolve(name)
        for r in range(self.style_table.rowCount()):
            if self.style_table.item(r, 0).data(QtCore.Qt.ItemDataRole.UserRole) == style.path:
                return
        r = self.style_table.rowCount()
        self.style_table.insertRow(r)
        item = W.QTableWidgetItem(style_files.thumbnail(style), style.title)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, style.path)
        item.setToolTip(style.path)
        item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
        self.style_table.setItem(r, 0, item)
        spin = W.QDoubleSpinBox()
        spin.setRange(0.0, 10.0)
        spin.setSingleStep(0.25)
        spin.setValue(weight)
        self.style_table.setCellWidget(r, 1, spin)
        self.style_table.setRowHeight(r, 44)

    def chosen_styles(self) -> tuple[list[str], list[float]]:
        paths, weights = [], []
        for r in range(self.style_table.rowCount()):
            paths.append(self.style_table.item(r, 0).data(QtCore.Qt.ItemDataRole.UserRole))
            weights.append(self.style_table.cellWidget(r, 1).value())
        return paths, weights

    @slot
    def _remove_selected_style(self) -> None:
        rows = sorted({i.row() for i in self.style_table.selectedIndexes()}, reverse=True)
        for r in rows or [self.style_table.rowCount() - 1]:
            if r >= 0:
                self.style_table.removeRow(r)

    @slot
    def _fill_add_menu(self) -> None:
        menu = self.add_menu
        menu.clear()
        for style in style_files.builtin_styles():
            action = menu.addAction(style_files.thumbnail(style, 32), style.title)
            action.triggered.connect(lambda _=False, p=style.path: self._add_checked(p))
        recent = [style_files.Style(p, Path(p).name) for p in self.prefs.recent_styles()]
        recent = [s for s in recent if not style_files.is_builtin(s) and Path(s.path).is_file()]
        if recent:
            menu.addSeparator()
            for style in recent:
                action = menu.addAction(style_files.thumbnail(style, 32), style.title)
                action.triggered.connect(lambda _=False, p=style.path: self._add_checked(p))
        menu.addSeparator()
        menu.addAction("Image file...").triggered.connect(self._browse_style)

    @slot
    def _browse_style(self) -> None:
        path, _ = W.QFileDialog.getOpenFileName(
            self, "Style image", self.prefs.get("last_dir", ""), style_files.FILE_FILTER
        )
        if path:
            self.prefs.set("last_dir", str(Path(path).parent))
            self._add_checked(path)

    @slot
    def _add_checked(self, name: str) -> None:
        try:
            self.add_style(name)
        except ValueError as exc:
            self.show_message(describe(exc), error=True)

    # ------------------------------------------------------------------ preferences
    def options(self) -> Options:
        paths, weights = self.chosen_styles()
        return Options(
            styles=paths,
            weights=weights if len(paths) > 1 else None,
            preset=self.preset.currentData(),
            controls={name: f.value() for name, f in self.fields.items()},
            source=self.source.currentData(),
        ).check(self.vocabulary)

    def _load_prefs(self) -> None:
        p = self.prefs
        for path in filter(None, p.get("styles", "").split("\n")):
            with contextlib.suppress(ValueError):  # a style file that went away: not preselected
                self.add_style(path)
        if self.style_table.rowCount() == 0:
            self.add_style(style_files.builtin_styles()[0].path)
        for combo, key in ((self.preset, "preset"), (self.source, "source")):
            index = combo.findData(p.get(key, ""))
            if index >= 0:
                combo.setCurrentIndex(index)
        for name, f in self.fields.items():
            f.load(p.get(name, ""))

    def _save_prefs(self, options: Options) -> None:
        p = self.prefs
        p.set("styles", "\n".join(options.styles))
        p.set("preset", options.preset or "")
        p.set("source", options.source)
        for name, f in self.fields.items():
            p.set(name, f.save())
        p.remember_styles(options.styles, MAX_RECENT)

    # ------------------------------------------------------------------ running
    @slot
    def apply(self) -> None:
        if self.run is not None and not self.run.ended:
            return
        try:
            options = self.options()
            cap = self.capture_source(options.source)
            client = self.server.client(CLIENT_TIMEOUT)
        except (ClientError, ValueError) as exc:
            self.show_message(describe(exc), error=True)
            if isinstance(exc, ClientError):
                self.server.show_error(describe(exc))
                self.server.check()
            return
        self._save_prefs(options)
        self.run = StyleRun(cap, options, client)
        self.run.progress.connect(self._on_progress)
        self.run.finished.connect(self._on_finished)
        self.run.cancelled.connect(lambda: self._on_end("Cancelled; nothing was changed."))
        self.run.failed.connect(lambda m: self._on_end(m, error=True))
        self._set_running(True)
        self.progress.setValue(0)
        self.show_message("Sending the layer to the server...")
        self.run.start()

    @slot
    def cancel(self) -> None:
        if self.run is not None and not self.run.ended:
            self.run.cancel()

    @slot
    def _on_progress(self, event: Progress) -> None:
        if event.total_steps:
            self.progress.setValue(int(100 * event.fraction()))
        self.show_message(f"Stage {event.stage or 1}/{event.stages or 1}: " + step_text(event))

    @slot
    def _on_finished(self, node: Any) -> None:
        self.last_node = node
        self.progress.setValue(100)
        self._on_end(f"Done: new layer {node.name()!r}. One undo removes it.")

    @slot
    def _on_end(self, text: str, error: bool = False) -> None:
        self._set_running(False)
        if error:
            self.progress.setValue(0)
        self.show_message(text, error=error)

    def _set_running(self, running: bool) -> None:
        self.apply_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def report_error(self, text: str) -> None:
        """Where an exception inside one of the dialog's slots is told (see qt.slot)."""
        self.show_message(text, error=True)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #d33;" if error else "")
        self.message.setText(text)

    @slot
    def closeEvent(self, event: Any) -> None:
        self.cancel()  # closing the dialog never leaves a job (or a preview layer) behind
        super().closeEvent(event)
