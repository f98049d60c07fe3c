"""The GIMP plug-in's logic without GIMP: arguments, styles, pixel layouts, boxes, progress text.

`stylebridge.py` is the thin edge that talks to Gimp, Gegl and GimpUi; everything here is plain
Python (standard library and the vendored bridge), so the tests run it without GIMP.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stylebridge_wire import catalogue, progress, server_process
from stylebridge_wire.catalogue import Style
from stylebridge_wire.discovery import chosen_endpoint, typed_server
from stylebridge_wire.messages import Progress
from stylebridge_wire.painter_errors import GIMP, painter_text
from stylebridge_wire.pixels import Rect, context_margin, expand_box, intersect_box
from stylebridge_wire.protocol import ServerUnavailable
from stylebridge_wire.server_watch import STARTING
from stylebridge_wire.vocabulary import Control, Vocabulary, as_layer

PROCEDURE = "plug-in-stylebridge"
MENU_PATH = "<Image>/Filters/Artistic"
MENU_LABEL = "Style _Transfer (Neural)..."
DIALOG_TITLE = "Style Transfer (Neural)"
# More style / Less style: the job of the selected result layer again, its style amount moved
RETRIES = {
    "plug-in-stylebridge-more-style": ("Style Transfer: _More Style", +0.2),
    "plug-in-stylebridge-less-style": ("Style Transfer: _Less Style", -0.2),
}
JOB_PARASITE = "stylebridge-job"  # on a result layer: the job that made it (`job_record`)
STYLE_AMOUNT = "balance"  # the control a result layer's name and More / Less style are about
START_SERVER = "start-server"  # the argument: start this machine's server if none runs
STYLE_IMAGE = "style-image"  # the argument: an open image as the style
BUILTIN_STYLE = "builtin-style"
STYLE_SLOTS = 3  # the dialog's style files, each with its weight: style-file, style-file-2, ...
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


def style_slot(n: int) -> tuple[str, str]:
    """The file and weight arguments of style slot ``n`` (1-based): ``style-file`` and
    ``style-weight``, then ``style-file-2`` and ``style-weight-2``, ..."""
    suffix = "" if n == 1 else f"-{n}"
    return f"style-file{suffix}", f"style-weight{suffix}"


@dataclass(frozen=True)
class StylePick:
    """One style of a job: a file or a built-in (``style``), or the open image the edge reads
    (``style`` None), and its blend weight."""

    style: Style | None
    weight: float
    title: str


def resolve_styles(
    files: list[tuple[str | None, float]],
    builtin: str,
    builtins: dict[str, Style],
    image_title: str | None = None,
) -> list[StylePick]:
    """The styles of a job from the style slots ``files`` (a path or None, and a weight, for
    each): the first is the open image when one is chosen (``image_title`` names it), else its
    file, else the chosen built-in painting; the others are files, blended in when given."""
    (first, first_weight), *more = files
    if image_title is not None:
        picks = [StylePick(None, first_weight, image_title)]
    elif first:
        picks = [_file_pick(first, first_weight)]
    else:
        key = builtin or DEFAULT_BUILTIN
        if key not in builtins:
            known = ", ".join(builtins) or "none are installed"
            raise PluginError(
                f"Unknown built-in painting {key!r} (known: {known}); choose a style file.",
                calling=True,
            )
        picks = [StylePick(builtins[key], first_weight, builtins[key].title)]
    picks += [_file_pick(path, weight) for path, weight in more if path]
    weights = [p.weight for p in picks]
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not sum(weights) > 0:
        raise PluginError("Give at least one style a weight above 0.", calling=True)
    return picks


def _file_pick(path: str, weight: float) -> StylePick:
    try:
        style = catalogue.file_style(path)
    except ValueError as exc:
        raise PluginError(str(exc), calling=True) from None
    return StylePick(style, weight, style.title)


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
    """The dialog's groups (id, title, arguments): the styles; the result (the preset and the
    controls a painter sets); Advanced (what a painter rarely needs, behind an expander)."""
    slots = [name for n in range(1, STYLE_SLOTS + 1) for name in style_slot(n)]
    controls = vocabulary.dialog_controls()
    look = [argument_name(c) for c in controls if not c.advanced]
    advanced = [argument_name(c) for c in controls if c.advanced]
    return (
        ("style", "Style", [STYLE_IMAGE, BUILTIN_STYLE, *slots]),
        ("result", "Result", ["preset", *look, START_SERVER]),
        ("advanced", "Advanced", advanced),
    )


def argument_label(control: Control) -> str:
    """A control's label in GIMP's dialog (its 0, where 0 means the preset's, is shown as
    "as the preset" by the dialog itself)."""
    return control.label


def argument_help(control: Control) -> str:
    """A control's tooltip, and what its 0 means where it means the preset's."""
    if not control.zero_means_preset:
        return control.tooltip
    return control.tooltip + (" 0: no limit." if control.optional else " 0: as the preset.")


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

    def value(self, name: str, vocabulary: Vocabulary) -> Any:
        """A control's value as the job runs it: the one given, else the preset's."""
        given = self._controls(vocabulary).get(name)
        preset = vocabulary.presets[self.preset]
        return given if given is not None else preset.controls.get(name)

    def layer_name(self, title: str, vocabulary: Vocabulary) -> str:
        """The result layer's name: the style, the preset, the style amount."""
        label = vocabulary.presets[self.preset].label
        return catalogue.layer_name(title, label, self.value(STYLE_AMOUNT, vocabulary))

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


# ================================================================================== retry


def job_record(picks: list[dict[str, Any]], args: ProcedureArgs, source: int) -> str:
    """What More style and Less style need of a result layer's job (kept on the layer as a
    parasite): its styles ({"file": path} | {"builtin": key} | {"image": id}, "weight"), its
    preset and arguments, and the tattoo of the layer it was made from."""
    return json.dumps(
        {"styles": picks, "preset": args.preset, "values": args.values, "source": source}
    )


@dataclass(frozen=True)
class Retry:
    """A result layer's job again, its style amount moved by ``step`` (kept within 0..1)."""

    styles: list[dict[str, Any]]
    args: ProcedureArgs
    source: int  # the source layer's tattoo

    @classmethod
    def of(cls, text: str | None, step: float, vocabulary: Vocabulary) -> Retry:
        try:
            record = json.loads(text or "")
            styles, values = record["styles"], dict(record["values"])
            source, preset = int(record["source"]), record["preset"]
            assert isinstance(styles, list) and styles
        except (ValueError, KeyError, TypeError, AssertionError):
            raise PluginError(
                "Select a layer that Style Transfer made, then choose More Style or Less Style.",
                calling=True,
            ) from None
        args = ProcedureArgs(preset, values).check(vocabulary)
        amount = float(args.value(STYLE_AMOUNT, vocabulary)) + step
        values[STYLE_AMOUNT] = round(min(1.0, max(0.0, amount)), 2)
        return cls(styles, ProcedureArgs(preset, values).check(vocabulary), source)


# ================================================================================== server


START_PING = 2.0  # s for each ping while it starts


@dataclass(frozen=True)
class ServerChoice:
    """Which server a run uses, and the command that starts this machine's: the dialog's
    server panel, or in a scripted run the saved values and the environment. The token is
    never saved: it lives in the panel for one run, or in $STYLEBRIDGE_TOKEN."""

    command: list[str] | None = None  # None: the installer's record
    endpoint: str = ""  # "": this machine's server, or $STYLEBRIDGE_ENDPOINT
    token: str = ""

    @property
    def local(self) -> bool:
        """This machine's server, which the plug-in may start (a studio's is started there)."""
        return not chosen_endpoint(self.endpoint)

    def start_command(self) -> list[str]:
        return self.command or server_process.default_command()

    def client_maker(self, make_client: Callable[..., Any]) -> Callable[..., Any]:
        """``make_client`` (the Client class) bound to this server, for `connect`."""
        endpoint, token = typed_server(self.endpoint, self.token)
        return lambda **kwargs: make_client(endpoint, token, **kwargs)


def connect(
    make_client: Callable[..., Any],
    start: Callable[[list[str]], Any] | None,
    command: list[str],
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
        raise PluginError(str(exc)) from None
    on_wait(STARTING + "...")
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
                    f"The server program {server_process.failed_start(status)}"
                ) from None
            if time.monotonic() >= deadline:
                raise PluginError(
                    f"The server was started but did not answer within "
                    f"{server_process.START_WAIT:.0f} s ({exc}): see its log, "
                    f"{server_process.log_path()}."
                ) from None
        sleep(1.0)


# ================================================================================== errors


def describe_error(exc: BaseException, endpoint: str = "") -> str:
    """A message for GIMP's error dialog or a batch script's log; never a traceback. The
    server's and the connection's errors in a painter's words (painter_errors.py)."""
    if isinstance(exc, PluginError):
        return str(exc)
    if isinstance(exc, ServerUnavailable):
        sandbox = server_process.sandbox_hint(server_process.GIMP_FLATPAK)
        if sandbox and not chosen_endpoint(endpoint):
            return f"{sandbox} The image was not changed."
    text = painter_text(exc, GIMP, endpoint)
    return f"{text} The image was not changed."
