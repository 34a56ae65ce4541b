"""Box checks: units, range, orientation. Pure functions; the stage turns `RejectedError` into a rejection.

Boxes are `[x1, y1, x2, y2]` (top-left, bottom-right). With `--box_units normalized` (the released VGR
format) every value must lie in [0, 1]; a value above 1 almost always means pixel coordinates (the
paper's figures use them), and the message says so. With `--box_units pixels` boxes are converted to
normalised form against the stored image size once it is known.
"""

from __future__ import annotations

from dataclasses import replace

from beam_pipelines.records import RejectedError, Sample

STAGE = "validate"
UNITS = ("normalized", "pixels")


def check_orientation(box: tuple[float, ...], index: int) -> None:
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        raise RejectedError(STAGE, "box_inverted", f"region {index} box {list(box)} has x2 < x1 or y2 < y1")
    if x2 == x1 or y2 == y1:
        raise RejectedError(STAGE, "box_degenerate", f"region {index} box {list(box)} has zero width or height")


def check_normalized(box: tuple[float, ...], index: int) -> tuple[float, float, float, float]:
    if any(v > 1 for v in box):
        raise RejectedError(
            STAGE,
            "box_pixel_like",
            f"region {index} box {list(box)} has values above 1: they look like pixel coordinates, "
            "not [0,1]-normalised ones (use --box_units pixels if the data is in pixels)",
        )
    if any(v < 0 for v in box):
        raise RejectedError(STAGE, "box_out_of_range", f"region {index} box {list(box)} has negative values")
    check_orientation(box, index)
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)


def check_pixels(box: tuple[float, ...], index: int, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    if min(box) < 0 or x2 > width or y2 > height:
        raise RejectedError(
            STAGE, "box_out_of_range", f"region {index} pixel box {list(box)} is outside the {width}x{height} image"
        )
    check_orientation(box, index)
    return (x1 / width, y1 / height, x2 / width, y2 / height)


def validate_boxes(sample: Sample, units: str) -> Sample:
    """Normalised boxes are checked (and set) before any image is read; pixel boxes wait for the image size."""
    if units != "normalized" or not sample.regions:
        for region in sample.regions:
            check_orientation(region.box_raw, region.region_index)
        return sample
    regions = tuple(replace(r, box_norm=check_normalized(r.box_raw, r.region_index)) for r in sample.regions)
    return replace(sample, regions=regions)
