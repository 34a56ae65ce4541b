"""Validation stage: the checks that need no image (box units, range, orientation)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.records import Sample
from beam_pipelines.stages import SampleStageFn, apply_stage
from beam_pipelines.validation.boxes import STAGE, validate_boxes


class _ValidateFn(SampleStageFn):
    stage = STAGE

    def __init__(self, box_units: str):
        self.box_units = box_units

    def apply(self, sample: Sample) -> Sample:
        return validate_boxes(sample, self.box_units)


class ValidateSamples(beam.PTransform):
    def __init__(self, box_units: str, errors: ErrorHandler):
        super().__init__()
        self.box_units = box_units
        self.errors = errors

    def expand(self, outcomes):
        return apply_stage(outcomes, "Validate", _ValidateFn(self.box_units), self.errors)
