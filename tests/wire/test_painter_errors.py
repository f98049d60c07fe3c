"""The vocabulary of errors (wire/painter_errors.py, issue 28): every error that reaches a
painter names a control the dialog shows, a button to press, or a command that works for any
install, and no internal name (a protocol field, a control's name, an environment variable, an
error code, a pip command that a pipx install has no use for).

Walks every sentence of the vocabulary, rendered for both dialogs with every subject it can
take, and what the plug-ins make of the errors the real server writes."""

from __future__ import annotations

import ast
import re

import pytest

from stylebridge.core.errors import InputError
from stylebridge.core.settings import make_settings
from stylebridge.wire import painter_errors as pe
from stylebridge.wire.discovery import ForeignServer, StaleServer, UntrustedFile
from stylebridge.wire.protocol import ClientError, ServerError, ServerUnavailable
from stylebridge.wire.vocabulary import default
from testing import REPO

VOCABULARY = default()
DIALOGS = (pe.KRITA, pe.GIMP)
BUTTONS = ("Apply", "OK", "Start", "Stop", "Open log", pe.CONNECTION)
# the commands a message may give: `stylebridge` is on PATH for every install the README
# describes (pipx ensurepath, a venv's bin), and these work the same for each
COMMANDS = ("stylebridge install krita", "stylebridge install gimp")
INTERNAL = [
    re.compile(r"\b[a-z]+_[a-z0-9_]+\b"),  # a control's, a field's or a code's name
    re.compile(r"STYLEBRIDGE_|controls\.|styles\.\d"),  # environment, protocol fields
    re.compile(r"\[[a-z_]+\]"),  # an error code as the client's ServerError shows it
    re.compile(r"\bpip install\b|--no-deps|Traceback|\bNone\b|Error:"),
]


def labels(dialog: pe.Dialog) -> list[str]:
    return [c.label for c in VOCABULARY.dialog_controls()]


def names_what_to_do(text: str, dialog: pe.Dialog) -> bool:
    """A control the dialog shows, a button, or a working command in backticks."""
    commands = re.findall(r"`([^`]+)`", text)
    if any(c not in COMMANDS for c in commands):
        return False
    return bool(commands) or any(w in text for w in (*labels(dialog), *BUTTONS))


def internal_names(text: str) -> list[str]:
    return [m.group(0) for pattern in INTERNAL for m in pattern.finditer(text)]


def rendered() -> list[tuple[str, pe.Dialog, str]]:
    """Every sentence of the vocabulary, for each dialog and each subject it can take."""
    subjects = [c.label for c in VOCABULARY.dialog_controls()] + ["The layer", "The selection"]
    out = []
    for key, template in pe.ALL.items():
        for dialog in DIALOGS:
            for what in subjects if "{what}" in template else [None]:
                text = template.format(
                    apply=dialog.apply, host=dialog.host, install=dialog.install,
                    connection=pe.CONNECTION, what=what, detail="20 is outside 32..8192",
                    endpoint="tcp://gpu-box:47474", folder="/run/user/1000/stylebridge",
                    file="/run/user/1000/stylebridge/server.json",
                )  # fmt: skip
                out.append((key, dialog, text))
    return out


@pytest.mark.parametrize(("key", "dialog", "text"), rendered(), ids=lambda v: str(v)[:40])
def test_every_sentence_names_what_to_do_and_no_internal_name(key, dialog, text):
    assert not internal_names(text), (key, text)
    if key != "bad_field":  # "Detail (px): 20 is outside 32..8192.": the control itself
        assert names_what_to_do(text, dialog), (key, text)
    else:
        assert text.split(":")[0] in [*labels(dialog), "The layer", "The selection"]
    assert text.endswith(".") and text[0].isupper()


def server_codes() -> set[str]:
    """Every error code the server and the wire package write: the first argument of each
    ProtocolError(...) and Error(...) in their source, and docs/protocol.md's table."""
    codes = set()
    for folder in ("server", "wire"):
        for path in (REPO / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", "")) in
                    ("ProtocolError", "Error")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):  # fmt: skip
                    codes.add(node.args[0].value)
    doc = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Errors") :]
    codes |= set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))
    return codes


def test_every_code_the_server_writes_has_a_sentence():
    codes = server_codes()
    assert {"bad_field", "queue_full", "engine_error", "shutting_down"} <= codes
    assert codes - set(pe.SERVER_ERRORS) == set()


@pytest.mark.parametrize("dialog", DIALOGS, ids=lambda d: d.host)
@pytest.mark.parametrize("control", [c.name for c in VOCABULARY.dialog_controls()])
def test_a_bad_value_the_server_refuses_is_said_with_the_dialogs_label(dialog, control):
    """What the real server writes for a value out of range (core/settings.py's words, the
    field the server names) reaches the painter under the control's label."""
    c = VOCABULARY.controls[control]
    bad = "sepia" if c.choices else (c.max or 0) + 10**9
    with pytest.raises(InputError) as refused:
        make_settings(**{control: bad})
    error = ServerError("bad_field", str(refused.value), f"controls.{control}")
    text = pe.painter_text(error, dialog)
    assert text.startswith(c.label + ": ") and not internal_names(text), text


@pytest.mark.parametrize("dialog", DIALOGS, ids=lambda d: d.host)
def test_what_the_client_and_server_say_reaches_the_painter_in_its_words(dialog):
    cases = [
        ServerUnavailable("no stylebridge server found: STYLEBRIDGE_ENDPOINT and ..."),
        ServerUnavailable("no answer from the stylebridge server at tcp://x:1 within 15 s"),
        ServerUnavailable("tcp://127.0.0.1:1 rejected the handshake: 400 bad token"),
        UntrustedFile("/run/user/1000/stylebridge is open to other users, so it is not used"),
        StaleServer("the stylebridge server recorded in /run/s.json (pid 7) is no longer ..."),
        ForeignServer("/run/user/1000/stylebridge/server.json", 7),
        ServerError("engine_error", "out of memory while stylising: ...", "controls.size"),
        ServerError("too_large", "this job needs about 9 GiB ... tile_size", "controls.size"),
        ServerError("too_large", "content: 9000x9000 px is over the limit of 100", "content"),
        ServerError("bad_field", "content: 2000x10 px is too thin (at most 64:1)", "content"),
        ServerError(
            "bad_field",
            "controls.grain: unknown control (this server knows a, b)",
            "controls.grain",
        ),
        ServerError("bad_field", "style_weights: one finite weight >= 0", "style_weights"),
        ServerError("queue_full", "32 jobs are already waiting"),
        ServerError("brand_new_code", "something new"),
        ClientError("the server's result is 3x3, not 4x4"),
    ]
    for exc in cases:
        text = pe.painter_text(exc, dialog)
        assert not internal_names(text), text
        assert text.endswith(".") and (names_what_to_do(text, dialog) or ":" in text), text
    stale = StaleServer("the stylebridge server recorded in /run/s.json (pid 7) is ...")
    assert pe.painter_text(stale, dialog) == pe.NOT_RUNNING.format(apply=dialog.apply)
    studio = pe.painter_text(ServerUnavailable("x"), dialog, "tcp://gpu-box:47474")
    assert studio.startswith("No answer from the server at tcp://gpu-box:47474")


def test_an_internal_name_is_caught(monkeypatch):
    """The walk finds what it looks for: a sentence that names a control by its name fails."""
    monkeypatch.setitem(pe.ALL, "queue_full", "Lower tile_size and press {apply}.")
    bad = [t for k, _, t in rendered() if k == "queue_full"]
    assert all(internal_names(t) == ["tile_size"] for t in bad)
