"""Assemble the host plug-ins as users install them, and zip them (`make dist`).

Each plug-in carries its own copy of the standard-library bridge (`stylebridge_wire`) and the
built-in style paintings, so it needs nothing from the Python package on the host's side.

    python plugins/dist.py [OUT_DIR]      # dist/stylebridge-krita-VERSION.zip, ...-gimp-...

Tests call `assemble_krita` / `assemble_gimp` to install into throwaway host profiles exactly
as the zips install.
"""

from __future__ import annotations

import re
import shutil
import stat
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "wire"  # stylebridge.wire: installed beside stylebridge.plugins too
ASSETS = ROOT / "core" / "assets"
STYLE_FILES = {  # built-in styles as the plug-ins name them -> file in core/assets
    "The Starry Night (van Gogh)": "starry_night.jpg",
    "The Scream (Munch)": "the_scream.jpg",
    "The Shipwreck (Turner)": "shipwreck.jpg",
    "Woman with a Hat (Matisse)": "woman_with_hat_matisse.jpg",
}
KRITA_MODULE = "stylebridge_krita"
GIMP_FOLDER = "stylebridge"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def version() -> str:
    text = (ROOT / "core" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise RuntimeError("core/__init__.py has no __version__")
    return match.group(1)


def _vendor(package_dir: Path) -> None:
    """Copy the bridge and the built-in styles into a plug-in's own package folder."""
    shutil.copytree(WIRE, package_dir / "stylebridge_wire", ignore=_IGNORE)
    styles = package_dir / "styles"
    styles.mkdir()
    for name in STYLE_FILES.values():
        shutil.copy2(ASSETS / name, styles / name)
    shutil.copy2(ASSETS / "SOURCES.md", styles / "SOURCES.md")
    index = "".join(f"{file}\t{title}\n" for title, file in STYLE_FILES.items())
    (styles / "index.tsv").write_text(index, encoding="utf-8")
    (package_dir / "VERSION").write_text(version() + "\n", encoding="utf-8")


def assemble_krita(dest: Path) -> Path:
    """Lay out what Krita's pykrita folder gets; returns ``dest``.

    ``dest`` receives ``stylebridge_krita.desktop``, ``stylebridge_krita/`` (the module) and
    ``stylebridge_krita.action`` (Krita's plug-in importer copies ``.action`` files into its
    actions folder so the action gets a menu place and a shortcut slot).
    """
    src = ROOT / "plugins" / "krita"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / KRITA_MODULE, dest / KRITA_MODULE, ignore=_IGNORE)
    _vendor(dest / KRITA_MODULE)
    for name in (f"{KRITA_MODULE}.desktop", f"{KRITA_MODULE}.action"):
        shutil.copy2(src / name, dest / name)
    return dest


def assemble_gimp(dest: Path) -> Path:
    """Lay out GIMP's plug-in folder ``dest/stylebridge/`` (executable stylebridge.py)."""
    folder = dest / GIMP_FOLDER
    shutil.copytree(ROOT / "plugins" / "gimp" / GIMP_FOLDER, folder, ignore=_IGNORE)
    _vendor(folder)
    main = folder / f"{GIMP_FOLDER}.py"
    main.chmod(main.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return dest


def _zip(tree: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*")):
            # directory entries too: Krita's importer finds the module by its "name/" entry
            info = zipfile.ZipInfo.from_file(path, path.relative_to(tree).as_posix())
            data = b"" if path.is_dir() else path.read_bytes()
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return archive


def build_krita(out: Path) -> Path:
    """dist/stylebridge-krita-VERSION.zip, as Tools > Scripts > Import Python Plugin takes it."""
    return _build(assemble_krita, out, "krita")


def build_gimp(out: Path) -> Path:
    """dist/stylebridge-gimp-VERSION.zip: unpack into GIMP's plug-ins folder."""
    return _build(assemble_gimp, out, "gimp")


def _build(assemble: Callable[[Path], Path], out: Path, host: str) -> Path:
    staging = out / f"staging-{host}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        return _zip(assemble(staging), out / f"stylebridge-{host}-{version()}.zip")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist"
    for build in (build_krita, build_gimp):
        print(build(target))
