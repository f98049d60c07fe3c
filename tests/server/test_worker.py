"""The worker runs a job as the socket thread accepted it: the settings validated there reach the
engine as they are, with the request's images and reporting wishes (no second validation)."""

from __future__ import annotations

import dataclasses

import numpy as np

from stylebridge.core import engine
from stylebridge.core.images import layer_from_array
from stylebridge.core.request import JobRequest
from stylebridge.core.settings import make_settings
from stylebridge.server.board import Job
from stylebridge.server.worker import run_job
from stylebridge.wire.messages import Result
from tests.support.images import STYLE, rgba


class RecordingEngine:
    """Gives the content back at once and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def stylize(self, content, styles, settings, **kwargs) -> engine.Result:
        self.calls.append((content, styles, settings, kwargs))
        return engine.Result(content, 3, 0.1, {"total": 1.0}, False, settings)


def test_the_engine_gets_the_accepted_settings_and_the_reporting_wishes():
    # a preset name no table knows: a worker that re-validated from (preset, controls) would fail
    settings = dataclasses.replace(make_settings("fast", steps=7), preset="accepted-once")
    content = rgba()
    request = JobRequest(content, [STYLE], settings, [1.0], None, 0.5, 96)
    recorder, sent = RecordingEngine(), []
    final, (blob,) = run_job(recorder, Job(b"peer", 1, request), lambda *m: sent.append(m))
    ((layer, styles, ran, kwargs),) = recorder.calls
    assert ran == settings and ran.preset == "accepted-once" and ran.steps == 7
    assert kwargs["preview_interval"] == 0.5 and kwargs["preview_side"] == 96
    assert kwargs["style_weights"] == [1.0] and len(styles) == 1
    assert np.array_equal(layer.rgb, layer_from_array(content).rgb)
    assert isinstance(final, Result) and final.type == "result" and final.steps == 3
    assert final.controls["steps"] == 7 and len(blob) == content.nbytes
