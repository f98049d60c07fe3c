"""Screenshot of the plug-in's dialog in real GIMP 3 under Xvfb (scripts/gimp-screenshot.sh).

    python -m tests.e2e.gimp.screenshot [OUT.png]        # default: docs/gimp-dialog.png

Starts a server and an Xvfb of its own, opens core/assets/chelsea.jpg in GIMP (the trixie root),
calls plug-in-stylebridge interactively, moves its dialog beside the image, grabs GIMP's window
with ImageMagick's `import`, then cancels the dialog and stops everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image as PILImage

from tests.e2e.gimp import harness
from tests.support.servers import start_server

DIALOG_TITLE = "^Style Transfer"  # xdotool takes a regular expression
PHOTO = harness.REPO / "core" / "assets" / "chelsea.jpg"


def capture(out: Path, work: Path) -> None:
    profile = harness.install_profile(work)
    server = start_server(work / "runtime")
    try:
        with harness.xvfb(1600, 1000) as display:
            env = {
                "GIMP3_DIRECTORY": str(profile),
                "STYLEBRIDGE_ENDPOINT": server.endpoint,
                "STYLEBRIDGE_TOKEN": server.token,
                "STYLEBRIDGE_GIMP_IMAGE": str(work / PHOTO.name),
                "STYLEBRIDGE_GIMP_DIALOG_OUT": str(work),
            }
            photo = PILImage.open(PHOTO).convert("RGB")
            photo.resize((960, round(960 * photo.height / photo.width))).save(work / PHOTO.name)
            script = harness.HERE / "show_dialog.py"
            gimp = harness.start(
                harness.batch_args(script, gui=True),
                work / "gimp.log",
                binds=[work],
                env=env,
                display=display,
            )
            try:
                grab(display, out, gimp)
            finally:
                harness.stop(gimp)
    finally:
        server.stop()


def grab(display: str, out: Path, gimp: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while harness.find_window(display, DIALOG_TITLE) is None:
        if time.monotonic() > deadline or gimp.poll() is not None:
            raise RuntimeError("the dialog did not appear (see gimp.log in the work folder)")
        time.sleep(0.5)
    time.sleep(2)  # first paint
    dialog = harness.find_window(display, DIALOG_TITLE)
    main_window = harness.find_window(display, "– GIMP")
    if dialog is None or main_window is None:
        raise RuntimeError("GIMP's windows are not where they should be")
    # over the right of the image, below the menu bar, as a window manager might place it;
    # the pointer out of the way so that no tooltip shows
    x, y, w, h = main_window[1]
    dw, dh = dialog[1][2], dialog[1][3]
    dx, dy = max(0, x + w - dw - 260), y + 60
    harness.xdotool(display, "windowmove", dialog[0], str(dx), str(dy))
    harness.xdotool(display, "mousemove", "1599", "999")
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
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else harness.REPO / "docs" / "gimp-dialog.png"
    no_import = None if shutil.which("import") else "ImageMagick's import is missing"
    for reason in (harness.missing_reason(), harness.xvfb_missing_reason(), no_import):
        if reason:
            sys.exit(f"gimp-screenshot: {reason}")
    with tempfile.TemporaryDirectory(prefix="gimp-screenshot-") as work:
        capture(out.resolve(), Path(work))
    print(out)


if __name__ == "__main__":
    main()
