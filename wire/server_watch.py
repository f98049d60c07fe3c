"""The dialogs' server panel without a toolkit: which server (this machine's, or an endpoint and
token), Start / Stop, and the state and last error in words. Krita's Qt panel and GIMP's GTK
panel are views of one `ServerWatch`.

Nothing here waits on the network: `check`, `start`, `stop` and `ensure` send a request
(`Client.begin`) or spawn a process and return at once. The host's timer calls `tick` every
``POLL_S``: it collects the reply in flight and, while a started server loads its model, asks
again each second. ``on_change`` tells the view to redraw from `state`, `error` and `ready`.
`ensure` is the dialog's Apply: it runs its callback once the server answers, starting this
machine's server first when none is running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import server_process
from .client import Client, PendingReply
from .discovery import (
    ForeignServer,
    UntrustedFile,
    chosen_endpoint,
    read_discovery,
    typed_server,
)
from .messages import Bye, Message, Shutdown, Status, StatusQuery
from .painter_errors import KRITA, Dialog, painter_text
from .protocol import ClientError

CHECK_TIMEOUT = 2.0  # s for a status reply; the dialog goes on meanwhile
POLL_S = 0.1  # how often the host's timer should call `tick`
RETRY_S = 1.0  # while it loads: one status request a second
# a start from nothing: Python, torch and VGG16 read from a cold disk (a warm start takes ~4 s
# on 2 CPU cores, measured; the first after an install converts the weights once)
FIRST_START_S = 20
STARTING = f"Starting the server (first time: about {FIRST_START_S} s)"


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ServerWatch:
    """The panel's state. ``app_id``: the host's Flatpak id, for the sandbox hint;
    ``start(command)``: how a server is started, an argv (tests pass their own); ``dialog``: the
    host dialog's words (its Apply button, its install command) the messages name."""

    def __init__(
        self,
        app_id: str,
        on_change: Callable[[], None] = lambda: None,
        start: Callable[[list[str]], Any] = server_process.start,
        dialog: Dialog = KRITA,
    ) -> None:
        self.app_id, self.on_change, self._start, self.dialog = app_id, on_change, start, dialog
        self.endpoint = ""  # empty: this machine's server, found by its discovery file
        self.token = ""  # only with an endpoint; the views never save it
        self.state = "Server: checking..."
        self.error = ""
        self.ready = False
        self.device = ""  # the ready server's device, e.g. "cpu", "cuda:0"
        self._waiters: list[tuple[Callable[[], None], Callable[[str], None]]] = []
        self._started_at = 0.0
        self._ensure_command: list[str] = []
        self._client: Client | None = None
        self._pending: PendingReply | None = None
        self._then: Callable[[Any], None] | None = None
        self._starting_until: float | None = None  # a started server's deadline
        self._process: Any = None  # what `start` returned: a Popen, whose exit we notice
        self._next_retry = 0.0

    # ------------------------------------------------------------------ what the view shows
    @property
    def local(self) -> bool:
        return not chosen_endpoint(self.endpoint)

    @property
    def starting(self) -> bool:
        return self._starting_until is not None

    @property
    def can_start(self) -> bool:
        return self.local and not self.ready and not self.starting

    @property
    def can_stop(self) -> bool:
        return self.local and self.ready

    @property
    def busy(self) -> bool:
        """Whether `tick` has anything to do (a host may stop its timer otherwise)."""
        return self._pending is not None or self.starting

    def client(self, timeout: float) -> Client:
        """A client for the chosen server; raises ClientError when there is none to find."""
        return Client(*typed_server(self.endpoint, self.token), timeout=timeout)

    # ------------------------------------------------------------------ actions
    def check(self) -> None:
        """Ask the server for its status; the answer (or its absence) comes with a later tick."""
        self._ask(StatusQuery(), self._on_status)

    def start(self, command: list[str]) -> bool:
        """Run the argv ``command`` and watch for the server; False (and the error shown) when
        it could not be run."""
        try:
            self._process = self._start(command)
        except OSError as exc:
            self._show(error=describe(exc))
            self._fail_waiters(describe(exc))
            return False
        self._started_at = time.monotonic()
        self._starting_until = self._started_at + server_process.START_WAIT
        self._next_retry = 0.0
        self._show(STARTING + "...", "")
        return True

    def ensure(
        self, command: list[str], then: Callable[[], None], fail: Callable[[str], None]
    ) -> None:
        """Call ``then`` once the server answers (the dialog's Apply): a status check first,
        and when this machine has no server, ``command`` started and waited for. ``fail`` gets
        the message when there is none to be had."""
        self._waiters.append((then, fail))
        self._ensure_command = command
        if not self.starting:
            self.check()

    def stop(self) -> None:
        """Stop this machine's server now: the admin key is in its discovery file, which only
        the server's own user can read (a studio server is stopped on its own machine)."""
        info = read_discovery()
        if not self.local or not info or not info.get("admin"):
            self._show(error="Stop works for this machine's own server; stop a studio one there.")
            return
        self._ask(Shutdown(info["admin"], drain=0), self._on_stopped)

    def missing_log(self) -> str | None:
        """Why there is no log to open, or None (the view opens `server_process.log_path()`)."""
        path = server_process.log_path()
        if path.is_file():
            return None
        message = f"There is no log yet: {path}"
        self._show(error=message)
        return message

    def tick(self) -> None:
        """Collect the reply in flight; while a started server loads, ask again each second."""
        if self._pending is not None:
            self._poll()
        elif self._starting_until is not None and time.monotonic() >= self._next_retry:
            status = server_process.failed_status(self._process)
            if status is not None:  # no use waiting for a server whose command has failed
                self._starting_until = None
                self._show(
                    "Server: it did not start.",
                    f"The server program {server_process.failed_start(status)}",
                )
                self._fail_waiters(self.error)
                return
            if time.monotonic() >= self._starting_until:
                self._starting_until = None
                self._show(
                    "Server: it did not come up.",
                    f"The server did not answer within {server_process.START_WAIT:.0f} s: "
                    "press Open log under Connection... to see why.",
                )
                self._fail_waiters(self.error)
                return
            self._next_retry = time.monotonic() + RETRY_S
            self.check()

    def close(self) -> None:
        """Drop the request in flight (the dialog is closing)."""
        self._starting_until = None
        self._waiters = []
        self._drop()

    # ------------------------------------------------------------------ the polled requests
    def _ask(self, request: Message, then: Callable[[Any], None]) -> None:
        if self._pending is not None:
            return  # one at a time; the one in flight answers soon enough
        try:
            self._client = self.client(CHECK_TIMEOUT)
            self._pending = self._client.begin(request)
        except ClientError as exc:
            self._drop()
            self._on_down(exc)
            return
        self._then = then
        self.on_change()  # now busy: the view's timer starts ticking

    def _poll(self) -> None:
        assert self._pending is not None
        try:
            reply = self._pending.poll()
        except ClientError as exc:
            self._drop()
            self._on_down(exc)
            return
        if reply is not None:
            then = self._then
            self._drop()
            if then is not None:
                then(reply)

    def _drop(self) -> None:
        self._pending, self._then = None, None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _on_status(self, status: Status) -> None:
        self._starting_until = None
        queue = len(status.queue or [])
        self.device = status.device or "?"
        self._show(
            f"Server: ready on {self.device}" + (f", {queue} queued" if queue else ""),
            "",
            ready=True,
        )
        waiters, self._waiters = self._waiters, []
        for then, _fail in waiters:
            then()

    def _on_stopped(self, _reply: Bye) -> None:
        self._show("Server: stopped.", ready=False)

    def _on_down(self, exc: BaseException) -> None:
        if self.starting:
            waited = time.monotonic() - self._started_at
            self._show(f"{STARTING}: {waited:.0f} s...")
            return
        hint = server_process.sandbox_hint(self.app_id)
        if self._waiters and self.local and hint is None:  # Apply with no server: start one
            self.start(self._ensure_command)
            return
        # the state line says what to press when this machine simply has no server (or a
        # stale discovery file of one that was killed)
        plain = self.local and not isinstance(exc, (UntrustedFile, ForeignServer))
        self._show(
            f"Server: not running. {self.dialog.apply} starts it, or press Start."
            if self.local
            else f"Server: no answer at {chosen_endpoint(self.endpoint)}.",
            hint or ("" if plain else painter_text(exc, self.dialog, self.endpoint)),
            ready=False,
        )
        self._fail_waiters(self.error)

    def _fail_waiters(self, message: str) -> None:
        waiters, self._waiters = self._waiters, []
        for _then, fail in waiters:
            fail(message)

    def _show(
        self, state: str | None = None, error: str | None = None, ready: bool | None = None
    ) -> None:
        if state is not None:
            self.state = state
        if error is not None:
            self.error = error
        if ready is not None:
            self.ready = ready
        self.on_change()
