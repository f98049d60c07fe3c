"""Full-resolution refinement in tiles: coverage, seamless blending, and the engine's use."""

from __future__ import annotations

import itertools

import pytest
import torch

from stylebridge.core.images import Layer, load_image
from stylebridge.core.losses import Targets, content_target, style_grams
from stylebridge.core.optimize import run_stage
from stylebridge.core.plan import refinement_tiles
from stylebridge.core.resize import gaussian_blur, resize_to
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


def test_refinement_only_for_layers_well_above_the_working_size():
    s = make_settings("fast", refine_steps=4, tile_size=128, tile_overlap=16)
    assert refinement_tiles(s, 400, 300, 384) == []  # < 1.25x the working size
    assert len(refinement_tiles(s, 600, 200, 384)) == 6 * 2  # rows x columns
    assert refinement_tiles(make_settings("paper"), 4000, 3000, 384) == []  # the recipe, exact


def test_engine_refines_a_large_layer_tile_by_tile_with_truthful_progress(engine, style):
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
    tiles = len(tile_boxes(200, 330, 128, 16))  # 2 x 3
    assert result.steps == 6 + 3 * tiles and not result.cancelled
    assert result.layer.size == (330, 200)
    assert [p.step for p in seen] == list(range(1, result.steps + 1))
    assert {p.total_steps for p in seen} == {result.steps}  # the plan held from the first step
    assert seen[-1].stage == seen[-1].stages == 3  # two scales, then the tiles
    assert max(max(p.width, p.height) for p in seen) <= 128  # memory bounded by the tile
    assert seen[-1].eta == pytest.approx(0, abs=1.0)


def test_cancel_during_refinement_returns_the_image_so_far(engine, style):
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
    # the tile stage skips the last scoring pass: one network pass per step, not steps + 1
    gen = torch.Generator().manual_seed(2)
    tile, style_pixels = torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64)
    targets = Targets(
        content_target(engine.model, normalize(tile)),
        style_grams(engine.model, normalize(style_pixels)),
    )
    settings = make_settings("fast")
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


def test_the_tiles_start_from_the_working_result_smoothed_and_take_smaller_steps(
    engine, style, monkeypatch
):
    # the working size's pixel grain is smoothed away before the upsample (TILE_START_BLUR) and
    # the tiles' steps are a fraction of the stages' (TILE_LR_FACTOR): docs/benchmarks.md
    from stylebridge.core import engine as engine_module

    calls: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # start, result, lr of each stage

    real = engine_module.run_stage

    def spy(model, init, targets, settings, steps, **kwargs):
        result = real(model, init, targets, settings, steps, **kwargs)
        calls.append((init.clone(), result.image, settings.lr))
        return result

    monkeypatch.setattr(engine_module, "run_stage", spy)
    content = Layer(torch.rand(3, 200, 330, generator=torch.Generator().manual_seed(3)).numpy())
    settings = make_settings(
        "fast", size=128, steps=2, refine_steps=1, tile_size=128, tile_overlap=16, style_size=64
    )
    engine.stylize(content, [style], settings)
    assert len(calls) == 1 + len(tile_boxes(200, 330, 128, 16))  # one scale, then the tiles
    working, first_tile = calls[0][1], calls[1][0]
    smoothed = gaussian_blur(working, engine_module.TILE_START_BLUR)
    expected = resize_to(smoothed, (200, 330))[..., :128, :128]
    assert torch.allclose(first_tile, expected, atol=1e-6)
    assert not torch.allclose(first_tile, resize_to(working, (200, 330))[..., :128, :128])
    assert calls[0][2] == settings.lr  # the working size as before
    assert {lr for _, _, lr in calls[1:]} == {settings.lr * engine_module.TILE_LR_FACTOR}
    assert engine_module.TILE_LR_FACTOR < 1
    # and the smoothing only takes grain away: a flat image stays as it was
    flat = torch.full((1, 3, 20, 30), 0.25)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
