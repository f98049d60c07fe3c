"""The dialog's server line: the server's state and device, Start and Stop; behind the
"Connection..." button, the program Start runs, a studio's endpoint and token, the log.

A Qt view of the shared `ServerWatch` (GIMP's dialog is another): a timer calls its `tick`, so
Krita's UI thread never waits on the network, however slow or absent the server is. Every label
that shows the server's words is plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .prefs import Prefs
from .qt import QtCore, QtGui, guarded, pyqtSignal, slot
from .qt import QtWidgets as W
from .stylebridge_wire import Client, server_process
from .stylebridge_wire.painter_errors import CONNECTION, KRITA
from .stylebridge_wire.server_watch import POLL_S, ServerWatch

COMMAND_KEY = "server_command"  # the saved argv, as JSON ("": the installer's record)
ENDPOINT_KEY = "endpoint"


def plain_label(text: str = "", wrap: bool = True) -> Any:
    """A label that never reads its text as rich text (it may hold the server's words)."""
    label = W.QLabel()
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setText(text)
    return label


class ServerPanel(W.QWidget):
    """``start(command)``: how a server is started, an argv (injected: tests pass their own)."""

    ready_changed = pyqtSignal(bool)

    def __init__(
        self,
        prefs: Prefs,
        parent: Any = None,
        start: Callable[[list[str]], Any] = server_process.start,
    ) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.watch = ServerWatch(server_process.KRITA_FLATPAK, self._redraw, start, KRITA)
        self.ready = False
        self._command = server_process.saved_command(self.prefs.get(COMMAND_KEY))
        self._timer = QtCore.QTimer(self)  # the watch's clock while it waits for something
        self._timer.setInterval(round(POLL_S * 1000))
        self._timer.timeout.connect(guarded(self.watch.tick, self.show_error))
        self._build()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = W.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        line = W.QHBoxLayout()
        self.state = plain_label()
        line.addWidget(self.state, 1)
        self.start_button = W.QPushButton("Start")
        self.stop_button = W.QPushButton("Stop")
        self.connection_button = W.QToolButton()
        self.connection_button.setText(CONNECTION)
        self.connection_button.setCheckable(True)
        self.connection_button.setToolButtonStyle(
            QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        self.connection_button.setArrowType(QtCore.Qt.ArrowType.RightArrow)
        self.connection_button.toggled.connect(self._show_details)
        for widget in (self.start_button, self.stop_button, self.connection_button):
            line.addWidget(widget)
        outer.addLayout(line)
        self.error = plain_label()
        self.error.setStyleSheet("color: #d33;")
        outer.addWidget(self.error)

        self.details = W.QWidget()
        form = W.QFormLayout(self.details)
        form.setContentsMargins(0, 0, 0, 0)
        self.program = W.QLineEdit(self._command[0])
        self.program.setToolTip(
            "The stylebridge program Start runs (`stylebridge install` records it)"
        )
        self.program.textEdited.connect(self._program_edited)
        browse = W.QToolButton()
        browse.setText("...")
        browse.clicked.connect(self._browse_program)
        row = W.QHBoxLayout()
        row.addWidget(self.program, 1)
        row.addWidget(browse)
        form.addRow("Server program", row)
        self.endpoint = W.QLineEdit(self.prefs.get(ENDPOINT_KEY))
        self.endpoint.setPlaceholderText("this machine's server")
        self.endpoint.setToolTip(
            "A studio server, e.g. tcp://gpu-box:47474 (empty: this machine's)"
        )
        form.addRow("Endpoint", self.endpoint)
        self.token = W.QLineEdit()  # never saved: kritarc is no place for a secret
        self.token.setEchoMode(W.QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("with an endpoint: the server's token")
        form.addRow("Token", self.token)
        self.log = plain_label(str(server_process.log_path()))
        self.log.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Log", self.log)
        buttons = W.QHBoxLayout()
        self.log_button = W.QPushButton("Open log")
        self.refresh_button = W.QPushButton("Refresh")
        buttons.addWidget(self.log_button)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self.details.setVisible(False)
        outer.addWidget(self.details)
        for button, action in (
            (self.start_button, self.start_server),
            (self.stop_button, self.stop_server),
            (self.log_button, self.open_log),
            (self.refresh_button, self.check),
        ):
            button.clicked.connect(action)
        self._redraw()

    # ------------------------------------------------------------------ public
    def command(self) -> list[str]:
        """The argv Start runs."""
        return list(self._command)

    def client(self, timeout: float) -> Client:
        """A client for the chosen server; raises ClientError when there is none to find."""
        self._take_fields()
        return self.watch.client(timeout)

    def ensure(self, then: Callable[[], None], fail: Callable[[str], None]) -> None:
        """Call ``then`` once the server answers (Apply): started first when none runs here."""
        self._take_fields()
        self._save()
        self.watch.ensure(self.command(), then, fail)

    @slot
    def check(self) -> None:
        """Ask the server for its status; the answer (or its absence) shows up later."""
        self._take_fields()
        self.watch.check()

    @slot
    def start_server(self) -> None:
        if self.watch.start(self.command()):
            self._save()

    @slot
    def stop_server(self) -> None:
        self._take_fields()
        self.watch.stop()

    @slot
    def open_log(self) -> None:
        if self.watch.missing_log() is None:
            path = server_process.log_path()
            QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path)))

    def show_error(self, text: str) -> None:
        self.watch.error = text
        self._redraw()

    report_error = show_error  # where an exception inside a slot is told (see qt.slot)

    def closeEvent(self, event: Any) -> None:
        self.close_watch()
        super().closeEvent(event)

    def close_watch(self) -> None:
        self._timer.stop()
        self.watch.close()

    # ------------------------------------------------------------------ the watch's view
    def _take_fields(self) -> None:
        self.watch.endpoint = self.endpoint.text().strip()
        self.watch.token = self.token.text().strip()

    def _save(self) -> None:
        """The endpoint, and the command unless it is the installer's (whose later record,
        after a reinstall elsewhere, must then apply)."""
        self.prefs.set(ENDPOINT_KEY, self.watch.endpoint)
        self.prefs.set(COMMAND_KEY, server_process.setting_for(self.command()))

    def _redraw(self) -> None:
        watch = self.watch
        if watch.busy != self._timer.isActive():
            (self._timer.start if watch.busy else self._timer.stop)()
        self.state.setText(watch.state)
        self.error.setText(watch.error)
        self.error.setVisible(bool(watch.error))
        self.start_button.setEnabled(watch.can_start)
        self.stop_button.setEnabled(watch.can_stop)
        if watch.ready != self.ready:
            self.ready = watch.ready
            self.ready_changed.emit(watch.ready)

    @slot
    def _show_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        arrow = QtCore.Qt.ArrowType.DownArrow if shown else QtCore.Qt.ArrowType.RightArrow
        self.connection_button.setArrowType(arrow)

    @slot
    def _program_edited(self, text: str) -> None:
        self._command = [text.strip(), *self._command[1:]]

    @slot
    def _browse_program(self) -> None:
        path, _ = W.QFileDialog.getOpenFileName(self, "The stylebridge program")
        if path:
            self._command = server_process.command_for(path)
            self.program.setText(path)
