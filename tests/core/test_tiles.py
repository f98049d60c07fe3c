"""Full-resolution refinement in tiles: coverage, seamless blending, and the engine's use."""

from __future__ import annotations

import itertools

import pytest
import torch

from stylebridge.core.errors import InputError
from stylebridge.core.images import Layer, load_image
from stylebridge.core.losses import Targets, content_targets, style_grams
from stylebridge.core.optimize import run_stage
from stylebridge.core.plan import UPSCALE_RATIO, upper_stages
from stylebridge.core.resize import guided_upsample, resize_to
from stylebridge.core.settings import make_settings
from stylebridge.core.tiles import axis_starts, ramp, refine_in_tiles, seam_score, tile_boxes
from stylebridge.core.vgg import normalize


@pytest.fixture(scope="module")
def style(assets):
    return load_image(assets.DEFAULT_STYLE)


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 512, 64), (1000, 512, 64), (4000, 512, 64), (3000, 300, 0)],
)
def test_tiles_cover_the_axis_with_at_least_the_overlap(length, tile, overlap):
    starts = axis_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts))


def test_tile_boxes_are_raster_ordered_and_bounded_by_the_tile_size():
    boxes = tile_boxes(3000, 4000, 512, 64)
    assert len(boxes) == 7 * 9
    assert all(h <= 512 and w <= 512 for _, _, h, w in boxes)
    assert boxes == sorted(boxes)
    with pytest.raises(ValueError, match="overlap"):
        tile_boxes(100, 100, 64, 64)


def test_ramps_fade_in_over_earlier_tiles_and_out_towards_later_ones():
    boxes = tile_boxes(200, 200, 120, 40)  # 2 x 2 tiles, overlap 40
    alone = ramp(boxes[0], [], [])
    assert torch.equal(alone, torch.ones_like(alone))
    first = ramp(boxes[0], [], boxes[1:])[0, 0]  # fades out over the overlap, right and down
    assert torch.all(first[:80, :80] == 1) and first[0, -1] < 0.05 and first[-1, 0] < 0.05
    assert torch.all(first[0, 81:] < first[0, 80:-1])
    last = ramp(boxes[3], boxes[:3], [])[0, 0]  # fades in over the overlap, left and top
    assert last[0, 0] < 0.01 and torch.all(last[40:, 40:] == 1)
    assert torch.all(last[50, 1:40] > last[50, :39])


def test_blended_tiles_leave_no_step_where_neighbours_disagree():
    # each tile's "optimisation" paints a different flat value: blending must not step
    image = torch.zeros(1, 3, 300, 400)
    boxes = tile_boxes(300, 400, 160, 48)

    def paint(tile, box, index):
        return torch.full_like(tile, (index % 3) / 10), False

    assert refine_in_tiles(image, boxes, paint) is False
    jumps_x = (image[..., :, 1:] - image[..., :, :-1]).abs().max()
    jumps_y = (image[..., 1:, :] - image[..., :-1, :]).abs().max()
    # spread over the overlap
    assert jumps_x <= 0.2 * 2 / 48 + 1e-4 and jumps_y <= 0.2 * 2 / 48 + 1e-4
    # without the ramps, the same tiles make hard seams: the score sees them
    hard = torch.zeros(1, 3, 300, 400)
    for index, (t, lft, h, w) in enumerate(boxes):
        hard[..., t : t + h, lft : lft + w] = (index % 3) / 10
    noise = 0.1 * torch.rand(hard.shape, generator=torch.Generator().manual_seed(0))
    hard += noise
    image += noise
    assert seam_score(hard, boxes) > 1.5 > 1.1 > seam_score(image, boxes)


def test_stop_request_keeps_the_tiles_done_so_far():
    image = torch.zeros(1, 3, 100, 100)
    boxes = tile_boxes(100, 100, 60, 10)
    calls = []

    def paint(tile, box, index):
        calls.append(index)
        return torch.ones_like(tile), index == 1

    assert refine_in_tiles(image, boxes, paint) is True
    assert calls == [0, 1] and image[0, 0, 0, 0] == 1 and image[0, 0, -1, -1] == 0


def test_upper_stages_only_for_layers_well_above_the_working_size():
    s = make_settings("fast", refine_steps=4, tile_size=128, tile_overlap=16)
    assert upper_stages(s, 400, 300, 384) == []  # < 1.25x the working size
    assert upper_stages(make_settings("paper"), 4000, 3000, 384) == []  # the recipe, exact
    stages = upper_stages(s, 600, 200, 384)
    assert [u.side for u in stages] == [600] and (stages[0].height, stages[0].width) == (600, 200)
    assert len(stages[0].tiles) == 6 * 2  # rows x columns of 128 px tiles


def test_upper_stages_climb_at_most_upscale_ratio_at_a_time_and_finer_ones_take_fewer_steps():
    s = make_settings("fast", refine_steps=4)
    stages = upper_stages(s, 3000, 4000, 384)
    sides = [384, *(u.side for u in stages)]
    assert sides[-1] == 4000 and (stages[-1].height, stages[-1].width) == (3000, 4000)
    assert all(1 < b / a <= UPSCALE_RATIO + 1e-9 for a, b in itertools.pairwise(sides))
    # the fewest rungs that fit: 4000 / 384 = 10.4, over UPSCALE_RATIO's square, under its cube
    assert UPSCALE_RATIO ** (len(stages) - 1) < 4000 / 384 <= UPSCALE_RATIO ** len(stages)
    assert [u.steps for u in stages] == sorted((u.steps for u in stages), reverse=True)
    assert stages[-1].steps == 4
    assert all(max(t.height, t.width) <= s.tile_size for u in stages for t in u.tiles)


def test_engine_paints_a_large_layer_stage_by_stage_with_truthful_progress(engine, style):
    gen = torch.Generator().manual_seed(0)
    content = Layer(torch.rand(3, 200, 330, generator=gen).numpy())
    seen = []
    settings = make_settings(
        "fast",
        size=128,
        steps=6,
        refine_steps=3,
        tile_size=128,
        tile_overlap=16,
        style_size=64,
        scales=(0.5, 1.0),
    )
    result = engine.stylize(content, [style], settings, on_progress=seen.append)
    stages = upper_stages(settings, 200, 330, 128)
    assert [u.side for u in stages] == [206, 330]
    assert result.steps == 6 + sum(u.steps * len(u.tiles) for u in stages)
    assert not result.cancelled and result.layer.size == (330, 200)
    assert [p.step for p in seen] == list(range(1, result.steps + 1))
    assert {p.total_steps for p in seen} == {result.steps}  # the plan held from the first step
    assert seen[-1].stage == seen[-1].stages == 4  # two scales, then two upper stages
    assert max(max(p.width, p.height) for p in seen) <= 128  # memory bounded by the tile
    assert seen[-1].eta == pytest.approx(0, abs=1.0)


def test_cancel_during_an_upper_stage_returns_the_image_so_far(engine, style):
    content = Layer(torch.rand(3, 200, 330, generator=torch.Generator().manual_seed(1)).numpy())
    settings = make_settings(
        "fast",
        size=128,
        steps=4,
        refine_steps=5,
        tile_size=128,
        tile_overlap=16,
        style_size=64,
        scales=(0.5, 1.0),
    )
    seen = []
    result = engine.stylize(
        content, [style], settings, on_progress=seen.append, should_stop=lambda: len(seen) >= 9
    )
    assert result.cancelled and result.steps == 9 and seen[-1].stage == 3
    assert result.layer.size == (330, 200)


def test_a_tile_returns_its_end_point_without_a_scoring_forward(engine):
    # an upper stage's tiles (Adam) skip the last scoring pass: one network pass per step,
    # not steps + 1
    gen = torch.Generator().manual_seed(2)
    tile, style_pixels = torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64)
    targets = Targets(
        content_targets(engine.model, normalize(tile))[0],
        style_grams(engine.model, normalize(style_pixels)),
    )
    settings = make_settings("fast", optimizer="adam", lr=0.03)
    calls = []
    hook = engine.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        scored = run_stage(engine.model, tile, targets, settings, 3)
        passes_scored, calls[:] = len(calls), []
        end = run_stage(engine.model, tile, targets, settings, 3, score_end=False)
    finally:
        hook.remove()
    assert (passes_scored, len(calls)) == (4, 3)
    assert end.steps == 3 and not torch.equal(end.image, tile)
    # the end point is the image the scored run reached and kept (its loss was the lowest)
    assert torch.allclose(end.image, scored.image)


def test_an_upper_stage_starts_from_the_stage_below_with_the_contents_detail_and_paints_it(
    engine, style, monkeypatch
):
    # issue 25: the old tiles started from a blurred upsample and left a blur at 1:1; an upper
    # stage starts from the stage below resized up with the content's own finer luma detail,
    # then paints texture with a network cut at conv3_1 (a third of a full pass)
    from stylebridge.core import engine as engine_module

    calls: list[tuple] = []  # start, result, settings, targets, passes through conv3_2
    deepest: list[int] = []
    real = engine_module.run_stage

    def spy(model, init, targets, settings, steps, **kwargs):
        before = len(deepest)
        result = real(model, init, targets, settings, steps, **kwargs)
        calls.append((init.clone(), result.image, settings, targets, len(deepest) - before))
        return result

    monkeypatch.setattr(engine_module, "run_stage", spy)
    hook = engine.model.layers[11].register_forward_hook(lambda *_: deepest.append(1))
    content = Layer(torch.rand(3, 96, 160, generator=torch.Generator().manual_seed(3)).numpy())
    settings = make_settings(
        "fast", size=96, steps=2, refine_steps=1, tile_size=256, tile_overlap=16, style_size=64
    )
    try:
        engine.stylize(content, [style], settings)
    finally:
        hook.remove()
    assert [u.side for u in upper_stages(settings, 96, 160, 96)] == [160]
    assert len(calls) == 2  # the working size, then one upper stage in one tile
    working, (start, painted, texture, targets) = calls[0][1], calls[1][:4]
    full = torch.from_numpy(content.rgb)[None]
    assert torch.allclose(start, guided_upsample(working, full), atol=1e-6)
    # the content's detail is in the start: closer to the content than the plain upsample
    plain = resize_to(working, (96, 160))
    assert (start - full).abs().mean() < (plain - full).abs().mean()
    assert not torch.equal(painted, start)
    assert texture.optimizer == "adam" and targets.content is None
    assert targets.style_layers == engine_module.TEXTURE_LAYERS
    # layer 11 (conv3_2) runs in the working size's passes, never in the upper stage's
    assert calls[0][4] > 0 and calls[1][4] == 0


def test_guided_upsample_adds_the_contents_luma_detail_and_keeps_the_colours():
    gen = torch.Generator().manual_seed(4)
    content = torch.rand(1, 3, 64, 96, generator=gen)
    small = torch.rand(1, 3, 16, 24, generator=gen)
    out = guided_upsample(small, content)
    plain = resize_to(small, (64, 96))
    # what was added is the same in R, G and B: luma only, the chroma is the small image's
    added = out - plain
    inside = (out > 0.01) & (out < 0.99) & (plain > 0.01) & (plain < 0.99)
    spread = (added.max(1).values - added.min(1).values)[inside.all(1)]
    assert spread.abs().max() < 1e-5
    assert added[inside].abs().mean() > 0.05  # and something was added
    # a content with no detail (one flat colour) adds nothing; gain 0 adds nothing either
    flat = torch.full((1, 3, 64, 96), 0.4)
    torch.testing.assert_close(guided_upsample(small, flat), plain.clamp(0, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        guided_upsample(small, content, gain=0.0), plain.clamp(0, 1), atol=1e-6, rtol=0
    )


LARGE_SMALL = dict(size=64, steps=3, refine_steps=2, tile_size=96, tile_overlap=16, style_size=64)


def test_a_black_grey_large_layer_with_an_alpha_hole_comes_back_whole_at_its_size(engine, style):
    # no detail to add (the guided upsample's detail is zero), no colour and pixels with no
    # alpha: the upper stages still paint, finite and in range, and the alpha comes back as it was
    h, w = 150, 230
    alpha = torch.ones(1, h, w)
    alpha[:, 40:110, 60:170] = 0.0
    content = Layer(torch.zeros(3, h, w).numpy(), alpha.numpy(), True, 8)
    result = engine.stylize(content, [style], make_settings("fast", **LARGE_SMALL))
    out = torch.as_tensor(result.layer.rgb)
    assert result.layer.size == (w, h) and result.layer.grayscale
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert result.steps > LARGE_SMALL["steps"]  # the upper stages ran
    assert torch.equal(torch.as_tensor(result.layer.alpha), alpha)
    assert out.mean() > 0.02  # the painting's marks, not a black layer back


def test_a_one_pixel_wide_large_layer_is_refused_in_one_sentence(engine, style):
    with pytest.raises(InputError, match=r"^content: 1x3000 px is too thin to stylise[^\n]*$"):
        engine.stylize(
            Layer(torch.rand(3, 3000, 1).numpy()), [style], make_settings("fast", **LARGE_SMALL)
        )
