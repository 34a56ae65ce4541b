"""Boxes in [0, 1] units, whatever units the data is written in.

VGR as released writes boxes normalised to the stored image (`--box_units normalized`, the values are
kept as parsed); with `--box_units pixels` they are divided by the stored width and height once the
image header has been read. Whether a box is acceptable is the `vgr_regions` suite's decision.
"""

from __future__ import annotations

from dataclasses import replace

from beam_pipelines.geometry import as_float
from beam_pipelines.records import Sample


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
