"""Colour-true round trips of files through the CLI and a real server (issue 18, part 1).

Every file of the colour test set (testing/colour_set.py: sRGB, Display P3, Adobe RGB and
linear profiles, 8/16-bit integer and 16/32-bit float) comes back from `--strength 0` with its
profile, its bit depth and its colours. Files are read back with tifffile, pypng and Pillow and
compared through LittleCMS, not through stylebridge's own reader.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from stylebridge.core.profiles import srgb_icc
from testing.colour_set import (
    SAMPLES,
    mean_delta_e,
    profiles,
    read_raw,
    stylize_at_strength_0,
    write_colour_set,
    write_gamut,
)

# The least a person could see is a mean CIEDE2000 of about 1; a round trip must be far below.
DELTA_E = 0.01


@pytest.fixture(scope="module")
def colour_set(tmp_path_factory) -> dict[str, Path]:
    return {p.name: p for p in write_colour_set(tmp_path_factory.mktemp("colour-set"))}


def raw_dtype(path: Path) -> np.dtype:
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            return np.dtype(tif.pages.first.dtype)
    depth = struct.unpack(">B", path.read_bytes()[24:25])[0]  # IHDR bit depth
    return np.dtype(np.uint16 if depth == 16 else np.uint8)


def assert_same_picture(source: Path, out: Path) -> None:
    """Same profile, bit depth and channels; samples within 1/255 (float: 1e-3 relative)."""
    a, icc_a = read_raw(source)
    b, icc_b = read_raw(out)
    assert icc_b == icc_a, "the profile was not written back"
    expected = raw_dtype(source)
    if expected == np.float16:  # read as float32, written as float32: no value is lost
        expected = np.dtype(np.float32)
    assert raw_dtype(out) == expected
    assert a.shape == b.shape
    tolerance = 1e-3 * np.maximum(1, np.abs(a)) if expected.kind == "f" else 1 / 255 + 1e-9
    assert np.all(np.abs(a - b) <= tolerance)
    assert mean_delta_e(source, out) < DELTA_E


@pytest.mark.parametrize("name", [s.name for s in SAMPLES])
def test_strength_0_hands_back_each_file(name, colour_set, server, tmp_path):
    out = tmp_path / f"out{Path(name).suffix}"
    proc = stylize_at_strength_0(colour_set[name], out, server.runtime)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing lost, nothing to warn about
    assert_same_picture(colour_set[name], out)


def test_local_engine_keeps_profile_and_depth(colour_set, server, tmp_path):
    out = tmp_path / "out.png"
    proc = stylize_at_strength_0(colour_set["p3-16.png"], out, server.runtime, "--local")
    assert proc.returncode == 0, proc.stderr
    assert_same_picture(colour_set["p3-16.png"], out)


def test_srgb_writes_srgb_with_the_same_colours(colour_set, server, tmp_path):
    source, out = colour_set["adobe-16.tif"], tmp_path / "out.tif"
    proc = stylize_at_strength_0(source, out, server.runtime, "--srgb")
    assert proc.returncode == 0, proc.stderr
    (a, _), (b, icc) = read_raw(source), read_raw(out)
    assert icc == srgb_icc() and raw_dtype(out) == np.uint16
    assert np.abs(a - b).max() > 0.05  # other numbers: really converted
    assert mean_delta_e(source, out) < DELTA_E


def test_a_touch_of_style_keeps_profile_depth_and_nearly_the_colours(colour_set, server, tmp_path):
    # --strength 0.02: a real stylisation, faded; --balance near 0 is no gentler after 3 steps
    # (mean CIEDE2000 5.8 at --balance 0.02, 0.12 here)
    source, out = colour_set["adobe-16.tif"], tmp_path / "out.tif"
    proc = stylize_at_strength_0(source, out, server.runtime, "--strength", "0.02")
    assert proc.returncode == 0, proc.stderr
    (a, icc_a), (b, icc_b) = read_raw(source), read_raw(out)
    assert icc_b == icc_a and raw_dtype(out) == np.uint16 and a.shape == b.shape
    assert 0 < mean_delta_e(source, out) < 1.0  # moved, and by less than one can see


def test_losing_depth_is_one_warning_line(colour_set, server, tmp_path):
    out = tmp_path / "out.jpg"
    proc = stylize_at_strength_0(colour_set["adobe-16.png"], out, server.runtime)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"stylebridge: warning: {out} is 8-bit: the 16-bit content loses depth"
    ]
    with Image.open(out) as img:
        assert img.info["icc_profile"] == read_raw(colour_set["adobe-16.png"])[1]


def test_colours_outside_srgb_come_back_from_a_float_file(server, tmp_path):
    # they ride beside the engine's [0, 1] as the layer's excess, in float32 on the wire
    source = write_gamut(tmp_path, profiles()["adobe"])
    out = tmp_path / "out.tif"
    proc = stylize_at_strength_0(source, out, server.runtime, "--balance", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_same_picture(source, out)
    # written as 16-bit sRGB they cannot be held: clipped, in one line said before the work
    proc = stylize_at_strength_0(source, tmp_path / "srgb.png", server.runtime, "--srgb")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "srgb.png is 16-bit" in line and "beyond [0, 1] (from -4" in line and "clipped" in line


def test_float_values_beyond_one_come_back_from_a_float_file(server, tmp_path):
    source = tmp_path / "hdr.tif"
    values = np.linspace(0, 4, 48 * 64 * 3, dtype=np.float32).reshape(48, 64, 3)
    values[-4:, -4:, 1] = -0.2
    tifffile.imwrite(source, values, photometric="rgb")
    out = tmp_path / "out.tif"
    proc = stylize_at_strength_0(source, out, server.runtime, "--balance", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    back, _ = read_raw(out)
    assert raw_dtype(out) == np.float32 and np.array_equal(back, values)
    proc = stylize_at_strength_0(source, tmp_path / "out.png", server.runtime)
    (line,) = proc.stderr.splitlines()
    assert "out.png is 16-bit" in line and "(from -0.2 to 4), so they are clipped" in line
    assert read_raw(tmp_path / "out.png")[0].max() == 1.0


def test_float32_beyond_0_1_crosses_the_wire_both_ways(client):
    # the protocol's float32 is unbounded: at balance 0 the server hands back what it got
    content = np.random.default_rng(0).random((48, 64, 4), dtype=np.float32)
    content[:8, :8, :3] = 4.0
    content[-8:, -8:, 1] = -0.2
    style = np.random.default_rng(1).random((48, 64, 3), dtype=np.float32)
    back = client.stylize(content, [style], preset="fast", balance=0.0, size=64, steps=3)
    assert back.dtype == np.float32 and np.array_equal(back, content)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    corrupt = tmp / "corrupt-profile.png"
    Image.fromarray(rgb).save(corrupt, icc_profile=b"not a profile" * 20)
    cmyk_icc = bytearray(srgb_icc())
    cmyk_icc[16:20] = b"CMYK"  # the header's colour space: a profile for CMYK pixels
    cmyk = tmp / "cmyk-profile.png"
    Image.fromarray(rgb).save(cmyk, icc_profile=bytes(cmyk_icc))
    gray = tmp / "gray-profile.png"
    Image.fromarray(rgb).save(gray, icc_profile=profiles()["gray"])
    squeezed = tmp / "thunderscan.tif"
    tifffile.imwrite(squeezed, rgb, photometric="rgb")
    with tifffile.TiffFile(squeezed) as tif:
        at = tif.pages.first.tags[259].valueoffset  # Compression: 1 (none)
    data = bytearray(squeezed.read_bytes())
    data[at : at + 2] = struct.pack("<H", 32809)  # ThunderScan: no codec decodes it
    squeezed.write_bytes(bytes(data))
    return {
        "corrupt": (corrupt, "has a corrupt ICC profile"),
        "cmyk": (cmyk, "has an ICC profile for CMYK pixels on an RGB image"),
        "gray": (gray, "has an ICC profile for GRAY pixels on an RGB image"),
        "compression": (squeezed, "uses TIFF compression THUNDERSCAN (32809)"),
    }


@pytest.mark.parametrize("case", ["corrupt", "cmyk", "gray", "compression"])
def test_bad_colour_input_is_one_line_and_exit_2(case, server, tmp_path):
    path, expected = _bad_files(tmp_path)[case]
    proc = stylize_at_strength_0(path, tmp_path / "out.png", server.runtime)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"stylebridge: {path} {expected}")
