"""Pixel boxes and region crops.

Pixel box (left, top, right, bottom; right/bottom exclusive) = floor(x1·W), floor(y1·H), ceil(x2·W),
ceil(y2·H) in Python floats, clamped to the image, on the pixel array as stored (no EXIF transpose:
that is what the upstream training loaders see). Crops are RGB as `Image.convert("RGB")` gives; crops
of lossless sources are PNG (a decoded crop equals the source region exactly), crops of JPEG sources
are JPEG at the configured quality (≥ 90).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from beam_pipelines.records import EncodedImage, Region, RejectedError, Sample
from beam_pipelines.validation.boxes import check_pixels

STAGE = "crop"


@dataclass(frozen=True)
class CropSettings:
    box_units: str = "normalized"
    jpeg_quality: int = 95
    png_compress_level: int = 1


def _clamp(value: int, limit: int) -> int:
    return min(max(value, 0), limit)


def pixel_box(box_norm: tuple[float, ...], width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box_norm
    return (
        _clamp(math.floor(x1 * width), width),
        _clamp(math.floor(y1 * height), height),
        _clamp(math.ceil(x2 * width), width),
        _clamp(math.ceil(y2 * height), height),
    )


def pixel_box_from_pixels(box: tuple[float, ...], width: int, height: int) -> tuple[int, int, int, int]:
    """For `--box_units pixels`: the same rounding applied to the pixel values themselves."""
    x1, y1, x2, y2 = box
    return (
        _clamp(math.floor(x1), width),
        _clamp(math.floor(y1), height),
        _clamp(math.ceil(x2), width),
        _clamp(math.ceil(y2), height),
    )


def encode(image: Image.Image, lossless: bool, settings: CropSettings) -> EncodedImage:
    buf = io.BytesIO()
    if lossless:
        image.save(buf, format="PNG", compress_level=settings.png_compress_level)
        ext = "png"
    else:
        image.save(buf, format="JPEG", quality=settings.jpeg_quality)
        ext = "jpg"
    return EncodedImage(data=buf.getvalue(), ext=ext, width=image.width, height=image.height)


def crop_regions(sample: Sample, settings: CropSettings) -> Sample:
    """Every region of the sample cut from its (first) image, decoded once for all regions."""
    if not sample.regions:
        return sample
    image = sample.images[0]
    width, height = image.encoded.width, image.encoded.height
    lossless = image.format not in ("JPEG", "MPO")
    regions: list[Region] = []
    for region in sample.regions:
        if settings.box_units == "pixels":
            box_norm = check_pixels(region.box_raw, region.region_index, width, height)
            box_px = pixel_box_from_pixels(region.box_raw, width, height)
        else:
            assert region.box_norm is not None
            box_norm = region.box_norm
            box_px = pixel_box(box_norm, width, height)
        if box_px[2] <= box_px[0] or box_px[3] <= box_px[1]:
            raise RejectedError(
                STAGE,
                "empty_region",
                f"region {region.region_index} box {list(region.box_raw)} is {box_px[2] - box_px[0]}x"
                f"{box_px[3] - box_px[1]} pixels on the {width}x{height} image",
            )
        crop = encode(image.pixels.crop(box_px), lossless, settings)
        regions.append(replace(region, box_norm=box_norm, box_px=box_px, crop=crop))
    return replace(sample, regions=tuple(regions))
