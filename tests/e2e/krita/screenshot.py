"""Screenshots of the real Krita under Xvfb for docs/: the dialog mid-job and the result.

.venv/bin/python -m tests.e2e.krita.screenshot   # writes docs/krita-dialog.png, krita-result.png
.venv/bin/python -m tests.e2e.krita.screenshot 6 # Krita 6 in the sid root: docs/krita6-dialog.png

Krita 5 starts the server with the dialog's Start; Krita 6, whose Python cannot run this venv,
finds one started here (as in tests/e2e/krita/test_krita_e2e.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from testing import REPO as ROOT
from testing.hosts.krita import host as krita_host
from testing.servers import start_server


def krita6() -> None:
    reason = krita_host.missing6()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        krita_host.install_profile6(home)  # through `stylebridge install krita --dest`
        shots = home / "shots"
        shots.mkdir()
        content = home / "chelsea.jpg"  # inside the root: only home is bound
        shutil.copy2(ROOT / "core" / "assets" / "chelsea.jpg", content)
        server = start_server(Path(tmp) / "runtime")
        try:
            env = {
                "STYLEBRIDGE_ENDPOINT": server.endpoint,
                "STYLEBRIDGE_TOKEN": server.token,
                "SB_SHOTS": str(shots),
                "SB_CONTENT": str(content),
                "SB_SIZE": "320",
            }
            krita_host.run_script6(home, "dialog_flow.py", env, timeout=600, screen="1600x1000x24")
        finally:
            server.stop()
        shutil.copy2(shots / "krita-dialog.png", ROOT / "docs" / "krita6-dialog.png")
        print(ROOT / "docs" / "krita6-dialog.png")


def main() -> None:
    if sys.argv[1:] == ["6"]:
        krita6()
        return
    reason = krita_host.missing()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        krita_host.built_profile(work)
        runtime = work / "runtime"
        runtime.mkdir(mode=0o700)
        shots = work / "shots"
        shots.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEBRIDGE_")}
        env.update(
            STYLEBRIDGE_RUNTIME_DIR=str(runtime),
            SB_START="1",
            # the venv's own command as `stylebridge install` records it: Start runs exactly
            # `.../stylebridge serve` (on the default port) and nothing else
            SB_SERVER_CMD=f"{Path(sys.executable).with_name('stylebridge')} serve",
            SB_SHOTS=str(shots),
            SB_CONTENT=str(ROOT / "core" / "assets" / "chelsea.jpg"),
            SB_SIZE="320",
        )
        try:
            krita_host.run_script(
                work / "home", "dialog_flow.py", env, timeout=600, screen="1600x1000x24"
            )
        finally:
            krita_host.stop_server_in(runtime)
        for name in ("krita-dialog.png", "krita-result.png"):
            shutil.copy2(shots / name, ROOT / "docs" / name)
            print(ROOT / "docs" / name)


if __name__ == "__main__":
    main()
