"""One optimiser stage (core/optimize.py) with the real weights: L-BFGS's evaluations, its
restarts, and what it keeps."""

from __future__ import annotations

import pytest
import torch

from stylebridge.core import optimize
from stylebridge.core.losses import Targets, content_targets, structure_target, style_grams
from stylebridge.core.optimize import run_stage
from stylebridge.core.settings import make_settings
from stylebridge.core.vgg import normalize


@pytest.fixture(scope="module")
def stage_inputs(engine):
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 48, 64, generator=gen)
    style = torch.rand(1, 3, 64, 64, generator=gen) ** 2  # darker, other statistics
    targets = Targets(
        content_targets(engine.model, normalize(content))[0],
        style_grams(engine.model, normalize(style)),
        structure_target(content, 4),
        4,
    )
    return content, targets


def count_passes(engine, run) -> int:
    calls = []
    hook = engine.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        run()
    finally:
        hook.remove()
    return len(calls)


def test_lbfgs_pays_no_pass_twice_for_one_point(engine, stage_inputs, monkeypatch):
    # torch's L-BFGS evaluates the point its last line search ended on again at the start of
    # every step(); the closure answers it from memory: one network pass saved per step
    content, targets = stage_inputs
    settings = make_settings("fast", optimizer="lbfgs", lr=1.0)
    steps = 12

    def passes() -> int:
        return count_passes(
            engine, lambda: run_stage(engine.model, content, targets, settings, steps)
        )

    remembered = passes()
    real = optimize._Closure.__init__
    monkeypatch.setattr(
        optimize._Closure, "__init__", lambda self, e, s, memo: real(self, e, s, memo=False)
    )
    assert remembered <= passes() - (steps - 1)


def test_lbfgs_keeps_descending_and_is_not_boxed(engine, stage_inputs):
    # issue 25: L-BFGS at 40 and 80 steps returned the same image: a clamp between its steps
    # broke its curvature pairs until no direction descended
    content, targets = stage_inputs
    settings = make_settings("fast", optimizer="lbfgs", lr=1.0)
    seen: list[float] = []
    result = run_stage(
        engine.model,
        content,
        targets,
        settings,
        30,
        on_step=lambda r: seen.append(r.losses["total"]),
    )
    assert seen[-1] < seen[9] < seen[0]
    assert result.image.min() >= 0 and result.image.max() <= 1  # the result is clamped
    assert len(set(seen[-10:])) == 10  # every late step still moved


def test_lbfgs_starts_afresh_when_no_direction_descends(engine, stage_inputs, monkeypatch):
    content, targets = stage_inputs
    settings = make_settings("fast", optimizer="lbfgs", lr=1.0)
    made = []
    real = optimize._lbfgs

    def spy(param, lr):
        opt = real(param, lr)
        if len(made) == 0:  # the first optimiser's steps move nothing: a stalled history
            monkeypatch.setattr(opt, "step", lambda closure: closure())
        made.append(opt)
        return opt

    monkeypatch.setattr(optimize, "_lbfgs", spy)
    seen: list[float] = []
    run_stage(
        engine.model,
        content,
        targets,
        settings,
        6,
        on_step=lambda r: seen.append(r.losses["total"]),
    )
    assert len(made) >= 2  # restarted after the step that moved nothing
    assert seen[-1] < seen[0]
