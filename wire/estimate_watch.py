"""The dialogs' time estimate: how long Apply would take for the painter's current choices,
asked of the server (`EstimateQuery`, answered by its cost model) before anything is sent.

Like `ServerWatch`, nothing here waits on the network: `want` records what to ask about and
sends the first question; the host's timer calls `tick`, which collects the answer in flight,
asks about the next layer (GIMP may stylise several), and while the server is still measuring
this machine asks again every few seconds. ``on_change`` tells the view to redraw `text`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .client import Client, PendingReply
from .messages import Estimate, EstimateQuery
from .progress import about
from .protocol import ClientError

ASK_TIMEOUT = 5.0  # s for an estimate's reply
MEASURING_RETRY_S = 2.0  # while the server measures this machine: ask again this often
MEASURING = "Measuring this machine for the time estimate..."


class EstimateWatch:
    """``client(timeout)`` gives a client for the dialog's server (raising ClientError when
    there is none)."""

    def __init__(
        self, client: Callable[[float], Client], on_change: Callable[[], None] = lambda: None
    ) -> None:
        self._client_for, self.on_change = client, on_change
        self.text = ""
        self.seconds: float | None = None
        self.what = "this layer"
        self._key: Any = None
        self._queries: list[EstimateQuery] = []
        self._answers: list[float] = []
        self._client: Client | None = None
        self._pending: PendingReply | None = None
        self._retry_at: float | None = None

    @property
    def busy(self) -> bool:
        """Whether `tick` has anything to do (a host may stop its timer otherwise)."""
        return self._pending is not None or self._retry_at is not None

    def want(
        self,
        sizes: Sequence[tuple[int, int]],
        preset: str | None,
        controls: dict[str, Any],
        what: str = "this layer",
    ) -> None:
        """Ask about a job on layers of ``sizes`` (width, height) with ``preset`` and
        ``controls``; ``what``: the job's subject in the text ("this layer", "2 layers").
        Nothing is sent when the question has not changed."""
        controls = {k: v for k, v in controls.items() if v is not None}
        key = (tuple(sizes), preset, tuple(sorted(controls.items())), what)
        if key == self._key:
            return
        self._key, self.what = key, what
        self._queries = [EstimateQuery(w, h, preset, controls) for w, h in sizes]
        self.restart()

    def restart(self) -> None:
        """Ask again (the server came up, or another one is chosen)."""
        self._drop()
        self._answers, self._retry_at = [], None
        if self._queries:
            self._ask()

    def tick(self) -> None:
        if self._pending is not None:
            self._poll()
        elif self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._retry_at = None
            self._ask()

    def close(self) -> None:
        self._queries, self._retry_at, self._key = [], None, None
        self._drop()

    # ------------------------------------------------------------------ the polled requests
    def _ask(self) -> None:
        try:
            self._client = self._client or self._client_for(ASK_TIMEOUT)
            query = self._queries[len(self._answers)]
            self._pending = self._client.begin(query)
        except ClientError:
            self._drop()
            self._show("", None)  # no server: its line says so, and Apply starts it
        else:
            self.on_change()

    def _poll(self) -> None:
        assert self._pending is not None
        try:
            reply: Estimate | None = self._pending.poll()
        except ClientError:
            self._drop()
            self._show("", None)
            return
        if reply is None:
            return
        self._pending = None
        if reply.seconds is None:  # measuring this machine: the probe runs, ask again soon
            self._answers = []
            self._retry_at = time.monotonic() + MEASURING_RETRY_S
            self._show(MEASURING, None)
            return
        self._answers.append(max(0.0, reply.seconds))
        if len(self._answers) < len(self._queries):
            self._ask()
            return
        self._drop()
        total = sum(self._answers)
        self._show(f"About {about(total)} for {self.what} on this machine.", total)

    def _drop(self) -> None:
        self._pending = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _show(self, text: str, seconds: float | None) -> None:
        self.text, self.seconds = text, seconds
        self.on_change()
