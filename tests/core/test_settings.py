"""The one vocabulary (core/settings.py): the JSON copy the plug-ins carry is the declarations'
own, and the declarations say what shows where."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stylebridge.core.errors import InputError
from stylebridge.core.settings import (
    CLI,
    DIALOG,
    PRESET_TABLE,
    PRESETS,
    REMOTE,
    Settings,
    make_settings,
    shown,
    vocabulary,
    vocabulary_json,
)
from stylebridge.wire import vocabulary as wire_vocabulary
from testing import REPO

COMMITTED = REPO / "wire" / "vocabulary.json"


def test_the_committed_wire_vocabulary_is_the_declarations_own():
    """Regenerate it with ``make vocabulary`` after changing a control."""
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == json.loads(vocabulary_json())
    # and the installed stdlib package reads that very file
    assert wire_vocabulary.default().data == json.loads(vocabulary_json())


def test_what_shows_where():
    remote, cli, dialog = shown(REMOTE), shown(CLI), shown(DIALOG)
    assert "device" in cli and "device" not in remote  # a server's device is its own
    assert {"strength", "balance", "preserve_colors", "size", "time_budget", "steps"} <= set(dialog)
    assert set(dialog) <= set(remote) and set(remote) - {"device"} <= set(cli)
    for internal in ("space", "optimizer", "lr", "precision", "scales", "allow_upscale"):
        assert internal not in remote and internal not in cli  # how a preset minimises: its own
    data = vocabulary()
    assert [c["name"] for c in data["controls"]] == list(remote)
    assert [c["name"] for c in data["controls"] if c["dialog"]] == list(dialog)
    assert list(data["presets"]) == list(PRESET_TABLE) and data["default_preset"] == "fast"
    # what a painter rarely needs goes into the dialogs' "Advanced" group
    advanced = [c["name"] for c in data["controls"] if c["advanced"]]
    assert advanced == ["time_budget", "steps", "seed"] and set(advanced) <= set(dialog)


def test_balance_is_declared_once_with_its_range():
    (balance,) = [c for c in vocabulary()["controls"] if c["name"] == "balance"]
    assert (balance["type"], balance["min"], balance["max"], balance["default"]) == (
        "float",
        0,
        1,
        0.5,
    )
    assert balance["dialog"] and balance["label"] == "Style amount"
    assert make_settings(balance=0.8).balance == 0.8
    with pytest.raises(InputError, match=r"balance: 1\.5 is outside 0\.\.1"):
        make_settings(balance=1.5)


def test_fast_is_single_scale_and_starts_recoloured():
    fast = PRESETS["fast"]
    assert fast.scales == (1.0,) and fast.init == "recolour" and fast.structure_weight > 0
    assert PRESETS["paper"].structure_weight == 0  # the paper's objective has no such term


def test_make_settings_takes_another_vocabulary():
    @dataclasses.dataclass(frozen=True)
    class More(Settings):
        grain: float = dataclasses.field(default=0.0)

    presets = {"only": More(grain=0.3, preset="only")}
    assert make_settings("only", presets=presets).grain == 0.3
    assert make_settings("only", presets=presets, grain=0.5).grain == 0.5
    with pytest.raises(InputError, match="preset: 'fast' is not one of only"):
        make_settings("fast", presets=presets)
    with pytest.raises(InputError, match="brushiness: unknown control"):
        make_settings("only", presets=presets, brushiness=1)
