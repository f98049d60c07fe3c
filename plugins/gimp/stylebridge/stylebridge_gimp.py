"""The GIMP plug-in's logic without GIMP: arguments, styles, pixel layouts, boxes, progress text.

`stylebridge.py` is the thin edge that talks to Gimp, Gegl and GimpUi; everything here is plain
Python (standard library and the vendored bridge), so the tests run it without GIMP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stylebridge_wire import catalogue, progress, server_process
from stylebridge_wire.catalogue import Style
from stylebridge_wire.discovery import chosen_endpoint, typed_server
from stylebridge_wire.messages import Progress
from stylebridge_wire.pixels import Rect, context_margin, expand_box, intersect_box
from stylebridge_wire.protocol import ClientError, ServerError, ServerUnavailable
from stylebridge_wire.vocabulary import Control, Vocabulary, as_layer

PROCEDURE = "plug-in-stylebridge"
MENU_PATH = "<Image>/Filters/Artistic"
MENU_LABEL = "Style _Transfer (Neural)..."
DIALOG_TITLE = "Style Transfer (Neural)"
START_SERVER = "start-server"  # the argument: start this machine's server if none runs
# aux arguments (saved with GIMP's last values, not in the PDB signature): the server panel's
SERVER_COMMAND = "server-command"  # "": the command `stylebridge install` recorded
ENDPOINT = "endpoint"  # "": this machine's server (or $STYLEBRIDGE_ENDPOINT)

DEFAULT_BUILTIN = "starry_night"
GIMP_INT_MAX = 2**31 - 1  # a PDB int argument is a C int
POLL_INTERVAL = 0.25  # s; the server's heartbeats want a poll at least every second


class PluginError(Exception):
    """A problem the user can fix; the message says what and how. ``calling`` marks bad
    arguments (GIMP's CALLING_ERROR) rather than a failure while running (EXECUTION_ERROR)."""

    def __init__(self, message: str, *, calling: bool = False) -> None:
        super().__init__(message)
        self.calling = calling


# ================================================================================== styles


def split_paths(text: str | None) -> list[str]:
    """Style paths from one string: one per line, or separated by the system's path
    separator (":" on Linux and macOS, ";" on Windows)."""
    if not text:
        return []
    paths = []
    for line in text.splitlines():
        paths.extend(part.strip() for part in line.split(os.pathsep))
    return [p for p in paths if p]


def resolve_styles(
    style_file: str | None, more: str | None, builtin: str, builtins: dict[str, Style]
) -> list[Style]:
    """The style images to use: the style file and the extra paths when any are given,
    else the chosen built-in painting."""
    paths = ([style_file] if style_file else []) + split_paths(more)
    if not paths:
        key = builtin or DEFAULT_BUILTIN
        if key not in builtins:
            known = ", ".join(builtins) or "none are installed"
            raise PluginError(
                f"Unknown built-in painting {key!r} (known: {known}); choose a style file.",
                calling=True,
            )
        return [builtins[key]]
    try:
        return [catalogue.file_style(path) for path in paths]
    except ValueError as exc:
        raise PluginError(str(exc), calling=True) from None


# ================================================================================ controls


def argument_name(control: Control) -> str:
    """The PDB argument of a vocabulary control: its name with dashes."""
    return control.name.replace("_", "-")


def argument_range(control: Control) -> tuple[float, float]:
    """What the PDB argument takes: the control's range, from 0 when 0 means the preset's."""
    low = 0 if control.zero_means_preset else control.min
    high = control.max if control.type is float else min(control.max, GIMP_INT_MAX)
    return low, high


def dialog_frames(vocabulary: Vocabulary) -> tuple[tuple[str, str, list[str]], ...]:
    """The dialog's frames (id, title, arguments): the styles; what the result looks like
    (the 0..1 controls and the choices); how the optimiser works (the preset and the rest)."""
    look = [
        argument_name(c)
        for c in vocabulary.dialog_controls()
        if c.choices is not None or (c.min, c.max) == (0, 1)
    ]
    rest = [argument_name(c) for c in vocabulary.dialog_controls() if argument_name(c) not in look]
    return (
        ("style", "Style", ["style-file", "builtin-style", "more-styles"]),
        ("result", "Result", look),
        ("optimiser", "Optimisation", ["preset", *rest, START_SERVER]),
    )


@dataclass(frozen=True)
class ProcedureArgs:
    """The procedure's arguments past the styles, as the PDB hands them over: the preset and
    each dialog control by name (0 where 0 means "the preset's")."""

    preset: str
    values: dict[str, Any]

    def check(self, vocabulary: Vocabulary) -> ProcedureArgs:
        try:
            vocabulary.check_preset(self.preset)
            vocabulary.check(self._controls(vocabulary))
        except ValueError as exc:
            raise PluginError(str(exc), calling=True) from None
        return self

    def _controls(self, vocabulary: Vocabulary) -> dict[str, Any]:
        controls = {}
        for name, value in self.values.items():
            control = vocabulary.controls[name]
            if control.zero_means_preset and value == 0:
                continue
            if name == "time_budget" and isinstance(value, (int, float)) and value > 0:
                value = max(control.min, value)  # a budget below the minimum is raised to it
            controls[name] = value
        return controls

    def opacity(self) -> float:
        """The result layer's opacity in percent (`vocabulary.as_layer`)."""
        return 100.0 * as_layer(self.values)[0]

    def controls(self, vocabulary: Vocabulary) -> dict[str, Any]:
        """Engine controls for `Client.submit`: zeros meaning "the preset's" left out, and
        the one that is the layer's opacity (`vocabulary.as_layer`)."""
        return as_layer(self._controls(vocabulary))[1]


# ================================================================================== pixels


@dataclass(frozen=True)
class Layout:
    """How a drawable travels: the babl format it is read and written in, and its channels.

    Always float and always the perceptual (sRGB-curve) variant with alpha, whatever the
    image's precision: the network was trained on such values, GEGL converts from and to the
    layer's own format losslessly, and the result layer keeps the image's precision.
    """

    babl: str
    channels: int
    dtype: str = "float32"


RGB_LAYOUT = Layout("R'G'B'A float", 4)
GRAY_LAYOUT = Layout("Y'A float", 2)
MASK_FORMAT = "Y float"  # selection coverage: a fraction, not a colour, so no curve
STYLE_FORMAT = "R'G'B' u8"


def layout_for(is_gray: bool) -> Layout:
    return GRAY_LAYOUT if is_gray else RGB_LAYOUT


@dataclass(frozen=True)
class WorkArea:
    """What to send for one drawable. ``box`` is in the drawable's own pixels; ``masked``:
    a selection limits the effect (the mask is read for the same box)."""

    box: Rect
    masked: bool

    def image_box(self, offsets: tuple[int, int]) -> Rect:
        """The box in image (canvas) coordinates, where the selection lives."""
        return self.box._replace(x=self.box.x + offsets[0], y=self.box.y + offsets[1])


def work_area(
    size: tuple[int, int],
    offsets: tuple[int, int],
    selection: tuple[int, int, int, int] | None,
    name: str = "the layer",
) -> WorkArea:
    """The box to stylise for a drawable of ``size`` at ``offsets``.

    ``selection``: the selection's bounds (x1, y1, x2, y2) in image coordinates, None when
    nothing is selected. With a selection the optimisation works on its bounds on the
    drawable plus a margin of context (clipped to the drawable); without one, on all of it.
    """
    width, height = size
    whole = Rect(0, 0, width, height)
    if selection is None:
        return WorkArea(whole, False)
    x1, y1, x2, y2 = selection
    local = Rect(x1 - offsets[0], y1 - offsets[1], x2 - x1, y2 - y1)
    selected = intersect_box(local, whole)
    if selected is None:
        raise PluginError(f"The selection does not touch {name}; select a part of it or none.")
    margin = context_margin(selected.width, selected.height)
    return WorkArea(expand_box(selected, margin, width, height), True)


# ================================================================================ progress


def progress_fraction(event: Progress | None, index: int, count: int) -> float:
    """Overall progress 0..1 for job ``index`` (0-based) of ``count`` at this event."""
    done = event.fraction() if event is not None else 0.0
    return min(1.0, (index + done) / max(1, count))


def progress_text(
    event: Progress | None, index: int, count: int, title: str, position: int | None = None
) -> str:
    """The progress bar's text: the style, which layer of how many, then the step and the ETA
    (or the place in the server's queue)."""
    parts = [f"Style transfer: {title}"]
    if count > 1:
        parts.append(f"layer {index + 1} of {count}")
    if position:
        parts.append("queued behind " + ("1 job" if position == 1 else f"{position} jobs"))
    elif event is None:
        parts.append("waiting for the server")
    elif text := progress.step_text(event):
        parts.append(text.replace(", ", " · "))
    return " · ".join(parts)


# ================================================================================== server


START_PING = 2.0  # s for each ping while it starts


@dataclass(frozen=True)
class ServerChoice:
    """Which server a run uses, and the command that starts this machine's: the dialog's
    server panel, or in a scripted run the saved values and the environment. The token is
    never saved: it lives in the panel for one run, or in $STYLEBRIDGE_TOKEN."""

    command: str = ""  # "": the installer's record
    endpoint: str = ""  # "": this machine's server, or $STYLEBRIDGE_ENDPOINT
    token: str = ""

    @property
    def local(self) -> bool:
        """This machine's server, which the plug-in may start (a studio's is started there)."""
        return not chosen_endpoint(self.endpoint)

    def start_command(self) -> str:
        return self.command or server_process.default_command()

    def client_maker(self, make_client: Callable[..., Any]) -> Callable[..., Any]:
        """``make_client`` (the Client class) bound to this server, for `connect`."""
        endpoint, token = typed_server(self.endpoint, self.token)
        return lambda **kwargs: make_client(endpoint, token, **kwargs)


def connect(
    make_client: Callable[..., Any],
    start: Callable[[str], Any] | None,
    command: str,
    on_wait: Callable[[str], None] = lambda text: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """A client whose server answers. With ``start``, a server that is not running is started
    with ``command`` (the installer's record) and waited for; without, the error is raised.
    This runs in the plug-in's own process, so GIMP stays responsive meanwhile."""
    try:
        client = make_client()
        client.ping()
        return client
    except ServerUnavailable:
        if start is None:
            raise
    try:
        process = start(command)
    except OSError as exc:
        raise PluginError(f"Could not start the stylebridge server: {exc}") from None
    on_wait(f"Starting the stylebridge server ({command})...")
    deadline = time.monotonic() + server_process.START_WAIT
    while True:
        try:
            client = make_client(timeout=START_PING)
            client.ping()
            return client
        except ServerUnavailable as exc:
            status = server_process.failed_status(process)
            if status is not None:
                raise PluginError(
                    f"The stylebridge server command ({command}) "
                    f"{server_process.failed_start(status)}"
                ) from None
            if time.monotonic() >= deadline:
                raise PluginError(
                    f"The stylebridge server was started ({command}) but did not answer within "
                    f"{server_process.START_WAIT:.0f} s: {exc}. "
                    f"See its log, {server_process.log_path()}."
                ) from None
        sleep(1.0)


# ================================================================================== errors


def describe_error(exc: BaseException) -> str:
    """A message for GIMP's error dialog or a batch script's log; never a traceback."""
    if isinstance(exc, PluginError):
        return str(exc)
    if isinstance(exc, ServerUnavailable):
        text = str(exc).rstrip(".")
        hint = "" if "stylebridge serve" in text else " Start it with: stylebridge serve."
        sandbox = server_process.sandbox_hint(server_process.GIMP_FLATPAK)
        hint += f" {sandbox}" if sandbox else ""
        return f"The stylebridge server is not available: {text}.{hint} The image was not changed."
    if isinstance(exc, ServerError):
        where = f" (field {exc.field})" if exc.field else ""
        return (
            f"The stylebridge server failed the job: {exc.message}{where} [{exc.code}]. "
            "The image was not changed."
        )
    if isinstance(exc, ClientError):
        return f"Talking to the stylebridge server failed: {exc}. The image was not changed."
    return f"Style transfer failed: {type(exc).__name__}: {exc}. The image was not changed."
