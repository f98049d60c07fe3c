"""The GIMP plug-in end to end: real GIMP against a real server on loopback, on both hosts
painters run: GIMP 3.0.4 and GIMP 3.2.6.

Every test runs once per GIMP (the module's ``gimp`` fixture): GIMP 3.0 in the Debian 13 root
that scripts/install-gimp.sh builds, GIMP 3.2 in the Debian sid root of scripts/install-sid.sh,
each skipped with the reason when its root is absent, both through scripts/root-run.sh, with a
fresh profile holding the plug-in laid out by plugins/dist.py exactly as the zip installs it
(and, in one test, where `stylebridge install gimp --version 3.x` puts it). Batch scripts call
plug-in-stylebridge through the PDB (batch_case.py beside this file) and dump pixels; the
numbers are checked here. The undo and cancel checks drive GIMP's GUI under an Xvfb of their
own (gui_case.py); the dialog's texts are read from its widgets by harness.watch_labels.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from stylebridge.wire import Client
from stylebridge.wire.estimate_watch import MEASURING
from stylebridge.wire.messages import Status
from testing import colour_set
from testing.hosts.gimp import harness
from testing.servers import RunningServer, clean_env, free_port, own_cache, start_server
from tests.support.launcher import HostLauncher

BATCH = harness.HERE / "batch_case.py"
GUI = harness.HERE / "gui_case.py"
PANEL = harness.HERE / "panel_case.py"
SHOW_DIALOG = harness.HERE / "show_dialog.py"
W, H = 96, 64
FAST = {"size": 64, "steps": 6, "seed": 3}  # a few steps at 64 px: seconds on 2 cores
STARRY = "The Starry Night (van Gogh)"


def named(title: str, amount: float = 0.5) -> str:
    """A result layer's name: the style, the preset (fast here), the style amount."""
    return f"{title} · Fast · style {amount:.1f}"


# ================================================================================ fixtures


@pytest.fixture(scope="module", params=harness.HOSTS, ids=lambda host: f"gimp-{host.version}")
def gimp(request) -> harness.Host:
    """The GIMP this round of the module's tests drives; skipped when its root is absent."""
    reason = harness.missing_reason(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(scope="module")
def work(tmp_path_factory, gimp: harness.Host) -> Path:
    return tmp_path_factory.mktemp(f"gimp{gimp.version}-e2e")


@pytest.fixture(scope="module")
def profile(work: Path) -> Path:
    return harness.install_profile(work)


def server_env(srv: RunningServer | None, profile: Path, **extra: str) -> dict[str, str]:
    endpoint = srv.endpoint if srv else f"tcp://127.0.0.1:{free_port()}"
    token = srv.token if srv else "nobody-listens"
    return {
        "GIMP3_DIRECTORY": str(profile),
        "STYLEBRIDGE_ENDPOINT": endpoint,
        "STYLEBRIDGE_TOKEN": token,
        **extra,
    }


def pattern(width: int, height: int, channels: int, seed: int) -> np.ndarray:
    """Opaque content with structure (gradients and stripes), float32 in 0..1."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    base = [xx / max(1, width - 1), yy / max(1, height - 1), ((xx + yy) % 12) / 11]
    planes = [np.clip(p + rng.normal(0, 0.02, p.shape), 0, 1) for p in base]
    color = planes[:3] if channels == 4 else [0.6 * planes[0] + 0.4 * planes[2]]
    return np.stack([*color, np.ones_like(xx)], -1).astype(np.float32)


def layer_spec(folder: Path, name: str, size: tuple[int, int], offsets: list[int], channels: int):
    pixels = pattern(*size, channels, seed=len(name))
    path = folder / f"input-{name}.raw"
    path.write_bytes(pixels.tobytes())
    spec = {"name": name, "width": size[0], "height": size[1], "offsets": offsets}
    return {**spec, "pixels": str(path)}, pixels


def run_batch(
    work: Path, name: str, cases: list[dict], env: dict[str, str], gimp: harness.Host
) -> dict[str, Any]:
    """All ``cases`` in one gimp-console run of ``gimp``; each case's report and raw dumps."""
    out = work / name
    out.mkdir()
    spec = work / f"{name}.json"
    spec.write_text(json.dumps({"out": str(out), "cases": cases}))
    done = harness.run(
        harness.batch_args(BATCH, host=gimp),
        timeout=240,
        binds=[work],
        env={**env, "STYLEBRIDGE_GIMP_CASES": str(spec)},
        host=gimp,
    )
    assert done.returncode == 0, f"GIMP failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    reports = {}
    for case in cases:
        report_file = out / case["name"] / "report.json"
        assert report_file.is_file(), f"no report for {case['name']}:\n{done.stderr[-3000:]}"
        reports[case["name"]] = Case(out / case["name"], case)
    return reports


class Case:
    """One case's report.json and its raw float32 dumps."""

    def __init__(self, folder: Path, spec: dict) -> None:
        self.folder = folder
        self.spec = spec
        self.report = json.loads((folder / "report.json").read_text())
        self.channels = 2 if spec["base"] == "gray" else 4

    @property
    def layers(self) -> list[dict]:
        return self.report["layers"]

    def layer(self, n: int) -> np.ndarray:
        info = self.layers[n]
        raw = np.fromfile(self.folder / f"layer-{n}.raw", np.float32)
        return raw.reshape(info["height"], info["width"], self.channels)

    def composite(self) -> np.ndarray:
        raw = np.fromfile(self.folder / "composite.raw", np.float32)
        return raw.reshape(self.spec["height"], self.spec["width"], self.channels)

    def selection(self) -> np.ndarray:
        raw = np.fromfile(self.folder / "selection.raw", np.float32)
        return raw.reshape(self.spec["height"], self.spec["width"])


# ============================================================== batch: three kinds of image


@pytest.fixture(scope="module")
def batch(work: Path, profile: Path, server: RunningServer, gimp: harness.Host) -> dict[str, Any]:
    inputs = work / "inputs"
    inputs.mkdir()
    bg, bg_pixels = layer_spec(inputs, "background", (W, H), [0, 0], 4)
    base16, base16_pixels = layer_spec(inputs, "base", (W, H), [0, 0], 4)
    small16, small16_pixels = layer_spec(inputs, "patch", (48, 40), [30, 12], 4)
    gray, gray_pixels = layer_spec(inputs, "gray", (W, H), [0, 0], 2)
    style = inputs / "my_painting.png"
    PILImage.open(harness.REPO / "core" / "assets" / "the_scream.jpg").convert("RGB").resize(
        (200, 160)
    ).save(style)
    builtin_scream = profile / "plug-ins" / "stylebridge" / "styles" / "the_scream.jpg"
    cases = [
        {  # 8-bit perceptual, a feathered selection, the default built-in painting
            "name": "rgb8_feathered",
            "width": W,
            "height": H,
            "base": "rgb",
            "precision": "U8_NON_LINEAR",
            "layers": [bg],
            "selected": [0],
            "select": {"ellipse": [24, 12, 44, 36], "feather": 10},
            "args": FAST,
        },
        {  # 16-bit, two layers at once (one smaller, offset), no selection
            "name": "rgb16_two_layers",
            "width": W,
            "height": H,
            "base": "rgb",
            "precision": "U16_NON_LINEAR",
            "layers": [base16, small16],
            "selected": [0, 1],
            "select": None,
            "args": {**FAST, "builtin-style": "the_scream", "strength": 0.9, "balance": 0.6},
        },
        {  # 32-bit float linear grayscale, a hard selection, two style files blended
            "name": "gray_float_linear",
            "width": W,
            "height": H,
            "base": "gray",
            "precision": "FLOAT_LINEAR",
            "layers": [gray],
            "selected": [0],
            "select": {"ellipse": [8, 8, 40, 40], "feather": 0},
            "args": {**FAST, "style-file": str(style), "style-file-2": str(builtin_scream)},
        },
        {  # with-last-vals before any interactive run stored values: the arguments given
            "name": "with_last_vals",
            "width": W,
            "height": H,
            "base": "rgb",
            "precision": "U8_NON_LINEAR",
            "layers": [bg],
            "selected": [0],
            "select": {"ellipse": [30, 20, 30, 24], "feather": 0},
            "args": {**FAST, "builtin-style": "the_scream"},
            "run_mode": "WITH_LAST_VALS",
        },
    ]
    inputs_by_name = {
        "background": bg_pixels,
        "base": base16_pixels,
        "patch": small16_pixels,
        "gray": gray_pixels,
    }
    started = time.monotonic()
    reports = run_batch(work, "batch", cases, server_env(server, profile), gimp)
    return {"cases": reports, "inputs": inputs_by_name, "seconds": time.monotonic() - started}


def changed(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute colour difference (alpha left out)."""
    return float(np.abs(a[..., :-1] - b[..., :-1]).mean()) if a.size else 0.0


def test_feathered_selection_new_layer_changed_inside_untouched_outside(batch):
    case = batch["cases"]["rgb8_feathered"]
    original = batch["inputs"]["background"]
    assert case.report["status"] == "success", case.report["error"]
    assert [layer["name"] for layer in case.layers] == [named(STARRY), "background"]
    result = case.layers[0]
    assert (result["offsets"], result["width"], result["height"]) == ([0, 0], W, H)
    assert result["position"] == 0 and result["has_alpha"]
    assert result["opacity"] == pytest.approx(100.0)  # strength 1
    assert result["bpp"] == 4 and case.report["precision"] == "u8-non-linear"
    assert case.report["selected"] == [named(STARRY)]  # batch scripts find the result there

    sel = case.selection()
    assert 0.05 < sel.mean() < 0.5 and ((sel > 0.02) & (sel < 0.98)).sum() > 100  # feathered
    top = case.layer(0)
    # result alpha = content alpha (1) x the feathered selection, to 8-bit precision
    np.testing.assert_allclose(top[..., 3], sel, atol=1.5 / 255)
    outside, inside = sel == 0, sel > 0.99
    assert outside.sum() > 1000 and inside.sum() > 300
    composite = case.composite()
    np.testing.assert_allclose(composite[outside], original[outside], atol=0.6 / 255)
    assert changed(composite[inside], original[inside]) > 0.04
    # the source layer itself is untouched everywhere
    np.testing.assert_allclose(case.layer(1), original, atol=0.6 / 255)


def test_sixteen_bit_two_layers_each_get_their_result_above_them(batch):
    case = batch["cases"]["rgb16_two_layers"]
    assert case.report["status"] == "success", case.report["error"]
    scream = named("The Scream (Munch)", 0.6)
    # GIMP keeps layer names unique: the second result (the patch's) gets "#1"
    names = [f"{scream} #1", "patch", scream, "base"]
    assert [layer["name"] for layer in case.layers] == names
    assert case.report["precision"] == "u16-non-linear"
    assert sorted(case.report["selected"]) == sorted([names[0], names[2]])
    for result_at, source_at, source in ((0, 1, "patch"), (2, 3, "base")):
        result, src = case.layers[result_at], case.layers[source_at]
        assert (result["offsets"], result["width"], result["height"]) == (
            src["offsets"],
            src["width"],
            src["height"],
        )
        assert result["bpp"] == 8  # RGBA at 16 bits a channel: the image's own precision
        assert result["opacity"] == pytest.approx(90.0)  # the strength: the layer's opacity
        pixels = case.layer(result_at)
        np.testing.assert_allclose(pixels[..., 3], 1.0, atol=1 / 65535)  # no selection
        assert changed(pixels, batch["inputs"][source]) > 0.04
        # written at 16 bits, not squeezed through 8: most values lie between 8-bit steps
        off_grid = np.abs(pixels[..., :3] * 255 - np.round(pixels[..., :3] * 255)) > 0.02
        assert off_grid.mean() > 0.5


def test_float_linear_grayscale_with_two_style_files(batch):
    case = batch["cases"]["gray_float_linear"]
    original = batch["inputs"]["gray"]
    assert case.report["status"] == "success", case.report["error"]
    assert case.layers[0]["name"] == named("my painting + the scream")
    assert case.report["precision"] == "float-linear"
    assert case.layers[0]["bpp"] == 8  # Y + alpha, 32-bit float each
    sel = case.selection()
    top = case.layer(0)
    np.testing.assert_allclose(top[..., 1], sel, atol=1e-6)  # a hard selection: alpha 0 or 1
    outside, inside = sel == 0, sel == 1
    composite = case.composite()
    np.testing.assert_allclose(composite[outside], original[outside], atol=1e-5)
    assert changed(composite[inside], original[inside]) > 0.03


def test_with_last_vals_without_stored_values_takes_the_arguments(batch):
    # GIMP 3.0 stores "last values" only after an interactive run (see the GUI test below)
    first = batch["cases"]["with_last_vals"].report
    assert first["status"] == "success", first["error"]
    assert first["layers"][0]["name"] == named("The Scream (Munch)")


def test_batch_stays_fast(batch):
    # four GIMP calls and their server jobs in one gimp-console run
    assert batch["seconds"] < 120


# ======================================= colour: every precision, linear, wide gamut (issue 18)

# name: (GIMP precision, profile of testing/colour_set.py or None for GIMP's built-in sRGB)
COLOUR_CASES = {
    "u8": ("U8_NON_LINEAR", None),
    "u16": ("U16_NON_LINEAR", None),
    "u16_linear": ("U16_LINEAR", None),
    "half_linear": ("HALF_LINEAR", None),
    "float": ("FLOAT_NON_LINEAR", None),
    "float_linear": ("FLOAT_LINEAR", None),
    "p3_u8": ("U8_NON_LINEAR", "p3"),
    "p3_u16": ("U16_NON_LINEAR", "p3"),
    "adobe_float_linear": ("FLOAT_LINEAR", "adobe"),
}
PROFILE_LABELS = {"p3": "Display P3", "adobe": "Adobe RGB"}
# Float images holding values beyond 0..1, written as babl's float sRGB (R'G'B'A float) into
# 8x8 blocks along the top row: HDR highlights (1.8248 is linear 4.0; 3.2944 linear 16.0) and
# colours outside sRGB's gamut (negative components: in Adobe RGB, inside its gamut).
HDR_CASES = {
    "hdr_float": ("FLOAT_NON_LINEAR", None),
    "hdr_float_linear": ("FLOAT_LINEAR", None),
    "hdr_half_linear": ("HALF_LINEAR", None),
    "wide_adobe_float_linear": ("FLOAT_LINEAR", "adobe"),
}
HDR_SPECIALS = {
    "hdr": [(1.8248, 1.8248, 1.8248), (3.2944, 1.4, 0.9), (1.2, 0.05, 0.6)],
    "wide": [(-0.3, 0.9, 0.2), (-0.4, 0.8, 0.6), (-0.35, 0.85, 0.75)],  # greens and cyans
}
BLOCK = 8


def hdr_pattern(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The colour pattern with ``kind``'s special colours in blocks; and where they are."""
    pixels = pattern(W, H, 4, seed=5)
    where = np.zeros((H, W), bool)
    for k, rgb in enumerate(HDR_SPECIALS[kind]):
        pixels[:BLOCK, k * BLOCK : (k + 1) * BLOCK, :3] = rgb
        where[:BLOCK, k * BLOCK : (k + 1) * BLOCK] = True
    return pixels, where


@pytest.fixture(scope="module")
def colour(work: Path, profile: Path, server: RunningServer, gimp: harness.Host) -> dict:
    """Each COLOUR_CASES image, its sRGB pattern written in through babl, sent at balance 0
    (the engine hands the content back untouched) and strength 1 (an opaque result layer)."""
    inputs = work / "colour-inputs"
    inputs.mkdir()
    spec, pixels = layer_spec(inputs, "photo", (W, H), [0, 0], 4)
    iccs = colour_set.profiles()
    args = {**FAST, "builtin-style": "the_scream", "balance": 0.0, "strength": 1.0}

    def case(name: str, precision: str, icc: str | None, layer: dict) -> dict:
        spec = {"name": name, "width": W, "height": H, "base": "rgb", "precision": precision}
        if icc:
            path = inputs / f"{icc}.icc"
            path.write_bytes(iccs[icc])
            spec["profile"] = str(path)
        return {**spec, "layers": [layer], "selected": [0], "select": None, "args": args,
                "colour": True}  # fmt: skip

    cases = [case(name, *what, spec) for name, what in COLOUR_CASES.items()]
    for name, (precision, icc) in HDR_CASES.items():
        kind = "wide" if icc else "hdr"
        path = inputs / f"input-{kind}.raw"
        path.write_bytes(hdr_pattern(kind)[0].tobytes())
        cases.append(case(name, precision, icc, {**spec, "name": kind, "pixels": str(path)}))
    return {"cases": run_batch(work, "colour", cases, server_env(server, profile), gimp),
            "pattern": pixels}  # fmt: skip


def delta_e2000(case: Case, a: int, b: int) -> np.ndarray:
    """CIEDE2000 between layers ``a`` and ``b``, from GIMP's own Lab (babl, colour-managed)."""
    lab = [np.fromfile(case.folder / f"layer-{n}.lab", np.float32).reshape(H, W, 4) for n in (a, b)]
    return colour_set.colour.delta_E(lab[0][..., :3], lab[1][..., :3], method="CIE 2000")


def own_values(case: Case, n: int, precision: str) -> np.ndarray:
    """Layer ``n`` as stored (its precision, in its profile), scaled to 0..1."""
    dtype = {"U8": np.uint8, "U16": np.uint16, "HALF": np.float16, "FLOAT": np.float32}
    raw = np.fromfile(case.folder / f"layer-{n}.own", dtype[precision.split("_")[0]])
    scale = np.iinfo(raw.dtype).max if raw.dtype.kind == "u" else 1
    return raw.astype(np.float64) / scale


@pytest.mark.parametrize("name", COLOUR_CASES)
def test_colour_round_trip_at_balance_0_returns_the_layer_within_one_8_bit_step(colour, name):
    case = colour["cases"][name]
    assert case.report["status"] == "success", case.report["error"]
    precision, icc = COLOUR_CASES[name]
    assert case.report["precision"] == precision.lower().replace("_", "-")
    assert PROFILE_LABELS.get(icc, "sRGB") in case.report["profile"]
    result, source = case.layers
    assert result["bpp"] == source["bpp"]  # the result layer keeps the image's precision
    # the way out: what the plug-in sends is babl's sRGB (perceptual) view of the layer,
    # whatever its precision and profile (GIMP's own conversion, not a reinterpretation)
    sent = np.fromfile(case.folder / "engine-0.raw", np.float32).reshape(H, W, 4)
    np.testing.assert_allclose(sent, case.layer(1), atol=1e-6)
    # ... and differs from the layer's stored values where the profile or the curve differ
    stored = own_values(case, 1, precision).reshape(sent.shape)
    converted = icc is not None or (precision.endswith("_LINEAR") and "NON_" not in precision)
    assert (np.abs(sent - stored).max() > 0.02) == converted
    # the way back: the result layer against the source layer, in the image's own encoding,
    # and colour-managed (CIEDE2000 from babl's Lab)
    error = float(np.abs(own_values(case, 0, precision) - own_values(case, 1, precision)).max())
    de = delta_e2000(case, 0, 1)
    print(f"{name}: max {error * 255:.4f}/255 as stored, CIEDE2000 mean {de.mean():.6f} "
          f"max {de.max():.6f}")  # fmt: skip
    assert error * 255 <= 1 + 1e-9  # one 8-bit step (p3_u8 came back one code off while the
    # server clipped P3 codes that land a hair outside sRGB's [0, 1]; now it keeps them: 0)
    assert de.mean() < 0.01 and de.max() < 0.5


def test_readme_batch_example_stylises_a_folder(
    work: Path, profile: Path, server: RunningServer, gimp: harness.Host
):
    photos = work / "photos"
    photos.mkdir()
    assets = harness.REPO / "core" / "assets"
    for name, size in (("chelsea", (80, 60)), ("astronaut", (64, 64))):
        PILImage.open(assets / f"{name}.jpg").convert("RGB").resize(size).save(
            photos / f"{name}.png"
        )
    script = harness.HERE / "stylise_folder.py"
    env = server_env(server, profile, STYLE_FOLDER=str(photos), STYLE_SIZE="64", STYLE_STEPS="8")
    code = f"exec(open({str(script)!r}).read())"
    done = harness.run(
        harness.console_args(code, host=gimp), timeout=240, binds=[work], env=env, host=gimp
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("chelsea", "astronaut"):
        original = np.asarray(PILImage.open(photos / f"{name}.png"), np.float32)
        styled_path = photos / f"{name}-styled.png"
        assert styled_path.is_file(), done.stdout + done.stderr[-3000:]
        styled = np.asarray(PILImage.open(styled_path).convert("RGB"), np.float32)
        assert styled.shape == original.shape
        assert np.abs(styled - original).mean() > 10  # of 255: clearly repainted


SCRIPT_FU = """
(let* ((image (car (gimp-image-new 64 48 RGB)))
       (layer (car (gimp-layer-new image "photo" 64 48 RGB-IMAGE 100 LAYER-MODE-NORMAL))))
  (gimp-image-insert-layer image layer 0 0)
  (gimp-drawable-fill layer FILL-WHITE)
  (plug-in-stylebridge #:run-mode RUN-NONINTERACTIVE #:image image #:drawables (vector layer)
                       #:builtin-style "the_scream" #:size 64 #:steps 3)
  (gimp-message (car (gimp-item-get-name (vector-ref (car (gimp-image-get-layers image)) 0)))))
"""


def test_script_fu_calls_it_with_named_arguments(
    work: Path, profile: Path, server: RunningServer, gimp: harness.Host
):
    done = harness.run(
        harness.console_args(SCRIPT_FU, "plug-in-script-fu-eval", host=gimp),
        timeout=120,
        binds=[work],
        env=server_env(server, profile),
        host=gimp,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the new top layer's name, as Script-Fu's gimp-message printed it
    assert "script-fu-Warning: " + named("The Scream (Munch)") in done.stderr


# ===================================== `stylebridge install gimp`: GIMP's own plug-ins folder


def small_case(name: str, layer: dict, args: dict[str, Any]) -> dict:
    """A batch case: one 64x48 RGB 8-bit layer (``layer_spec``), selected, no selection."""
    return {
        "name": name,
        "width": 64,
        "height": 48,
        "base": "rgb",
        "precision": "U8_NON_LINEAR",
        "layers": [layer],
        "selected": [0],
        "select": None,
        "args": args,
    }


def stylebridge_command() -> list[str]:
    """This venv's ``stylebridge`` command (its console script, else the module)."""
    script = Path(sys.executable).with_name("stylebridge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stylebridge.server.cli"]


def test_stylebridge_install_puts_it_where_this_gimp_finds_and_runs_it(
    work: Path, server: RunningServer, gimp: harness.Host
):
    home = work / "installer-home"
    plug_ins = gimp.plug_ins(home)  # ~/.config/GIMP/<version>/plug-ins
    command = [*stylebridge_command(), "install", "gimp", "--dest", str(plug_ins)]
    done = subprocess.run(
        [*command, "--version", gimp.version],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_env(HOME=str(home)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = plug_ins / "stylebridge"
    assert (folder / "stylebridge.py").stat().st_mode & 0o111  # GIMP runs only executables
    assert json.loads((folder / "install.json").read_text())["files"] == ["stylebridge"]

    inputs = work / "installer-inputs"
    inputs.mkdir()
    bg, original = layer_spec(inputs, "background", (64, 48), [0, 0], 4)
    case = small_case("installed", bg, {**FAST, "builtin-style": "shipwreck", "strength": 0.6})
    # no GIMP3_DIRECTORY: GIMP looks in its own user folder under HOME, as on a painter's machine
    env = {"HOME": str(home), "STYLEBRIDGE_ENDPOINT": server.endpoint}
    env["STYLEBRIDGE_TOKEN"] = server.token
    result = run_batch(work, "installed", [case], env, gimp)["installed"]
    assert result.report["status"] == "success", result.report["error"]  # registered, ran
    shipwreck = named("The Shipwreck (Turner)")
    assert [layer["name"] for layer in result.layers] == [shipwreck, "background"]
    assert result.layers[0]["opacity"] == pytest.approx(60.0)  # strength 0.6
    assert changed(result.layer(0), original) > 0.04  # really repainted, not a copy
    np.testing.assert_allclose(result.layer(1), original, atol=0.6 / 255)  # source untouched


MENUS = """
import json, sys
sys.path.insert(0, PLUGIN)
import stylebridge_gimp as sg
from gi.repository import Gimp
pdb = Gimp.get_pdb()
menus = {n: pdb.lookup_procedure(n).get_menu_paths() for n in [sg.PROCEDURE, *sg.RETRIES]}
print("MENUS " + json.dumps({"menus": menus, "path": sg.MENU_PATH}))
"""


def test_every_procedure_is_in_the_filters_menu(work: Path, profile: Path, gimp: harness.Host):
    """A painter finds Style Transfer, More Style and Less Style under Filters > Artistic."""
    plugin = profile / "plug-ins" / "stylebridge"
    code = f"PLUGIN = {str(plugin)!r}\n{MENUS}"
    env = {"GIMP3_DIRECTORY": str(profile)}
    done = harness.run(
        harness.console_args(code, host=gimp), timeout=120, binds=[work], env=env, host=gimp
    )
    said = [line for line in done.stdout.splitlines() if line.startswith("MENUS ")]
    assert said, done.stdout + done.stderr
    shown = json.loads(said[0].removeprefix("MENUS "))
    assert len(shown["menus"]) == 3
    assert all(paths == [shown["path"]] for paths in shown["menus"].values()), shown


# ============================== Start: the dialog's server panel, and the run's own start path


@pytest.fixture
def launcher(work: Path, gimp: harness.Host):
    folder = work / f"launch-{len(list(work.glob('launch-*')))}"
    folder.mkdir()
    (folder / "runtime").mkdir(mode=0o700)
    launcher = HostLauncher(folder / "runtime", folder)
    yield launcher
    launcher.close()


def test_the_dialogs_server_panel_starts_and_stops_a_server_in_gimps_gtk(
    work: Path, profile: Path, gimp: harness.Host, launcher: HostLauncher
):
    reason = harness.xvfb_missing_reason()
    if reason:
        pytest.skip(reason)
    out = launcher.shim.parent
    env = {
        "SB_PANEL_PLUGIN": str(profile / "plug-ins" / "stylebridge"),
        "SB_PANEL_COMMAND": f"{launcher.shim} serve",
        "SB_PANEL_OUT": str(out),
        "STYLEBRIDGE_RUNTIME_DIR": str(launcher.runtime),
    }
    with harness.xvfb() as display:
        done = harness.run(
            ["python3", str(PANEL)], timeout=240, binds=[work], env=env, display=display,
            host=gimp,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads((out / "panel.json").read_text())
    down, starting, ready, stopped = (shown[k] for k in ("down", "starting", "ready", "stopped"))
    # one status line that says what to press; the connection's details stay folded away
    assert down["title"] == "Server: not running. OK starts it, or press Start."
    assert not down["expanded"] and down["error"] == "" and down["start"] and not down["stop"]
    assert down["log"] == str(launcher.runtime / "server.log")
    assert starting["title"].startswith("Starting the server (first time: about")
    assert not starting["start"]
    assert shown["came_up"] and ready["title"].startswith("Server: ready on cpu"), ready
    assert ready["stop"] and not ready["start"] and ready["error"] == ""
    assert launcher.asked == ["serve"]  # the panel ran the command it showed
    assert stopped["title"] == "Server: stopped." and stopped["start"]
    assert launcher.servers[0].proc.wait(30) == 0  # the real server exited: Stop reached it


def test_a_run_with_no_server_starts_the_recorded_command_then_applies(
    work: Path, gimp: harness.Host, launcher: HostLauncher
):
    folder = launcher.shim.parent
    profile = harness.install_profile(folder)
    # what `stylebridge install gimp` records, here the shim (the root cannot run the venv)
    record = profile / "plug-ins" / "stylebridge" / "install.json"
    record.write_text(json.dumps({"server_command": [str(launcher.shim), "serve"]}))
    bg, original = layer_spec(folder, "background", (64, 48), [0, 0], 4)
    case = small_case("started", bg, {**FAST, "start-server": True})
    # no endpoint, no server: the plug-in starts this machine's and waits for it
    env = {"GIMP3_DIRECTORY": str(profile), "STYLEBRIDGE_RUNTIME_DIR": str(launcher.runtime)}
    result = run_batch(work, f"started-{gimp.version}", [case], env, gimp)["started"]
    assert result.report["status"] == "success", result.report["error"]
    assert launcher.asked == ["serve"]  # started through the recorded command
    assert [layer["name"] for layer in result.layers] == [named(STARRY), "background"]
    assert changed(result.layer(0), original) > 0.04


def test_the_style_from_an_open_image(work: Path, profile: Path, server, gimp: harness.Host):
    """Issue 28: the painter's reference, an image open in GIMP, is the style."""
    folder = work / "open-image-inputs"
    folder.mkdir()
    bg, original = layer_spec(folder, "background", (64, 48), [0, 0], 4)
    reference = folder / "my reference.png"
    rgb = (255 * pattern(40, 30, 4, seed=7)[..., :3]).astype(np.uint8)
    PILImage.fromarray(rgb).save(reference)
    case = small_case("open_image", bg, {**FAST, "style-image": str(reference)})
    result = run_batch(work, "open-image", [case], server_env(server, profile), gimp)
    report = result["open_image"].report
    assert report["status"] == "success", report["error"]
    names = [layer["name"] for layer in report["layers"]]
    # the image's file gives its name; GIMP 3.0 leaves an image a script loaded without one
    title = "[Untitled]" if gimp.version == "3.0" else "my reference"
    assert names == [named(title), "background"]
    assert changed(result["open_image"].layer(0), original) > 0.04


def test_more_style_runs_the_job_again_and_hides_the_first_result(
    work: Path, profile: Path, server, gimp: harness.Host
):
    """Issue 28: More Style on a result layer: its job again with the style amount 0.2
    higher, the new layer above it, the first kept, hidden, to compare."""
    folder = work / "more-style-inputs"
    folder.mkdir()
    bg, _ = layer_spec(folder, "background", (64, 48), [0, 0], 4)
    case = small_case("more", bg, {**FAST, "builtin-style": "the_scream"})
    case["then"] = "plug-in-stylebridge-more-style"
    report = run_batch(work, "more-style", [case], server_env(server, profile), gimp)["more"]
    report = report.report
    assert report["status"] == "success", report["error"]
    scream = "The Scream (Munch)"
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert list(layers) == [named(scream, 0.7), named(scream), "background"]
    assert layers[named(scream, 0.7)]["visible"] and not layers[named(scream)]["visible"]


def test_the_dialog_shows_the_servers_time_estimate_for_the_layer(
    work: Path, profile: Path, gimp: harness.Host
):
    """Issue 28: the dialog, opened on a layer, says how long Apply would take. A fresh
    server knows no rate: the first ask starts its probe job, the line says it is measuring,
    then gives the probe's estimate."""
    reason = harness.xvfb_missing_reason()
    if reason:
        pytest.skip(reason)
    folder = work / "estimate"
    folder.mkdir()
    image = folder / "painting.png"
    PILImage.fromarray((255 * pattern(160, 120, 4, seed=5)[..., :3]).astype(np.uint8)).save(image)
    server = start_server(folder / "runtime", env=own_cache(folder / "cache"))  # no rates yet
    env = server_env(
        server,
        profile,
        STYLEBRIDGE_GIMP_IMAGE=str(image),
        STYLEBRIDGE_GIMP_DIALOG_OUT=str(folder),
        **harness.label_env(folder),
    )
    estimate = re.compile(r"About \d+ (s|min|h)\b.* for this layer\b.*")
    try:
        with harness.xvfb() as display:
            proc = harness.start(
                harness.batch_args(SHOW_DIALOG, gui=True, host=gimp),
                folder / "gimp.log",
                binds=[work],
                env=env,
                display=display,
                host=gimp,
            )
            try:
                shown = harness.watch_labels(folder, estimate.fullmatch, 120, proc)
            finally:
                harness.stop(proc)
    finally:
        server.stop()
    log = (folder / "gimp.log").read_text(errors="replace")
    said = [text for text in shown if text == MEASURING or estimate.fullmatch(text)]
    assert said and estimate.fullmatch(said[-1]), f"the dialog showed {shown}; GIMP: {log}"
    assert said[0] == MEASURING  # before the probe ran


# ======================================================== errors: the image stays untouched


@pytest.fixture(scope="module")
def failures(work: Path, profile: Path, gimp: harness.Host) -> dict[str, Any]:
    inputs = work / "failure-inputs"
    inputs.mkdir()
    bg, _ = layer_spec(inputs, "background", (W, H), [0, 0], 4)

    def case(name: str, **args: Any) -> dict:
        return {
            "name": name,
            "width": W,
            "height": H,
            "base": "rgb",
            "precision": "U8_NON_LINEAR",
            "layers": [bg],
            "selected": [0],
            "select": None,
            "args": args,
        }

    cases = [
        case("no_server", **FAST),
        case("missing_style_file", **{"style-file": str(inputs / "nowhere.png")}),
        case("missing_more_styles", **{"style-file-2": str(inputs / "elsewhere.jpg")}),
        case("bad_size", size=20),
    ]
    return run_batch(work, "failures", cases, server_env(None, profile), gimp)


def test_no_server_is_a_clear_error_and_the_image_is_untouched(failures):
    report = failures["no_server"].report
    assert report["status"] == "execution-error"
    # in a painter's words: what to check, where (issue 28)
    assert report["error"].startswith("No answer from the server at tcp://127.0.0.1:")
    assert "under Connection..." in report["error"]
    assert "not changed" in report["error"] and "Traceback" not in report["error"]
    assert [layer["name"] for layer in report["layers"]] == ["background"]
    assert report["dirty"] is False  # not even an empty undo step


def test_bad_arguments_are_calling_errors_naming_the_problem(failures):
    # a style file that does not exist is refused by GIMP itself (an "open" file argument)
    style_file = failures["missing_style_file"].report
    assert style_file["status"] == "calling-error"
    assert "style-file" in style_file["error"]
    # the other checks are the plug-in's
    more = failures["missing_more_styles"].report
    assert more["status"] == "calling-error"
    assert "style-file-2" in more["error"]  # a file argument too: GIMP refuses it
    bad_size = failures["bad_size"].report
    assert bad_size["status"] == "calling-error"
    assert "Detail (px)" in bad_size["error"] and "20" in bad_size["error"]
    for report in (style_file, more, bad_size):
        assert [layer["name"] for layer in report["layers"]] == ["background"]
        assert report["dirty"] is False


# ==================================================== GUI: one undo step, cancel from GIMP

# Where GIMP 3.0.4's single-window layout puts things in its 800x600 first-run window.
CANVAS_POINT = (380, 400)
CANCEL_BUTTON = (518, 582)


def server_status(srv: RunningServer) -> Status:
    with Client(srv.endpoint, srv.token, timeout=10) as client:  # the plug-ins' stdlib client
        return client.status()


def wait_status(srv: RunningServer, predicate, timeout: float) -> Status:
    deadline = time.monotonic() + timeout
    status = server_status(srv)
    while not predicate(status) and time.monotonic() < deadline:
        time.sleep(0.2)
        status = server_status(srv)
    return status


def click_ok(display: str, proc, host: harness.Host) -> tuple[int, int, int, int] | None:
    """Wait for the plug-in's dialog and click its OK button; the dialog's geometry."""
    deadline = time.monotonic() + 60
    geometry = None
    while geometry is None and time.monotonic() < deadline and proc.poll() is None:
        found = harness.find_window(display, "Style Transfer", host)
        geometry = found[1] if found else None
        time.sleep(0.3)
    if geometry is not None:
        time.sleep(1.5)  # first paint
        x, y, w, h = geometry
        harness.xdotool(
            display, "mousemove", str(x + w - 70), str(y + h - 41), "click", "1", host=host
        )
    return geometry


@pytest.fixture(scope="module")
def gui(work: Path, profile: Path, server: RunningServer, gimp: harness.Host) -> dict[str, Any]:
    reason = harness.xvfb_missing_reason()
    if reason:
        pytest.skip(reason)
    out = work / "gui"
    out.mkdir()
    results: dict[str, Any] = {}
    env = server_env(server, profile, STYLEBRIDGE_GIMP_GUI=str(out))
    with harness.xvfb() as display:
        proc = harness.start(
            harness.batch_args(GUI, gui=True, host=gimp),
            out / "gimp.log",
            binds=[work],
            env=env,
            display=display,
            host=gimp,
        )
        try:
            assert harness.wait_for(out / "a-ran.json", 120, proc), (out / "gimp.log").read_text()
            main_window = harness.find_window(display, "– GIMP", gimp)
            results["geometry"] = main_window[1] if main_window else None
            results["a_ran"] = json.loads((out / "a-ran.json").read_text())
            harness.xdotool(display, "mousemove", *map(str, CANVAS_POINT), host=gimp)
            time.sleep(0.3)
            harness.xdotool(display, "key", "ctrl+z", host=gimp)
            time.sleep(1.0)
            (out / "a-undone").write_text("")
            assert harness.wait_for(out / "a-after.json", 30, proc)
            results["a_after"] = json.loads((out / "a-after.json").read_text())

            assert harness.wait_for(out / "b-started", 30, proc)
            running = wait_status(server, lambda s: s.running is not None, 30)
            results["b_running"] = running.running
            time.sleep(1.0)  # a few optimisation steps: the progress bar is up
            harness.xdotool(display, "mousemove", *map(str, CANCEL_BUTTON), "click", "1", host=gimp)
            clicked = time.monotonic()
            results["b_after_status"] = wait_status(server, lambda s: s.running is None, 15)
            results["cancel_seconds"] = time.monotonic() - clicked
            assert harness.wait_for(out / "b-after.json", 30, proc)
            results["b_after"] = json.loads((out / "b-after.json").read_text())

            results["dialog"] = click_ok(display, proc, gimp)
            assert harness.wait_for(out / "d-after.json", 60, proc)
            results["c_after"] = json.loads((out / "c-after.json").read_text())
            results["d_after"] = json.loads((out / "d-after.json").read_text())
            proc.wait(60)
        finally:
            harness.stop(proc)
    return results


def test_gui_window_layout_is_the_one_the_clicks_assume(gui):
    assert gui["geometry"] == (0, 0, 800, 600)


def test_one_undo_removes_every_result_layer(gui):
    ran = gui["a_ran"]
    assert ran["status"] == "success", ran["error"]
    assert ran["layers"] == [f"{named(STARRY)} #1", "layer 1", named(STARRY), "layer 0"]
    # a single Ctrl+Z in GIMP's window takes out both result layers: one undo group
    assert gui["a_after"]["layers"] == ["layer 1", "layer 0"]


def test_cancel_in_gimp_stops_the_server_job_and_leaves_the_image(gui):
    assert gui["b_running"] is not None  # the job was running on the server
    assert gui["b_after_status"].running is None and gui["b_after_status"].queue == []
    assert gui["cancel_seconds"] < 10
    after = gui["b_after"]
    assert after["status"] == "cancel"
    assert after["layers"] == ["layer 0"]


def test_interactive_run_shows_the_dialog_and_with_last_vals_reuses_its_values(gui):
    assert gui["dialog"] is not None, "the dialog did not show"
    after_ok = gui["c_after"]
    assert after_ok["status"] == "success", after_ok["error"]
    assert after_ok["layers"] == [named("The Shipwreck (Turner)"), "layer 0"]
    # the with-last-vals call named the Scream at the preset's size; GIMP handed the plug-in
    # the values of the interactive run instead
    reused = gui["d_after"]
    assert reused["status"] == "success", reused["error"]
    assert reused["layers"] == [named("The Shipwreck (Turner)"), "layer 0"]


@pytest.mark.parametrize("name", HDR_CASES)
def test_values_beyond_0_1_survive_a_round_trip_at_balance_0(colour, name):
    # babl's float conversions are unbounded and the server keeps what lies beyond 0..1
    case = colour["cases"][name]
    assert case.report["status"] == "success", case.report["error"]
    precision, icc = HDR_CASES[name]
    result, source = case.layers
    assert result["bpp"] == source["bpp"]
    where = hdr_pattern("wide" if icc else "hdr")[1]
    sent = np.fromfile(case.folder / "engine-0.raw", np.float32).reshape(H, W, 4)
    special = sent[where][:, :3]
    assert special.max() > 1.5 if icc is None else special.min() < -0.05  # beyond 0..1
    stored_source, stored_result = (own_values(case, n, precision).reshape(H, W, 4) for n in (1, 0))
    if icc:  # inside Adobe RGB's gamut: 0..1 there, though outside sRGB's
        assert stored_source[where].min() >= 0 and stored_source[where].max() <= 1
    else:
        assert stored_source[where].max() > 3  # sRGB 3.29 as stored, or linear 16.0
    error = np.abs(stored_result - stored_source)
    relative = float((error / np.maximum(1, np.abs(stored_source))).max())
    de = delta_e2000(case, 0, 1)
    largest = stored_source[where][:, :3].max()
    print(
        f"{name}: sent {special.min():.4f}..{special.max():.4f}, special pixels max abs error "
        f"{error[where].max():.2e} (of {largest:g}), all pixels max relative "
        f"{relative:.2e}, CIEDE2000 mean {de.mean():.6f} max {de.max():.6f}"
    )
    # babl's float sRGB <-> linear is within 6.4e-5 of 16.0 (its pow approximation)
    assert relative <= (1e-3 if precision.startswith("HALF") else 1e-4)
    if icc:
        assert de.mean() < 0.01 and de.max() < 0.1
