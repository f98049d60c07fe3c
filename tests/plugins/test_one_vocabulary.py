"""One vocabulary, one place (issue "One vocabulary, one client"): a control and a preset added
where the engine declares them (a `Settings` field made with ``control(...)``, a `Preset` in the
table) reach every front end with nothing else written: the CLI's options, what the protocol
accepts, the Krita dialog, the GIMP procedure. And balance, the control that was added that
way, reaches both plug-ins' jobs.

The throwaway control and preset live in this module only: a `Settings` subclass and a copy of
`PRESET_TABLE`, turned into the plug-ins' data by `vocabulary()` as
``make vocabulary`` does for the committed vocabulary.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import pytest

from stylebridge.core.settings import (
    EVERYWHERE,
    PRESET_TABLE,
    Preset,
    Settings,
    control,
    vocabulary,
    vocabulary_json,
)
from stylebridge.server.cli import add_control_arguments
from stylebridge.server.protocol import Limits, encode_image, submit_settings
from stylebridge.wire.messages import ProtocolError, Submit, read_request
from tests.fakes import gimp as fake_gimp
from tests.fakes import krita as fake_krita
from tests.fakes.client import ScriptedClient


@dataclasses.dataclass(frozen=True)
class Throwaway(Settings):
    grain: float = dataclasses.field(
        default=0.25,
        metadata=control(
            "film grain over the result (a throwaway control of the acceptance test)",
            lo=0,
            hi=1,
            shows=EVERYWHERE,
            label="Grain",
        ),
    )


def rebased(settings: Settings, **changes) -> Throwaway:
    """A preset's settings as the subclass: every declared value, the new field's default."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)}
    return Throwaway(**{**values, **changes})


TABLE = {
    name: Preset(p.label, p.description, rebased(p.settings)) for name, p in PRESET_TABLE.items()
}
TABLE["grainy"] = Preset(
    "Grainy (throwaway)",
    "fast with grain",
    rebased(PRESET_TABLE["fast"].settings, grain=0.8, preset="grainy"),
)
PRESETS = {name: p.settings for name, p in TABLE.items()}
# what vocabulary.json would hold: JSON, as the plug-ins read it
DATA = json.loads(vocabulary_json(vocabulary(Throwaway, TABLE)))


# ======================================================================= the command line


def test_the_cli_offers_the_new_control_and_preset():
    parser = argparse.ArgumentParser(prog="stylebridge stylize")
    add_control_arguments(parser, Throwaway, PRESETS)
    text = parser.format_help()
    assert "--grain" in text and "film grain over the result" in text and "(0..1)" in text
    assert "grainy" in text
    args = parser.parse_args(["--preset", "grainy", "--grain", "0.5"])
    assert (args.preset, args.grain) == ("grainy", 0.5)
    assert parser.parse_args([]).grain is None  # None: the preset's
    stock = argparse.ArgumentParser()
    add_control_arguments(stock)
    assert "--grain" not in stock.format_help() and "grainy" not in stock.format_help()


@pytest.mark.parametrize("argv", [["--preset", "nope"], ["--grain", "x"], ["--brushiness", "1"]])
def test_the_cli_refuses_what_the_vocabulary_does_not_have(argv, capsys):
    parser = argparse.ArgumentParser(prog="stylebridge stylize")
    add_control_arguments(parser, Throwaway, PRESETS)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2 and "error" in capsys.readouterr().err


# ============================================================================== the protocol


def submit(preset: object = "fast", **controls) -> tuple[dict, list]:
    content, (c_blob,) = encode_image(np.full((8, 8, 4), 100, np.uint8), 1)
    style, (s_blob,) = encode_image(np.full((8, 8, 3), 200, np.uint8), 2)
    header = Submit(content, [style], preset=preset, controls=controls, id=1).to_header()
    return header, [b"header", bytes(c_blob), bytes(s_blob)]


def parse_submit(header: dict, frames: list, presets: dict | None = None) -> Submit:
    """The submit as the server reads it, with ``presets`` (default: the stock ones)."""
    bounds = Limits().bounds() if presets is None else Limits().bounds(presets)
    return read_request(header, frames, bounds)


def test_the_protocol_accepts_the_new_control_and_preset():
    request = parse_submit(*submit("grainy", grain=0.6, size=64), PRESETS)
    settings = submit_settings(request, PRESETS)
    assert isinstance(settings, Throwaway)
    assert (settings.grain, settings.size, settings.preset) == (0.6, 64, "grainy")
    fast = submit_settings(parse_submit(*submit(), PRESETS), PRESETS)
    assert fast.grain == 0.25 and fast.init == "recolour"  # the rest of fast, unchanged


@pytest.mark.parametrize(
    ("preset", "controls", "field"),
    [
        ("nope", {}, "preset"),
        (["fast"], {}, "preset"),  # not a name at all (found by tests/server/test_fuzz.py)
        (7, {}, "preset"),
        ("fast", {"brushiness": 1}, "controls.brushiness"),
    ],
)
def test_the_protocol_refuses_unknown_names(preset, controls, field):
    with pytest.raises(ProtocolError) as refused:
        parse_submit(*submit(preset, **controls), PRESETS)
    assert (refused.value.code, refused.value.field) == ("bad_field", field)


def test_the_protocol_checks_the_new_controls_value_and_names_it():
    request = parse_submit(*submit("grainy", grain=3), PRESETS)
    with pytest.raises(ProtocolError) as refused:
        submit_settings(request, PRESETS)
    assert refused.value.code == "bad_field" and refused.value.field == "controls.grain"
    assert "grain: 3 is outside 0..1" in refused.value.message


def test_the_stock_protocol_knows_neither():
    with pytest.raises(ProtocolError) as refused:
        parse_submit(*submit("fast", grain=0.5))
    assert refused.value.field == "controls.grain"
    with pytest.raises(ProtocolError) as refused:
        parse_submit(*submit("grainy"))
    assert refused.value.field == "preset"


# ======================================================================== the Krita dialog


def test_the_krita_dialog_lists_the_new_control_and_preset(sbk, qapp, krita_app):
    W = sbk.qt.QtWidgets
    vocab = sbk.stylebridge_wire.vocabulary.Vocabulary(DATA)
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs(), vocabulary=vocab)
    presets = dialog.preset
    assert [presets.itemData(i) for i in range(presets.count())] == list(TABLE)
    assert presets.itemText(presets.findData("grainy")) == "Grainy (throwaway)"
    assert list(dialog.fields) == [c["name"] for c in DATA["controls"] if c["dialog"]]
    grain = dialog.fields["grain"]
    assert isinstance(grain.input, W.QSlider) and grain.value() == 0.25
    assert grain.widget.toolTip().startswith("Film grain")  # the help, as a sentence
    grain.set(0.6)
    presets.setCurrentIndex(presets.findData("grainy"))
    options = dialog.options()
    assert options.preset == "grainy" and options.controls["grain"] == 0.6
    assert options.job_controls()["grain"] == 0.6
    with pytest.raises(sbk.options.OptionsError, match="Unknown control 'brushiness'"):
        sbk.options.Options(["starry_night"], controls={"brushiness": 1}).check(vocab)
    dialog.close()


def test_the_stock_krita_dialog_has_neither(sbk, qapp, krita_app):
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    assert "grain" not in dialog.fields and dialog.preset.findData("grainy") == -1
    with pytest.raises(sbk.options.OptionsError, match="Unknown control 'grain'"):
        sbk.options.Options(["starry_night"], controls={"grain": 0.5}).check()
    dialog.close()


# ====================================================================== the GIMP procedure


def test_the_gimp_procedure_takes_the_new_control_and_preset(edge, sg, gimp_wire, monkeypatch):
    vocab = gimp_wire.vocabulary.Vocabulary(DATA)
    proc = fake_gimp.Procedure()
    edge.add_arguments(proc, vocab)
    grain = proc.arguments["grain"]
    assert (grain.kind, grain.spec["low"], grain.spec["high"], grain.default) == (
        "double",
        0,
        1,
        0.25,
    )
    assert grain.label == "Grain" and grain.help.startswith("Film grain")
    assert proc.arguments["preset"].spec["choice"].nicks == list(TABLE)
    frames = {frame: names for frame, _, names in sg.dialog_frames(vocab)}
    assert "grain" in frames["result"]  # a 0..1 control: what the result looks like
    # the procedure runs with them: its arguments become the job's controls
    monkeypatch.setattr(edge, "VOCABULARY", vocab)
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *args, **kwargs: client)
    image = fake_gimp.Image()
    layer = image.add("photo", 40, 30)
    config = proc.config(preset="grainy", grain=0.6, size=64)
    status, error = edge.run(proc, "noninteractive", image, [layer], config, None)
    assert (status, error) == ("success", "")
    sent = client.submits[0]
    assert sent["preset"] == "grainy" and sent["controls"]["grain"] == 0.6
    with pytest.raises(sg.PluginError, match="Preset must be one of fast, quality, paper, grainy"):
        sg.ProcedureArgs("nope", {"grain": 0.5}).check(vocab)


def test_the_stock_gimp_procedure_has_neither(edge):
    proc = fake_gimp.Procedure()
    edge.add_arguments(proc)
    assert "grain" not in proc.arguments
    assert "grainy" not in proc.arguments["preset"].spec["choice"].nicks


# ================================================================= balance, in both plug-ins


def test_balance_is_a_krita_dialog_slider_that_goes_into_the_job(sbk, qapp, krita_app):
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    balance = dialog.fields["balance"]
    assert isinstance(balance.input, sbk.qt.QtWidgets.QSlider)
    assert balance.value() == 0.5  # the engine's default: the objective as written
    balance.input.setValue(70)  # the artist drags it to 70 %
    options = dialog.options()
    assert options.controls["balance"] == 0.7 and options.job_controls()["balance"] == 0.7
    dialog.close()


def test_balance_from_the_krita_dialog_reaches_the_job(
    sbk, qapp, no_server, krita_app, monkeypatch
):
    doc = fake_krita.open_document(fake_krita.Document(48, 32))
    doc.add_layer("Background", bytes((40, 80, 120, 255)) * (48 * 32))
    client = ScriptedClient()
    monkeypatch.setattr(sbk.stylebridge_wire.server_watch, "Client", lambda *args, **kwargs: client)
    dialog = sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs())
    dialog.fields["balance"].set(0.3)
    dialog.fields["strength"].set(0.8)
    dialog.apply()
    deadline = time.monotonic() + 10
    while dialog.run is None or not dialog.run.ended:  # driven by Qt's event loop, as in Krita
        assert time.monotonic() < deadline, dialog.message.text()
        qapp.processEvents()
        time.sleep(0.005)
    assert dialog.last_node is not None, dialog.message.text()
    assert client.submits[0]["controls"]["balance"] == 0.3
    assert "strength" not in client.submits[0]["controls"]
    assert dialog.last_node.opacity() == round(255 * 0.8)
    dialog.close()


def test_balance_is_a_gimp_argument_that_goes_into_the_job(edge, sg, monkeypatch):
    proc = fake_gimp.Procedure()
    edge.add_arguments(proc)
    balance = proc.arguments["balance"]
    assert (balance.kind, balance.spec["low"], balance.spec["high"], balance.default) == (
        "double",
        0,
        1,
        0.5,
    )
    assert "balance" in dict((f, n) for f, _, n in sg.dialog_frames(edge.VOCABULARY))["result"]
    _, args = edge.read_config(proc.config(balance=0.3))
    assert args.controls(edge.VOCABULARY)["balance"] == 0.3
    client = ScriptedClient()
    monkeypatch.setattr(edge, "Client", lambda *a, **k: client)
    image = fake_gimp.Image()
    layer = image.add("photo", 40, 30)
    edge.run(proc, "noninteractive", image, [layer], proc.config(balance=0.3, size=64), None)
    assert client.submits[0]["controls"]["balance"] == 0.3
