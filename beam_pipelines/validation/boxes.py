"""Boxes in [0, 1] units, whatever units the data is written in.

VGR as released writes boxes normalised to the stored image (`--box_units normalized`, the values are
kept as parsed); with `--box_units pixels` they are divided by the stored width and height once the
image header has been read. Whether a box is acceptable is the `vgr_regions` suite's decision.
"""

from __future__ import annotations

import math
from dataclasses import replace

from beam_pipelines.records import Sample

UNITS = ("normalized", "pixels")


def as_float(value: float | int) -> float:
    """A box number as a float; a runaway integer (hundreds of digits) becomes ±inf, not an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def normalise_boxes(sample: Sample, units: str) -> Sample:
    if not sample.regions:
        return sample
    if units == "pixels":
        width, height = sample.images[0].encoded.width, sample.images[0].encoded.height
        scale = (width, height, width, height)
    else:
        scale = (1, 1, 1, 1)
    regions = tuple(
        replace(r, box_norm=tuple(as_float(v) / s for v, s in zip(r.box_raw, scale, strict=True)))
        for r in sample.regions
    )
    return replace(sample, regions=regions)
