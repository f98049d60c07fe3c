"""The engine end to end on small images with the real weights: controls, modes, cancel, time."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from stylebridge.core import progress as progress_module
from stylebridge.core.color import luminance, rgb_to_yiq
from stylebridge.core.engine import initial_image
from stylebridge.core.errors import InputError
from stylebridge.core.images import Layer, layer_from_array, layer_to_array, load_image
from stylebridge.core.losses import balance_factor
from stylebridge.core.optimize import StepReport
from stylebridge.core.settings import PRESETS, make_settings

SMALL = {"size": 64, "style_size": 64, "steps": 6}


def layer(h=48, w=64, seed=0, alpha=False, gray=False, depth=8) -> Layer:
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(3, h, w, generator=gen)
    if gray:
        rgb = rgb.mean(0, keepdim=True).expand(3, -1, -1).contiguous()
    a = torch.rand(1, h, w, generator=gen).numpy() if alpha else None
    return Layer(rgb.numpy(), a, gray, depth)


@pytest.fixture(scope="module")
def style(assets):
    return load_image(assets.DEFAULT_STYLE)


def test_fast_preset_lowers_the_paper_loss(engine, style, assets):
    content = load_image(assets.DEFAULT_CONTENT)
    seen = []
    result = engine.stylize(
        content,
        [style],
        make_settings("fast", size=160, steps=20, refine_steps=0, scales=(0.5, 1.0)),
        on_progress=seen.append,
    )
    assert result.layer.size == content.size  # full size back, never distorted
    assert not result.cancelled and result.steps == 20
    assert seen[0].stage == 1 and seen[-1].stage == 2  # coarse to fine
    last_stage = [p.losses["total"] for p in seen if p.stage == 2]
    assert result.losses["total"] < last_stage[0] / 2
    assert seen[-1].eta == pytest.approx(0, abs=1.0)
    assert all(p.step == i + 1 for i, p in enumerate(seen))


def test_result_keeps_size_alpha_grayscale_and_depth(engine, style):
    for content in (layer(alpha=True), layer(gray=True), layer(depth=16, alpha=True)):
        out = engine.stylize(content, [style], make_settings("fast", **SMALL)).layer
        assert out.size == content.size
        assert out.grayscale == content.grayscale and out.bit_depth == content.bit_depth
        if content.alpha is not None:
            assert np.array_equal(out.alpha, content.alpha)  # untouched
        if content.grayscale:
            assert np.array_equal(out.rgb[0], out.rgb[1]) and np.array_equal(out.rgb[1], out.rgb[2])
        assert not np.array_equal(out.rgb, content.rgb)


def test_strength_zero_returns_the_content(engine, style):
    content = layer()
    out = engine.stylize(content, [style], make_settings("fast", strength=0.0, **SMALL))
    assert np.array_equal(out.layer.rgb, content.rgb) and out.steps == 0


def test_strength_scales_the_style(engine, style):
    content = layer()
    outs = [
        engine.stylize(content, [style], make_settings("fast", strength=s, **SMALL)).layer.rgb
        for s in (0.25, 1.0)
    ]
    weak, strong = (np.abs(o - content.rgb).mean() for o in outs)
    assert weak < strong


def test_deterministic_on_cpu_and_seed_matters_for_noise(engine, style):
    content = layer()

    def run(**kw):
        return engine.stylize(content, [style], make_settings("fast", **{**SMALL, **kw})).layer.rgb

    assert np.array_equal(run(seed=3), run(seed=3))
    assert np.array_equal(run(init="noise", seed=1), run(init="noise", seed=1))
    assert not np.array_equal(run(init="noise", seed=1), run(init="noise", seed=2))


def test_cancel_takes_effect_within_one_step_and_returns_best(engine, style):
    steps_seen = []
    result = engine.stylize(
        layer(),
        [style],
        make_settings("fast", size=64, steps=500),
        on_progress=lambda p: steps_seen.append(p.step),
        should_stop=lambda: len(steps_seen) >= 3,
    )
    assert result.cancelled and result.steps == 3 and steps_seen == [1, 2, 3]
    assert result.layer.size == (64, 48)


def test_time_budget_returns_within_budget(engine, style):
    # warm: the first step at a new size pays for kernel selection (seconds on a loaded machine)
    engine.stylize(layer(), [style], make_settings("fast", size=64, steps=2))
    start = time.monotonic()
    result = engine.stylize(
        layer(), [style], make_settings("fast", size=64, steps=3, time_budget=3.0)
    )
    elapsed = time.monotonic() - start
    assert elapsed < 3.0 + 5.0  # without the budget it would run 10**9 steps; slack for load
    # the budget, not the step count, decides: 3 steps of 64 px take ~0.1 s on idle cores, and
    # the run went on to the budget (counting steps instead failed on a machine loaded to 6/2)
    assert elapsed >= 3.0 - 0.5 and result.steps >= 1
    assert not result.cancelled


def test_preview_frames_on_request(engine, style):
    frames = []
    engine.stylize(
        layer(),
        [style],
        make_settings("fast", **SMALL),
        preview_interval=0.0,
        on_progress=lambda p: frames.append(p.preview),
    )
    # what a client shows: 8-bit h x w x 3 frames, straight from the engine
    assert frames and all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in frames)
    none = []
    engine.stylize(
        layer(),
        [style],
        make_settings("fast", **SMALL),
        on_progress=lambda p: none.append(p.preview),
    )
    assert none and all(f is None for f in none)


def test_luminance_preservation_keeps_content_chroma(engine, style):
    content = layer()
    out = engine.stylize(
        content, [style], make_settings("fast", preserve_colors="luminance", **SMALL)
    ).layer
    out_rgb, in_rgb = torch.from_numpy(out.rgb), torch.from_numpy(content.rgb)
    yiq_out, yiq_in = rgb_to_yiq(out_rgb), rgb_to_yiq(in_rgb)
    # chroma comes from the content (up to clamping), luminance changed
    assert (yiq_out[1:] - yiq_in[1:]).abs().median() < 0.01
    assert (luminance(out_rgb) - luminance(in_rgb)).abs().mean() > 0.005


def test_histogram_matching_moves_style_colours_to_the_content():
    from stylebridge.core.color import match_color_statistics

    gen = torch.Generator().manual_seed(0)
    style = torch.rand(3, 40, 40, generator=gen) * torch.tensor([1.0, 0.2, 0.1]).view(3, 1, 1)
    content = torch.rand(3, 40, 40, generator=gen) * torch.tensor([0.1, 0.3, 0.9]).view(3, 1, 1)
    matched = match_color_statistics(style, content)
    assert torch.allclose(matched.mean((1, 2)), content.mean((1, 2)), atol=0.03)


def test_several_styles_blend(engine, style, assets):
    other = load_image(assets.BUILTIN_STYLES["the_scream"])
    content = layer()
    s = make_settings("fast", **SMALL)
    a = engine.stylize(content, [style, other], s, style_weights=[1, 0]).layer.rgb
    b = engine.stylize(content, [style], s).layer.rgb
    c = engine.stylize(content, [style, other], s, style_weights=[1, 1]).layer.rgb
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    ("controls", "field"),
    [
        ({"strength": 1.5}, "strength"),
        ({"preserve_colors": "sepia"}, "preserve_colors"),
        ({"size": 8}, "size"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"time_budget": -1}, "time_budget"),
        ({"init": "zeros"}, "init"),
        ({"device": "tpu"}, "device"),
        ({"style_weight": float("nan")}, "style_weight"),
        ({"scales": (1.0, 0.5)}, "scales"),
        ({"colour": 1}, "colour"),
        ({"seed": "x"}, "seed"),
        ({"style_size": 4096, "style_scale": 4}, "style_scale"),  # a 16384 px style
    ],
)
def test_bad_controls_name_the_field(controls, field):
    with pytest.raises(InputError, match=f"^{field}: "):
        make_settings("fast", **controls)


def test_unknown_preset_and_bad_style_weights(engine, style):
    with pytest.raises(InputError, match="preset"):
        make_settings("turbo")
    with pytest.raises(InputError, match="style_weights"):
        engine.stylize(layer(), [style], make_settings("fast", **SMALL), style_weights=[1, 2])
    with pytest.raises(InputError, match="styles"):
        engine.stylize(layer(), [], make_settings("fast", **SMALL))


def test_presets_share_the_papers_terms_and_the_product_presets_add_structure():
    objective = {(p.content_weight, p.style_weight, p.style_size) for p in PRESETS.values()}
    assert objective == {(1.0, 1e6, 256)}
    assert PRESETS["paper"].structure_weight == 0  # the yardstick stays the paper's objective
    assert all(PRESETS[p].structure_weight > 0 for p in ("fast", "quality"))


def test_balance_zero_returns_the_content_and_one_drops_the_content_side(engine, style):
    content = layer()
    out = engine.stylize(content, [style], make_settings("fast", balance=0.0, **SMALL))
    assert np.array_equal(out.layer.rgb, content.rgb) and out.steps == 0
    assert balance_factor(1.0) == 0 and balance_factor(0.5) == 1
    assert balance_factor(0.25) > 1 > balance_factor(0.75)


def test_values_beyond_0_1_come_back_at_balance_0_and_ride_over_the_style(engine, style):
    source = layer().rgb.transpose(1, 2, 0).copy()
    source[:8, :8] = 4.0  # an HDR highlight
    source[-8:, -8:, 1] = -0.2  # a colour outside sRGB
    content = layer_from_array(source)
    out = engine.stylize(content, [style], make_settings("fast", balance=0.0, **SMALL)).layer
    assert np.array_equal(layer_to_array(out, np.float32), source)
    out = engine.stylize(content, [style], make_settings("fast", **SMALL)).layer
    assert out.rgb.min() >= 0 and out.rgb.max() <= 1  # the engine worked in [0, 1]
    floats = layer_to_array(out, np.float32)
    excess = floats - out.rgb.transpose(1, 2, 0)  # the stylised base with the excess over it
    assert np.allclose(excess, content.excess.transpose(1, 2, 0), rtol=0, atol=1e-6)
    assert floats[:8, :8].min() >= 3.0  # still a highlight, over the stylised base
    assert layer_to_array(out, np.uint16)[:8, :8].min() == 65535  # integers clip


def test_balance_trades_structure_against_style_monotonically(engine, style, assets):
    """The control reaches the objective: as it rises the result holds less of the content's
    layout (its structure term rises) and takes more of the painting (its style term falls;
    at this tiny size it stops falling above 0.5, so the top end may only hold level: the
    384 px sweep in docs/quality.md measures both axes at five settings)."""
    content = load_image(assets.DEFAULT_CONTENT)
    terms = []
    for b in (0.1, 0.5, 0.9):
        result = engine.stylize(
            content, [style], make_settings("fast", balance=b, size=64, style_size=64, steps=60)
        )
        terms.append((result.losses["structure"], result.losses["style"]))
    (s1, t1), (s2, t2), (s3, t3) = terms
    assert s1 < s2 < s3
    assert t1 > t2 and t3 <= t2 * 1.01


def test_recolour_start_has_the_styles_colours_and_the_contents_luma():
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 40, 40, generator=gen) * 0.5 + 0.25
    blue = torch.rand(1, 3, 30, 30, generator=gen) * torch.tensor([0.1, 0.3, 0.9]).view(3, 1, 1)
    start = initial_image(content, "recolour", 0, [blue], [1.0])
    # the luma is the content's, up to what clamping into [0, 1] takes off a few pixels
    assert (luminance(start) - luminance(content)).abs().mean() < 0.01
    chroma = rgb_to_yiq(start)[:, 1:].mean((2, 3))
    torch.testing.assert_close(chroma, rgb_to_yiq(blue)[:, 1:].mean((2, 3)), atol=0.03, rtol=0)


def test_structure_term_is_reported_and_absent_from_the_paper(engine, style):
    fast, paper = [], []
    engine.stylize(layer(), [style], make_settings("fast", **SMALL), on_progress=fast.append)
    engine.stylize(layer(), [style], make_settings("paper", **SMALL), on_progress=paper.append)
    assert "structure" in fast[-1].losses and "structure" not in paper[-1].losses


def test_lbfgs_optimizer_option_runs_and_lowers_the_loss(engine, style):
    seen = []
    result = engine.stylize(
        layer(),
        [style],
        make_settings("fast", optimizer="lbfgs", lr=1.0, **SMALL),
        on_progress=seen.append,
    )
    assert result.steps == SMALL["steps"]
    assert result.losses["total"] < seen[0].losses["total"]


@pytest.mark.parametrize(("h", "w"), [(48, 13), (5, 5), (40, 800), (900, 30)])
def test_small_and_thin_layers_are_worked_larger_and_come_back_at_their_size(engine, style, h, w):
    # VGG pools 4 times before relu5_3: a short side under 32 px used to crash the network
    result = engine.stylize(layer(h, w), [style], make_settings("fast", **SMALL))
    assert result.layer.rgb.shape == (3, h, w) and result.steps >= SMALL["steps"]


def test_a_layer_or_style_too_thin_to_stylise_is_refused_by_name(engine, style):
    with pytest.raises(InputError, match=r"content: 6500x100 px is too thin .*64:1"):
        engine.stylize(layer(100, 6500), [style], make_settings("fast", **SMALL))
    with pytest.raises(InputError, match=r"styles.1: 700x10 px is too thin"):
        engine.stylize(layer(), [style, layer(10, 700)], make_settings("fast", **SMALL))


def test_eta_waits_for_three_steps_and_is_not_thrown_by_one_slow_one(monkeypatch):
    """The first step at a new shape pays for kernel selection: no ETA until three steps are
    timed, and then the mean of the recent steps less the slowest one."""
    clock = iter([0.0, 5.0, 6.0, 7.0, 8.0])  # begin_stage, then a 5 s step and 1 s steps
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    seen = []
    tracker = progress_module.ProgressTracker(0.0, [10.0], [10], None, seen.append, None)
    tracker.begin_stage(0, 1.0, 64, 48)
    for step in range(1, 5):
        tracker.step(StepReport(step, {"total": 1.0}, lambda: torch.zeros(1, 3, 48, 64)))
    assert [p.eta for p in seen[:2]] == [None, None]
    assert seen[2].eta == pytest.approx(7 * 1.0)  # 7 steps left at 1 s, the 5 s one left out
    assert seen[3].eta == pytest.approx(6 * 1.0)
