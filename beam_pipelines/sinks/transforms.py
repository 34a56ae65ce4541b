"""Sink stages: Parquet and WebDataset shards, dead letters, the run report."""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam

from beam_pipelines.files import WrittenFile, read_text, write_text
from beam_pipelines.layout import PREVIEW_PAGE, VALIDATION_PAGE, OutputLayout
from beam_pipelines.sinks.dead_letters import DeadLetterWriterFn, write_error_records
from beam_pipelines.sinks.pages import preview_page, validation_page
from beam_pipelines.sinks.parquet import IndexShardWriterFn, ParquetShardWriterFn
from beam_pipelines.sinks.report import MergeCounts, build_report, outcome_stats
from beam_pipelines.sinks.shards import ChunkWriterFn, ShardTarget
from beam_pipelines.sinks.showcase import Showcase
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn
from beam_pipelines.sources.dataset import Dataset


class _WriteShards(beam.PTransform):
    writer: type[ChunkWriterFn]

    def __init__(self, target: ShardTarget):
        super().__init__()
        self.target = target

    def expand(self, outcomes):
        return outcomes | "Write" >> beam.ParDo(self.writer(self.target))


class WriteParquetShards(_WriteShards):
    """`parquet/samples/<unit>-<part>.parquet` and `parquet/regions/...`."""

    writer = ParquetShardWriterFn


class WriteWebDatasetShards(_WriteShards):
    """`webdataset/<unit>-<part>.tar`."""

    writer = WebDatasetShardWriterFn


class WriteIndexShards(_WriteShards):
    """`index/<unit>-<part>.parquet`: the ids of the accepted samples, whatever the formats."""

    writer = IndexShardWriterFn


class WriteDeadLetters(_WriteShards):
    """Rejections of the main stream, chunk-aligned: `rejected/<unit>-<part>.jsonl`."""

    writer = DeadLetterWriterFn


class WriteErrorRecords(beam.PTransform):
    """The error handler's consumer: records that raised unexpectedly, as `rejected/<unit>-errors.jsonl`.

    These are rare (a bug or an environment fault), so grouping them by chunk is cheap. Returns
    their outcome counters and shard infos, tagged, for the report.
    """

    def __init__(self, target: ShardTarget):
        super().__init__()
        self.target = target

    def expand(self, rejections):
        infos = (
            rejections
            | "ByChunk" >> beam.Map(lambda r: (r.provenance.chunk_id, r))
            | "GroupByChunk" >> beam.GroupByKey()
            | "WriteErrors" >> beam.Map(write_error_records, self.target)
        )
        return infos, rejections | "CountErrors" >> CountOutcomes()


def _write_report(_: Any, stats, shards: list[WrittenFile], showcase, output: str, version: str, config, expectations):
    layout = OutputLayout(output)
    report = build_report(stats, shards, layout, config, expectations)
    pages = {
        VALIDATION_PAGE: validation_page(report, showcase["examples"]),
        PREVIEW_PAGE: preview_page(report, showcase),
    }
    for page, text in pages.items():
        write_text(layout.page(page, version), text, layout.scratch)
        write_text(layout.page(page), text, layout.scratch)
    yield report


class CountOutcomes(beam.PTransform):
    """Outcomes → one merged counter dict (pre-combined per bundle, so only counters move)."""

    def expand(self, outcomes):
        return (
            outcomes | "OutcomeStats" >> beam.Map(outcome_stats) | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
        )


class WriteReport(beam.PTransform):
    """The run report and the two HTML pages, from `{"counts": counter dicts, "shards": infos, "outcomes": ...}`.

    The outcomes are folded by the `Showcase` combiner into the few records the pages show. The pages go to
    `<folder>` (the version's directory) and to the output root; the report is returned, for `PublishVersion` to
    complete and write.
    """

    def __init__(
        self,
        dataset: Dataset,
        output: str,
        version: str,
        config: dict[str, Any],
        expectations: dict[str, dict[str, str]],
    ):
        super().__init__()
        self.dataset = dataset
        self.output, self.version, self.config, self.expectations = output, version, config, expectations

    def expand(self, inputs):
        merged = inputs["counts"] | "MergeAll" >> beam.CombineGlobally(MergeCounts())
        shard_list = inputs["shards"] | "ShardList" >> beam.combiners.ToList()
        showcase = inputs["outcomes"] | "Showcase" >> beam.CombineGlobally(Showcase(self.dataset))
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
                self.version,
                self.config,
                self.expectations,
            )
        )


def read_report(output: str) -> dict[str, Any]:
    return json.loads(read_text(OutputLayout(output).report()))
