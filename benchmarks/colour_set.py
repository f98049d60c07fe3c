"""The colour test set (testing/colour_set.py) written into a folder, and with ``--delta-e``
each file sent through `stylebridge stylize --strength 0` (a real server on loopback): the mean
CIEDE2000 between input and output (docs/benchmarks.md, "Colour and bit depth").

`python -m benchmarks.colour_set [FOLDER] [--delta-e]`
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from stylebridge.core.images import load_image
from testing.colour_set import (
    delta_e,
    profiles,
    stylize_at_strength_0,
    write_colour_set,
    write_gamut,
)
from testing.servers import start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="write the set here (default: a temporary one)")
    parser.add_argument(
        "--delta-e", action="store_true", help="round trip each file at --strength 0: mean ΔE2000"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp) / "colour-set"
        paths = write_colour_set(folder)
        gamut = write_gamut(folder, profiles()["adobe"])
        print(f"wrote {len(paths) + 1} files into {folder}")
        if args.delta_e:
            report_delta_e([*paths, gamut], Path(tmp))


def report_delta_e(paths: list[Path], tmp: Path) -> None:
    server = start_server(tmp / "runtime")
    try:
        print("| file | profile | ΔE2000 at strength 0: mean / max |\n|---|---|---|")
        for path in paths:
            out = tmp / f"out-{path.name}"
            proc = stylize_at_strength_0(path, out, server.runtime)
            if proc.returncode != 0:
                raise SystemExit(f"{path.name}: {proc.stderr.strip()}")
            name = load_image(path).profile.name
            d = delta_e(path, out)
            print(f"| {path.name} | {name} | {d.mean():.2g} / {d.max():.2g} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
