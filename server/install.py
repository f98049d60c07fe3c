"""``stylebridge install krita|gimp``: the plug-in into the host's user folder, in one step.

The plug-in is laid out by plugins/dist.py, the code behind ``make dist`` (its sources are package
data of ``stylebridge.plugins``), exactly as its zip unpacks. Next to it goes ``install.json``:
the absolute command that starts *this* stylebridge's server (so the dialogs' Start works with
nothing on PATH) and the list of every file put there, which ``--uninstall`` removes and an
upgrade replaces. The host's own settings (kritarc, GIMP's pluginrc) are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stylebridge.core import __version__
from stylebridge.core.errors import StyleBridgeError
from stylebridge.plugins import dist
from stylebridge.wire.server_process import (
    FLATPAK_SPAWN,
    GIMP_FLATPAK,
    INSTALL_FILE,
    KRITA_FLATPAK,
    SERVER_MODULE,
)


@dataclass
class Target:
    """One place to install into: the host's folder and whether it is a Flatpak's."""

    root: Path  # Krita: the resource folder (pykrita/, actions/); GIMP: the plug-ins folder
    flatpak: bool = False
    label: str = ""


@dataclass
class Report:
    installed: list[Path] = field(default_factory=list)  # the plug-in folders written
    removed: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def _config_home() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home() / "AppData/Roaming")
    if sys.platform == "darwin":
        return home() / "Library/Application Support"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config")


def _data_home() -> Path:
    if sys.platform in ("win32", "darwin"):
        return _config_home()
    return Path(os.environ.get("XDG_DATA_HOME") or home() / ".local/share")


def krita_targets(version: str | None = None) -> list[Target]:
    """Krita's resource folders that exist: the native one, and the Flatpak's (Linux)."""
    found = [Target(_data_home() / "krita", label="Krita")]
    if sys.platform.startswith("linux"):
        flatpak = home() / ".var/app" / KRITA_FLATPAK / "data/krita"
        found.append(Target(flatpak, flatpak=True, label="Krita (Flatpak)"))
    return [t for t in found if t.root.is_dir()]


def gimp_targets(version: str | None = None) -> list[Target]:
    """GIMP 3's plug-in folders: every 3.x profile that exists (or only ``version``), native and
    Flatpak. The plug-ins folder itself is made; the profile folder must be there."""
    bases = [(_config_home() / "GIMP", False)]
    if sys.platform.startswith("linux"):
        bases.append((home() / ".var/app" / GIMP_FLATPAK / "config/GIMP", True))
    found = []
    for base, flatpak in bases:
        if not base.is_dir():
            continue
        versions = [version] if version else sorted(p.name for p in base.glob("3.*") if p.is_dir())
        for v in versions:
            if (base / v).is_dir():
                label = f"GIMP {v}" + (" (Flatpak)" if flatpak else "")
                found.append(Target(base / v / "plug-ins", flatpak, label))
    return found


def server_command(flatpak: bool) -> list[str]:
    """How the plug-in starts this stylebridge's server: absolute, nothing taken from PATH.
    A Flatpak host runs it outside its sandbox with flatpak-spawn (see `flatpak_steps`)."""
    script = Path(sys.executable).with_name("stylebridge" + (".exe" if os.name == "nt" else ""))
    command = (
        [str(script), "serve"] if script.is_file() else [sys.executable, *SERVER_MODULE, "serve"]
    )
    return [FLATPAK_SPAWN, "--host", *command] if flatpak else command


def flatpak_steps(app: str) -> list[str]:
    """The overrides a Flatpak host needs: see the server's discovery folder, start it."""
    return [
        f"flatpak override --user --filesystem=xdg-run/stylebridge {app}",
        f"flatpak override --user --talk-name=org.freedesktop.Flatpak {app}  (only for Start:"
        " it lets any code in the host run commands outside its sandbox; README, Flatpak)",
    ]


def _krita_placed(staging: Path, root: Path) -> list[tuple[Path, Path]]:
    module = dist.KRITA_MODULE
    return [
        (staging / module, root / "pykrita" / module),
        (staging / f"{module}.desktop", root / "pykrita" / f"{module}.desktop"),
        # Krita reads actions (the menu entry, a shortcut slot) from its actions folder
        (staging / f"{module}.action", root / "actions" / f"{module}.action"),
    ]


def _gimp_placed(staging: Path, root: Path) -> list[tuple[Path, Path]]:
    return [(staging / dist.GIMP_FOLDER, root / dist.GIMP_FOLDER)]


@dataclass(frozen=True)
class Host:
    """What installing into one host takes: a new host is one entry of `HOSTS` (and its
    plug-in folder, laid out by plugins/dist.py)."""

    label: str
    flatpak: str  # its Flatpak id
    targets: Callable[[str | None], list[Target]]  # its user folders that exist (a version's)
    home: Callable[[str | None], str]  # where those are looked for, for the error saying none is
    assemble: Callable[[Path], Path]  # dist.py's layout of the plug-in, into a staging folder
    # (item of the staging folder, its destination under a target's root), every one
    placed: Callable[[Path, Path], list[tuple[Path, Path]]]
    folder: Callable[[Path], Path]  # the plug-in's own folder under a root: INSTALL_FILE's
    next_step: str  # what the user does after installing
    versions: tuple[str, ...] = ()  # the profile versions --version names (GIMP's)


HOSTS = {
    "krita": Host(
        label="Krita",
        flatpak=KRITA_FLATPAK,
        targets=krita_targets,
        home=lambda version: str(_data_home() / "krita"),
        assemble=dist.assemble_krita,
        placed=_krita_placed,
        folder=lambda root: root / "pykrita" / dist.KRITA_MODULE,
        next_step="Restart Krita, enable 'Style Transfer (stylebridge)' in Settings > Configure "
        "Krita > Python Plugin Manager, restart it once more; then Tools > Scripts > Style "
        "Transfer...",
    ),
    "gimp": Host(
        label="GIMP",
        flatpak=GIMP_FLATPAK,
        targets=gimp_targets,
        home=lambda version: f"{_config_home() / 'GIMP'}/{version or '3.x'}",
        assemble=dist.assemble_gimp,
        placed=_gimp_placed,
        folder=lambda root: root / dist.GIMP_FOLDER,
        next_step="Restart GIMP; then Filters > Artistic > Style Transfer (Neural)...",
        # the plug-in folders GIMP 3 reads: ~/.config/GIMP/<version>/plug-ins
        versions=("3.0", "3.2"),
    ),
}
GIMP_VERSIONS = HOSTS["gimp"].versions


def _remove_previous(config: Path, root: Path) -> list[Path]:
    """Remove what an earlier install listed in its install.json (nothing else)."""
    try:
        previous = json.loads(config.read_text(encoding="utf-8"))
        files = [root / f for f in previous["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    removed = []
    for path in files:
        if path.resolve().is_relative_to(root.resolve()) and (path.exists() or path.is_symlink()):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def install_into(host: Host, target: Target, command: list[str] | None = None) -> Path:
    """Install (or upgrade) the plug-in under ``target.root``; returns the plug-in's folder."""
    root = target.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        config = host.folder(root) / INSTALL_FILE
        _remove_previous(config, root)
        with tempfile.TemporaryDirectory(prefix="stylebridge-install-") as tmp:
            staging = host.assemble(Path(tmp) / "staging")
            placed = host.placed(staging, root)
            for source, dest in placed:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, dest, dirs_exist_ok=True)
                else:
                    shutil.copy2(source, dest)
        record = {
            "version": __version__,
            "server_command": command or server_command(target.flatpak),
            "files": [d.relative_to(root).as_posix() for _, d in placed],
        }
        config.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StyleBridgeError(f"cannot install into {root}: {exc.strerror or exc}") from None
    return config.parent


def uninstall_from(host: Host, target: Target) -> list[Path]:
    config = host.folder(target.root) / INSTALL_FILE
    if not config.is_file():
        return []
    try:
        return _remove_previous(config, target.root)
    except OSError as exc:
        raise StyleBridgeError(f"cannot remove from {target.root}: {exc.strerror or exc}") from None


def run(
    name: str, *, dest: Path | None = None, version: str | None = None, uninstall: bool = False
) -> Report:
    """Install into (or remove from) every user folder of host ``name``, or ``dest`` alone."""
    host = HOSTS.get(name)
    if host is None:
        raise StyleBridgeError(f"install: {name!r} is not one of {', '.join(HOSTS)}")
    if version is not None and version not in host.versions:
        versioned = [f"{n}, one of {', '.join(h.versions)}" for n, h in HOSTS.items() if h.versions]
        raise StyleBridgeError(f"--version {version}: only for {'; '.join(versioned)}")
    if dest is not None:
        targets = [Target(dest.expanduser().resolve(), label=f"{host.label} ({dest})")]
    else:
        targets = host.targets(version)
    if not targets:
        raise StyleBridgeError(
            f"no {host.label} user folder found ({host.home(version)} does not exist): start "
            f"{host.label} once, or give --dest FOLDER"
        )
    report = Report()
    for target in targets:
        if uninstall:
            report.removed += uninstall_from(host, target)
            continue
        report.installed.append(install_into(host, target))
        if target.flatpak:
            report.next_steps += [f"{target.label}: allow it to reach the server:"]
            report.next_steps += [f"  {step}" for step in flatpak_steps(host.flatpak)]
    if not uninstall:
        report.next_steps.append(host.next_step)
    return report
