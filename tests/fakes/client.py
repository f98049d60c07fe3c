"""A scripted stand-in for ``stylebridge_wire.Client``: what the plug-ins' job runners (Krita's
`StyleRun`, GIMP's `stylize`) see of a server, with no server.

Each submit gets a `ScriptedJob` that plays a script, one step per ``poll``:

* ``("progress", step, total)``: a ``progress`` event (``on_progress`` is called);
* ``("preview", image)``: a preview frame (``on_preview(image, event)`` is called);
* ``("result", image)``: the job ends with ``image`` (None: a copy of the content);
* ``("result", image, notes)``: the same, the result message carrying ``notes``;
* ``("error", exc)``: the job ends with the server error ``exc``;
* ``("cancelled", image)``: the job ends cancelled (``image``: the best so far, or None).

A ``cancel()`` ends the job as cancelled at its next poll. Errors and images are whatever the
test passes in, and events are the messages of the wire package the content's class comes from:
the fake never imports a copy of its own, so the plug-in under test meets its own classes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

Step = tuple[Any, ...]

THREE_STEPS_THEN_RESULT: tuple[Step, ...] = (
    ("progress", 1, 3),
    ("progress", 2, 3),
    ("progress", 3, 3),
    ("result", None),
)


def messages_of(image: Any) -> ModuleType:
    """The messages module of the wire package ``image``'s class belongs to (a plug-in's own
    vendored copy)."""
    package = type(image).__module__.rpartition(".")[0]
    return importlib.import_module(f"{package}.messages")


def copy_of(image: Any) -> Any:
    """A new image of the same class, size, layout and pixels."""
    return type(image)(image.width, image.height, image.channels, image.dtype, image.data)


class ScriptedJob:
    def __init__(
        self,
        client: ScriptedClient,
        content: Any,
        script: Sequence[Step],
        on_progress: Callable[[Any], None] | None,
        on_preview: Callable[[Any, Any], None] | None,
    ) -> None:
        self.client = client
        self.content = content
        self.script = list(script)
        self.on_progress = on_progress
        self.on_preview = on_preview
        self.job_id = f"job-{len(client.jobs) + 1}"
        self.position: int | None = 0
        self.progress: Any = None  # the last Progress
        self.latest_preview: Any = None
        self.result: Any = None
        self.info: Any = None  # the Result message that ended it
        self.error: Exception | None = None
        self.cancelled = False
        self.cancel_requested = False
        self.done = False

    def poll(self, timeout: float = 0.0) -> bool:
        self.client.polls.append(timeout)
        if self.done:
            return True
        if self.cancel_requested:
            self._end(cancelled=True)
            return True
        if not self.script:
            return False  # nothing more scripted: the job runs on
        kind, *args = self.script.pop(0)
        messages = messages_of(self.content)
        if kind == "progress":
            step, total = args
            self.progress = messages.Progress(
                self.job_id, step, total, 1, 1, self.content.width, self.content.height,
                {"total": 1.0}, 0.5, float(total - step),
            )  # fmt: skip
            if self.on_progress is not None:
                self.on_progress(self.progress)
        elif kind == "preview":
            (image,) = args
            self.latest_preview = image
            if self.on_preview is not None:
                step = self.progress.step if self.progress else 0
                self.on_preview(image, messages.Preview(self.job_id, step, None))
        elif kind == "result":
            image, notes = (*args, None) if len(args) == 1 else args
            self.result = copy_of(self.content) if image is None else image
            self.info = messages.Result(self.job_id, None, 3, False, 1.0, notes=notes)
            self._end()
        elif kind == "error":
            (self.error,) = args
            self._end()
        elif kind == "cancelled":
            self._end(cancelled=True, image=args[0] if args else None)
        else:
            raise ValueError(f"unknown script step {kind!r}")
        return self.done

    def cancel(self) -> None:
        self.client.cancels.append(self.job_id)
        if not self.done:
            self.cancel_requested = True

    def _end(self, cancelled: bool = False, image: Any = None) -> None:
        self.done = True
        self.cancelled = cancelled
        if cancelled:
            self.result = image


ESTIMATE = 42.0  # s, the scripted server's estimate of any job


class Answered:
    """A begun request whose reply is there."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def poll(self) -> Any:
        return self.reply


class ScriptedClient:
    """Records what is sent; ``script(index, content)`` gives each job's script (default: three
    progress events, then the content back as the result)."""

    def __init__(
        self, script: Callable[[int, Any], Sequence[Step]] | Sequence[Step] | None = None
    ) -> None:
        self._script = script
        self.submits: list[dict[str, Any]] = []
        self.jobs: list[ScriptedJob] = []
        self.polls: list[float] = []
        self.cancels: list[str] = []
        self.pings = 0
        self.begun: list[Any] = []
        self.closed = False
        self.endpoint = "tcp://127.0.0.1:1"

    def ping(self) -> None:
        self.pings += 1

    def begin(self, request: Any) -> Answered:
        """A request a panel polls for (a status, an estimate): answered at its first poll,
        a server on the CPU with nothing queued that takes `ESTIMATE` s for any job."""
        self.begun.append(request)
        messages = importlib.import_module(type(request).__module__)
        if isinstance(request, messages.StatusQuery):
            reply = messages.Status(
                "0.1.0", 2, self.endpoint, 1, {}, 1.0, {}, False, True, "cpu", True, "w", [],
                None, {},
            )  # fmt: skip
        elif isinstance(request, messages.EstimateQuery):
            reply = messages.Estimate(ESTIMATE, "jobs")
        else:
            raise ValueError(f"the scripted client answers no {type(request).__name__}")
        return Answered(reply)

    def submit(
        self,
        content: Any,
        styles: list[Any],
        *,
        preset: str | None = None,
        style_weights: list[float] | None = None,
        mask: Any = None,
        preview: float | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_preview: Callable[[Any, Any], None] | None = None,
        **controls: Any,
    ) -> ScriptedJob:
        sent = {"content": content, "styles": styles, "preset": preset, "mask": mask}
        self.submits.append(
            {**sent, "style_weights": style_weights, "preview": preview, "controls": controls}
        )
        if self._script is None:
            script: Sequence[Step] = THREE_STEPS_THEN_RESULT
        elif callable(self._script):
            script = self._script(len(self.jobs), content)
        else:
            script = self._script
        job = ScriptedJob(self, content, script, on_progress, on_preview)
        self.jobs.append(job)
        return job

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> ScriptedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
