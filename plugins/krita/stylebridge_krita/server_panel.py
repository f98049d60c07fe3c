"""The dialog's server panel: which server (this machine's, or a studio's endpoint and token),
the command that starts it, Start / Stop / Open log, its state and the last error in words.

A Qt view of the shared `ServerWatch` (GIMP's dialog is another): a timer calls its `tick`, so
Krita's UI thread never waits on the network, however slow or absent the server is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .prefs import Prefs
from .qt import QtCore, QtGui, guarded, plain_label, pyqtSignal, slot
from .qt import QtWidgets as W
from .stylebridge_wire import Client, server_process
from .stylebridge_wire.server_watch import POLL_S, ServerWatch


class ServerPanel(W.QGroupBox):
    """``start(command)``: how a server is started (injected: tests pass their own)."""

    ready_changed = pyqtSignal(bool)

    def __init__(
        self,
        prefs: Prefs,
        parent: Any = None,
        start: Callable[[str], Any] = server_process.start,
    ) -> None:
        super().__init__("Server", parent)
        self.prefs = prefs
        self.watch = ServerWatch(server_process.KRITA_FLATPAK, self._redraw, start)
        self.ready = False
        self._timer = QtCore.QTimer(self)  # the watch's clock while it waits for something
        self._timer.setInterval(round(POLL_S * 1000))
        self._timer.timeout.connect(guarded(self.watch.tick, self.show_error))
        self._build()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        form = W.QFormLayout(self)
        self.command = W.QLineEdit(
            self.prefs.get("server_command") or server_process.default_command()
        )
        self.command.setToolTip("The command Start runs (recorded by `stylebridge install`)")
        browse = W.QToolButton()
        browse.setText("...")
        browse.clicked.connect(self._browse_command)
        row = W.QHBoxLayout()
        row.addWidget(self.command, 1)
        row.addWidget(browse)
        form.addRow("Command", row)
        self.endpoint = W.QLineEdit(self.prefs.get("endpoint"))
        self.endpoint.setPlaceholderText("this machine's server (its discovery file)")
        form.addRow("Endpoint", self.endpoint)
        self.token = W.QLineEdit()  # never saved: kritarc is no place for a secret
        self.token.setEchoMode(W.QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("with an endpoint: the server's token")
        form.addRow("Token", self.token)

        self.state = plain_label("Server: not checked yet")
        self.state.setWordWrap(True)
        form.addRow(self.state)
        self.error = plain_label()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d33;")
        form.addRow(self.error)
        self.log = plain_label(str(server_process.log_path()))
        self.log.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Log", self.log)

        buttons = W.QHBoxLayout()
        self.start_button = W.QPushButton("Start")
        self.stop_button = W.QPushButton("Stop")
        self.log_button = W.QPushButton("Open log")
        self.refresh_button = W.QPushButton("Refresh")
        for button, action in (
            (self.start_button, self.start_server),
            (self.stop_button, self.stop_server),
            (self.log_button, self.open_log),
            (self.refresh_button, self.check),
        ):
            button.clicked.connect(action)
            buttons.addWidget(button)
        form.addRow(buttons)
        self._redraw()

    # ------------------------------------------------------------------ public
    def client(self, timeout: float) -> Client:
        """A client for the chosen server; raises ClientError when there is none to find."""
        self._take_fields()
        self.prefs.set("endpoint", self.watch.endpoint)
        self.prefs.set("server_command", self.command.text().strip())
        return self.watch.client(timeout)

    @slot
    def check(self) -> None:
        """Ask the server for its status; the answer (or its absence) shows up later."""
        self._take_fields()
        self.watch.check()

    @slot
    def start_server(self) -> None:
        command = self.command.text().strip()
        if self.watch.start(command):
            self.prefs.set("server_command", command)

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

    @slot
    def closeEvent(self, event: Any) -> None:
        self._timer.stop()
        self.watch.close()
        super().closeEvent(event)

    # ------------------------------------------------------------------ the watch's view
    def _take_fields(self) -> None:
        self.watch.endpoint = self.endpoint.text().strip()
        self.watch.token = self.token.text().strip()

    def _redraw(self) -> None:
        watch = self.watch
        if watch.busy != self._timer.isActive():
            (self._timer.start if watch.busy else self._timer.stop)()
        self.state.setText(watch.state)
        self.error.setText(watch.error)
        self.start_button.setEnabled(watch.can_start)
        self.stop_button.setEnabled(watch.can_stop)
        if watch.ready != self.ready:
            self.ready = watch.ready
            self.ready_changed.emit(watch.ready)

    @slot
    def _browse_command(self) -> None:
        path, _ = W.QFileDialog.getOpenFileName(self, "The stylebridge program")
        if path:
            self.command.setText(server_process.command_for(path))
