"""`stylebridge install krita|gimp`: where each host's plug-in goes, what install.json records,
idempotent upgrades, an uninstall that removes exactly what was put there, and bad input in one
sentence with exit status 2. Real folders under a throwaway HOME; the hosts themselves load
what it installs in tests/e2e (Krita 5 and 6, GIMP 3.0 and 3.2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stylebridge.core.errors import StyleBridgeError
from stylebridge.server import install
from stylebridge.wire import server_process


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    return home


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_krita_goes_into_its_resource_folder_with_the_absolute_server_command(home):
    resources = home / ".local/share/krita"
    resources.mkdir(parents=True)
    (resources / "pykrita").mkdir()
    (resources / "pykrita" / "someone_elses_plugin.py").write_text("# not ours\n")
    report = install.run("krita")
    folder = resources / "pykrita" / "stylebridge_krita"
    assert report.installed == [folder]
    assert (resources / "pykrita" / "stylebridge_krita.desktop").is_file()
    assert (resources / "actions" / "stylebridge_krita.action").is_file()
    record = json.loads((folder / "install.json").read_text())
    command = record["server_command"]
    assert Path(command[0]).is_absolute() and command[-1] == "serve"  # nothing from PATH
    assert record["files"] == [
        "pykrita/stylebridge_krita",
        "pykrita/stylebridge_krita.desktop",
        "actions/stylebridge_krita.action",
    ]
    assert "Python Plugin Manager" in report.next_steps[-1]

    before = files_under(resources)
    (folder / "stale_module.py").write_text("# from an older version\n")
    install.run("krita")  # again: an upgrade replaces the plug-in's own files
    assert files_under(resources) == before

    removed = install.run("krita", uninstall=True).removed
    assert sorted(p.name for p in removed) == sorted(Path(f).name for f in record["files"])
    assert files_under(resources) == {"pykrita", "pykrita/someone_elses_plugin.py", "actions"}


def test_gimp_goes_into_every_3x_folder_or_the_one_asked_for(home):
    for version in ("3.0", "3.2"):
        (home / ".config/GIMP" / version).mkdir(parents=True)
    report = install.run("gimp")
    assert report.installed == [
        home / ".config/GIMP" / v / "plug-ins/stylebridge" for v in ("3.0", "3.2")
    ]
    assert "Restart GIMP" in report.next_steps[-1]
    install.run("gimp", uninstall=True)
    assert install.run("gimp", version="3.2").installed == [
        home / ".config/GIMP/3.2/plug-ins/stylebridge"
    ]
    assert not (home / ".config/GIMP/3.0/plug-ins/stylebridge").exists()


def test_a_flatpak_host_gets_flatpak_spawn_and_the_overrides(home):
    (home / ".var/app/org.kde.krita/data/krita").mkdir(parents=True)
    report = install.run("krita")
    folder = home / ".var/app/org.kde.krita/data/krita/pykrita/stylebridge_krita"
    assert report.installed == [folder]
    command = json.loads((folder / "install.json").read_text())["server_command"]
    assert command[:2] == ["/usr/bin/flatpak-spawn", "--host"]
    assert server_process._runs_stylebridge_serve(command)  # what Start will accept
    steps = "\n".join(report.next_steps)
    assert "flatpak override --user --filesystem=xdg-run/stylebridge org.kde.krita" in steps


@pytest.mark.parametrize(
    ("platform", "krita", "gimp"),
    [
        ("win32", "AppData/Roaming/krita", "AppData/Roaming/GIMP/3.2"),
        ("darwin", "Library/Application Support/krita", "Library/Application Support/GIMP/3.2"),
    ],
)
def test_windows_and_macos_folders(home, monkeypatch, platform, krita, gimp):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv("APPDATA", raising=False)
    (home / krita).mkdir(parents=True)
    (home / gimp).mkdir(parents=True)
    assert install.run("krita").installed == [home / krita / "pykrita/stylebridge_krita"]
    assert install.run("gimp").installed == [home / gimp / "plug-ins/stylebridge"]


def test_no_host_folder_is_one_sentence(home):
    with pytest.raises(StyleBridgeError, match=r"no GIMP user folder found .* or give --dest"):
        install.run("gimp")
    with pytest.raises(StyleBridgeError, match=r"--version 3\.1: only for gimp"):
        install.run("gimp", version="3.1")


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stylebridge.server.cli", "install", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def test_the_cli_says_what_it_did_and_refuses_bad_input_with_status_2(tmp_path):
    done = run_cli("krita", "--dest", str(tmp_path / "resources"), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"installed the krita plug-in in {tmp_path / 'resources'}" in done.stdout
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a profile folder that cannot be made: a file is in the way
    done = run_cli("gimp", "--dest", str(blocked / "plug-ins"), home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "cannot install into" in done.stderr
    done = run_cli("gimp", home=tmp_path)  # GIMP never ran: no profile folder
    assert done.returncode == 2 and "start GIMP once, or give --dest FOLDER" in done.stderr
