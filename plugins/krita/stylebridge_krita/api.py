"""Scripting entry point: the dialog's path, callable from Krita's Scripter and tests."""

from __future__ import annotations

from typing import Any

from .host import capture_steps
from .options import Options
from .qt import QtCore, exec_loop
from .runner import StyleRun, describe
from .stylebridge_wire import Client, ClientError


class StyleTransferError(RuntimeError):
    """The job failed or was cancelled; the message is the one the dialog would show."""


def active_document_and_node() -> tuple[Any, Any]:
    from krita import Krita

    doc = Krita.instance().activeDocument()
    return doc, (doc.activeNode() if doc is not None else None)


def stylize_active_layer(
    style: str | list[str] = "starry_night",
    *,
    preset: str | None = None,
    weights: list[float] | None = None,
    source: str = "layer",
    wait: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
    **controls: Any,
) -> Any:
    """Stylise the active layer (inside the selection, if any) of the active document.

    ``style``: a built-in painting's name ("starry_night", "The Scream"), an image file, or a
    list of them (blended by ``weights``). ``controls``: the engine's by name, as the dialog
    shows them (strength, balance, preserve_colors, size, time_budget, seed, ...; None: the
    preset's); strength becomes the new layer's opacity (the result itself is made at full
    strength). With ``wait`` (default) Krita's event loop keeps running until the job ends and
    the new layer (a ``krita.Node``) is returned; errors raise `StyleTransferError`. With
    ``wait=False`` the running `StyleRun` is returned.
    """
    names = [style] if isinstance(style, str) else list(style)
    try:
        options = Options(names, weights, preset, controls, source).check()
    except ValueError as exc:
        raise StyleTransferError(describe(exc)) from exc
    doc, node = active_document_and_node()
    try:
        run = StyleRun(capture_steps(doc, node, options.source), options, Client(endpoint, token))
    except (ClientError, ValueError) as exc:
        raise StyleTransferError(describe(exc, endpoint or "")) from exc
    if not wait:
        run.start()
        return run
    outcome: dict[str, Any] = {}
    loop = QtCore.QEventLoop()
    run.finished.connect(lambda n: (outcome.update(node=n), loop.quit()))
    run.failed.connect(lambda m: (outcome.update(error=m), loop.quit()))
    run.cancelled.connect(lambda: (outcome.update(error="Cancelled."), loop.quit()))
    run.start()
    if not run.ended:
        exec_loop(loop)
    if "error" in outcome:
        raise StyleTransferError(outcome["error"])
    return outcome["node"]
