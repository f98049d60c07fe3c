"""ICC profiles: a tagged file's colours are converted to sRGB on read and back on write.

The engine (VGG16, trained on sRGB photographs) works in sRGB, so an embedded profile is applied
when a file is read; the profile travels with the ``Layer`` and the result is converted back
into it when written. The conversion is LittleCMS on float32 through ``imagecodecs``: Pillow's
``ImageCms`` is the same LittleCMS but only on 8-bit Pillow modes for RGB, which would quantise a
16-bit or float file to 8 bits (float keeps an Adobe RGB -> sRGB -> Adobe RGB round trip within
0.6/65535; figures in docs/benchmarks.md). Pillow's ``ImageCms`` reads and checks the profile.
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass

import imagecodecs
import numpy as np
from PIL import Image, ImageCms

from .errors import InputError

# Relative colorimetric: the one intent every profile must support; for matrix/TRC profiles
# it is the only one, and both directions of a round trip then use the same transform.
_INTENT = imagecodecs.CMS.INTENT.RELATIVE_COLORIMETRIC
# A grid of colours that tells whether a profile is sRGB in all but name (then nothing is
# converted: a tagged sRGB JPEG, the common case, costs nothing).
_PROBE = np.stack(np.meshgrid(*[np.linspace(0, 1, 9, dtype=np.float32)] * 3), axis=-1)
_SAME = 1e-5
_SRGB_STAMP = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)  # dateTimeNumber: y, m, d, h, min, s
_IMAGE_KINDS = {"RGB": "an RGB", "GRAY": "a gray", "CMYK": "a CMYK"}


@dataclass(frozen=True, eq=False)
class Profile:
    """An embedded ICC profile: its bytes (written back unchanged), its name, and the pixels it
    describes: ``RGB``, ``GRAY`` or ``CMYK``."""

    icc: bytes
    name: str
    space: str

    @property
    def gray(self) -> bool:
        return self.space == "GRAY"

    @functools.cached_property
    def is_srgb(self) -> bool:
        """Converting to sRGB would change nothing (within float32 noise)."""
        if self.space != "RGB":
            return False
        return bool(np.abs(_transform(_PROBE, self.icc, srgb_icc(), "rgb") - _PROBE).max() < _SAME)


@functools.cache
def srgb_icc() -> bytes:
    """LittleCMS's sRGB profile, embedded by ``--srgb``. LittleCMS stamps a profile with the
    time it was made (header bytes 24-36; no profile ID is computed over them): a fixed stamp
    keeps the files written reproducible."""
    icc = imagecodecs.cms_profile("srgb")
    return icc[:24] + _SRGB_STAMP + icc[36:]


def srgb_profile() -> Profile:
    return Profile(srgb_icc(), "sRGB", "RGB")


def read_profile(icc: bytes, name: str, *, space: str) -> Profile:
    """The profile embedded in file ``name`` whose pixels are ``space`` (RGB, GRAY, CMYK);
    ``InputError`` for a profile LittleCMS cannot read or one for other pixels (a CMYK profile
    on an RGB image)."""
    try:
        parsed = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
        imagecodecs.cms_profile_validate(icc)
    except Exception:  # PyCMSError, OSError, CmsError: all mean LittleCMS cannot read it
        raise InputError(f"{name} has a corrupt ICC profile (LittleCMS cannot read it)") from None
    described = parsed.xcolor_space.strip()
    if described != space:
        raise InputError(
            f"{name} has an ICC profile for {described} pixels on {_IMAGE_KINDS[space]} image; "
            f"it needs a profile for {space} pixels, or none"
        )
    label = (parsed.profile_description or parsed.model or "").strip()
    return Profile(bytes(icc), label or "unnamed", space)


def cmyk_to_srgb(img: Image.Image, profile: Profile) -> Image.Image:
    """A CMYK Pillow image (always 8-bit) through its CMYK profile to an sRGB "RGB" image:
    Pillow's LittleCMS at 8 bits loses nothing an 8-bit source had."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile.icc))
    target = ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc()))
    intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
    return ImageCms.profileToProfile(img, source, target, intent, outputMode="RGB")


def to_srgb(colour: np.ndarray, profile: Profile) -> np.ndarray:
    """(H, W, C) float32 colour in ``profile`` (C = 1 gray, 3 RGB) -> sRGB, same shape.

    Not clamped: colours outside sRGB's gamut come out below 0 or above 1."""
    if profile.is_srgb:
        return colour
    if profile.gray:  # gray in, neutral sRGB out: the three channels agree; keep their mean
        rgb = _transform(colour[:, :, 0], profile.icc, srgb_icc(), "gray", "rgb")
        return rgb.mean(axis=2, keepdims=True, dtype=np.float32)
    return _transform(colour, profile.icc, srgb_icc(), "rgb")


def from_srgb(colour: np.ndarray, profile: Profile) -> np.ndarray:
    """The inverse of ``to_srgb``: (H, W, C) float32 sRGB -> ``profile``, same shape."""
    if profile.is_srgb:
        return colour
    if profile.gray:
        rgb = np.repeat(colour, 3, axis=2)
        return _transform(rgb, srgb_icc(), profile.icc, "rgb", "gray")[:, :, None]
    return _transform(colour, srgb_icc(), profile.icc, "rgb")


def _transform(
    values: np.ndarray, source: bytes, target: bytes, space: str, out_space: str | None = None
) -> np.ndarray:
    return imagecodecs.cms_transform(
        np.ascontiguousarray(values, dtype=np.float32),
        source,
        target,
        colorspace=space,
        outcolorspace=out_space or space,
        outdtype=np.float32,
        intent=_INTENT,
    )
