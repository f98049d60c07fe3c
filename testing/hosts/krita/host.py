"""Run scripts inside a real Krita (under Xvfb) with the plug-in installed as users install it.

Krita 5 (this machine's own package): each run gets a throwaway HOME; the plug-in zip is
unpacked by Krita's own Python plug-in importer (the code behind Tools > Scripts > Import Python
Plugin from File), enabled in kritarc, next to a small harness plug-in that runs one script and
quits.

Krita 6 (PyQt6, in the Debian sid root of scripts/install-sid.sh, run through
scripts/root-run.sh): the same profile layout and harness, the plug-in put there by
`stylebridge install krita --dest` (or by the sid root's own importer), Krita started under the
root's Xvfb (xvfb-run) on a display number that is free on this machine, since the root shares
its network namespace and with it X's abstract sockets.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from testing import REPO

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


def resources_of(home: Path) -> Path:
    """Krita's resource folder (pykrita/, actions/) in a profile whose XDG_DATA_HOME is in
    ``home``."""
    return home / ".local" / "share" / "krita"


def import_zip(resources: Path, plugin_zip: Path, importer: Path = IMPORTER) -> None:
    """Unpack ``plugin_zip`` into ``resources`` with Krita's own plug-in importer (``importer``,
    a file of the Krita in question). Krita 6's importer takes ``i18n`` from ``builtins``, where
    Krita puts it: outside Krita a pass-through stands in for it while the importer runs."""
    shim = not hasattr(builtins, "i18n")
    if shim:
        builtins.i18n = lambda text, *args: text  # type: ignore[attr-defined]
    try:
        spec = importlib.util.spec_from_file_location("krita_plugin_importer", importer)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        importer_ = module.PluginImporter(str(plugin_zip), str(resources), lambda _p: True)
        imported = importer_.import_all()
    finally:
        if shim:
            del builtins.i18n  # type: ignore[attr-defined]
    assert [p["name"] for p in imported] == ["stylebridge_krita"], imported


def add_harness(home: Path) -> None:
    """The test harness plug-in beside the plug-in, and both enabled in kritarc."""
    shutil.copytree(HARNESS, resources_of(home) / "pykrita", dirs_exist_ok=True)
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "kritarc").write_text(
        "[python]\nenable_stylebridge_krita=true\nenable_kritatest_harness=true\n"
    )


def install_profile(home: Path, plugin_zip: Path) -> None:
    """A fresh Krita profile in ``home`` with the zip imported and both plug-ins enabled."""
    resources = resources_of(home)
    (resources / "pykrita").mkdir(parents=True)
    import_zip(resources, plugin_zip)
    add_harness(home)


def built_profile(folder: Path) -> Path:
    """A fresh Krita profile in ``folder``/home with the plug-in's zip, built from this checkout
    into ``folder``/dist, imported (benchmarks and screenshots); returns the home."""
    from testing.plugins import dist

    home = folder / "home"
    install_profile(home, dist().build_krita(folder / "dist"))
    return home


def profile_env(home: Path, script: str, out: Path) -> dict[str, str]:
    """What Krita and the harness read: the throwaway profile, the script, the report file."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "KRITA_TEST_SCRIPT": str(SCRIPTS / script),
        "KRITA_TEST_OUT": str(out),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def read_report(out: Path, log: Path, returncode: int | None) -> dict:
    if not out.is_file():
        tail = log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"Krita exited {returncode} without a report:\n{tail}")
    report = json.loads(out.read_text())
    if not report["ok"]:
        raise AssertionError("script failed inside Krita:\n" + report["traceback"])
    return report["result"]


def run_session(args: list[str], env: dict[str, str], log: Path, timeout: float) -> int | None:
    """Run ``args`` (an xvfb-run, directly or in a root) in a session of its own and end every
    process of that session (Krita, Xvfb) when it returns or ``timeout`` passes."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:  # Krita and Xvfb live in the session xvfb-run started: end them all
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def run_script(
    home: Path, script: str, env: dict[str, str], timeout: float = 240, screen: str = "1400x900x24"
) -> dict:
    """Run testing/hosts/krita/scripts/``script`` in Krita; returns its ``main()`` result."""
    out = home / f"{Path(script).stem}.json"
    out.unlink(missing_ok=True)
    run_env = {**env, **profile_env(home, script, out)}
    run_env.pop("QT_QPA_PLATFORM", None)
    log = home / f"{Path(script).stem}.log"
    args = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}", "krita", "--nosplash"]
    returncode = run_session(args, run_env, log, timeout)
    return read_report(out, log, returncode)


# ======================================================== Krita 6 in the Debian sid root

SID_ROOT = Path(os.environ.get("STYLEBRIDGE_SID_ROOT") or REPO / ".hosts" / "sid-root")
SID_MARKER = ".stylebridge-sid-ready"
ROOT_RUN = REPO / "scripts" / "root-run.sh"
SID_IMPORTER = SID_ROOT / "usr/share/krita/pykrita/plugin_importer/plugin_importer.py"


def missing6() -> str | None:
    """Why Krita 6 (sid root) end-to-end tests cannot run here, or None."""
    if not (SID_ROOT / SID_MARKER).is_file():
        return (
            f"Krita 6: no sid root at {SID_ROOT}; build it with: sudo scripts/install-sid.sh "
            "(needs root, debootstrap and the Debian mirror)"
        )
    if os.geteuid() != 0:
        return "Krita 6: running it in the sid root needs root (mount namespaces and chroot)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    for need in ("usr/bin/krita", "usr/bin/xvfb-run", "usr/lib/python3/dist-packages/PyQt6"):
        if not (SID_ROOT / need).exists():
            return f"Krita 6: the sid root lacks /{need}: rebuild it with scripts/install-sid.sh"
    return None


def stylebridge_command() -> list[str]:
    """This venv's ``stylebridge`` command (its console script, else the module)."""
    script = Path(sys.executable).with_name("stylebridge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stylebridge.server.cli"]


def install_profile6(home: Path, plugin_zip: Path | None = None) -> Path:
    """A fresh Krita 6 profile in ``home``: the plug-in put in its resource folder by
    `stylebridge install krita --dest` (or, given ``plugin_zip``, imported by the sid root's
    Krita 6 importer), the harness beside it, both enabled. Returns the resource folder."""
    resources = resources_of(home)
    if plugin_zip is not None:
        (resources / "pykrita").mkdir(parents=True)
        import_zip(resources, plugin_zip, SID_IMPORTER)
    else:
        done = subprocess.run(
            [*stylebridge_command(), "install", "krita", "--dest", str(resources)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HOME": str(home)},
        )
        assert done.returncode == 0, done.stdout + done.stderr
    add_harness(home)
    return resources


def free_display() -> int:
    """An X display number no server on this machine uses: no socket file, no lock file, no
    abstract socket (the root shares this machine's network namespace, so X servers inside
    it and outside it compete for the same abstract names)."""
    try:
        unix = Path("/proc/net/unix").read_text()
    except OSError:
        unix = ""
    for number in range(91, 400):
        used = (
            Path(f"/tmp/.X11-unix/X{number}").exists()
            or Path(f"/tmp/.X{number}-lock").exists()
            or f"@/tmp/.X11-unix/X{number}" in unix
        )
        if not used:
            return number
    raise RuntimeError("no free X display number between 91 and 399")


def run_script6(
    home: Path,
    script: str,
    extra_env: dict[str, str],
    timeout: float = 240,
    screen: str = "1400x900x24",
) -> dict:
    """Run testing/hosts/krita/scripts/``script`` in Krita 6 inside the sid root (``home`` and
    this folder bound at their own paths); returns its ``main()`` result."""
    out = home / f"{Path(script).stem}.json"
    out.unlink(missing_ok=True)
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**profile_env(home, script, out), "XDG_RUNTIME_DIR": str(runtime), **extra_env}
    args = [str(ROOT_RUN), "--root", "sid", "--bind", str(home), "--bind", str(HERE)]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    display = str(free_display())
    args += ["--", "xvfb-run", "-n", display, "-s", f"-screen 0 {screen}", "krita", "--nosplash"]
    log = home / f"{Path(script).stem}.log"
    returncode = run_session(args, dict(os.environ), log, timeout)
    return read_report(out, log, returncode)


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
