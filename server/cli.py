"""``stylebridge`` command line: stylize, serve, relay, studio, status, stop, demo, weights.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError
from stylebridge.core.settings import (
    CLI,
    CONTROL_NAMES,
    DEFAULT_PRESET,
    FIELDS,
    PRESETS,
    Settings,
    field_types,
    make_settings,
)
from stylebridge.server.defaults import DRAIN_SECONDS, IDLE_UNLOAD
from stylebridge.server.install import GIMP_VERSIONS, HOSTS
from stylebridge.server.protocol import CONTROLS, Limits
from stylebridge.wire import ClientError
from stylebridge.wire.protocol import DEFAULT_ENDPOINT

if TYPE_CHECKING:  # images pulls in numpy and Pillow: imported where a command needs it
    from stylebridge.core.images import Layer

LIMITS = Limits()  # serve's defaults
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def add_control_arguments(
    p: argparse.ArgumentParser,
    settings_cls: type = Settings,
    presets: Mapping[str, Settings] = PRESETS,
) -> None:
    """One option per control the vocabulary shows on the CLI (core/settings.py): its type,
    range or choices and help come from there; every default is None ("the preset's")."""
    p.add_argument("--preset", choices=list(presets), default=DEFAULT_PRESET)
    types = field_types(settings_cls)
    for f in dataclasses.fields(settings_cls):
        meta = f.metadata
        if not meta or CLI not in meta["shows"]:
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if meta["choices"]:
            kwargs["choices"] = list(meta["choices"])
        else:
            kwargs["type"] = types[f.name]
            if meta["lo"] is not None and meta["hi"] is not None:
                kwargs["help"] += (
                    f" ({meta['lo']:g}..{meta['hi']:g}{meta['unit'] and ' ' + meta['unit']})"
                )
        if flag == "--time":
            kwargs["metavar"] = "SECONDS"
        p.add_argument(flag, **kwargs)
    p.add_argument(
        "--blend",
        type=float,
        nargs="+",
        metavar="W",
        help="one blend weight per style image (default: equal)",
    )


def positive(kind: type) -> Callable[[str], Any]:
    """An argparse type: a number above 0 (argparse names the option in its error)."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0 or value != value:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    parse.__name__ = kind.__name__
    return parse


def settings_from_args(args: argparse.Namespace) -> Settings:
    controls = {name: getattr(args, name, None) for name in CONTROL_NAMES}
    return make_settings(args.preset, **controls)


def check_output(path: Path) -> None:
    """Refuse a bad output path before spending minutes on the optimisation."""
    from stylebridge.core.images import SAVE_EXTENSIONS

    if path.suffix.lower() not in SAVE_EXTENSIONS:
        raise StyleBridgeError(
            f"{path}: unsupported output type {path.suffix or '(none)'}; "
            f"use one of {', '.join(SAVE_EXTENSIONS)}"
        )
    if not path.parent.is_dir():
        raise StyleBridgeError(f"{path}: folder {path.parent} does not exist")


class StopFlag:
    """Ctrl-C sets it; the optimiser sees it within one step and returns its best image."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.event.is_set():  # a second Ctrl-C means: quit now
                raise KeyboardInterrupt
            self.event.set()

        signal.signal(signal.SIGINT, handler)


class ProgressBar:
    """tqdm bar fed by engine ``Progress`` objects or the server's ``progress`` events."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="step", disable=quiet, dynamic_ncols=True)

    def update(
        self,
        step: int,
        total: int,
        stage: int,
        stages: int,
        width: int,
        height: int,
        loss: float | None,
        eta: float | None,
    ) -> None:
        self.bar.total, self.bar.n = total, step
        text = f"stage {stage}/{stages} {width}x{height}" + (
            f" loss {loss:.4g}" if loss is not None else ""
        )
        self.bar.set_postfix_str(text + (f" eta {eta:.0f}s" if eta is not None else ""), False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def as_written(result: Layer, content: Layer, srgb: bool) -> Layer:
    """The result with the content's bit depth and, unless ``--srgb``, its ICC profile; with
    ``--srgb`` a tagged content's result is tagged sRGB (an untagged one stays untagged)."""
    from stylebridge.core.profiles import srgb_profile

    profile = content.profile
    if srgb and profile is not None:
        profile = srgb_profile()
    return dataclasses.replace(result, bit_depth=content.bit_depth, profile=profile)


def cmd_stylize(args: argparse.Namespace) -> int:
    from stylebridge.core.images import load_image, output_warning, save_image

    out = Path(args.output)
    check_output(out)
    settings = settings_from_args(args)  # validated here too: errors before any work
    limit = {"max_pixels": args.max_pixels} if args.max_pixels else {}
    content = load_image(args.content, **limit)
    styles = [load_image(s, **limit) for s in args.styles]
    # the result keeps the content's values beyond [0, 1]: what the content loses, it loses
    lost = output_warning(as_written(content, content, args.srgb), out)
    if lost:  # said before the work, not after it
        print(f"stylebridge: warning: {lost}", file=sys.stderr)
    stop = StopFlag()
    stop.install()
    bar = ProgressBar(settings.steps, args.quiet)
    try:
        run = (_stylize_local if args.local else _stylize_remote)(
            args, settings, content, styles, stop, bar
        )
    finally:
        bar.close()
    for note in run.notes:
        print(f"stylebridge: note: {note}", file=sys.stderr)
    save_image(as_written(run.layer, content, args.srgb), out)
    what = "cancelled: saved the best image so far" if run.cancelled else "saved"
    print(
        f"{what} to {out} ({run.steps} steps, {run.elapsed:.1f} s, {run.where}, "
        f"preset {settings.preset})"
    )
    return EXIT_INTERRUPTED if run.cancelled else 0


@dataclasses.dataclass
class Stylized:
    """A stylize run's outcome, in-process or through a server."""

    layer: Layer
    steps: int
    elapsed: float
    cancelled: bool
    where: str  # "local cpu", or the server's endpoint
    notes: list[str]


def _stylize_local(args, settings, content, styles, stop, bar):
    from stylebridge.core.engine import Engine
    from stylebridge.core.progress import Progress

    engine = Engine(device=settings.device, weights_path=args.weights)

    def on_progress(p: Progress) -> None:
        bar.update(
            p.step, p.total_steps, p.stage, p.stages, p.width, p.height, p.losses["total"], p.eta
        )

    result = engine.stylize(
        content,
        styles,
        settings,
        style_weights=args.blend,
        on_progress=on_progress,
        should_stop=stop,
    )
    return Stylized(
        result.layer,
        result.steps,
        result.elapsed,
        result.cancelled,
        f"local {engine.device}",
        result.notes,
    )


def _stylize_remote(args, settings, content, styles, stop, bar):
    from stylebridge.core.images import layer_from_array, layer_to_array
    from stylebridge.wire.messages import Progress

    from .client import Client, ServerUnavailable
    from .spawn import ensure_server

    def native(layer):
        if layer.profile is not None and not layer.profile.is_srgb:
            return layer_to_array(layer, "float32")  # converted to sRGB: keep its precision
        return layer_to_array(layer, {8: "uint8", 16: "uint16"}.get(layer.bit_depth, "float32"))

    if not args.no_spawn:
        # --device and --weights choose the engine: they go to a server this command starts
        serve_args = [
            *(["--device", args.device] if args.device not in (None, "auto") else []),
            *(["--weights", args.weights] if args.weights else []),
        ]
        info, started = ensure_server(args.endpoint, serve_args)
        if serve_args and not started:
            print(
                f"stylebridge: a server is already running (pid {info['pid']}): "
                f"{' '.join(serve_args)} apply to a server this command starts; "
                "`stylebridge stop` it first to change them",
                file=sys.stderr,
            )
    try:
        client = Client(args.endpoint, insecure=args.insecure)
    except ServerUnavailable as exc:
        raise ServerUnavailable(f"{exc} (or drop --no-spawn)") from None
    controls = {name: getattr(args, name) for name in CONTROLS}

    def on_progress(p: Progress) -> None:  # a reply's fields may be None (wire/messages.py)
        loss = (p.losses or {}).get("total")
        bar.update(p.step, p.total_steps, p.stage, p.stages, p.width, p.height, loss, p.eta)

    with client:
        job = client.submit(
            native(content),
            [native(s) for s in styles],
            preset=args.preset,
            style_weights=args.blend,
            on_progress=on_progress,
            **controls,
        )
        cancel_sent = False
        while not job.poll(0.1):
            if stop() and not cancel_sent and job.job_id:
                job.cancel()
                cancel_sent = True
        image = job.wait()
    layer = layer_from_array(image)  # the server answers in the content's channels and dtype
    info = job.info  # the Result that ended it, with the image
    notes = [n for n in info.notes or () if isinstance(n, str)]
    return Stylized(layer, info.steps, info.elapsed or 0.0, job.cancelled, client.endpoint, notes)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import run_server
    from .spawn import running_server

    info = running_server(args.listen)
    if info is not None:
        print(f"stylebridge: already running on {info['endpoint']} (pid {info['pid']})")
        return 0
    from .credentials import curve_keys, is_local, studio_token

    local = is_local(args.listen)
    token = None  # loopback: a new one each start, in the discovery file
    if args.token_file or not local:  # the LAN: one that studio members are given once
        token = studio_token(Path(args.token_file) if args.token_file else None)
    curve = curve_keys() if args.curve else None
    members = None
    if curve is not None:
        from .members import Members, members_path

        members = Members(members_path())
        if not members.by_key:
            print(
                f"stylebridge: warning: no studio members in {members.path}: only this "
                "machine's own user gets in (`stylebridge studio add-member NAME` adds one)",
                file=sys.stderr,
            )
    if not local and curve is None:
        print(
            "stylebridge: warning: listening beyond this machine without --curve: "
            "the token and the pictures cross the network unencrypted",
            file=sys.stderr,
        )
    ceiling = round(args.max_memory * 2**30) if args.max_memory else default_memory_ceiling()
    limits = Limits(
        max_pixels=args.max_pixels,
        max_queue=args.max_queue,
        max_memory=ceiling,
    )
    idle = None if args.idle_unload <= 0 else args.idle_unload
    backend = None
    if args.cluster:
        from .cluster import cluster_backend  # needs the optional extra stylebridge[cluster]

        backend = cluster_backend(args.cluster, actors=args.actors, weights_path=args.weights)
    return run_server(
        args.listen,
        device=args.device,
        weights_path=args.weights,
        limits=limits,
        idle_unload=idle,
        backend=backend,
        drain=args.drain,
        token=token,
        curve=curve,
        members=members,
    )


def default_memory_ceiling() -> int | None:
    """80% of physical memory: one request can then never get the server OOM-killed."""
    try:
        return int(0.8 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not on Windows: no default ceiling
        return None


def cmd_relay(args: argparse.Namespace) -> int:
    from .credentials import is_local, read_secret
    from .relay import run_relay

    if not is_local(args.listen):
        raise StyleBridgeError(f"--listen {args.listen}: a relay listens on loopback only")
    if args.token_file:
        try:
            token = read_secret(Path(args.token_file))
        except OSError as exc:
            raise StyleBridgeError(f"--token-file: {exc}") from None
    else:
        token = os.environ.get("STYLEBRIDGE_TOKEN", "")
    if not token:
        raise StyleBridgeError(
            "a token is needed (your member token; for a server without --curve, the studio "
            "token): --token-file or STYLEBRIDGE_TOKEN"
        )
    key = args.server_key or os.environ.get("STYLEBRIDGE_SERVER_KEY")
    if not (key or args.insecure or is_local(args.to)):
        from .client import plain_refused

        raise StyleBridgeError(f"--to {plain_refused(args.to)}")
    return run_relay(args.listen, args.to, token, key)


def cmd_add_member(args: argparse.Namespace) -> int:
    from .credentials import curve_keys
    from .members import add_member, check_name, members_path

    out = Path(args.output or f"{check_name(args.name)}.token")
    try:  # O_EXCL: never through a file or link that is there already
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise StyleBridgeError(f"{out} exists: give another --output") from None
    except OSError as exc:
        raise StyleBridgeError(f"cannot write {out}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        try:
            token = add_member(args.name)
        except StyleBridgeError:
            out.unlink()
            raise
        f.write(token + "\n")
    print(
        f"stylebridge: {args.name} is a member ({members_path()}); their token is in {out}, "
        "and nowhere else: give it to them with the server key "
        f"{curve_keys()[0].decode()}, then delete it here"
    )
    return 0


def cmd_remove_member(args: argparse.Namespace) -> int:
    from .members import members_path, remove_member

    remove_member(args.name)
    print(
        f"stylebridge: {args.name} is no longer a member ({members_path()}): their next "
        "connection is refused; restart the server to close the ones open now"
    )
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    from .members import members_path, read_members

    path = members_path()
    members = read_members(path)
    for key, name in members.items():
        print(f"{name} {key.decode()}")
    if not members:
        print(f"stylebridge: no members in {path}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .client import Client

    with Client(args.endpoint, timeout=5, insecure=args.insecure) as client:
        s = client.status()
    queue = ", ".join(s.queue) or "empty"
    running = ", ".join(s.running_jobs or ([s.running] if s.running else []))
    print(
        f"stylebridge {s.version} on {s.endpoint} (pid {s.pid}), device {s.device}, "
        f"model {'loaded' if s.model_loaded else 'unloaded (idle)'}"
    )
    print(
        f"running: {running or 'nothing'}; queue: {queue}; "
        f"RSS {s.memory['rss'] / 2**20:.0f} MiB; uptime {s.uptime:.0f} s"
        + ("; draining" if s.draining else "")
    )
    for a in s.actors or []:
        state = f"running {a['busy']}" if a["busy"] else "idle" if a["alive"] else "starting"
        print(
            f"  {a['name']}: {state}; {a['device']} on {a['node']} (pid {a['pid']}), "
            f"{a['jobs_done']} jobs, {a['restarts']} restarts"
        )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from .client import Client
    from .discovery import read_discovery

    info = read_discovery() or {}
    if not isinstance(info.get("admin"), str):
        raise StyleBridgeError(
            "no admin key: `stylebridge stop` works on the server's machine, as its user "
            "(it reads the key from the server's discovery file)"
        )
    with Client(args.endpoint, timeout=5, insecure=args.insecure) as client:
        pid = client.status().pid
        pending = client.shutdown(info["admin"], 0 if args.now else None)
    after = "after its current jobs" if pending else "now"
    print(f"stylebridge: asked the server (pid {pid}) to stop {after}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """One scripted request on the embedded public-domain images (see core/assets/SOURCES.md)."""
    from stylebridge.core import assets

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    print(f"content: {assets.DEFAULT_CONTENT.name}, style: {assets.DEFAULT_STYLE.name}")
    argv = ["stylize", str(assets.DEFAULT_CONTENT), str(assets.DEFAULT_STYLE), "-o", args.output]
    status = cmd_stylize(build_parser().parse_args([*argv, *(["--local"] if args.local else [])]))
    if not args.local:
        print("the server stays up, warm, for the next job; `stylebridge stop` ends it")
    return status


def cmd_install(args: argparse.Namespace) -> int:
    from .install import run

    report = run(
        args.host,
        dest=Path(args.dest) if args.dest else None,
        version=args.version,
        uninstall=args.uninstall,
    )
    for folder in report.installed:
        print(f"installed the {args.host} plug-in in {folder}")
    for path in report.removed:
        print(f"removed {path}")
    if args.uninstall and not report.removed:
        print(f"stylebridge: no {args.host} plug-in installed by stylebridge was found")
    for line in report.next_steps:
        print(line)
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from stylebridge.core.weights import resolve_weights

    weights = resolve_weights(args.weights)
    print(f"VGG16 weights: {weights.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylebridge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"stylebridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stylize", help="stylise CONTENT with one or more STYLE images")
    p.add_argument("content")
    p.add_argument("styles", nargs="+", metavar="style")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--local", action="store_true", help="run the engine in this process")
    p.add_argument("--no-spawn", action="store_true", help="never start a background server")
    p.add_argument("--endpoint", help="server endpoint (default: discovery file)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="without a server key, send to a server beyond this machine unencrypted",
    )
    p.add_argument("--weights", help="VGG16 weights file (else STYLEBRIDGE_WEIGHTS, cache, ...)")
    p.add_argument("--max-pixels", type=int, help="raise the input pixel limit")
    p.add_argument("-q", "--quiet", action="store_true")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument(
        "--keep-profile",
        dest="srgb",
        action="store_false",
        default=False,
        help="write the result in the content's ICC profile (the default)",
    )
    colour.add_argument(
        "--srgb", action="store_true", help="write the result in sRGB (tagged sRGB if tagged)"
    )
    add_control_arguments(p)
    p.set_defaults(func=cmd_stylize)

    p = sub.add_parser("serve", help="run the server: keeps VGG16 warm for every client")
    p.add_argument(
        "--listen",
        default=DEFAULT_ENDPOINT,
        help=f"ZeroMQ endpoint to bind (default {DEFAULT_ENDPOINT}, loopback only)",
    )
    p.add_argument("--device", choices=list(FIELDS["device"].metadata["choices"]), default="auto")
    p.add_argument("--weights", help="VGG16 weights file")
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="a fixed token, made on first use (default for a non-loopback --listen: "
        "<config>/token; loopback: a new token each start, in the discovery file)",
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="encrypt with ZeroMQ CURVE; keys made on first use in <config>/curve, the public "
        "one printed and written to the discovery file",
    )
    p.add_argument(
        "--idle-unload",
        type=float,
        default=IDLE_UNLOAD,
        metavar="SECONDS",
        help="free the model after this long without jobs (0: never)",
    )
    p.add_argument("--max-pixels", type=positive(int), default=LIMITS.max_pixels)
    p.add_argument(
        "--max-queue",
        type=positive(int),
        default=LIMITS.max_queue,
        help="jobs waiting, all clients",
    )
    p.add_argument(
        "--max-memory",
        type=positive(float),
        metavar="GIB",
        help="refuse jobs estimated to need more than this (default: 80%% of the machine's memory)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=DRAIN_SECONDS,
        metavar="SECONDS",
        help="on stop, let running and queued jobs finish this long before cancelling them",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run jobs on warm actors of this Ray cluster ('local': start one here); "
        "needs pip install '.[cluster]' in a checkout",
    )
    p.add_argument(
        "--actors",
        type=int,
        metavar="N",
        help="with --cluster: how many actors (default: one per GPU of the cluster, at least 1)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "relay", help="a loopback front door to a studio server, for the plug-ins (CURVE)"
    )
    p.add_argument("--to", required=True, metavar="ENDPOINT", help="the studio server")
    p.add_argument("--listen", default=DEFAULT_ENDPOINT, help="loopback endpoint to serve")
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="your member token, from `studio add-member` (a server without --curve: the studio "
        "token); else STYLEBRIDGE_TOKEN",
    )
    p.add_argument(
        "--server-key",
        help="the studio server's CURVE public key (else STYLEBRIDGE_SERVER_KEY)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="without a server key, speak to a studio server beyond this machine unencrypted",
    )
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser("studio", help="a CURVE studio server's members (docs/studio.md)")
    studio = p.add_subparsers(dest="studio_command", required=True)
    p = studio.add_parser(
        "add-member", help="make NAME a member: their own token, written to NAME.token"
    )
    p.add_argument("name")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write the member's token")
    p.set_defaults(func=cmd_add_member)
    p = studio.add_parser("remove-member", help="refuse NAME's connections from now on")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove_member)
    p = studio.add_parser("members", help="list the members and their public keys")
    p.set_defaults(func=cmd_members)

    for name, func, text in (
        ("status", cmd_status, "show the running server"),
        ("stop", cmd_stop, "stop the running server once its jobs are done (see serve --drain)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--endpoint", help="server endpoint (default: discovery file)")
        p.add_argument(
            "--insecure",
            action="store_true",
            help="without a server key, send to a server beyond this machine unencrypted",
        )
        if name == "stop":
            p.add_argument("--now", action="store_true", help="cancel running and queued jobs")
        p.set_defaults(func=func)

    p = sub.add_parser("demo", help="stylise the embedded demo photo with a built-in painting")
    p.add_argument("-o", "--output", default="out/demo.png")
    p.add_argument("--local", action="store_true", help="run the engine in this process")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "install", help="install the Krita or GIMP plug-in into the host's user folder"
    )
    p.add_argument("host", choices=list(HOSTS))
    p.add_argument(
        "--dest",
        metavar="FOLDER",
        help="install here instead (Krita: its resource folder; GIMP: a plug-ins folder)",
    )
    p.add_argument("--version", choices=GIMP_VERSIONS, help="GIMP: only this version's folder")
    p.add_argument("--uninstall", action="store_true", help="remove what install put there")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("weights", help="find the VGG16 weights and say where they came from")
    p.add_argument("--weights", help="an explicit weights file to check")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StyleBridgeError, ClientError) as exc:
        print(f"stylebridge: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("stylebridge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
