"""Sink stages: Parquet and WebDataset shards, dead letters, the run report."""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.records import Rejection
from beam_pipelines.sinks.pages import preview_page, validation_page
from beam_pipelines.sinks.parquet import ParquetShardWriterFn
from beam_pipelines.sinks.report import MergeCounts, build_report, outcome_stats
from beam_pipelines.sinks.schema import rejection_line
from beam_pipelines.sinks.shards import AtomicFile, DeadLetterWriterFn, ShardInfo, ShardLimits, join
from beam_pipelines.sinks.showcase import Showcase
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn

REPORT = "report.json"
VALIDATION_PAGE = "validation/index.html"
PREVIEW_PAGE = "preview/index.html"


class WriteParquetShards(beam.PTransform):
    def __init__(self, output: str, limits: ShardLimits):
        super().__init__()
        self.output, self.limits = output, limits

    def expand(self, outcomes):
        return outcomes | "WriteParquet" >> beam.ParDo(ParquetShardWriterFn(self.output, self.limits))


class WriteWebDatasetShards(beam.PTransform):
    def __init__(self, output: str, limits: ShardLimits):
        super().__init__()
        self.output, self.limits = output, limits

    def expand(self, outcomes):
        return outcomes | "WriteTars" >> beam.ParDo(WebDatasetShardWriterFn(self.output, self.limits))


class WriteDeadLetters(beam.PTransform):
    """Rejections of the main stream, chunk-aligned: `rejected/<chunk>-<part>.jsonl`."""

    def __init__(self, output: str, limits: ShardLimits):
        super().__init__()
        self.output, self.limits = output, limits

    def expand(self, outcomes):
        return outcomes | "WriteRejected" >> beam.ParDo(DeadLetterWriterFn(self.output, self.limits))


def _write_errors(chunk_and_rejections: tuple[str, list[Rejection]], output: str) -> ShardInfo:
    chunk, rejections = chunk_and_rejections
    ordered = sorted(rejections, key=lambda r: r.provenance.sort_key())
    f = AtomicFile(output, join(output, "rejected", f"{chunk}-errors.jsonl"))
    for rejection in ordered:
        f.write(rejection_line(rejection).encode("utf-8") + b"\n")
    f.commit()
    return ShardInfo("rejected", f.final, len(ordered), f.size)


class WriteErrorRecords(beam.PTransform):
    """The error handler's consumer: records that raised unexpectedly, as `rejected/<chunk>-errors.jsonl`.

    These are rare (a bug or an environment fault), so grouping them by chunk is cheap. Returns
    their outcome counters and shard infos, tagged, for the report.
    """

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, rejections):
        infos = (
            rejections
            | "ByChunk" >> beam.Map(lambda r: (r.provenance.chunk_id, r))
            | "GroupByChunk" >> beam.GroupByKey()
            | "WriteErrors" >> beam.Map(_write_errors, self.output)
        )
        return infos, rejections | "CountErrors" >> CountOutcomes()


def _write(output: str, path: str, text: str) -> None:
    f = AtomicFile(output, join(output, path))
    f.write(text.encode("utf-8"))
    f.commit()


def _write_report(_: Any, stats, shards: list[ShardInfo], showcase, output: str, config: dict[str, Any], expectations):
    report = build_report(stats, shards, config, expectations)
    _write(output, REPORT, json.dumps(report, indent=2, sort_keys=False) + "\n")
    _write(output, VALIDATION_PAGE, validation_page(report, showcase["examples"]))
    _write(output, PREVIEW_PAGE, preview_page(report, showcase))
    yield report


class CountOutcomes(beam.PTransform):
    """Outcomes → one merged counter dict (pre-combined per bundle, so only counters move)."""

    def expand(self, outcomes):
        return (
            outcomes | "OutcomeStats" >> beam.Map(outcome_stats) | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
        )


class WriteReport(beam.PTransform):
    """report.json and the two HTML pages, from `{"counts": counter dicts, "shards": infos, "outcomes": ...}`.

    The outcomes are folded by the `Showcase` combiner into the few records the pages show.
    """

    def __init__(self, output: str, config: dict[str, Any], expectations: dict[str, dict[str, str]]):
        super().__init__()
        self.output, self.config, self.expectations = output, config, expectations

    def expand(self, inputs):
        merged = inputs["counts"] | "MergeAll" >> beam.CombineGlobally(MergeCounts())
        shard_list = inputs["shards"] | "ShardList" >> beam.combiners.ToList()
        showcase = inputs["outcomes"] | "Showcase" >> beam.CombineGlobally(Showcase())
        return (
            merged.pipeline
            | "Once" >> beam.Create([None])
            | "WriteReport"
            >> beam.FlatMap(
                _write_report,
                beam.pvalue.AsSingleton(merged),
                beam.pvalue.AsSingleton(shard_list),
                beam.pvalue.AsSingleton(showcase),
                self.output,
                self.config,
                self.expectations,
            )
        )


def read_report(output: str) -> dict[str, Any]:
    with FileSystems.open(join(output, REPORT)) as f:
        return json.loads(f.read())
