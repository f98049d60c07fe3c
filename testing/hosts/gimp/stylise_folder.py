"""Stylise every JPEG and PNG of a folder through GIMP's PDB: the README's batch example.

    STYLE_FOLDER=~/photos gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval \
        -b 'exec(open("stylise_folder.py").read())'

Each photo gets the style as a new layer on top (plug-in-stylebridge), is flattened and saved
next to it as NAME-styled.png. tests/e2e/gimp/test_gimp_e2e.py runs this very file.
"""

import glob
import os

from gi.repository import Gimp, Gio

folder = os.path.expanduser(os.environ.get("STYLE_FOLDER", "."))
procedure = Gimp.get_pdb().lookup_procedure("plug-in-stylebridge")
photos = sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png")))
for path in photos:
    if path.endswith("-styled.png"):
        continue
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", image.get_selected_drawables())
    config.set_property("builtin-style", os.environ.get("STYLE", "the_scream"))
    config.set_property("preset", os.environ.get("STYLE_PRESET", "fast"))
    config.set_property("size", int(os.environ.get("STYLE_SIZE", "0")))  # 0: the preset's
    config.set_property("steps", int(os.environ.get("STYLE_STEPS", "0")))
    result = procedure.run(config)
    if result.index(0) == Gimp.PDBStatusType.SUCCESS:
        image.flatten()
        out = os.path.splitext(path)[0] + "-styled.png"
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(out), None)
        print(f"{path} -> {out}")
    else:
        print(f"{path}: {result.index(1)}")
    image.delete()
