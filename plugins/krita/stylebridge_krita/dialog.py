"""The non-modal "Style Transfer" dialog: choose styles and options, Apply, watch, Cancel; then
More style or Less style to try again from the same layer.

Apply just works: with no server running, it starts this machine's (the program `stylebridge
install` recorded) and goes on once the server answers. Under the settings the dialog shows how
long the job would take here (the server's estimate for this layer and these choices).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from . import styles as style_files
from .host import Capture
from .options import SOURCES, Options
from .prefs import Prefs
from .qt import QtCore, QtWidgets, guarded, slot
from .runner import STYLE_AMOUNT, StyleRun, describe
from .server_panel import ServerPanel, plain_label
from .slices import Work
from .stylebridge_wire import Image
from .stylebridge_wire.estimate_watch import EstimateWatch
from .stylebridge_wire.messages import Progress
from .stylebridge_wire.progress import step_text
from .stylebridge_wire.server_watch import POLL_S
from .stylebridge_wire.vocabulary import Control, Vocabulary, default

W = QtWidgets
MAX_RECENT = 8
CLIENT_TIMEOUT = 15.0  # s of silence before a job's liveness ping
SLIDER_STEPS = 100  # a 0..1 control as a slider: hundredths
QT_INT_MAX = 2**31 - 1  # QSpinBox holds a C int
RETRY_STEP = 0.2  # More style / Less style: the style amount moves by this much
ESTIMATE_MS = 500  # how often the dialog looks whether the estimate's question has changed


class Canvas(Protocol):
    """What the dialog reads of the host (canvas.ActiveCanvas in Krita; fakes in tests)."""

    def capture_steps(self, source: str) -> Work[Capture]: ...
    def work_size(self, source: str) -> tuple[int, int] | None: ...
    def styles(self) -> list[Any]: ...


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
            shown = plain_label(wrap=False)
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
            if c.type is float and c.max is not None and c.max <= 10:
                spin.setSingleStep(0.25)
            if c.zero_means_preset:
                spin.setSpecialValueText("no limit" if c.optional else "as the preset")
            if c.unit:
                spin.setSuffix(f" {c.unit}")
            self.widget = self.input = spin
        self.widget.setToolTip(c.tooltip)
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


@dataclass
class LastJob:
    """What More style and Less style run again: the same pixels, styles and choices."""

    capture: Capture
    options: Options
    styles: list[Image]
    node: Any = None  # its result layer, hidden when a retry's result comes


def _expander(title: str, content: Any) -> Any:
    """A button with an arrow that shows and hides ``content``."""
    button = W.QToolButton()
    button.setText(title)
    button.setCheckable(True)
    button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setArrowType(QtCore.Qt.ArrowType.RightArrow)
    button.setAutoRaise(True)

    def toggled(shown: bool) -> None:
        content.setVisible(shown)
        button.setArrowType(
            QtCore.Qt.ArrowType.DownArrow if shown else QtCore.Qt.ArrowType.RightArrow
        )

    button.toggled.connect(toggled)
    content.setVisible(False)
    return button


class StyleDialog(W.QDialog):
    """``canvas`` reads the document (the host edge, injected so that the dialog is built and
    exercised in tests without Krita). Its preset list and controls are built from
    ``vocabulary`` (the engine's declarations)."""

    def __init__(
        self,
        canvas: Canvas,
        prefs: Prefs,
        parent: Any = None,
        vocabulary: Vocabulary | None = None,
        start: Callable[[list[str]], Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Style Transfer")
        self.setModal(False)
        self.canvas = canvas
        self.prefs = prefs
        self.vocabulary = vocabulary or default()
        self.run: StyleRun | None = None
        self.last_node: Any = None
        self.last_job: LastJob | None = None
        self._waiting: Options | None = None  # Apply pressed: waiting for the server
        self._start = start
        self._build()
        self._load_prefs()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = W.QVBoxLayout(self)

        style_box = W.QGroupBox("Styles")
        style_layout = W.QVBoxLayout(style_box)
        self.style_table = W.QTableWidget(0, 2)
        self.style_table.setHorizontalHeaderLabels(["Painting", "Weight"])
        header = self.style_table.horizontalHeader()
        header.setSectionResizeMode(0, W.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, W.QHeaderView.ResizeMode.ResizeToContents)
        self.style_table.verticalHeader().setVisible(False)
        self.style_table.setIconSize(QtCore.QSize(40, 40))
        self.style_table.setSelectionBehavior(W.QAbstractItemView.SelectionBehavior.SelectRows)
        self.style_table.setMaximumHeight(150)
        style_layout.addWidget(self.style_table)
        row = W.QHBoxLayout()
        self.add_button = W.QPushButton("Add style")
        self.add_button.setToolTip(
            "A built-in painting, an open document or layer, or an image file"
        )
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
        self.preset.setToolTip(
            "How long the optimiser works: Fast for trying things, Quality for the final "
            "picture, Reference for the original paper's recipe (slow)"
        )
        form.addRow("Quality", self.preset)
        self.fields = {c.name: ControlField(c) for c in self.vocabulary.dialog_controls()}
        for f in self.fields.values():
            if not f.control.advanced:
                form.addRow(f.control.label, f.widget)
        self.source = _combo(SOURCES, "layer")
        self.source.setToolTip("What is stylised: the active layer, or the image as you see it")
        form.addRow("Source", self.source)
        layout.addLayout(form)

        advanced = W.QWidget()
        advanced_form = W.QFormLayout(advanced)
        advanced_form.setContentsMargins(0, 0, 0, 0)
        for f in self.fields.values():
            if f.control.advanced:
                advanced_form.addRow(f.control.label, f.widget)
        self.advanced_button = _expander("Advanced", advanced)
        layout.addWidget(self.advanced_button)
        layout.addWidget(advanced)

        self.estimate = plain_label()
        layout.addWidget(self.estimate)
        self.progress = W.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.message = plain_label("Choose a style and press Apply.")
        layout.addWidget(self.message)

        retry = W.QHBoxLayout()
        self.less_button = W.QPushButton("Less style")
        self.more_button = W.QPushButton("More style")
        tip = "Run the last job again on the same layer with the style amount {} by {:.0%}"
        self.less_button.setToolTip(tip.format("lowered", RETRY_STEP))
        self.more_button.setToolTip(tip.format("raised", RETRY_STEP))
        self.less_button.clicked.connect(lambda: self.retry(-RETRY_STEP))
        self.more_button.clicked.connect(lambda: self.retry(RETRY_STEP))
        retry.addWidget(self.less_button)
        retry.addWidget(self.more_button)
        retry.addStretch(1)
        layout.addLayout(retry)

        line = W.QFrame()
        line.setFrameShape(W.QFrame.Shape.HLine)
        layout.addWidget(line)
        start = {} if self._start is None else {"start": self._start}
        self.server = ServerPanel(self.prefs, self, **start)
        self.server.ready_changed.connect(self._on_ready_changed)
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

        self.estimates = EstimateWatch(self.server.client, self._redraw_estimate)
        self._estimate_timer = QtCore.QTimer(self)
        self._estimate_timer.setInterval(round(POLL_S * 1000))
        self._estimate_timer.timeout.connect(guarded(self.estimates.tick, self.report_error))
        self._question_timer = QtCore.QTimer(self)  # has the painter changed the question?
        self._question_timer.setInterval(ESTIMATE_MS)
        self._question_timer.timeout.connect(self.ask_estimate)
        self._set_running(False)

    # ------------------------------------------------------------------ styles
    def add_style(self, ref: Any, weight: float = 1.0) -> None:
        """A style row: a built-in's name or an image file (str), or a canvas style."""
        if isinstance(ref, str):
            style = style_files.resolve(ref)
            data, key, title, tip = style.path, style.path, style.title, style.path
            icon = style_files.thumbnail(style)
        else:
            data, key, title, tip, icon = ref, ref.key, ref.title, ref.title, ref.icon(40)
        for r in range(self.style_table.rowCount()):
            if self._style_key(r) == key:
                return
        r = self.style_table.rowCount()
        self.style_table.insertRow(r)
        item = W.QTableWidgetItem(icon, title)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, data)
        item.setToolTip(tip)
        item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
        self.style_table.setItem(r, 0, item)
        spin = W.QDoubleSpinBox()
        spin.setRange(0.0, 10.0)
        spin.setSingleStep(0.25)
        spin.setValue(weight)
        spin.setToolTip("How much of this painting goes into the blend, against the others")
        self.style_table.setCellWidget(r, 1, spin)
        self.style_table.setRowHeight(r, 44)

    def _style_key(self, row: int) -> str:
        ref = self.style_table.item(row, 0).data(QtCore.Qt.ItemDataRole.UserRole)
        return ref if isinstance(ref, str) else ref.key

    def chosen_styles(self) -> tuple[list[Any], list[float]]:
        refs, weights = [], []
        for r in range(self.style_table.rowCount()):
            refs.append(self.style_table.item(r, 0).data(QtCore.Qt.ItemDataRole.UserRole))
            weights.append(self.style_table.cellWidget(r, 1).value())
        return refs, weights

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
        canvas_styles = self.canvas.styles()
        if canvas_styles:
            menu.addSeparator()
            for ref in canvas_styles:
                action = menu.addAction(ref.icon(32), ref.title)
                action.triggered.connect(lambda _=False, r=ref: self._add_checked(r))
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
    def _add_checked(self, ref: Any) -> None:
        try:
            self.add_style(ref)
        except ValueError as exc:
            self.show_message(describe(exc), error=True)

    # ------------------------------------------------------------------ preferences
    def options(self) -> Options:
        refs, weights = self.chosen_styles()
        return Options(
            styles=refs,
            weights=weights if len(refs) > 1 else None,
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
        files = [s for s in options.styles if isinstance(s, str)]  # canvas styles are not kept
        p.set("styles", "\n".join(files))
        p.set("preset", options.preset or "")
        p.set("source", options.source)
        for name, f in self.fields.items():
            p.set(name, f.save())
        p.remember_styles(files, MAX_RECENT)

    # ------------------------------------------------------------------ the estimate
    def report_error(self, text: str) -> None:
        """Where an exception inside one of the dialog's slots is told (see qt.slot)."""
        self.show_message(text, error=True)

    @slot
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.server.check()  # its answer brings the estimate (_on_ready_changed)
        self._question_timer.start()
        self.ask_estimate()

    @slot
    def ask_estimate(self) -> None:
        """Ask the server how long Apply would take, when the question has changed (the layer,
        its selection, the preset or a control) and a server answers."""
        if not self.server.ready:
            return
        try:
            options = self.options()
        except ValueError:
            return
        size = self.canvas.work_size(options.source)
        if size is None:
            return
        self.estimates.want([size], options.preset, options.job_controls())

    @slot
    def _redraw_estimate(self) -> None:
        self.estimate.setText(self.estimates.text)
        busy = self.estimates.busy
        if busy != self._estimate_timer.isActive():
            (self._estimate_timer.start if busy else self._estimate_timer.stop)()

    @slot
    def _on_ready_changed(self, ready: bool) -> None:
        if ready:
            self.estimates.restart()
            self.ask_estimate()

    # ------------------------------------------------------------------ running
    @slot
    def apply(self) -> None:
        """Stylise: with no server running, start it first and go on once it answers."""
        if self._waiting is not None or (self.run is not None and not self.run.ended):
            return
        try:
            options = self.options()
        except ValueError as exc:
            self.show_message(describe(exc), error=True)
            return
        self._waiting = options
        self._set_running(True)
        self.progress.setValue(0)
        self.show_message("Checking the server...")
        self.server.ensure(self._server_ready, self._no_server)

    @slot
    def _server_ready(self) -> None:
        options, self._waiting = self._waiting, None
        if options is None:
            return  # cancelled meanwhile
        try:
            work = self.canvas.capture_steps(options.source)
        except ValueError as exc:
            self._on_end(describe(exc), error=True)
            return
        self._save_prefs(options)
        self._begin(StyleRun(work, options, self._client()))

    @slot
    def _no_server(self, message: str) -> None:
        if self._waiting is None:
            return
        self._waiting = None
        self._on_end(message, error=True)

    @slot
    def retry(self, step: float) -> None:
        """The last job again, on the same pixels, with the style amount moved by ``step``:
        the server's Gram cache still holds its styles, and its result stays, hidden."""
        last = self.last_job
        if last is None or (self.run is not None and not self.run.ended):
            return
        amount = float(last.options.value(STYLE_AMOUNT, self.vocabulary))
        amount = round(min(1.0, max(0.0, amount + step)), 2)
        options = replace(last.options, controls={**last.options.controls, STYLE_AMOUNT: amount})
        self.fields[STYLE_AMOUNT].set(amount)
        self._set_running(True)
        self.progress.setValue(0)
        self.server.ensure(
            lambda: self._begin(StyleRun(last.capture, options, self._client(), last.styles)),
            lambda message: self._on_end(message, error=True),
        )

    def _client(self) -> Any:
        return self.server.client(CLIENT_TIMEOUT)

    def _begin(self, run: StyleRun) -> None:
        self.run = run
        run.status.connect(lambda text: self.show_message(text))
        run.progress.connect(self._on_progress)
        run.finished.connect(self._on_finished)
        run.cancelled.connect(lambda: self._on_end("Cancelled; nothing was changed."))
        run.failed.connect(lambda m: self._on_end(m, error=True))
        self._set_running(True)
        run.start()

    @slot
    def cancel(self) -> None:
        if self._waiting is not None:
            self._waiting = None
            self._on_end("Cancelled; nothing was changed.")
        if self.run is not None and not self.run.ended:
            self.run.cancel()

    @slot
    def _on_progress(self, event: Progress) -> None:
        if event.total_steps:
            self.progress.setValue(int(100 * event.fraction()))
        self.show_message(f"Stage {event.stage or 1}/{event.stages or 1}: " + step_text(event))

    @slot
    def _on_finished(self, node: Any) -> None:
        run = self.run
        assert run is not None and run.capture is not None and run.style_images is not None
        previous = self.last_job
        if previous is not None and previous.node is not None:
            same_source = previous.capture.source is run.capture.source
            if same_source and previous.capture.document is run.capture.document:
                with contextlib.suppress(RuntimeError):  # the painter deleted it meanwhile
                    previous.node.setVisible(False)  # kept, hidden, to compare
        self.last_node = node
        self.last_job = LastJob(run.capture, run.options, run.style_images, node)
        self.progress.setValue(100)
        text = f"Done: new layer {node.name()!r}. One undo removes it."
        self._on_end("\n".join([text, *run.notes]))

    @slot
    def _on_end(self, text: str, error: bool = False) -> None:
        self._set_running(False)
        if error:
            self.progress.setValue(0)
        self.show_message(text, error=error)

    def _set_running(self, running: bool) -> None:
        self.apply_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        can_retry = not running and self.last_job is not None
        self.less_button.setEnabled(can_retry)
        self.more_button.setEnabled(can_retry)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #d33;" if error else "")
        self.message.setText(text)

    @slot
    def closeEvent(self, event: Any) -> None:
        self.cancel()  # closing the dialog never leaves a job (or a preview layer) behind
        self._question_timer.stop()
        self._estimate_timer.stop()
        self.estimates.close()
        self.server.close_watch()
        self.last_job = None  # its pixels: a large layer's are hundreds of MB
        super().closeEvent(event)
