"""Pixels kept as the faster decoder's array crop, thumbnail and encode exactly as the Pillow image made from them."""

import numpy as np
import pytest

from beam_pipelines.materialisation.crops import CropSettings, encode
from beam_pipelines.materialisation.images import decode
from beam_pipelines.materialisation.pixels import crop_of, rgb_image
from beam_pipelines.materialisation.replay import DEFAULT_PRESET, canvas, image_geometry, preset
from beam_pipelines.materialisation.thumbnails import thumbnail
from tests.materialisation.test_decoders import CORPUS

BOXES = [(0, 0, 1, 1), (3, 5, 40, 30), (0, 0, 17, 9), (10, 2, 17, 9)]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_kept_as_an_array_where_the_faster_decoder_took_the_file_and_pillows_elsewhere(name):
    data, fast = CORPUS[name]
    kept = decode(data, name, rgb=True, array=True)
    assert isinstance(kept, np.ndarray) == fast
    assert np.array_equal(np.asarray(rgb_image(kept)), np.asarray(decode(data, name, rgb=True, fast=False)))


@pytest.mark.parametrize("name", [n for n, (_, fast) in sorted(CORPUS.items()) if fast])
def test_a_crop_of_the_array_is_the_crop_of_its_image_down_to_the_encoded_bytes(name):
    data, _ = CORPUS[name]
    array = decode(data, name, rgb=True, array=True)
    image = rgb_image(array)
    height, width = array.shape[:2]
    for left, top, right, bottom in [*BOXES, (0, 0, width, height), (width - 1, height - 1, width, height)]:
        box = (min(left, width - 1), min(top, height - 1), min(right, width), min(bottom, height))
        ours, pillows = crop_of(array, box), image.crop(box)
        assert ours.mode == "RGB" and ours.size == pillows.size
        assert np.array_equal(np.asarray(ours), np.asarray(pillows)), box
        for lossless in (True, False):
            assert encode(ours, lossless, CropSettings()).data == encode(pillows, lossless, CropSettings()).data


def test_an_rgba_files_array_is_a_view_and_its_crops_are_still_rgb():
    data, _ = CORPUS["png rgba"]
    array = decode(data, "a.png", rgb=True, array=True)
    assert array.shape[2] == 3 and not array.flags.c_contiguous, "the alpha channel is left out without a copy"
    assert crop_of(array, (1, 1, 9, 7)).mode == "RGB" and rgb_image(array).mode == "RGB"


@pytest.mark.parametrize("name", ["png document", "png rgba", "png grey"])
def test_thumbnails_and_replay_canvases_of_the_array_are_those_of_its_image(name):
    array = decode(CORPUS[name][0], name, rgb=True, array=True)
    image = rgb_image(array)
    assert np.array_equal(np.asarray(thumbnail(array)), np.asarray(thumbnail(image)))
    geo = image_geometry((image.width, image.height), preset(DEFAULT_PRESET, "unpadded"))
    assert np.array_equal(canvas(array, geo), canvas(image, geo))
    assert rgb_image(image.convert("L")).mode == "RGB", "an image in another mode is converted"
