"""Stage transforms on the local runner with TestPipeline + assert_that."""

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.error_handling import CollectingErrorHandler

from beam_pipelines.records import Duplicate, Provenance, RawRecord, Rejection, Sample
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.sources.transforms import FindDuplicates, ParseSamples
from beam_pipelines.stages import SampleStageFn, apply_stage

VGR = dataset_named("vgr")

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])


def raw(row: int, question: str, file: str = "f.jsonl") -> RawRecord:
    line = {
        "image": "a.png",
        "conversations": [
            {"from": "human", "value": question},
            {"from": "gpt", "value": "<SOT>[0.1,0.1,0.2,0.2]<EOT> Final answer: 1"},
        ],
    }
    return RawRecord("vgr", Provenance(file, row, "c"), line=json.dumps(line).encode())


def kinds(outcome) -> tuple[str, int]:
    return type(outcome).__name__, outcome.provenance.row


@pytest.mark.slow
def test_parse_keeps_the_first_copy_and_counts_duplicates():
    records = [raw(0, "q1"), raw(1, "q2"), raw(2, "q1"), RawRecord("vgr", Provenance("f.jsonl", 3, "c"), line=b"{")]
    with BeamTestPipeline(options=OPTIONS) as p:
        raws = p | beam.Create(records)
        dups = (raws | FindDuplicates(VGR))["kept"]
        assert_that(dups | beam.Map(lambda kv: kv[1]), equal_to([("f.jsonl", "", 0, "")]), label="Kept")
        with CollectingErrorHandler() as errors:
            outcomes = raws | ParseSamples(VGR, dups, errors)
        assert_that(
            outcomes | beam.Map(kinds),
            equal_to([("Sample", 0), ("Sample", 1), ("Duplicate", 2), ("Rejection", 3)]),
        )
        assert_that(errors.output(), equal_to([]), label="NoErrors")


class _Explodes(SampleStageFn):
    stage = "explode"

    def apply(self, sample: Sample) -> Sample:
        raise ZeroDivisionError("boom")


@pytest.mark.slow
def test_unexpected_exceptions_go_to_the_error_handler_as_rejections():
    sample = Sample("vgr-1", "vgr", "", Provenance("f", 5, "c"), ("a.png",), "q", "a", record={"k": 1})
    dup = Duplicate("vgr", Provenance("f", 6, "c"), "vgr-1", Provenance("f", 5, "c"))
    with BeamTestPipeline(options=OPTIONS) as p:
        with CollectingErrorHandler() as errors:
            good = apply_stage(p | beam.Create([sample, dup]), "Explode", _Explodes(), errors)
        assert_that(good | beam.Map(kinds), equal_to([("Duplicate", 6)]))
        assert_that(
            errors.output()
            | beam.Map(
                lambda r: (type(r), r.errors[0].stage, r.errors[0].check, "boom" in r.errors[0].message, r.record)
            ),
            equal_to([(Rejection, "explode", "unexpected_error", True, {"k": 1})]),
            label="Errors",
        )
