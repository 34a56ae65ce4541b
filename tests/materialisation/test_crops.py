"""Crops: cut from the clamped pixel box, lossless PNG crops of lossless sources, JPEG of JPEG sources."""

import io

import numpy as np
import pytest
from PIL import Image

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.materialisation.transforms import _ReplayFn
from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Region, RejectedError, Sample


def sample_with(image: Image.Image, fmt: str, boxes, units="normalized"):
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    loaded = LoadedImage(
        "a.png", "/r/a.png", "as_written", EncodedImage(buf.getvalue(), fmt.lower(), *image.size), fmt, pixels=image
    )
    regions = tuple(
        Region(i, tuple(b), tuple(b) if units == "normalized" else None, False, None, "") for i, b in enumerate(boxes)
    )
    return Sample("vgr-x", "vgr", "", Provenance("f", 0, "c"), ("a.png",), "q", "a", regions=regions, images=(loaded,))


def test_png_crops_are_lossless_and_equal_the_source_region():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (50, 80, 3), dtype=np.uint8))
    out = crop_regions(sample_with(image, "PNG", [(0.1, 0.2, 0.6, 0.9)]), CropSettings())
    region = out.regions[0]
    assert region.box_px == (8, 10, 48, 45) and region.crop.ext == "png"
    decoded = np.asarray(Image.open(io.BytesIO(region.crop.data)))
    assert np.array_equal(decoded, np.asarray(image)[10:45, 8:48])


def test_jpeg_sources_give_jpeg_crops():
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    out = crop_regions(sample_with(image, "JPEG", [(0.0, 0.0, 0.5, 0.5)]), CropSettings(jpeg_quality=95))
    assert out.regions[0].crop.ext == "jpg" and out.regions[0].crop.width == 32


def test_zero_area_after_rounding_is_rejected():
    image = Image.new("RGB", (10, 10))
    with pytest.raises(RejectedError) as err:
        crop_regions(sample_with(image, "PNG", [(1.0, 0.0, 1.0, 0.5)]), CropSettings())
    assert err.value.info.check == "empty_region"


def test_pixel_units_are_cut_as_written():
    image = Image.new("RGB", (200, 100))
    out = crop_regions(sample_with(image, "PNG", [(20, 10, 120, 60)], units="pixels"), CropSettings(box_units="pixels"))
    assert out.regions[0].box_px == (20, 10, 120, 60)
    assert (out.regions[0].crop.width, out.regions[0].crop.height) == (100, 50)


def test_boxes_that_cannot_be_cut_are_rejected_even_if_a_suite_was_relaxed():
    image = Image.new("RGB", (200, 100))
    with pytest.raises(RejectedError) as err:
        crop_regions(sample_with(image, "PNG", [(0.6, 0.1, 0.3, 0.5)]), CropSettings())
    assert err.value.info.check == "empty_region"
    with pytest.raises(RejectedError) as err:
        crop_regions(sample_with(image, "PNG", [(0.1, float("nan"), 0.3, 0.5)]), CropSettings())
    assert err.value.info.check == "box_not_finite"


@pytest.mark.parametrize("keep", [False, True])
def test_replay_stage_releases_the_pixels_unless_a_later_stage_reads_them(keep):
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    cropped = crop_regions(sample_with(image, "PNG", [(0.0, 0.0, 0.5, 0.5)]), CropSettings())
    out = _ReplayFn(replay.preset(replay.DEFAULT_PRESET, None), pixels=False, keep_pixels=keep).apply(cropped)
    assert (out.images[0].pixels is image) is keep
    assert out.images[0].encoded == cropped.images[0].encoded and out.regions[0].replay is not None
    assert release_pixels(out).images[0].pixels is None
