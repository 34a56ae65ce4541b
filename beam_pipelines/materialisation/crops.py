"""Region crops, cut from the pixel box (`geometry.pixel_box`) clamped to the image.

Boxes refer to the pixel array as stored (no EXIF transpose: that is what the upstream training loaders
see). Crops are RGB as `Image.convert("RGB")` gives (16-bit greyscale scaled to 8 bits first, see
`images.to_rgb`); crops of lossless sources are PNG (a decoded crop equals the source region exactly), crops of
JPEG sources are JPEG at the configured quality (≥ 90).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

from PIL import Image

from beam_pipelines.geometry import pixel_box
from beam_pipelines.materialisation.pixels import crop_of
from beam_pipelines.records import EncodedImage, Region, RejectedError, Sample

STAGE = "crop"


@dataclass(frozen=True)
class CropSettings:
    box_units: str = "normalized"
    jpeg_quality: int = 95
    png_compress_level: int = 1


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
        crop = encode(crop_of(image.pixels, box_px), lossless, settings)
        regions.append(replace(region, box_px=box_px, crop=crop))
    return replace(sample, regions=tuple(regions))
