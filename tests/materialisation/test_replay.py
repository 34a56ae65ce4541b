"""Replay geometry against hand-computed LLaVA-NeXT cases, plus properties over random boxes and images."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from beam_pipelines.materialisation import replay

DEFAULT = replay.preset("vgr_llava_next_clip336")
CANVAS = replay.preset("vgr_llava_next_clip336", "canvas")


def test_pinpoints_order_and_count():
    points = DEFAULT.pinpoints
    assert points[:3] == [(336, 336), (336, 672), (336, 1008)]
    assert all((w // 336) * (h // 336) <= 20 for w, h in points)
    assert (1344, 1680) in points and (1680, 1344) in points and (2016, 1344) not in points


def test_issue_example_600x400():
    geo = replay.image_geometry((600, 400), DEFAULT)
    assert geo.best == (672, 672) and geo.resized == (672, 449) and geo.paste == (0, 111)
    # unpad on the 48x48 grid: int(400 * 48/600) = 32 rows kept, padding 8
    assert geo.cells == (0, 48, 8, 40)
    assert geo.base_tokens == 144 + 36 * 4


def test_exact_pinpoint_size_has_no_padding():
    geo = replay.image_geometry((672, 336), DEFAULT)
    assert (geo.best, geo.resized, geo.paste, geo.cells) == ((672, 336), (672, 336), (0, 0), (0, 48, 0, 24))


def test_unpadded_frame_grid_box_count_and_indices():
    geo = replay.image_geometry((600, 400), DEFAULT)  # grid 48 x 32
    box = replay.grid_box((0.1, 0.25, 0.3, 0.5), geo, DEFAULT)
    assert box == (4, 8, 15, 16)  # 4.8 -> 4, 8.0 -> 8, 14.4 -> 15, 16.0 -> 16
    assert replay.token_count(box, DEFAULT) == 6 * 4
    idx = replay.token_indices(box, 48)
    assert len(idx) == 11 * 8 and idx[0] == 8 * 48 + 4 and idx[-1] == 15 * 48 + 14


def test_canvas_frame_includes_the_paste_offset():
    geo = replay.image_geometry((600, 400), CANVAS)
    assert geo.cells == (0, 48, 0, 48)
    box = replay.grid_box((0.0, 0.0, 1.0, 1.0), geo, CANVAS)
    # rows: 111/14 = 7.93 -> 7, (111 + 449)/14 = 40 -> 40
    assert box == (0, 7, 48, 40)


def test_edges_and_one_cell_boxes_are_clamped():
    geo = replay.image_geometry((600, 400), DEFAULT)
    assert replay.grid_box((1.0, 1.0, 1.0, 1.0), geo, DEFAULT) == (47, 31, 48, 32)
    assert replay.grid_box((0.5, 0.5, 0.5, 0.5), geo, DEFAULT) == (24, 16, 25, 17)
    assert replay.token_count((24, 16, 25, 17), DEFAULT) == 1


def test_extreme_aspect_ratio_keeps_no_row():
    geo = replay.image_geometry((20000, 10), DEFAULT)
    assert min(geo.grid) <= 0
    assert replay.grid_box((0.1, 0.1, 0.2, 0.9), geo, DEFAULT) is None


def test_non_square_portrait_image():
    geo = replay.image_geometry((1700, 2200), DEFAULT)
    assert geo.best[0] % 336 == 0 and geo.best[1] % 336 == 0 and geo.best[1] >= geo.best[0]
    c0, c1, r0, r1 = geo.cells
    assert r0 == 0 and r1 == geo.best[1] // 14 and 0 < c0 < c1 < geo.best[0] // 14


def test_replay_pixels_cut_the_padded_canvas():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (400, 600, 3), dtype=np.uint8))
    geo = replay.image_geometry((600, 400), DEFAULT)
    canvas = replay.canvas(img, geo)
    assert canvas.shape == (672, 672, 3) and not canvas[:111].any()
    box = (4, 8, 15, 16)
    pixels = replay.replay_pixels(canvas, box, geo, 14)
    assert pixels.shape == (8 * 14, 11 * 14, 3)
    assert np.array_equal(pixels, canvas[(8 + 8) * 14 : (8 + 16) * 14, 4 * 14 : 15 * 14])


def test_unknown_preset_or_frame_is_a_clear_error():
    with pytest.raises(ValueError, match="replay_preset"):
        replay.preset("nope")
    with pytest.raises(ValueError, match="replay_frame"):
        replay.preset("vgr_llava_next_clip336", "diagonal")


coords = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(1, 5000),
    h=st.integers(1, 5000),
    xs=st.tuples(coords, coords),
    ys=st.tuples(coords, coords),
    frame=st.sampled_from(replay.FRAMES),
)
def test_indices_stay_in_grid_row_major_unique_and_count_matches(w, h, xs, ys, frame):
    config = replay.preset("vgr_llava_next_clip336", frame)
    geo = replay.image_geometry((w, h), config)
    box = replay.grid_box((min(xs), min(ys), max(xs), max(ys)), geo, config)
    if box is None:
        assert min(geo.grid) <= 0
        return
    grid_w, grid_h = geo.grid
    u1, v1, u2, v2 = box
    assert 0 <= u1 < u2 <= grid_w and 0 <= v1 < v2 <= grid_h
    idx = replay.token_indices(box, grid_w)
    assert idx.dtype == np.int32 and len(idx) == (u2 - u1) * (v2 - v1)
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < grid_w * grid_h
    pooled = {((i % grid_w - u1) // 2, (i // grid_w - v1) // 2) for i in idx}
    assert replay.token_count(box, config) == len(pooled)
