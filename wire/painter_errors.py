"""What a painter reads when something goes wrong: the vocabulary of errors.

Every error code the server can send (docs/protocol.md, "Errors") and every way the client
fails has one sentence here, written for someone in Krita or GIMP: it names a control the dialog
shows (by its label), a button to press, or a command that works for any install. The server's
own messages are written for the command line and its log; both plug-ins say errors through
`painter_text` instead. tests/wire/test_painter_errors.py walks every entry for internal names.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .discovery import ForeignServer, StaleServer, UntrustedFile, chosen_endpoint
from .protocol import ClientError, ServerError, ServerUnavailable
from .vocabulary import Vocabulary, default


@dataclass(frozen=True)
class Dialog:
    """The words of one host's dialog that the messages use."""

    host: str  # "Krita", "GIMP"
    apply: str  # the button that runs a job
    install: str  # the command that installs this plug-in (and its matching server command)


KRITA = Dialog("Krita", "Apply", "stylebridge install krita")
GIMP = Dialog("GIMP", "OK", "stylebridge install gimp")
CONNECTION = "Connection..."  # the expander that holds the server program, endpoint, token, log

# One sentence for each error code of the protocol, and the client's own ("bad_reply",
# "cancelled"). Placeholders: {apply}, {host}, {install}, {connection}, {what} (the subject of a
# field: a control's label, "The layer", "The selection", "Style 2"), {detail} (the server's
# words after its field's name: numbers and ranges, never a name).
SERVER_ERRORS = {
    "bad_message": "The server could not read what this plug-in sent, so the two do not match: "
    "run `{install}` and restart {host}.",
    "bad_version": "This plug-in and the server are of different versions: run `{install}` "
    "and restart {host}.",
    "unknown_type": "The server is older than this plug-in: run `{install}` and restart {host}.",
    "bad_field": "{what}: {detail}.",
    "too_large": "{what} is too large for the server ({detail}): select a smaller part, or "
    "lower Detail (px).",
    "queue_full": "The server is busy with other jobs: press {apply} again when one has finished.",
    "unknown_job": "The server no longer knows this job (was it restarted?): press {apply} again.",
    "engine_error": "The server failed on this job: press Open log under {connection} to see "
    "why, then {apply} again.",
    "shutting_down": "The server is stopping: press Start, then {apply} again.",
    "forbidden": "Stop works only for this machine's own server: a studio server is stopped "
    "on its own machine.",
    "unavailable": "The studio server behind the relay does not answer: check that it runs, "
    "then press {apply} again.",
    "bad_reply": "The server's answer does not fit this layer, so plug-in and server do not "
    "match: run `{install}` and restart {host}.",
    "cancelled": "The job was cancelled before it made an image, so nothing was changed: "
    "press {apply} to run it again.",
}
# Errors that depend on more than their code
OUT_OF_MEMORY = (
    "The server ran out of memory on this layer: lower Detail (px) or select a smaller part, "
    "then press {apply}."
)
UNKNOWN_CONTROL = (
    "The server does not know a setting this plug-in sent, so the two do not match: run "
    "`{install}` and restart {host}."
)
REFUSED = (  # a field no painter sets (a plug-in's own bug, or a version mismatch)
    "The server refused what this plug-in sent ({detail}): run `{install}` and restart {host}."
)
NOT_RUNNING = "The server is not running: press {apply} to start it, or Start."
NO_ANSWER = (
    "No answer from the server at {endpoint}: check the endpoint and token under {connection}, "
    "or ask whoever runs it to start it."
)
LOST = "The server stopped answering: press {apply} to run again (it starts the server)."
REJECTED = (
    "The server refused this plug-in's connection (a different version?): run `{install}`, "
    "restart {host} and press {apply}."
)
NOT_PRIVATE = (
    "The server's folder can be read by other users, so it is not used: delete {folder}, then "
    "press {apply}."
)
FOREIGN = (
    "The server's file names a program of another user, so it is not used: delete {file}, "
    "then press {apply}."
)
CLIENT_FAILED = "Talking to the server failed ({detail}): press {apply} to try again."
ALL = {
    **SERVER_ERRORS,
    "out_of_memory": OUT_OF_MEMORY,
    "unknown_control": UNKNOWN_CONTROL,
    "refused": REFUSED,
    "not_running": NOT_RUNNING,
    "no_answer": NO_ANSWER,
    "lost": LOST,
    "rejected": REJECTED,
    "not_private": NOT_PRIVATE,
    "foreign": FOREIGN,
    "client_failed": CLIENT_FAILED,
}

# the subject of a message field that is not a control
_SUBJECTS = (("content", "The layer"), ("mask", "The selection"))
_STYLE = re.compile(r"^styles\.(\d+)")


def subject(field: str | None, vocabulary: Vocabulary) -> str | None:
    """What a protocol field is to a painter: a dialog control's label, the layer, the
    selection, a style; None for a field no painter sets."""
    if not field:
        return None
    if field.startswith("controls."):
        control = vocabulary.controls.get(field.split(".", 2)[1])
        return control.label if control is not None and control.dialog else None
    for prefix, words in _SUBJECTS:
        if field == prefix or field.startswith(prefix + "."):
            return words
    style = _STYLE.match(field)
    return f"Style {int(style.group(1)) + 1}" if style else None


def _detail(message: str, field: str | None) -> str:
    """The server's words after its field's name ("size: 20 is outside 32..8192" -> "20 is
    outside 32..8192"), without a trailing full stop."""
    text = message.strip().rstrip(".")
    head, sep, rest = text.partition(": ")
    if sep and field and (field == head or field.endswith("." + head) or head in field):
        text = rest
    return text


def server_error_text(
    exc: ServerError, dialog: Dialog, vocabulary: Vocabulary | None = None
) -> str:
    """A server's ``error`` reply (or the client's ``bad_reply``) in a painter's words."""
    vocabulary = vocabulary or default()
    words = {"apply": dialog.apply, "host": dialog.host, "install": dialog.install}
    words["connection"] = CONNECTION
    field = exc.field or ""
    what = subject(field, vocabulary)
    detail = _detail(exc.message or "", field)
    if exc.code == "engine_error" and field.startswith("controls."):
        return OUT_OF_MEMORY.format(**words)  # the worker names the working size it ran out at
    if exc.code == "too_large" and field.startswith("controls."):
        return OUT_OF_MEMORY.format(**words)  # the memory estimate, before it ran
    if exc.code == "bad_field" and "unknown control" in detail:
        return UNKNOWN_CONTROL.format(**words)
    if exc.code in ("bad_field", "too_large") and what is None:
        return REFUSED.format(detail=detail, **words)
    template = SERVER_ERRORS.get(exc.code, SERVER_ERRORS["engine_error"])
    return template.format(what=what, detail=detail, **words)


def painter_text(
    exc: BaseException,
    dialog: Dialog = KRITA,
    endpoint: str = "",
    vocabulary: Vocabulary | None = None,
) -> str:
    """Any failure of the client (or a server's error) as one sentence for the painter.
    ``endpoint``: the one the dialog uses ("" is this machine's server)."""
    words = {"apply": dialog.apply, "host": dialog.host, "install": dialog.install}
    words["connection"] = CONNECTION
    if isinstance(exc, ServerError):
        return server_error_text(exc, dialog, vocabulary)
    if isinstance(exc, UntrustedFile):
        folder = str(exc).split(" ", 1)[0]
        return NOT_PRIVATE.format(folder=folder, **words)
    if isinstance(exc, ForeignServer):
        return FOREIGN.format(file=exc.path, **words)
    if isinstance(exc, StaleServer):
        return NOT_RUNNING.format(**words)
    if isinstance(exc, ServerUnavailable):
        text = str(exc)
        if "rejected the handshake" in text:
            return REJECTED.format(**words)
        remote = chosen_endpoint(endpoint)
        if remote:
            return NO_ANSWER.format(endpoint=remote, **words)
        if text.startswith("no stylebridge server found"):
            return NOT_RUNNING.format(**words)
        return LOST.format(**words)
    if isinstance(exc, ClientError):
        return CLIENT_FAILED.format(detail=str(exc).strip().rstrip("."), **words)
    text = str(exc).strip() or type(exc).__name__  # the plug-ins' own: painters' words already
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
