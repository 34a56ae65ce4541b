"""Validation stages: the expectation suites applied to batches of samples, inside the fused chain.

`ValidateRecords` runs the record suites right after parsing; `ValidateImages` runs the image and
region suites once the image headers are read (bytes loaded, nothing decoded yet). Both buffer samples
within a bundle into batches (by count, and by image bytes so a batch's memory is bounded), validate
the batch with one Great Expectations call per suite, and emit every outcome in input order: no
shuffle, and rejections, duplicates and samples keep flowing as one stream. Per-expectation counters
leave on a tagged `stats` output for the report.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipelines.records import Outcome, Sample
from beam_pipelines.sources.dataset import IMAGES, RECORDS, Dataset
from beam_pipelines.stages import StageClock
from beam_pipelines.validation.boxes import normalise_boxes
from beam_pipelines.validation.checker import SuiteChecker

STATS = "stats"


def _weight(outcome: Any) -> int:
    return sum(len(img.encoded.data) for img in outcome.images) if isinstance(outcome, Sample) else 0


class _ValidateBatchFn(beam.DoFn):
    def __init__(
        self,
        dataset: Dataset,
        suites: dict[str, dict[str, Any]],
        phase: str,
        box_units: str,
        batch_size: int,
        batch_bytes: int,
    ):
        self.dataset = dataset
        self.suites = suites
        self.phase = phase
        self.box_units = box_units
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    def setup(self) -> None:
        self.checker = SuiteChecker(self.suites, self.phase, self.box_units, self.dataset)
        self.clock = StageClock(f"validate_{self.phase}")

    def start_bundle(self) -> None:
        self.buffer: list[Any] = []
        self.buffered_bytes = 0
        self.buffered_samples = 0

    def process(self, outcome: Any, references: dict[str, list[list[str]]] | None = None):
        if references is not None and isinstance(outcome, Sample) and self.dataset.reference is not None:
            facts = self.dataset.reference.facts(outcome, references)
            outcome = replace(outcome, facts={**outcome.facts, **facts})
        self.buffer.append(outcome)
        if isinstance(outcome, Sample):
            self.buffered_samples += 1
            self.buffered_bytes += _weight(outcome)
        if self.buffered_samples >= self.batch_size or self.buffered_bytes >= self.batch_bytes:
            yield from self._flush()

    def finish_bundle(self):
        for value in self._flush():
            if isinstance(value, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(value.tag, WindowedValue(value.value, 0, [GlobalWindow()]))
            else:
                yield WindowedValue(value, 0, [GlobalWindow()])

    def _flush(self):
        buffer, self.buffer = self.buffer, []
        self.buffered_bytes = self.buffered_samples = 0
        samples = [o for o in buffer if isinstance(o, Sample)]
        with self.clock:
            if self.phase == IMAGES:
                samples = [normalise_boxes(s, self.box_units) for s in samples]
            checked, stats = self.checker.check(samples) if samples else ([], {})
        verdicts = iter(checked)
        for outcome in buffer:
            yield next(verdicts) if isinstance(outcome, Sample) else outcome
        if stats:
            yield beam.pvalue.TaggedOutput(STATS, dict(stats))


class _Validate(beam.PTransform):
    phase = ""

    def __init__(
        self,
        dataset: Dataset,
        suites: dict[str, dict[str, Any]],
        box_units: str,
        batch_size: int,
        batch_bytes: int,
        references: beam.PCollection | None = None,
    ):
        super().__init__()
        self.fn = _ValidateBatchFn(dataset, suites, self.phase, box_units, batch_size, batch_bytes)
        self.references = references

    def expand(self, outcomes):
        """(outcomes, per-expectation counter dicts)."""
        side = () if self.references is None else (beam.pvalue.AsDict(self.references),)
        check = beam.ParDo(self.fn, *side).with_output_types(Outcome).with_outputs(STATS, main="outcomes")
        result = outcomes | "CheckBatches" >> check
        return result.outcomes, result[STATS]


class ValidateRecords(_Validate):
    """Record suites (samples, steps), before any image is read; with `references`, a PCollection of
    (sample_id, official labels), conversation records are checked against their Raw form."""

    phase = RECORDS


class ValidateImages(_Validate):
    """Image and region suites, on header facts: boxes against the stored size, minimum region size."""

    phase = IMAGES
