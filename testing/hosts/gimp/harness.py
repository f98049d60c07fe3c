"""Drive real GIMP 3 in its isolated roots (scripts/install-gimp.sh, scripts/install-sid.sh,
run through scripts/root-run.sh).

Used by tests/e2e/gimp/test_gimp_e2e.py and scripts/gimp-screenshot.sh: a fresh GIMP profile
with the plug-in laid out exactly as the dist zip installs it, GIMP runs (headless or under an
Xvfb of our own), and key presses and clicks with the root's xdotool. Two hosts: GIMP 3.0
(Debian 13 root, ``GIMP30``, the default of every function here) and GIMP 3.2 (Debian sid root,
``GIMP32``, which the same functions drive when given ``host=GIMP32``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from testing import REPO
from testing.plugins import dist

ROOT_RUN = REPO / "scripts" / "root-run.sh"
HERE = Path(__file__).resolve().parent
LABEL_PROBE = HERE / "label_probe"  # its sitecustomize.py reports what GIMP's windows show


@dataclass(frozen=True)
class Host:
    """One GIMP in one root: what root-run.sh calls it, where it is, how GIMP is called."""

    label: str  # as the tests name it
    root_name: str  # scripts/root-run.sh --root NAME
    root: Path
    marker: str  # the file its install script writes last
    install: str  # the script that builds the root
    version: str  # GIMP's minor version: its binaries' suffix and its profile folder

    @property
    def console(self) -> str:
        return f"gimp-console-{self.version}"

    @property
    def gui(self) -> str:
        return f"gimp-{self.version}"

    def plug_ins(self, home: Path) -> Path:
        """The user plug-ins folder this GIMP reads under ``home`` (without GIMP3_DIRECTORY)."""
        return home / ".config" / "GIMP" / self.version / "plug-ins"


GIMP30 = Host(
    "GIMP 3.0 (gimp-root)",
    "gimp",
    Path(os.environ.get("STYLEBRIDGE_GIMP_ROOT") or REPO / ".hosts" / "gimp-root"),
    ".stylebridge-gimp-ready",
    "scripts/install-gimp.sh",
    "3.0",
)
GIMP32 = Host(
    "GIMP 3.2 (sid-root)",
    "sid",
    Path(os.environ.get("STYLEBRIDGE_SID_ROOT") or REPO / ".hosts" / "sid-root"),
    ".stylebridge-sid-ready",
    "scripts/install-sid.sh",
    "3.2",
)
HOSTS = (GIMP30, GIMP32)


def missing_reason(host: Host = GIMP30) -> str | None:
    """Why ``host`` cannot run here, or None."""
    if not (host.root / host.marker).is_file():
        return (
            f"{host.label}: no root at {host.root}; build it with: sudo {host.install} "
            "(needs root, debootstrap and the Debian mirror)"
        )
    if os.geteuid() != 0:
        return f"{host.label}: running GIMP in its root needs root (mount namespaces and chroot)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


def xvfb_missing_reason() -> str | None:
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed on this host (apt-get install xvfb)"
    return None


def install_profile(folder: Path) -> Path:
    """A fresh GIMP profile (GIMP3_DIRECTORY) holding only our plug-in, as the zip installs."""
    profile = folder / "profile"
    shutil.rmtree(profile, ignore_errors=True)
    (profile / "plug-ins").mkdir(parents=True)
    dist().assemble_gimp(profile / "plug-ins")
    return profile


def batch_args(script: Path, *, gui: bool = False, host: Host = GIMP30) -> list[str]:
    """gimp(-console) running ``script`` with python-fu-eval, then quitting."""
    code = f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')"
    if not gui:
        return console_args(code, host=host)
    return [host.gui, "-n", "--quit", "--batch-interpreter=python-fu-eval", "-b", code]


def console_args(code: str, interpreter: str = "python-fu-eval", host: Host = GIMP30) -> list[str]:
    """gimp-console running one batch command ``code`` with ``interpreter``, then quitting."""
    interpreter_option = f"--batch-interpreter={interpreter}"
    return [host.console, "-i", "-n", "--quit", interpreter_option, "-b", code]


def root_command(
    command: Sequence[str],
    *,
    binds: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    display: str | None = None,
    host: Host = GIMP30,
) -> tuple[list[str], dict[str, str]]:
    """The host command running ``command`` in the root, and the host environment for it."""
    args = [str(ROOT_RUN), "--root", host.root_name]
    for folder in {*binds, HERE}:
        args += ["--bind", str(folder)]
    for name, value in (env or {}).items():
        args += ["--env", f"{name}={value}"]
    host_env = dict(os.environ)
    if display is not None:
        args.append("--x11")
        host_env["DISPLAY"] = display
    return [*args, "--", *command], host_env


def run(
    command: Sequence[str],
    *,
    timeout: float,
    binds: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    display: str | None = None,
    host: Host = GIMP30,
) -> subprocess.CompletedProcess[str]:
    args, host_env = root_command(command, binds=binds, env=env, display=display, host=host)
    return subprocess.run(
        args, env=host_env, capture_output=True, text=True, timeout=timeout, check=False
    )


def start(
    command: Sequence[str],
    log: Path,
    *,
    binds: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    display: str | None = None,
    host: Host = GIMP30,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the root; root-run.sh execs into it, so the pid is GIMP's."""
    args, host_env = root_command(command, binds=binds, env=env, display=display, host=host)
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, env=host_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(path: Path, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """True once ``path`` exists; False after ``timeout`` s or when ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if proc is not None and proc.poll() is not None:
            return path.exists()
        time.sleep(0.1)
    return False


def label_env(folder: Path) -> dict[str, str]:
    """The environment under which GIMP's Pythons write the label texts their windows show
    into ``folder`` (label_probe/sitecustomize.py); ``folder`` must be bound into the root."""
    return {"PYTHONPATH": str(LABEL_PROBE), "SB_LABELS_OUT": str(folder)}


def watch_labels(
    folder: Path,
    until: Callable[[str], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
) -> list[str]:
    """Every label text GIMP's windows showed (under ``label_env(folder)``), in the order first
    seen, once one satisfies ``until``, or after ``timeout`` s, or when ``proc`` ended."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        for path in folder.glob("labels-*.json"):
            seen += [text for text in json.loads(path.read_text()) if text not in seen]
        if any(until(text) for text in seen):
            break
        time.sleep(0.1)
    return seen


def xdotool(display: str, *args: str, host: Host = GIMP30) -> None:
    done = run(["xdotool", *args], timeout=30, display=display, host=host)
    if done.returncode != 0:
        raise RuntimeError(f"xdotool {' '.join(args)} failed: {done.stderr}")


def find_window(
    display: str, title: str, host: Host = GIMP30
) -> tuple[str, tuple[int, int, int, int]] | None:
    """The id and x, y, width, height of a window whose title matches the regular expression
    ``title`` (the root's xdotool, so the host needs nothing but Xvfb)."""
    script = (
        'for id in $(xdotool search --name "$1"); do xdotool getwindowgeometry --shell $id; done'
    )
    done = run(["sh", "-c", script, "sh", title], timeout=30, display=display, host=host)
    for block in done.stdout.split("WINDOW=")[1:]:
        fields = dict(line.split("=", 1) for line in ("WINDOW=" + block).split() if "=" in line)
        box = tuple(int(fields[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        if box[2] > 10 and box[3] > 10:  # not GIMP's 10x10 helper windows
            return fields["WINDOW"], box  # type: ignore[return-value]
    return None


@contextlib.contextmanager
def xvfb(width: int = 1280, height: int = 900) -> Iterator[str]:
    """An Xvfb server of our own (it picks a free display number itself); yields ":N"."""
    read_end, write_end = os.pipe()
    screen = f"{width}x{height}x24"
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        os.close(read_end)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
