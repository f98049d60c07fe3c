"""Run scripts inside a real Krita (under Xvfb) with the plug-in installed as its zip installs.

Each run gets a throwaway HOME; the plug-in zip is unpacked by Krita's own Python plug-in
importer (the code behind Tools > Scripts > Import Python Plugin from File), enabled in
kritarc, next to a small harness plug-in that runs one script and quits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness"
SCRIPTS = HERE / "scripts"
IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")
INSTALL_HINT = "install it with scripts/install-krita.sh (CI does)"


def missing() -> str | None:
    """Why Krita end-to-end tests cannot run here, or None."""
    for tool in ("krita", "xvfb-run"):
        if shutil.which(tool) is None:
            return f"{tool} not found: {INSTALL_HINT}"
    if not IMPORTER.is_file():
        return f"Krita's plug-in importer is missing ({IMPORTER}): {INSTALL_HINT}"
    return None


def install_profile(home: Path, plugin_zip: Path) -> None:
    """A fresh Krita profile in ``home`` with the zip imported and both plug-ins enabled."""
    resources = home / ".local" / "share" / "krita"
    (resources / "pykrita").mkdir(parents=True)
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", IMPORTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = module.PluginImporter(str(plugin_zip), str(resources), lambda _p: True).import_all()
    assert [p["name"] for p in imported] == ["stylebridge_krita"], imported
    shutil.copytree(HARNESS, resources / "pykrita", dirs_exist_ok=True)
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "kritarc").write_text(
        "[python]\nenable_stylebridge_krita=true\nenable_kritatest_harness=true\n"
    )


def run_script(
    home: Path, script: str, env: dict[str, str], timeout: float = 240, screen: str = "1400x900x24"
) -> dict:
    """Run tests/e2e/krita/scripts/``script`` in Krita; returns its ``main()`` result."""
    out = home / f"{Path(script).stem}.json"
    out.unlink(missing_ok=True)
    run_env = {
        **env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "KRITA_TEST_SCRIPT": str(SCRIPTS / script),
        "KRITA_TEST_OUT": str(out),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    run_env.pop("QT_QPA_PLATFORM", None)
    log = home / f"{Path(script).stem}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            ["xvfb-run", "-a", "-s", f"-screen 0 {screen}", "krita", "--nosplash"],
            env=run_env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:  # Krita and Xvfb live in the session xvfb-run started: end them all
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if not out.is_file():
        tail = log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"Krita exited {proc.returncode} without a report:\n{tail}")
    report = json.loads(out.read_text())
    if not report["ok"]:
        raise AssertionError("script failed inside Krita:\n" + report["traceback"])
    return report["result"]


def krita_env(endpoint: str, token: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEBRIDGE_")}
    env.update(STYLEBRIDGE_ENDPOINT=endpoint, STYLEBRIDGE_TOKEN=token, **extra)
    return env


def stop_server_in(runtime: Path) -> None:
    """Stop the server whose discovery file is in ``runtime`` (one the plug-in started)."""
    info = runtime / "server.json"
    if info.is_file():
        pid = json.loads(info.read_text())["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
