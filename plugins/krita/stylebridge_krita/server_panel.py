"""The dialog's server panel: which server (this machine's, or a studio's endpoint and token),
the command that starts it, Start / Stop / Open log, its state and the last error in words.

Every check is a request polled by a timer (`Client.begin`): Krita's UI thread never waits on
the network, however slow or absent the server is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .prefs import Prefs
from .qt import QtCore, QtGui, pyqtSignal
from .qt import QtWidgets as W
from .stylebridge_wire import Client, ClientError, PendingReply, server_process
from .stylebridge_wire.discovery import read_discovery

KRITA_FLATPAK = "org.kde.krita"
CHECK_TIMEOUT = 2.0  # s for a status reply; the dialog goes on meanwhile
POLL_MS = 100  # how often the timer collects a reply
START_WAIT = 120  # s for a started server to load its model and answer


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


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
        self.prefs, self._start = prefs, start
        self.ready = False
        self._client: Client | None = None
        self._pending: PendingReply | None = None
        self._after: Callable[[dict[str, Any]], None] | None = None
        self._timer = QtCore.QTimer(self)  # collects the reply in flight
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._retry = QtCore.QTimer(self)  # a started server: ask each second until it answers
        self._retry.setInterval(1000)
        self._retry.timeout.connect(self._retry_check)
        self._retries_left = 0
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

        self.state = W.QLabel("Server: not checked yet")
        self.state.setWordWrap(True)
        form.addRow(self.state)
        self.error = W.QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d33;")
        form.addRow(self.error)
        self.log = W.QLabel(str(server_process.log_path()))
        self.log.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Log", self.log)

        buttons = W.QHBoxLayout()
        self.start_button = W.QPushButton("Start")
        self.stop_button = W.QPushButton("Stop")
        self.log_button = W.QPushButton("Open log")
        self.refresh_button = W.QPushButton("Refresh")
        for button, slot in (
            (self.start_button, self.start_server),
            (self.stop_button, self.stop_server),
            (self.log_button, self.open_log),
            (self.refresh_button, self.check),
        ):
            button.clicked.connect(slot)
            buttons.addWidget(button)
        form.addRow(buttons)
        self._show_ready(False)

    # ------------------------------------------------------------------ public
    def client(self, timeout: float) -> Client:
        """A client for the chosen server; raises ClientError when there is none to find."""
        self.prefs.set("endpoint", self.endpoint.text().strip())
        self.prefs.set("server_command", self.command.text().strip())
        return Client(
            self.endpoint.text().strip() or None, self.token.text().strip() or None, timeout=timeout
        )

    def check(self) -> None:
        """Ask the server for its status; the answer (or its absence) shows up later."""
        self._ask("status", self._on_status)

    def start_server(self) -> None:
        command = self.command.text().strip()
        try:
            self._start(command)
        except OSError as exc:
            self.show_error(describe(exc))
            return
        self.prefs.set("server_command", command)
        self.show_error("")
        self.state.setText(f"Server: starting ({command})...")
        self.start_button.setEnabled(False)
        self._retries_left = START_WAIT
        self._retry.start()

    def stop_server(self) -> None:
        """Stop this machine's server now: the admin key is in its discovery file, which only
        the server's own user can read (a studio server is stopped on its own machine)."""
        info = read_discovery()
        if self.endpoint.text().strip() or not info or not info.get("admin"):
            self.show_error("Stop works for this machine's own server; stop a studio server there.")
            return
        self._ask("shutdown", self._on_stopped, admin=info["admin"], drain=0)

    def open_log(self) -> None:
        path = server_process.log_path()
        if not path.is_file():
            self.show_error(f"There is no log yet: {path}")
            return
        QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path)))

    def show_error(self, text: str) -> None:
        self.error.setText(text)

    # ------------------------------------------------------------------ the polled requests
    def _ask(self, kind: str, then: Callable[[dict[str, Any]], None], **fields: Any) -> None:
        if self._pending is not None:
            return  # one at a time; the one in flight answers soon enough
        try:
            self._client = self.client(CHECK_TIMEOUT)
            self._pending = self._client.begin(kind, **fields)
        except ClientError as exc:
            self._close()
            self._on_down(exc)
            return
        self._after = then
        self._timer.start()

    def _retry_check(self) -> None:
        self._retries_left -= 1
        if self._retries_left > 0:
            self.check()
            return
        self._retry.stop()
        self.state.setText("Server: it did not come up.")
        self.show_error(f"The server did not answer within {START_WAIT} s: see its log.")

    def _poll(self) -> None:
        if self._pending is None:
            self._timer.stop()
            return
        try:
            reply = self._pending.poll()
        except ClientError as exc:
            self._close()
            self._on_down(exc)
            return
        if reply is not None:
            then = self._after
            self._close()
            if then is not None:
                then(reply)

    def _close(self) -> None:
        self._timer.stop()
        self._pending, self._after = None, None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _on_status(self, status: dict[str, Any]) -> None:
        self._retry.stop()
        queue = len(status.get("queue") or [])
        self.state.setText(
            f"Server: ready on {status.get('device', '?')} ({status.get('endpoint', '')})"
            + (f", {queue} queued" if queue else "")
        )
        self.show_error("")
        self._show_ready(True)

    def _on_stopped(self, _reply: dict[str, Any]) -> None:
        self.state.setText("Server: stopped.")
        self._show_ready(False)

    def _on_down(self, exc: BaseException) -> None:
        if self._retry.isActive():
            self.state.setText("Server: starting (loading the model)...")
            return
        self.state.setText("Server: not running. Start it here, or run 'stylebridge serve'.")
        hint = server_process.sandbox_hint(KRITA_FLATPAK)
        self.show_error(hint or describe(exc))
        self._show_ready(False)

    def _show_ready(self, ready: bool) -> None:
        changed = ready != self.ready
        self.ready = ready
        local = not self.endpoint.text().strip()
        self.start_button.setEnabled(not ready and local)
        self.stop_button.setEnabled(ready and local)
        if changed:
            self.ready_changed.emit(ready)

    def _browse_command(self) -> None:
        path, _ = W.QFileDialog.getOpenFileName(self, "The stylebridge program")
        if path:
            self.command.setText(server_process.command_for(path))
