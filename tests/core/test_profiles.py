"""core/profiles.py through core/images.py: a file's ICC profile is applied on read, put back on
write, and checked; against Pillow's ImageCms, an independent binding of LittleCMS."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from stylebridge.core.errors import InputError
from stylebridge.core.images import Layer, layer_to_array, load_image, output_warning, save_image
from stylebridge.core.profiles import read_profile, srgb_icc, srgb_profile
from testing.colour_set import profiles, read_raw, write_colour_set, write_gamut

H, W = 40, 48


@pytest.fixture(scope="module")
def colour_set(tmp_path_factory) -> dict[str, Path]:
    return {p.name: p for p in write_colour_set(tmp_path_factory.mktemp("colour-set"))}


def pillow_srgb(path: Path) -> np.ndarray:
    """An 8-bit file's RGB in sRGB by Pillow's ImageCms, (H, W, 3) in [0, 1]."""
    with Image.open(path) as img:
        source = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        target = ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc()))
        srgb = ImageCms.profileToProfile(img.convert("RGB"), source, target, outputMode="RGB")
    return np.asarray(srgb) / 255


@pytest.mark.parametrize("name", ["p3-8.png", "adobe-8.tif"])
def test_reading_converts_to_srgb_as_littlecms_does(name, colour_set):
    layer = load_image(colour_set[name])
    assert layer.profile is not None and not layer.profile.is_srgb
    expected = pillow_srgb(colour_set[name])
    got = layer.rgb.transpose(1, 2, 0)
    assert np.abs(got - expected).max() <= 1 / 255 + 1e-6
    with Image.open(colour_set[name]) as img:  # and the conversion did change the numbers
        assert np.abs(np.asarray(img.convert("RGB")) / 255 - expected).max() > 0.05


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_writing_converts_into_the_profile_and_embeds_it(ext, colour_set, tmp_path):
    p3 = load_image(colour_set["p3-8.png"])
    out = tmp_path / f"out{ext}"
    save_image(Layer(p3.rgb, None, False, 8, p3.profile), out)
    with Image.open(out) as img:
        assert img.info["icc_profile"] == p3.profile.icc
    back = pillow_srgb(out)  # Pillow's LittleCMS takes it back to sRGB
    tolerance = 1.5 / 255 if ext == ".png" or ext == ".tif" else 6 / 255  # JPEG, WebP: lossy
    assert np.abs(back - p3.rgb.transpose(1, 2, 0)).mean() <= tolerance


def test_srgb_profiles_cost_no_conversion(colour_set):
    srgb = load_image(colour_set["srgb-8.png"])
    assert srgb.profile.is_srgb
    with Image.open(colour_set["srgb-8.png"]) as img:
        assert np.array_equal(layer_to_array(srgb, np.uint8), np.asarray(img))


def test_gray_profile_applies_to_gray(colour_set):
    layer = load_image(colour_set["gray-16.png"])
    assert layer.grayscale and layer.profile.gray and layer.bit_depth == 16
    # gamma 2.2 against sRGB's curve: mid-tones differ by a few hundredths
    raw = np.asarray(Image.open(colour_set["gray-16.png"]), dtype=np.float64) / 65535
    assert 0.002 < np.abs(layer.rgb[0] - raw).max() < 0.05


def test_profile_names_and_refusals():
    assert read_profile(profiles()["p3"], "a.png", space="RGB").name == "Display P3"
    with pytest.raises(InputError, match=r"^a\.png has a corrupt ICC profile"):
        read_profile(b"\0" * 200, "a.png", space="RGB")
    with pytest.raises(InputError, match="for RGB pixels on a gray image"):
        read_profile(srgb_icc(), "a.png", space="GRAY")


def test_colours_outside_srgb_ride_aside_and_go_back_into_the_profile(tmp_path):
    source = write_gamut(tmp_path, profiles()["adobe"])
    layer = load_image(source)
    assert layer.rgb.min() == 0 and layer.rgb.max() <= 1  # what the engine sees
    assert layer.unclipped().min() < -1  # saturated greens lie far outside sRGB
    raw, _ = read_raw(source)
    # Adobe RGB holds them at any depth: float and 16-bit files alike get them back (within
    # LittleCMS's inverse of a pure gamma curve at black: 0 comes back as 3.2e-4, 2e-8 of light)
    for name in ("out.tif", "out.png"):
        save_image(layer, tmp_path / name)
        assert np.abs(read_raw(tmp_path / name)[0] - raw).max() <= 5e-4
    assert output_warning(layer, tmp_path / "out.tif") is None
    assert "clipped" not in output_warning(layer, tmp_path / "out.png")  # depth only
    # sRGB does not hold them: a 16-bit sRGB file clips them, and says so
    as_srgb = dataclasses.replace(layer, profile=srgb_profile(), bit_depth=16)
    assert "of the samples lie beyond [0, 1] (from -4" in output_warning(as_srgb, "out.png")


GHOSTSCRIPT_CMYK = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_goes_through_its_own_profile(ext, tmp_path):
    if not GHOSTSCRIPT_CMYK.is_file():  # no CMYK profile can be made here; Ghostscript ships one
        pytest.skip(f"no CMYK ICC profile at {GHOSTSCRIPT_CMYK} (Debian: libgs-common)")
    cmyk = np.zeros((H, W, 4), np.uint8)
    cmyk[:, : W // 2] = (255, 0, 0, 0)  # full cyan ink
    path = tmp_path / f"cyan{ext}"
    Image.fromarray(cmyk, "CMYK").save(path, icc_profile=GHOSTSCRIPT_CMYK.read_bytes())
    layer = load_image(path)
    assert layer.profile is None  # sRGB now: an RGB file cannot hold a CMYK profile
    cyan, paper = layer.rgb[:, 0, 0], layer.rgb[:, 0, -1]
    # Pillow's naive conversion says (0, 1, 1); printing ink is a duller, darker cyan
    assert cyan[0] < 0.05 and 0.5 < cyan[1] < 0.85 and cyan[2] > 0.85
    assert np.all(paper > 0.99)
