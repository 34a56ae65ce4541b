"""Pixel boxes and region crops.

Pixel box (left, top, right, bottom; right/bottom exclusive) = floor(x1·W), floor(y1·H), ceil(x2·W),
ceil(y2·H) in Python floats (with `--box_units pixels`, floor/ceil of the values as written), clamped to
the image, on the pixel array as stored (no EXIF transpose: that is what the upstream training loaders
see). Crops are RGB as `Image.convert("RGB")` gives (16-bit greyscale scaled to 8 bits first, see
`images.to_rgb`); crops of lossless sources are PNG (a decoded crop equals the source region exactly), crops of
JPEG sources are JPEG at the configured quality (≥ 90).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from beam_pipelines.records import EncodedImage, Region, RejectedError, Sample

STAGE = "crop"


@dataclass(frozen=True)
class CropSettings:
    box_units: str = "normalized"
    jpeg_quality: int = 95
    png_compress_level: int = 1


def _clamp(value: int, limit: int) -> int:
    return min(max(value, 0), limit)


def raw_pixel_box(box: tuple[float, ...], width: int, height: int, units: str) -> tuple[int, int, int, int]:
    """floor/ceil of the box in pixels of the stored image, not clamped (so a box outside the image shows)."""
    x1, y1, x2, y2 = box if units == "pixels" else (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    return math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)


def pixel_box(box: tuple[float, ...], width: int, height: int, units: str = "normalized") -> tuple[int, int, int, int]:
    """The crop rectangle: `raw_pixel_box` clamped to the image."""
    left, top, right, bottom = raw_pixel_box(box, width, height, units)
    return _clamp(left, width), _clamp(top, height), _clamp(right, width), _clamp(bottom, height)


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
    """Every region of the sample cut from its (first) image, decoded once for all regions.

    The suites have already rejected boxes that are not finite, out of range or too small; what is
    checked here is only what would make cropping itself impossible (a suite may have been relaxed).
    """
    if not sample.regions:
        return sample
    image = sample.images[0]
    width, height = image.encoded.width, image.encoded.height
    lossless = image.format not in ("JPEG", "MPO")
    regions: list[Region] = []
    for region in sample.regions:
        if not all(math.isfinite(v) for v in region.box_raw):
            raise RejectedError(STAGE, "box_not_finite", f"region {region.region_index} box {list(region.box_raw)}")
        box_px = pixel_box(region.box_raw, width, height, settings.box_units)
        if box_px[2] <= box_px[0] or box_px[3] <= box_px[1]:
            raise RejectedError(
                STAGE,
                "empty_region",
                f"region {region.region_index} box {list(region.box_raw)} is {box_px[2] - box_px[0]}x"
                f"{box_px[3] - box_px[1]} pixels on the {width}x{height} image",
            )
        crop = encode(image.pixels.crop(box_px), lossless, settings)
        regions.append(replace(region, box_px=box_px, crop=crop))
    return replace(sample, regions=tuple(regions))
