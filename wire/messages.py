"""Every message of the protocol (docs/protocol.md) as a dataclass: its fields, their limits, and
the one way it is written to a header (`Message.to_header`) and read back (``from_header``).

Requests, what a client sends, are read strictly: a field that breaks the protocol raises
`ProtocolError` with the code and the field docs/protocol.md names, which the server answers as
an ``error`` reply. Replies, what the server sends, are read as the protocol asks of clients: a
field that is missing or of another type reads as None, unknown fields and types are ignored,
and only an image that does not fit its frame is refused (`ProtocolError`), since a host would
misread its bytes.

Fields are written in their declared order after ``v``, ``type`` and ``id`` (``id`` comes last
in each class: a client sets it when it sends). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from .protocol import DTYPES, FRAME_BYTES, NONCE_BYTES, VERSION, Image, ServerError

MAX_ID_CHARS = 64  # a request's id: an int, or a string of at most this many characters
CHANNELS = (1, 2, 3, 4)  # gray, gray + alpha, RGB, RGBA
PREVIEW_SIDE = 256  # preview frames: 8-bit RGB, at most this many px a side
MIN_PREVIEW_INTERVAL = 0.2  # seconds between preview frames, at least
MAX_DRAIN = 24 * 3600  # seconds a shutdown may leave the jobs to finish


class ProtocolError(Exception):
    """A message that breaks the protocol, or a request the server refuses: the ``error``
    reply's code, message and field (docs/protocol.md, "Errors")."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def reply(self, request_id: Any = None, job: str | None = None) -> Error:
        return Error(self.code, self.message, self.field, job, id=request_id)


def optional() -> Any:
    """A field left out of the header while it is None (absent means "the default")."""
    return dataclasses.field(default=None, metadata={"omit": True})


class Message:
    """One header: the class says its ``type``, the fields its keys."""

    TYPE: ClassVar[str]
    id: Any

    @property
    def type(self) -> str:
        return self.TYPE

    def to_header(self) -> dict[str, Any]:
        header: dict[str, Any] = {"v": VERSION, "type": self.type, "id": self.id}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "id" or (value is None and f.metadata.get("omit")):
                continue
            header[f.name] = _plain(value)
        return header


def _plain(value: Any) -> Any:
    if isinstance(value, ImageSpec):
        return value.to_header()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def require(header: Mapping[str, Any], name: str, kinds: Any, where: str = "") -> Any:
    """``header[name]`` if it is one of ``kinds`` (a bool is no int), else `ProtocolError`."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    field = f"{where}{name}"
    if name not in header:
        raise ProtocolError("bad_field", f"{field}: missing", field)
    value = header[name]
    if isinstance(value, bool) and bool not in kinds:
        raise ProtocolError("bad_field", f"{field}: expected {_names(kinds)}, got bool", field)
    if not isinstance(value, kinds):
        raise ProtocolError(
            "bad_field", f"{field}: expected {_names(kinds)}, got {type(value).__name__}", field
        )
    return value


# ===================================================================================== images


def frames_for(nbytes: int) -> int:
    """How many frames pixels of ``nbytes`` travel in (at least one, even when empty)."""
    return max(1, -(-nbytes // FRAME_BYTES))


def chunks(data: Any) -> list[memoryview]:
    """Pixels as the frames they travel in: views of ``data``, FRAME_BYTES each but the last."""
    view = memoryview(data).cast("B")
    return [view[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] for i in range(frames_for(len(view)))]


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """An image inside a header: its pixels are the blobs of frames ``frame`` (1 or more) and
    on, `frames_for` its bytes of them, FRAME_BYTES each but the last."""

    width: int
    height: int
    channels: int
    dtype: str  # a key of DTYPES
    frame: int

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels * DTYPES[self.dtype]

    @property
    def frames(self) -> range:
        """The message's frames that hold the pixels."""
        return range(self.frame, self.frame + frames_for(self.nbytes))

    def to_header(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, image: Image, frame: int) -> ImageSpec:
        """The map of ``image`` sent from frame ``frame`` on."""
        return cls(image.width, image.height, image.channels, image.dtype, frame)

    def image(self, frames: Sequence[Any]) -> Image:
        """The pixels this map points at, as an `Image` (the map checked against ``frames``);
        pixels in several frames are joined (one copy)."""
        parts = [frames[i] for i in self.frames]
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return Image(self.width, self.height, self.channels, self.dtype, data)

    @classmethod
    def from_header(
        cls,
        value: Any,
        frames: Sequence[Any],
        field: str,
        max_pixels: int | None = None,
        channels: tuple[int, ...] = CHANNELS,
    ) -> ImageSpec:
        """The image map ``value`` checked against the message's ``frames``, every size
        before anything is allocated; `ProtocolError` naming ``field`` if it does not fit."""
        if not isinstance(value, dict):
            raise ProtocolError("bad_field", f"{field}: expected an image map", field)
        where = f"{field}."
        width = require(value, "width", int, where)
        height = require(value, "height", int, where)
        chans = require(value, "channels", int, where)
        dtype = require(value, "dtype", str, where)
        frame = require(value, "frame", int, where)
        for name, side in (("width", width), ("height", height)):
            if side < 1:
                raise ProtocolError("bad_field", f"{where}{name}: must be >= 1", f"{where}{name}")
        if max_pixels is not None and width * height > max_pixels:
            raise ProtocolError(
                "too_large",
                f"{field}: {width}x{height} px is over the limit of {max_pixels} pixels",
                field,
            )
        if chans not in channels:
            raise ProtocolError(
                "bad_field",
                f"{where}channels: {chans} is not one of {channels}",
                f"{where}channels",
            )
        if dtype not in DTYPES:
            raise ProtocolError(
                "bad_field",
                f"{where}dtype: {dtype[:20]!r} is not one of {', '.join(DTYPES)}",
                f"{where}dtype",
            )
        spec = cls(width, height, chans, dtype, frame)
        last = spec.frames[-1]
        if frame < 1 or last >= len(frames):
            wanted = f"frames {frame}..{last}" if last > frame else f"frame {frame}"
            raise ProtocolError(
                "bad_field",
                f"{where}frame: {wanted} but the message has frames 1..{len(frames) - 1}",
                f"{where}frame",
            )
        sizes = [len(frames[i]) for i in spec.frames]
        if sum(sizes) != spec.nbytes or any(size != FRAME_BYTES for size in sizes[:-1]):
            held = (
                f"frame {frame} has {sizes[0]}"
                if len(sizes) == 1
                else f"frames {frame}..{last} ({FRAME_BYTES} bytes each but the last) hold "
                + " + ".join(map(str, sizes))
            )
            raise ProtocolError(
                "bad_field",
                f"{field}: {width}x{height}x{chans} {dtype} needs {spec.nbytes} bytes, {held}",
                field,
            )
        return spec


# =================================================================================== requests


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What a server takes beyond the protocol's fixed limits: its own limits and vocabulary."""

    max_pixels: int  # per image
    max_styles: int
    vocabulary: Mapping[str, Collection[str]]  # each preset -> the controls it takes
    default_preset: str  # a submit's preset when it names none


def read_request(header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds) -> Message:
    """The request ``header`` (and its ``frames``) holds, checked; `ProtocolError` if not."""
    kind, _ = request_kind(header)
    return REQUESTS[kind].from_header(header, frames, bounds)


def request_kind(header: Mapping[str, Any]) -> tuple[str, Any]:
    """The type and id of a request, its version checked (the token was, in the handshake)."""
    version = header.get("v")
    if type(version) is not int or version != VERSION:  # not True, not 1.0
        raise ProtocolError(
            "bad_version", f"v: {version!r} is not supported; this server speaks {VERSION}", "v"
        )
    request_id = header.get("id")
    if not (_is_int(request_id) or isinstance(request_id, str)) or (
        isinstance(request_id, str) and len(request_id) > MAX_ID_CHARS
    ):
        raise ProtocolError(
            "bad_field", f"id: must be an int or a string of at most {MAX_ID_CHARS}", "id"
        )
    kind = require(header, "type", str)
    if kind not in REQUESTS:
        raise ProtocolError(
            "unknown_type", f"type: {kind[:40]!r} is not one of {', '.join(REQUESTS)}", "type"
        )
    return kind, request_id


@dataclasses.dataclass
class Ping(Message):
    TYPE = "ping"
    id: Any = None

    @classmethod
    def from_header(cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds) -> Ping:
        return cls(id=header.get("id"))


@dataclasses.dataclass
class StatusQuery(Message):
    TYPE = "status"
    id: Any = None

    @classmethod
    def from_header(
        cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds
    ) -> StatusQuery:
        return cls(id=header.get("id"))


@dataclasses.dataclass
class Submit(Message):
    """A job: the content, the styles, and what to change of the preset."""

    TYPE = "submit"
    content: ImageSpec
    styles: list[ImageSpec]  # 1..the server's max_styles
    preset: str | None = optional()  # None: the server's default preset
    controls: dict[str, Any] = dataclasses.field(default_factory=dict)  # by name
    style_weights: list[float] | None = optional()  # one finite weight >= 0 per style
    mask: ImageSpec | None = optional()  # one channel, the content's width and height
    preview: float | None = optional()  # seconds between preview frames, >= MIN_PREVIEW_INTERVAL
    id: Any = None

    @classmethod
    def from_header(
        cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds
    ) -> Submit:
        """Checked field by field; the controls by name (their values are the server's to
        check, against the preset's declarations)."""
        max_pixels, max_styles = bounds.max_pixels, bounds.max_styles
        content = ImageSpec.from_header(
            require(header, "content", dict), frames, "content", max_pixels
        )
        styles_spec = require(header, "styles", list)
        if not 1 <= len(styles_spec) <= max_styles:
            code = "too_large" if styles_spec else "bad_field"
            raise ProtocolError(
                code, f"styles: {len(styles_spec)} given, 1..{max_styles} allowed", "styles"
            )
        styles = [
            ImageSpec.from_header(s, frames, f"styles.{i}", max_pixels)
            for i, s in enumerate(styles_spec)
        ]
        weights = header.get("style_weights")
        if weights is not None:
            ok = (
                isinstance(weights, list)
                and len(weights) == len(styles)
                and all(_is_number(w) and math.isfinite(w) and w >= 0 for w in weights)
            )
            if not ok or sum(weights) <= 0:
                raise ProtocolError(
                    "bad_field",
                    "style_weights: one finite weight >= 0 per style, not all zero",
                    "style_weights",
                )
            weights = [float(w) for w in weights]
        preset, controls = preset_and_controls(header, bounds)
        mask = None
        if header.get("mask") is not None:
            mask = ImageSpec.from_header(header["mask"], frames, "mask", max_pixels, (1,))
            if (mask.width, mask.height) != (content.width, content.height):
                raise ProtocolError(
                    "bad_field", "mask: must have the content's width and height", "mask"
                )
        preview = header.get("preview")
        if preview is not None and not (
            _is_number(preview) and math.isfinite(preview) and preview >= MIN_PREVIEW_INTERVAL
        ):
            raise ProtocolError(
                "bad_field",
                f"preview: seconds between frames, >= {MIN_PREVIEW_INTERVAL}",
                "preview",
            )
        return cls(
            content,
            styles,
            preset,
            dict(controls),
            weights,
            mask,
            None if preview is None else float(preview),
            id=header.get("id"),
        )


def preset_and_controls(header: Mapping[str, Any], bounds: Bounds) -> tuple[str, dict[str, Any]]:
    """A request's preset (the server's default when absent) and its controls, checked by
    name (their values are the server's to check, against the preset's declarations)."""
    preset = header.get("preset", bounds.default_preset)
    vocabulary = bounds.vocabulary
    if not isinstance(preset, str) or preset not in vocabulary:  # a list is no dict key
        raise ProtocolError(
            "bad_field",
            f"preset: {str(preset)[:20]!r} is not one of {', '.join(vocabulary)}",
            "preset",
        )
    controls = header.get("controls", {})
    if not isinstance(controls, dict):
        raise ProtocolError("bad_field", "controls: expected a map", "controls")
    known = vocabulary[preset]
    for name in controls:
        if name not in known:
            field = f"controls.{str(name)[:30]}"
            raise ProtocolError(
                "bad_field",
                f"{field}: unknown control (this server knows {', '.join(known)})",
                field,
            )
    return preset, dict(controls)


@dataclasses.dataclass
class EstimateQuery(Message):
    """How long a job on content of ``width`` x ``height`` px would take on this server, asked
    before the pixels are sent (the dialogs show it under their settings)."""

    TYPE = "estimate"
    width: int
    height: int
    preset: str | None = optional()  # None: the server's default preset
    controls: dict[str, Any] = dataclasses.field(default_factory=dict)  # by name
    id: Any = None

    @classmethod
    def from_header(
        cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds
    ) -> EstimateQuery:
        sides = {}
        for name in ("width", "height"):
            side = require(header, name, int)
            if side < 1:
                raise ProtocolError("bad_field", f"{name}: must be >= 1", name)
            sides[name] = side
        if sides["width"] * sides["height"] > bounds.max_pixels:
            raise ProtocolError(
                "too_large",
                f"content: {sides['width']}x{sides['height']} px is over the limit of "
                f"{bounds.max_pixels} pixels",
                "content",
            )
        preset, controls = preset_and_controls(header, bounds)
        return cls(sides["width"], sides["height"], preset, controls, id=header.get("id"))


@dataclasses.dataclass
class Cancel(Message):
    TYPE = "cancel"
    job: str
    id: Any = None

    @classmethod
    def from_header(
        cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds
    ) -> Cancel:
        return cls(require(header, "job", str), id=header.get("id"))


@dataclasses.dataclass
class Echo(Message):
    """An image the server checks and sends back unchanged: the transport's round trip."""

    TYPE = "echo"
    image: ImageSpec
    id: Any = None

    @classmethod
    def from_header(cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds) -> Echo:
        image = require(header, "image", dict)
        spec = ImageSpec.from_header(image, frames, "image", bounds.max_pixels)
        return cls(spec, id=header.get("id"))


@dataclasses.dataclass
class Shutdown(Message):
    """Stop after the jobs (at most ``drain`` s; None: the server's default, 0: now)."""

    TYPE = "shutdown"
    admin: str | None  # the discovery file's admin key; the server refuses any other
    drain: Any = optional()  # seconds, 0..MAX_DRAIN: see `drain_seconds`
    id: Any = None

    @classmethod
    def from_header(
        cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds
    ) -> Shutdown:
        admin = header.get("admin")
        return cls(admin if isinstance(admin, str) else None, header.get("drain"), header.get("id"))

    def drain_seconds(self) -> float | None:
        """``drain``, checked. The server asks only once the admin key was right: to anyone
        else the answer is ``forbidden``, whatever the rest holds."""
        drain = self.drain
        if drain is not None and not (_is_number(drain) and 0 <= drain <= MAX_DRAIN):
            raise ProtocolError("bad_field", f"drain: seconds, 0..{MAX_DRAIN}", "drain")
        return drain


@dataclasses.dataclass
class Prove(Message):
    """The server shows it holds the token: it answers with `protocol.server_proof` of
    ``nonce``. A client asks before it sends any pixels (the front door answers it, the
    relay's too, with its own token). Hex, as a header carries no bin."""

    TYPE = "prove"
    nonce: str  # NONCE_BYTES random bytes, in hex
    id: Any = None

    @classmethod
    def from_header(cls, header: Mapping[str, Any], frames: Sequence[Any], bounds: Bounds) -> Prove:
        nonce = require(header, "nonce", str)
        try:
            ok = len(bytes.fromhex(nonce)) == NONCE_BYTES and len(nonce) == 2 * NONCE_BYTES
        except ValueError:
            ok = False
        if not ok:
            raise ProtocolError("bad_field", f"nonce: {NONCE_BYTES} bytes in hex", "nonce")
        return cls(nonce, id=header.get("id"))


REQUESTS: dict[str, type[Message]] = {
    m.TYPE: m for m in (Ping, StatusQuery, Submit, Cancel, Echo, Shutdown, Prove, EstimateQuery)
}


# ==================================================================================== replies


@dataclasses.dataclass
class Pong(Message):
    TYPE = "pong"
    version: str
    protocol: int
    # the vocabulary this server takes: a client can offer what it did not know of
    presets: list[str]
    controls: list[str]
    id: Any = None


@dataclasses.dataclass
class Status(Message):
    TYPE = "status"
    version: str
    protocol: int
    endpoint: str
    pid: int
    memory: dict[str, Any]  # rss, cuda_allocated (bytes)
    uptime: float
    limits: dict[str, Any]  # the server's limits by name
    draining: bool
    worker_alive: bool
    device: str
    model_loaded: bool
    weights: str | None  # None while the model is unloaded
    queue: list[str]  # waiting job ids, in serving order
    running: str | None  # a running job's id
    style_cache: dict[str, Any]  # entries, bytes
    running_jobs: list[str] | None = optional()  # a cluster's: every running job
    cluster: str | None = optional()  # the Ray address
    actors: list[dict[str, Any]] | None = optional()  # one status map per actor
    id: Any = None


@dataclasses.dataclass
class Accepted(Message):
    TYPE = "accepted"
    job: str
    position: int  # jobs ahead of it; 0: it runs now
    id: Any = None


@dataclasses.dataclass
class Queued(Message):
    """A waiting job's new place."""

    TYPE = "queued"
    job: str
    position: int
    retry: int | None = optional()  # its runner died: the how-manyth time it runs again
    id: Any = None


@dataclasses.dataclass
class Progress(Message):
    TYPE = "progress"
    job: str
    step: int  # over all stages
    total_steps: int  # an estimate under a time budget
    stage: int  # 1-based
    stages: int
    width: int  # this stage's working size
    height: int
    losses: dict[str, float]  # content, style, (structure), total
    elapsed: float  # seconds since the job started
    eta: float | None  # seconds left; None until a few steps are timed
    id: Any = None

    def fraction(self) -> float:
        """How far the job is, 0..1 (0 while the server has not said)."""
        if self.step is None or not self.total_steps or self.total_steps < 0:
            return 0.0
        return min(1.0, max(0.0, self.step / self.total_steps))


@dataclasses.dataclass
class Preview(Message):
    TYPE = "preview"
    job: str
    step: int
    image: ImageSpec  # 8-bit RGB, at most PREVIEW_SIDE px a side
    id: Any = None


@dataclasses.dataclass
class Result(Message):
    """A job's end with an image (its ``type`` is ``cancelled`` when a cancel ended it: then
    the best image so far, or None for a job cancelled while it waited)."""

    job: str
    image: ImageSpec | None  # the content's size, dtype and channels
    steps: int
    cancelled: bool
    elapsed: float | None = optional()
    losses: dict[str, float] | None = optional()
    # every control's value as the job ran: a client that predates one still learns it
    controls: dict[str, Any] | None = optional()
    # a sentence each a painter should know about the result (e.g. a style shown far larger
    # than its own pixels); a client shows the strings among them
    notes: list[str] | None = optional()
    id: Any = None

    @property
    def type(self) -> str:
        return "cancelled" if self.cancelled else "result"


@dataclasses.dataclass
class Cancelling(Message):
    """The cancel request's answer; the job's own ``cancelled`` follows."""

    TYPE = "cancelling"
    job: str
    id: Any = None


@dataclasses.dataclass
class Echoed(Message):
    TYPE = "echo"
    image: ImageSpec
    id: Any = None


@dataclasses.dataclass
class Estimate(Message):
    """The answer to `EstimateQuery`: seconds the job would take here, or None while this
    server has measured nothing for the preset yet (it is measuring: ask again shortly)."""

    TYPE = "estimate"
    seconds: float | None
    basis: str | None = None  # "jobs" (measured on the jobs run here), "probe", "measuring"
    id: Any = None


@dataclasses.dataclass
class Bye(Message):
    TYPE = "bye"
    pending: int  # 1: jobs were still running or queued
    id: Any = None


@dataclasses.dataclass
class Error(Message):
    TYPE = "error"
    code: str
    message: str
    field: str | None = None  # the dotted field at fault
    job: str | None = None
    id: Any = None

    def exception(self) -> ServerError:
        """The reply as the client raises it, whatever its fields held."""
        return ServerError(
            self.code if self.code is not None else "unknown",
            self.message if self.message is not None else "the server reported an error",
            self.field,
        )


@dataclasses.dataclass
class Proof(Message):
    TYPE = "proof"
    mac: str  # protocol.server_proof(token, the request's nonce), in hex
    id: Any = None


REPLIES: dict[str, type[Message]] = {
    m.TYPE: m
    for m in (
        Pong,
        Status,
        Accepted,
        Queued,
        Progress,
        Preview,
        Cancelling,
        Echoed,
        Estimate,
        Bye,
        Proof,
        Error,
    )
}
REPLIES["result"] = REPLIES["cancelled"] = Result


# a reply's annotation -> what its value may be (float takes an int: msgpack keeps 0 an int)
_KINDS = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
    "Any": (object,),
}


def _accepts(annotation: str, value: Any) -> bool:
    """Whether ``value`` fits a field annotated ``annotation`` (ImageSpec aside)."""
    for option in annotation.split("|"):
        name = option.strip().split("[", 1)[0]
        kinds = _KINDS.get(name, ())
        if isinstance(value, bool) and bool not in kinds and object not in kinds:
            continue
        if isinstance(value, kinds):
            return True
    return False


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite (inf, NaN) read as None, inside maps and
    lists too. A host rounds, compares and shows the server's numbers: ``round(inf)`` raises,
    and an exception in a Qt slot aborts Krita, so a hostile server must not get one through."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def read_reply(header: Mapping[str, Any], frames: Sequence[Any] = ()) -> Message | None:
    """The reply ``header`` holds, or None for a type this client does not know. A field that
    is missing or of another type reads as None, and so does a number that is not finite
    (`finite`); an image that does not fit its frame raises `ProtocolError` (its field named
    ``TYPE.image``)."""
    cls = REPLIES.get(header.get("type"))  # type: ignore[arg-type]
    if cls is None:
        return None
    values = {}
    for f in dataclasses.fields(cls):
        value = finite(header.get(f.name))
        if "ImageSpec" in f.type:
            if value is not None:
                value = ImageSpec.from_header(value, frames, f"{header['type']}.{f.name}")
        elif value is not None and not _accepts(f.type, value):
            value = None
        values[f.name] = value
    if cls is Result:
        values["cancelled"] = header.get("type") == "cancelled"
    return cls(**values)


# what each request is answered with (a submit's later events and its end come as they happen)
ANSWERS: dict[type[Message], type[Message]] = {
    Ping: Pong,
    StatusQuery: Status,
    Submit: Accepted,
    Cancel: Cancelling,
    Echo: Echoed,
    Shutdown: Bye,
    Prove: Proof,
    EstimateQuery: Estimate,
}
