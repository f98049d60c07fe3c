"""``stylebridge`` command line: stylize, weights.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError
from stylebridge.core.settings import CONTROL_NAMES, DEFAULT_PRESET, PRESETS, make_settings

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def add_control_arguments(p: argparse.ArgumentParser) -> None:
    """The controls every front end exposes; defaults come from the preset (None = keep)."""
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET)
    p.add_argument("--strength", type=float, help="0..1 (default 1: the preset's full style)")
    p.add_argument("--preserve-colors", choices=("none", "luminance", "histogram"))
    p.add_argument("--size", type=int, help="working long side in px")
    p.add_argument("--style-scale", type=float, help=">1 gives bigger strokes")
    p.add_argument("--steps", type=int)
    p.add_argument(
        "--time",
        dest="time_budget",
        type=float,
        metavar="SECONDS",
        help="time budget: the best image within it is returned",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--init", choices=("content", "noise", "mix"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--content-weight", type=float)
    p.add_argument("--style-weight", type=float)
    p.add_argument("--tv-weight", type=float, help="total-variation smoothing")
    p.add_argument("--style-size", type=int, help="style image long side in px")
    p.add_argument(
        "--blend",
        type=float,
        nargs="+",
        metavar="W",
        help="one blend weight per style image (default: equal)",
    )


def settings_from_args(args: argparse.Namespace):  # -> Settings
    controls = {name: getattr(args, name, None) for name in CONTROL_NAMES}
    return make_settings(args.preset, **controls)


def check_output(path: Path) -> None:
    """Refuse a bad output path before spending minutes on the optimisation."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise StyleBridgeError(
            f"{path}: unsupported output type {path.suffix or '(none)'}; "
            f"use one of {', '.join(OUTPUT_SUFFIXES)}"
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


def cmd_stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stylebridge.core.engine import Engine, Progress
    from stylebridge.core.images import load_image, save_image

    out = Path(args.output)
    check_output(out)
    settings = settings_from_args(args)
    limit = {"max_pixels": args.max_pixels} if args.max_pixels else {}
    content = load_image(args.content, **limit)
    styles = [load_image(s, **limit) for s in args.styles]
    engine = Engine(device=settings.device, weights_path=args.weights)
    stop = StopFlag()
    stop.install()
    bar = tqdm(total=settings.steps, unit="step", disable=args.quiet, dynamic_ncols=True)

    def on_progress(p: Progress) -> None:
        bar.total = p.total_steps
        bar.n = p.step
        bar.set_postfix_str(
            f"stage {p.stage}/{p.stages} {p.width}x{p.height} loss {p.losses['total']:.4g}"
            + (f" eta {p.eta:.0f}s" if p.eta is not None else ""),
            refresh=False,
        )
        bar.refresh()

    result = engine.stylize(
        content,
        styles,
        settings,
        style_weights=args.blend,
        on_progress=on_progress,
        should_stop=stop,
    )
    bar.close()
    save_image(result.layer, out)
    what = "cancelled: saved the best image so far" if result.cancelled else "saved"
    print(
        f"{what} to {out} ({result.steps} steps, {result.elapsed:.1f} s, "
        f"{engine.device}, preset {settings.preset})"
    )
    return EXIT_INTERRUPTED if result.cancelled else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """One scripted request on the embedded public-domain images (see core/assets/SOURCES.md)."""
    from stylebridge.core import assets

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    print(f"content: {assets.DEFAULT_CONTENT.name}, style: {assets.DEFAULT_STYLE.name}")
    argv = [
        "stylize",
        str(assets.DEFAULT_CONTENT),
        str(assets.DEFAULT_STYLE),
        "-o",
        args.output,
        "--local",
    ]
    return cmd_stylize(build_parser().parse_args(argv))


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
    p.add_argument("--weights", help="VGG16 weights file (else STYLEBRIDGE_WEIGHTS, cache, ...)")
    p.add_argument("--max-pixels", type=int, help="raise the input pixel limit")
    p.add_argument("-q", "--quiet", action="store_true")
    add_control_arguments(p)
    p.set_defaults(func=cmd_stylize)

    p = sub.add_parser("demo", help="stylise the embedded demo photo with a built-in painting")
    p.add_argument("-o", "--output", default="out/demo.png")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("weights", help="find the VGG16 weights and say where they came from")
    p.add_argument("--weights", help="an explicit weights file to check")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StyleBridgeError as exc:
        print(f"stylebridge: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("stylebridge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
