"""Screenshots of the real Krita under Xvfb for docs/: the dialog mid-job and the result.

.venv/bin/python -m tests.e2e.krita.screenshot   # writes docs/krita-dialog.png, krita-result.png
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.e2e.krita import host as krita_host
from tests.support import REPO as ROOT
from tests.support.plugins import dist
from tests.support.servers import free_port


def main() -> None:
    reason = krita_host.missing()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        krita_host.install_profile(work / "home", dist().build_krita(work / "dist"))
        runtime = work / "runtime"
        runtime.mkdir(mode=0o700)
        shots = work / "shots"
        shots.mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEBRIDGE_")}
        env.update(
            STYLEBRIDGE_RUNTIME_DIR=str(runtime),
            SB_START="1",
            SB_SERVER_CMD=f"{sys.executable} -m stylebridge.server.cli serve --listen tcp://127.0.0.1:{port}",
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
