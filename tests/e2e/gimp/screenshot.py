"""Screenshot of the plug-in's dialog in real GIMP 3 under Xvfb (scripts/gimp-screenshot.sh).

    python -m tests.e2e.gimp.screenshot [--gimp 3.0|3.2] [--no-server] [OUT.png]
                                              # default: GIMP 3.2, docs/gimp-dialog.png

Starts a server (unless --no-server: then the dialog's server line says so, with Start) and
an Xvfb of its own, opens core/assets/chelsea.jpg in GIMP (in its root), calls
plug-in-stylebridge interactively, waits for the dialog's time estimate (the server is ready by
then), moves the dialog beside the image, grabs GIMP's window with ImageMagick's `import`, then
stops everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image as PILImage

from testing.hosts.gimp import harness
from testing.servers import start_server

DIALOG_TITLE = "^Style Transfer"  # xdotool takes a regular expression
PHOTO = harness.REPO / "core" / "assets" / "chelsea.jpg"
ESTIMATE = "About "  # the estimate's line once the server has answered


def capture(out: Path, work: Path, host: harness.Host, serve: bool) -> None:
    profile = harness.install_profile(work)
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700)
    server = start_server(runtime) if serve else None
    try:
        with harness.xvfb(1600, 1250) as display:
            env = {
                "GIMP3_DIRECTORY": str(profile),
                "STYLEBRIDGE_RUNTIME_DIR": str(runtime),
                "STYLEBRIDGE_GIMP_IMAGE": str(work / PHOTO.name),
                "STYLEBRIDGE_GIMP_DIALOG_OUT": str(work),
                **harness.label_env(work),
            }
            photo = PILImage.open(PHOTO).convert("RGB")
            photo.resize((960, round(960 * photo.height / photo.width))).save(work / PHOTO.name)
            script = harness.HERE / "show_dialog.py"
            gimp = harness.start(
                harness.batch_args(script, gui=True, host=host),
                work / "gimp.log",
                binds=[work],
                env=env,
                display=display,
                host=host,
            )
            try:
                grab(display, out, gimp, host, work if serve else None)
            finally:
                harness.stop(gimp)
    finally:
        if server is not None:
            server.stop()


def grab(
    display: str,
    out: Path,
    gimp: subprocess.Popen[bytes],
    host: harness.Host,
    labels: Path | None,
) -> None:
    """``labels``: where GIMP reports its labels (harness.label_env), to wait for the time
    estimate (the server is ready by then); None: no server, nothing to wait for."""
    deadline = time.monotonic() + 120
    while harness.find_window(display, DIALOG_TITLE, host) is None:
        if time.monotonic() > deadline or gimp.poll() is not None:
            raise RuntimeError("the dialog did not appear (see gimp.log in the work folder)")
        time.sleep(0.5)
    if labels is not None:
        shown = harness.watch_labels(labels, lambda text: text.startswith(ESTIMATE), 120, gimp)
        if not any(text.startswith(ESTIMATE) for text in shown):
            raise RuntimeError(f"no time estimate in the dialog: it showed {shown}")
    time.sleep(2)  # first paint
    dialog = harness.find_window(display, DIALOG_TITLE, host)
    main_window = harness.find_window(display, "– GIMP", host)
    if dialog is None or main_window is None:
        raise RuntimeError("GIMP's windows are not where they should be")
    # over the right of the image, below the menu bar, as a window manager might place it;
    # the pointer out of the way so that no tooltip shows
    x, y, w, h = main_window[1]
    dw, dh = dialog[1][2], dialog[1][3]
    dx, dy = max(0, x + w - dw - 260), y + 60
    harness.xdotool(display, "windowmove", dialog[0], str(dx), str(dy), host=host)
    harness.xdotool(display, "mousemove", "1599", "1249", host=host)
    time.sleep(1)
    right, bottom = max(x + w, dx + dw), max(y + h, dy + dh)
    out.parent.mkdir(parents=True, exist_ok=True)
    crop = f"{right - x}x{bottom - y}+{x}+{y}"
    subprocess.run(
        ["import", "-window", "root", "-crop", crop, "+repage", str(out)],
        env={**os.environ, "DISPLAY": display},
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gimp", choices=[h.version for h in harness.HOSTS], default="3.2")
    parser.add_argument("--no-server", action="store_true", help="no server: the dialog says so")
    parser.add_argument(
        "out", nargs="?", type=Path, default=harness.REPO / "docs" / "gimp-dialog.png"
    )
    args = parser.parse_args()
    host = next(h for h in harness.HOSTS if h.version == args.gimp)
    no_import = None if shutil.which("import") else "ImageMagick's import is missing"
    for reason in (harness.missing_reason(host), harness.xvfb_missing_reason(), no_import):
        if reason:
            sys.exit(f"gimp-screenshot: {reason}")
    with tempfile.TemporaryDirectory(prefix="gimp-screenshot-") as work:
        capture(args.out.resolve(), Path(work), host, not args.no_server)
    print(args.out)


if __name__ == "__main__":
    main()
