"""The CPU side and the batch plumbing, without Beam and without torch."""

import numpy as np
import pytest
from PIL import Image

from beam_pipelines.materialisation import replay
from beam_pipelines.records import Duplicate, Provenance, Rejection, Sample
from beam_pipelines.scoring.batch import ModelOutput, merge, split
from beam_pipelines.scoring.prepare import (
    RegionInputs,
    ScoringExample,
    batch_weight,
    canvas_cells,
    canvas_tiles,
    check_replay_compatible,
    key_of,
    letterbox,
)
from beam_pipelines.scoring.spec import ModelSpec

FILL = (123, 117, 104)
PROV = Provenance("in.jsonl", 7, "chunk")


def _spec(size: int) -> ModelSpec:
    return ModelSpec("m", size, 14, 32, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_letterbox_keeps_the_whole_box_and_pads_with_the_fill():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 0, 0), (20, 10, 180, 50))  # a 160x40 red box
    out = letterbox(image, (20, 10, 180, 50), 56, FILL)
    assert out.shape == (56, 56, 3) and out.dtype == np.uint8
    # 160x40 -> 56x14, centred: rows [21, 35) are the (all red) box, the rest is the fill
    assert (out[21:35] == (255, 0, 0)).all()
    assert (out[:21] == FILL).all() and (out[35:] == FILL).all()


def test_letterbox_of_a_square_box_is_a_plain_bicubic_resize():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    expected = np.asarray(image.crop((10, 5, 80, 75)).resize((56, 56), Image.Resampling.BICUBIC))
    assert np.array_equal(letterbox(image, (10, 5, 80, 75), 56, FILL), expected)


def test_letterbox_of_a_one_pixel_line():
    image = Image.new("RGB", (300, 10), (9, 9, 9))
    out = letterbox(image, (0, 3, 300, 4), 28, FILL)
    assert out.shape == (28, 28, 3) and (out[13] == 9).all() and (out[14] == FILL).all()


def test_canvas_tiles_are_row_major_and_reassemble():
    canvas = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    tiles, layout = canvas_tiles(canvas, 2)
    assert layout == (2, 3) and tiles.shape == (6, 2, 2, 3)
    assert np.array_equal(tiles[1], canvas[0:2, 2:4]) and np.array_equal(tiles[3], canvas[2:4, 0:2])
    rows = [np.concatenate(list(tiles[r * 3 : r * 3 + 3]), axis=1) for r in range(2)]
    assert np.array_equal(np.concatenate(rows, axis=0), canvas)


def test_canvas_cells_offset_the_unpadded_frame():
    config = replay.preset("vgr_llava_next_clip336")
    geo = replay.image_geometry((600, 400), config)  # unpadded rows start at 8 of the 48x48 canvas grid
    assert canvas_cells([4, 8, 15, 16], geo) == (4, 16, 15, 24)
    canvas_geo = replay.image_geometry((600, 400), replay.preset("vgr_llava_next_clip336", "canvas"))
    assert canvas_cells([4, 8, 15, 16], canvas_geo) == (4, 8, 15, 16)
    assert canvas_cells(None, geo) is None


def test_replay_features_need_the_presets_tile_and_patch():
    config = replay.preset("vgr_llava_next_clip336")
    check_replay_compatible(_spec(336), config)
    with pytest.raises(ValueError, match="336px tiles"):
        check_replay_compatible(_spec(56), config)


def _inputs(n: int, cuts=(), tiles: int = 0) -> RegionInputs:
    return RegionInputs(
        crops=np.full((n, 4, 4, 3), n, np.uint8),
        input_ids=np.zeros((n, 5), np.int64),
        attention_mask=np.ones((n, 5), np.int64),
        tiles=np.zeros((tiles, 4, 4, 3), np.uint8) if tiles else None,
        layout=(1, tiles) if tiles else None,
        cuts=tuple(cuts),
    )


def test_merge_then_split_keeps_every_result_with_its_sample_and_region():
    a = _inputs(2, cuts=[(1, (0, 0, 2, 2))], tiles=2)
    b = _inputs(3)
    c = _inputs(1, cuts=[(0, (1, 1, 3, 2))], tiles=1)
    batch = merge([a, b, c])
    assert batch.crops.shape[0] == 6 and batch.tiles.shape[0] == 3
    assert batch.layouts == ((1, 2), (1, 1)) and batch.cuts == ((0, (0, 0, 2, 2)), (1, (1, 1, 3, 2)))
    feats = (np.full((1, 2), 10, np.float16), np.full((1, 2), 20, np.float16))
    out = split(ModelOutput(np.arange(6, dtype=np.float32), feats), [a, b, c])
    assert [s.scores for s in out] == [(0.0, 1.0), (2.0, 3.0, 4.0), (5.0,)]
    assert out[0].features[0] is None and out[0].features[1][0, 0] == 10
    assert out[1].features == (None, None, None) and out[2].features[0][0, 0] == 20
    assert merge([b]).tiles is None


def test_batch_weight_counts_regions_capped_at_the_batch_size():
    sample = Sample("vgr-x", "vgr", "s", PROV, ("a.png",), "q", "a")
    assert batch_weight(("k", ScoringExample(sample, _inputs(3))), 8) == 3
    assert batch_weight(("k", ScoringExample(sample, _inputs(30))), 8) == 8
    assert batch_weight(("k", ScoringExample(sample)), 8) == 1


def test_keys_are_sample_ids_or_input_positions():
    sample = Sample("vgr-x", "vgr", "s", PROV, ("a.png",), "q", "a")
    assert key_of(sample) == "vgr-x"
    assert key_of(Duplicate("vgr", PROV, "vgr-y", PROV)) == "vgr-y"
    assert key_of(Rejection("vgr", PROV, ())) == "in.jsonl::7"
