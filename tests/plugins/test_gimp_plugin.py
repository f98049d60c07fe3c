"""The GIMP plug-in without GIMP: its logic module (stylebridge_gimp.py), and its GIMP edge
(stylebridge.py) against the fake Gimp/Gegl API of tests/fakes/gimp.py with a scripted client
(the real thing runs in tests/e2e/gimp).

Both are loaded from a folder laid out by plugins/dist.py, as users install it, so the vendored
bridge, its vocabulary and the built-in styles are where the plug-in looks for them
(tests/plugins/conftest.py).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from testing import REPO
from testing.plugins import dist
from testing.servers import free_port, start_server
from tests.fakes import gimp as fake
from tests.fakes.client import THREE_STEPS_THEN_RESULT, ScriptedClient

PLUGIN = REPO / "plugins" / "gimp" / "stylebridge"
STARRY = "The Starry Night (van Gogh)"
STARRY_FAST = f"{STARRY} · Fast · style 0.5"  # a result layer: the style, preset, style amount


def args_of(sg, vocabulary, preset="fast", **values):
    """The procedure's arguments as the PDB hands them over: every dialog control at the value
    a fresh GIMP config holds (0 where 0 means the preset's), ``values`` over them."""
    defaults = {c.name: c.dialog_default for c in vocabulary.dialog_controls()}
    return sg.ProcedureArgs(preset, {**defaults, **values})


# ================================================================================= styles


def test_builtin_styles_come_from_the_installed_index(sg, gimp_wire, installed):
    styles = gimp_wire.catalogue.builtin_styles(str(installed / "styles"))
    assert sg.DEFAULT_BUILTIN in styles
    assert styles["starry_night"].title == STARRY
    assert set(styles) == {Path(f).stem for f in dist().STYLE_FILES.values()}
    assert all(os.path.isfile(style.path) for style in styles.values())


def test_builtin_styles_of_a_folder_without_index_is_empty(gimp_wire, tmp_path):
    assert gimp_wire.catalogue.builtin_styles(str(tmp_path)) == {}


def slots(*files):
    """The dialog's style slots: (path or None, weight) each, the rest empty at weight 1."""
    given = list(files) + [(None, 1.0)] * 3
    return given[:3]


def test_resolve_styles_defaults_to_the_chosen_builtin(sg, gimp_wire, installed):
    builtins = gimp_wire.catalogue.builtin_styles(str(installed / "styles"))
    assert [p.style for p in sg.resolve_styles(slots(), "", builtins)] == [builtins["starry_night"]]
    picks = sg.resolve_styles(slots(), "the_scream", builtins)
    assert [(p.style, p.weight) for p in picks] == [(builtins["the_scream"], 1.0)]
    with pytest.raises(sg.PluginError, match="Unknown built-in painting 'mona_lisa'") as err:
        sg.resolve_styles(slots(), "mona_lisa", builtins)
    assert err.value.calling


def test_resolve_styles_files_with_their_weights_win_over_the_builtin(
    sg, gimp_wire, installed, tmp_path
):
    catalogue = gimp_wire.catalogue
    builtins = catalogue.builtin_styles(str(installed / "styles"))
    first, second = tmp_path / "my_brush_work.png", tmp_path / "second.jpg"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    picks = sg.resolve_styles(
        slots((str(first), 2.0), (None, 1.0), (str(second), 0.5)), "the_scream", builtins
    )
    assert [(p.style.path, p.weight) for p in picks] == [(str(first), 2.0), (str(second), 0.5)]
    assert catalogue.title(picks) == "my brush work + second"
    # the built-in fills the first slot when it has no file; other slots blend in
    picks = sg.resolve_styles(slots((None, 1.0), (str(second), 3.0)), "the_scream", builtins)
    assert [p.title for p in picks] == ["The Scream (Munch)", "second"]
    with pytest.raises(sg.PluginError, match="does not exist") as err:
        sg.resolve_styles(slots((None, 1.0), (str(tmp_path / "gone.png"), 1.0)), "", builtins)
    assert err.value.calling and "gone.png" in str(err.value)
    with pytest.raises(sg.PluginError, match="at least one style a weight above 0"):
        sg.resolve_styles(slots((str(first), 0.0)), "", builtins)


def test_an_open_image_takes_the_first_slot(sg, gimp_wire, installed, tmp_path):
    builtins = gimp_wire.catalogue.builtin_styles(str(installed / "styles"))
    other = tmp_path / "other.png"
    other.write_bytes(b"x")
    picks = sg.resolve_styles(slots((str(other), 0.7), (str(other), 0.3)), "", builtins, "ref")
    assert (picks[0].style, picks[0].title, picks[0].weight) == (None, "ref", 0.7)
    assert [p.title for p in picks] == ["ref", "other"]  # the first slot's file gives way


def test_style_size_keeps_small_images_and_shrinks_big_ones(gimp_wire):
    fitted_size = gimp_wire.catalogue.fitted_size
    assert fitted_size(800, 600) == (800, 600)
    assert fitted_size(4000, 3000) == (1024, 768)
    assert fitted_size(3000, 10) == (1024, 3)


# ============================================================================== arguments


def test_arguments_map_to_controls_leaving_zeros_to_the_preset(sg, gimp_wire):
    vocabulary = gimp_wire.vocabulary.default()
    args = args_of(sg, vocabulary, strength=0.5, preserve_colors="luminance", seed=7)
    controls = args.check(vocabulary).controls(vocabulary)
    # strength is the result layer's opacity; size, time budget and steps at 0: the preset's
    assert controls == {"balance": 0.5, "preserve_colors": "luminance", "seed": 7}
    assert args.opacity() == 50.0
    full = args_of(sg, vocabulary, size=256, steps=40, time_budget=0.01)
    controls = full.check(vocabulary).controls(vocabulary)
    # a budget below the server's 0.1 s minimum is raised to it
    assert (controls["size"], controls["steps"], controls["time_budget"]) == (256, 40, 0.1)
    assert full.opacity() == 100.0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"strength": 1.5}, "Layer opacity"),
        ({"balance": 1.5}, "Style amount"),
        ({"preserve_colors": "sepia"}, "Colours"),
        ({"preset": "turbo"}, "Preset"),
        ({"size": 20}, "Detail"),
        ({"size": 9000}, "Detail"),
        ({"style_scale": 9.0}, "Brush size"),
        ({"time_budget": -1.0}, "Time limit"),
        ({"seed": -1}, "Seed"),
        ({"steps": 100_001}, "Steps"),
    ],
)
def test_bad_arguments_are_calling_errors_naming_the_field(sg, gimp_wire, change, words):
    vocabulary = gimp_wire.vocabulary.default()
    with pytest.raises(sg.PluginError, match=words) as err:
        args_of(sg, vocabulary, **change).check(vocabulary)
    assert err.value.calling


def test_dialog_frames_hold_every_control_once(sg, gimp_wire):
    vocabulary = gimp_wire.vocabulary.default()
    frames = sg.dialog_frames(vocabulary)
    assert [frame for frame, _, _ in frames] == ["style", "result", "advanced"]
    assert frames[0][2] == [
        "style-image", "builtin-style", "style-file", "style-weight", "style-file-2",
        "style-weight-2", "style-file-3", "style-weight-3",
    ]  # fmt: skip
    assert frames[1][2] == [
        "preset", "balance", "style-scale", "preserve-colors", "size", "strength", "start-server"
    ]  # fmt: skip
    assert frames[2][2] == ["time-budget", "steps", "seed"]  # behind the Advanced expander


# ================================================================================ server


class Answers:
    """A make_client for `connect`: no server for ``down`` calls, then one that answers."""

    def __init__(self, sg, down: int) -> None:
        self.sg, self.down, self.calls = sg, down, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if len(self.calls) <= self.down:
            raise self.sg.ServerUnavailable("no stylebridge server found")
        return type("Pong", (), {"ping": lambda self: {"type": "pong"}})()


def test_a_running_server_is_used_as_it_is(sg):
    started = []
    answers = Answers(sg, down=0)
    sg.connect(answers, started.append, ["stylebridge", "serve"])
    assert started == [] and len(answers.calls) == 1


def test_no_server_and_no_start_fails_at_once(sg):
    with pytest.raises(sg.ServerUnavailable):
        sg.connect(Answers(sg, down=1), None, ["stylebridge", "serve"])


def test_no_server_starts_the_recorded_command_and_waits_for_it(sg):
    started, said = [], []
    answers = Answers(sg, down=3)
    command = ["/opt/s b/bin/stylebridge", "serve"]
    sg.connect(answers, started.append, command, said.append, lambda s: None)
    assert started == [command]
    assert said == ["Starting the server (first time: about 20 s)..."]
    assert len(answers.calls) == 4 and answers.calls[-1] == {"timeout": sg.START_PING}


def test_a_server_that_cannot_start_or_never_answers_is_said_in_words(sg, monkeypatch):
    def refuse(command):
        raise sg.server_process.StartError("Cannot start nope: no such file.")

    with pytest.raises(sg.PluginError, match="Cannot start nope: no such file"):
        sg.connect(Answers(sg, down=1), refuse, ["nope", "serve"])
    monkeypatch.setattr(sg.server_process, "START_WAIT", 0.05)
    with pytest.raises(sg.PluginError, match="did not answer within"):
        sg.connect(Answers(sg, down=10**6), lambda c: None, ["x", "serve"], sleep=lambda s: None)


def test_a_server_command_that_ends_at_once_fails_the_run_at_once(sg, no_server, tmp_path):
    program = tmp_path / "stylebridge"
    program.write_text("#!/bin/sh\nexit 3\n")
    program.chmod(0o755)
    start = sg.server_process.start  # the real one: a process whose exit is noticed
    with pytest.raises(sg.PluginError, match=r"ended at once \(exit status 3\)"):
        sg.connect(Answers(sg, down=10**6), start, [str(program), "serve"], sleep=lambda s: None)


def test_start_brings_up_a_real_server(sg, gimp_wire, no_server):
    """The plug-in's own start path against a real server process found by discovery."""
    servers = []
    client = sg.connect(
        gimp_wire.Client, lambda command: servers.append(start_server(no_server)), ["serve"]
    )
    try:
        assert client.ping().type == "pong" and len(servers) == 1
    finally:
        client.close()
        servers[0].stop()


# ================================================================================ pixels


def test_layouts_are_float_and_perceptual_with_alpha(sg):
    assert sg.layout_for(False) == sg.Layout("R'G'B'A float", 4)
    assert sg.layout_for(True) == sg.Layout("Y'A float", 2)
    assert sg.MASK_FORMAT == "Y float"  # coverage, not a colour: no curve


def test_work_area_without_selection_is_the_whole_drawable(sg):
    area = sg.work_area((300, 200), (40, 30), None)
    assert area == sg.WorkArea((0, 0, 300, 200), False)


def test_work_area_is_the_selection_on_the_drawable_plus_a_margin(sg):
    # selection (100, 80)-(140, 120) in the image; the drawable sits at (40, 30)
    area = sg.work_area((300, 200), (40, 30), (100, 80, 140, 120))
    margin = 32  # context_margin of a 40 px box: the minimum
    assert area.masked
    assert area.box == (60 - margin, 50 - margin, 40 + 2 * margin, 40 + 2 * margin)
    assert area.image_box((40, 30)) == (60 - margin + 40, 50 - margin + 30, 104, 104)


def test_work_area_margin_is_clipped_to_the_drawable(sg):
    area = sg.work_area((100, 100), (0, 0), (0, 90, 10, 100))
    assert area.box == (0, 58, 42, 42)


def test_work_area_selection_off_the_drawable_is_an_error(sg):
    with pytest.raises(sg.PluginError, match="does not touch the layer 'x'"):
        sg.work_area((50, 50), (200, 200), (0, 0, 100, 100), "the layer 'x'")


# ============================================================================== progress


def progress(gimp_wire, **fields):
    """A ``progress`` event as the plug-in's client reads it off the wire."""
    return gimp_wire.messages.read_reply({"type": "progress", "id": 1, "job": "j", **fields})


def test_progress_fraction_spans_all_drawables(sg, gimp_wire):
    event = progress(gimp_wire, step=50, total_steps=100)
    assert sg.progress_fraction(event, 0, 1) == 0.5
    assert sg.progress_fraction(event, 1, 2) == 0.75
    assert sg.progress_fraction(progress(gimp_wire), 1, 4) == 0.25
    assert sg.progress_fraction(None, 1, 4) == 0.25
    assert sg.progress_fraction(progress(gimp_wire, step=120, total_steps=100), 0, 1) == 1.0


def test_progress_text_shows_step_and_eta(sg, gimp_wire):
    event = progress(gimp_wire, step=12, total_steps=150, eta=83.4)
    text = sg.progress_text(event, 1, 3, "The Scream (Munch)")
    assert (
        text == "Style transfer: The Scream (Munch) · layer 2 of 3 · step 12/150 · 1 min 23 s left"
    )
    one = progress(gimp_wire, step=1, total_steps=9, eta=None)
    assert sg.progress_text(one, 0, 1, "x").endswith("1/9")
    assert "waiting for the server" in sg.progress_text(None, 0, 1, "x")
    assert "queued behind 2 jobs" in sg.progress_text(None, 0, 1, "x", position=2)


def test_format_seconds(gimp_wire):
    assert [gimp_wire.progress.format_seconds(s) for s in (0.4, 59, 61, 3725)] == [
        "0 s",
        "59 s",
        "1 min 01 s",
        "1 h 02 min",
    ]


# ================================================================================ errors


def test_error_messages_say_what_to_do_and_that_the_image_is_unchanged(sg, gimp_wire):
    gone = sg.describe_error(gimp_wire.ServerUnavailable("no stylebridge server found: ..."))
    assert gone == (
        "The server is not running: press OK to start it, or Start. The image was not changed."
    )
    studio = sg.describe_error(gimp_wire.ServerUnavailable("x"), "tcp://gpu-box:47474")
    assert studio.startswith("No answer from the server at tcp://gpu-box:47474: check")
    big = gimp_wire.ServerError("too_large", "content: 9000x9000 px is over ...", "content")
    assert sg.describe_error(big).startswith("The layer is too large for the server (9000x9000")
    assert sg.describe_error(sg.PluginError("Select a layer.")) == "Select a layer."
    odd = sg.describe_error(RuntimeError("boom"))
    assert "Boom" in odd and "Traceback" not in odd


def test_the_zip_installs_an_executable_plug_in(tmp_path):
    archive = dist().build_gimp(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        mode = zf.getinfo("stylebridge/stylebridge.py").external_attr >> 16
    assert {
        "stylebridge/stylebridge_gimp.py",
        "stylebridge/stylebridge_wire/client.py",
        "stylebridge/stylebridge_wire/catalogue.py",
        "stylebridge/stylebridge_wire/pixels.py",
        "stylebridge/stylebridge_wire/vocabulary.py",
        "stylebridge/stylebridge_wire/vocabulary.json",
        "stylebridge/styles/index.tsv",
    } <= names
    assert mode & stat.S_IXUSR
    text = (PLUGIN / "stylebridge.py").read_text()
    assert text.startswith("#!/usr/bin/env python3\n")


# ====================================================================== the GIMP edge, faked


def procedure(edge) -> fake.Procedure:
    """The procedure as GIMP creates it: the edge registers its arguments on it."""
    proc = fake.Procedure()
    edge.add_arguments(proc)
    return proc


def run(edge, image, drawables, **values):
    """plug-in-stylebridge, non-interactive, with ``values`` over the arguments' defaults."""
    proc = procedure(edge)
    return edge.run(proc, "noninteractive", image, drawables, proc.config(**values), None)


FAST = {"size": 64, "steps": 5}


def test_edge_registers_the_documented_arguments(edge):
    proc = procedure(edge)
    names = list(proc.arguments)
    assert names == [
        "style-image",  # an open image as the style
        "builtin-style",
        "style-file",
        "style-weight",  # each style with its weight: no typed list of paths
        "style-file-2",
        "style-weight-2",
        "style-file-3",
        "style-weight-3",
        "preset",
        "balance",
        "style-scale",
        "preserve-colors",
        "size",
        "strength",
        "time-budget",
        "steps",
        "seed",
        "start-server",  # last: positional PDB calls keep working as new controls come
        "server-command",  # aux: saved with the last values, never positional
        "endpoint",
    ]
    assert proc.arguments["start-server"].default is True
    assert [proc.arguments[n].kind for n in ("server-command", "endpoint")] == ["string-aux"] * 2
    builtin = proc.arguments["builtin-style"]
    assert builtin.default == "starry_night" and "the_scream" in builtin.spec["choice"].nicks
    preset = proc.arguments["preset"]
    assert preset.spec["choice"].nicks == ["fast", "quality", "paper"] and preset.default == "fast"
    kinds = {name: arg.kind for name, arg in proc.arguments.items()}
    assert kinds["strength"] == kinds["balance"] == kinds["time-budget"] == "double"
    assert kinds["size"] == kinds["steps"] == kinds["seed"] == "int"
    assert kinds["preserve-colors"] == "choice" and kinds["style-file"] == "file"
    assert kinds["style-image"] == "image" and kinds["style-weight-2"] == "double"
    ranges = {n: (a.spec["low"], a.spec["high"], a.default) for n, a in proc.arguments.items()
              if a.kind in ("int", "double")}  # fmt: skip
    assert ranges["strength"] == (0, 1, 1.0) and ranges["balance"] == (0, 1, 0.5)
    # a dialog left alone runs the preset as defined: 0, the preset's (it used to start at the
    # engine's generic 512 px and 200 steps, overriding fast's 384 px and 60 steps)
    assert ranges["size"] == (0, 8192, 0) and ranges["steps"][2] == ranges["time-budget"][2] == 0
    assert ranges["seed"] == (0, 2**31 - 1, 0)  # a PDB int is a C int
    size = proc.arguments["size"]
    assert size.label == "Detail (px)" and size.help.endswith(" 0: as the preset.")
    assert proc.arguments["style-scale"].label == "Brush size"
    assert proc.arguments["balance"].label == "Style amount"
    assert (
        proc.arguments["preset"].spec["choice"].labels[2] == "Reference (slow): the original paper"
    )
    # the dialog shows every argument, each in one frame; the server panel shows the aux ones
    in_frames = [name for _, _, names in edge.sg.dialog_frames(edge.VOCABULARY) for name in names]
    shown = [n for n in names if proc.arguments[n].kind != "string-aux"]
    assert sorted(in_frames) == sorted(shown) and len(set(in_frames)) == len(in_frames)


def test_edge_adds_results_above_each_layer_in_one_undo_group(edge, monkeypatch):
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: client)
    image = fake.Image(selection=(30, 20, 60, 50))
    bottom = image.add("bottom", 120, 80)
    top = image.add("top", 60, 40, offsets=(20, 10))
    status, error = run(edge, image, [bottom, top], **FAST)
    assert (status, error) == ("success", "")
    inserts = [entry for entry in image.log if entry[0] == "insert"]
    undo = [i for i, entry in enumerate(image.log) if isinstance(entry, str)]
    assert [image.log[i] for i in undo] == ["undo_group_start", "undo_group_end"]
    first_insert = image.log.index(inserts[0])
    last_insert = image.log.index(inserts[-1])
    assert undo[0] < first_insert and last_insert < undo[1]  # the group wraps every insertion
    # each result lands right above its own layer, at its offsets, and ends up selected
    names = [layer.name for layer in image.layers]
    assert names == [STARRY_FAST, "bottom", STARRY_FAST, "top"]
    assert image.layers[0].offsets == (0, 0) and image.layers[2].offsets == (20, 10)
    assert image.selected == [image.layers[0], image.layers[2]]
    assert image.layers[0].opacity == image.layers[2].opacity == 100.0  # strength 1
    # the selection box plus the margin, in each layer's own pixels
    writes = [entry for entry in image.log if entry[0] == "set"]
    assert [w[1] for w in writes] == [(0, 0, 92, 80), (0, 0, 60, 40)]
    assert [s["mask"].width for s in client.submits] == [92, 60]
    first = client.submits[0]
    assert first["content"].dtype == "float32" and first["preset"] == "fast"
    assert first["controls"] == {"balance": 0.5, "preserve_colors": "none", "seed": 0, **FAST}
    assert client.pings == 1 and client.closed


def test_edge_strength_is_the_result_layers_opacity(edge, monkeypatch):
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: client)
    image = fake.Image()
    layer = image.add("photo", 40, 30)
    status, _ = run(edge, image, [layer], strength=0.35, **FAST)
    assert status == "success"
    assert image.layers[0].opacity == pytest.approx(35.0)
    assert "strength" not in client.submits[0]["controls"]  # made at full strength


def test_edge_shows_progress_with_eta_and_polls_at_least_every_second(edge, monkeypatch):
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: client)
    monkeypatch.setattr(edge.ProgressBar, "show", _unthrottled(edge.ProgressBar.show))
    image = fake.Image()
    layer = image.add("photo", 40, 30)
    run(edge, image, [layer], **FAST)
    texts = [entry[1] for entry in edge.progress_log if entry[0] == "text"]
    fractions = [entry[1] for entry in edge.progress_log if entry[0] == "update"]
    assert texts[0] == f"Style transfer: {STARRY} · step 1/3 · 2 s left"
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] <= 1
    assert edge.progress_log[-1] == ("end",)
    assert max(client.polls) <= 1.0


def _unthrottled(show):
    def always(self, event, position):
        self._last = 0.0
        return show(self, event, position)

    return always


def test_edge_server_error_on_a_later_layer_leaves_the_image_untouched(
    edge, gimp_wire, monkeypatch
):
    error = gimp_wire.ServerError("engine_error", "out of memory while ...", "controls.size")

    def script(index, content):
        return [("progress", 1, 2), ("error", error)] if index == 1 else THREE_STEPS_THEN_RESULT

    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: ScriptedClient(script))
    image = fake.Image()
    layers = [image.add("a", 40, 30), image.add("b", 40, 30)]
    status, error = run(edge, image, layers, **FAST)
    assert status == "execution-error"
    assert error.startswith("The server ran out of memory on this layer: lower Detail (px)")
    assert error.endswith("The image was not changed.")
    assert [entry for entry in image.log if entry[0] in ("insert", "set")] == []
    assert "undo_group_start" not in image.log


@pytest.mark.parametrize(
    ("channels", "dtype", "answer"),
    [(4, "uint8", "40x30x4 uint8"), (4, "uint16", "40x30x4 uint16"), (2, "float32", "40x30x2")],
)
def test_edge_result_of_another_layout_is_an_error_and_nothing_is_written(
    edge, gimp_wire, monkeypatch, channels, dtype, answer
):
    size = {"uint8": 1, "uint16": 2, "float32": 4}[dtype] * channels * 40 * 30
    wrong = gimp_wire.Image(40, 30, channels, dtype, bytes(size))
    script = [("progress", 1, 1), ("result", wrong)]
    monkeypatch.setattr(edge, "Client", lambda *a, **k: ScriptedClient(lambda i, c: script))
    image = fake.Image()
    layer = image.add("photo", 40, 30)
    status, error = run(edge, image, [layer], **FAST)
    assert status == "execution-error"
    assert f"answered {answer}" in error and "expected 40x30x4 float32" in error
    assert [entry for entry in image.log if entry[0] in ("insert", "set")] == []
    assert "undo_group_start" not in image.log  # the image was not touched


def test_edge_closes_the_undo_group_when_an_insertion_fails(edge, monkeypatch):
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: ScriptedClient())
    image = fake.Image()
    layer = image.add("a", 40, 30)
    image.fail_insert = True
    status, error = run(edge, image, [layer], **FAST)
    assert status == "execution-error" and "Insert failed." in error
    assert image.log[0] == "undo_group_start" and image.log[-1] == "undo_group_end"


def test_edge_without_server_is_an_execution_error(edge, monkeypatch):
    monkeypatch.setenv("STYLEBRIDGE_ENDPOINT", f"tcp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("STYLEBRIDGE_TOKEN", "nobody")
    image = fake.Image()
    layer = image.add("a", 40, 30)
    status, error = run(edge, image, [layer], **FAST)
    assert status == "execution-error"
    assert error.startswith("No answer from the server at tcp://127.0.0.1:")
    assert error.endswith("The image was not changed.") and image.log == []


def test_edge_starts_this_machines_server_with_the_recorded_command(edge, no_server, monkeypatch):
    started = []

    def start(command):
        started.append(command)
        raise edge.server_process.StartError("Cannot start 'x': no such file")

    monkeypatch.setattr(edge.server_process, "start", start)
    image = fake.Image()
    layer = image.add("a", 40, 30)
    status, error = run(edge, image, [layer], **FAST)
    assert started == [edge.server_process.default_command()]
    assert status == "execution-error" and "Cannot start 'x': no such file" in error
    started.clear()
    status, error = run(edge, image, [layer], **FAST, start_server=False)  # fail at once
    assert started == [] and error.startswith("The server is not running: press OK")
    assert image.log == []


def test_edge_the_saved_server_command_and_endpoint_are_used(edge, no_server, monkeypatch):
    started, made = [], []

    def start(command):
        started.append(command)
        raise edge.server_process.StartError("Cannot start 'x': no such file")

    def client(endpoint=None, token=None, **kwargs):
        made.append((endpoint, token))
        raise edge.sg.ServerUnavailable(f"nothing at {endpoint}")

    monkeypatch.setattr(edge.server_process, "start", start)
    image = fake.Image()
    layer = image.add("a", 40, 30)
    command = ["/opt/s b/bin/stylebridge", "serve"]  # saved as an argv: JSON
    run(edge, image, [layer], **FAST, server_command=json.dumps(command))
    assert started == [command]  # the panel's command, not the record
    started.clear()
    monkeypatch.setattr(edge, "Client", client)
    status, error = run(edge, image, [layer], **FAST, endpoint="tcp://gpu-box:47474")
    assert made == [("tcp://gpu-box:47474", None)]  # no token saved: $STYLEBRIDGE_TOKEN's
    assert started == [] and status == "execution-error"  # a studio server is not started here
    assert error.startswith("No answer from the server at tcp://gpu-box:47474")
    assert image.log == []


@pytest.mark.parametrize(
    ("kind", "base", "words"),
    [
        ("channel", "rgb", "channel or a layer mask"),
        ("group", "rgb", "layer group"),
        ("layer", "indexed", "Indexed images"),
    ],
)
def test_edge_refuses_what_it_cannot_stylise_as_calling_errors(edge, kind, base, words):
    image = fake.Image(base=base)
    drawable = image.add("thing", 40, 30, kind=kind)
    status, error = run(edge, image, [drawable], **FAST)
    assert status == "calling-error" and words in error
    assert image.log == []


def test_edge_bad_arguments_are_calling_errors_before_anything_is_sent(edge, monkeypatch):
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: client)
    image = fake.Image()
    layer = image.add("a", 40, 30)
    status, error = run(edge, image, [layer], size=20)
    assert status == "calling-error" and "Detail (px)" in error and "20" in error
    assert client.submits == [] and image.log == []


def test_edge_empty_layer_is_a_clear_error(edge, monkeypatch):
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: ScriptedClient())
    image = fake.Image()
    layer = image.add("empty", 40, 30)
    layer.buffer.fill = 0.0
    status, error = run(edge, image, [layer], **FAST)
    assert status == "execution-error" and "'empty' is empty" in error


def test_a_flatpak_gimp_that_cannot_see_the_server_is_told_the_override(sg, monkeypatch, tmp_path):
    info = tmp_path / ".flatpak-info"
    info.write_text("[Application]\nname=org.gimp.GIMP\n")
    monkeypatch.setattr(sg.server_process, "FLATPAK_INFO", info)
    text = sg.describe_error(sg.ServerUnavailable("no stylebridge server found"))
    assert "flatpak override --user --filesystem=xdg-run/stylebridge org.gimp.GIMP" in text
