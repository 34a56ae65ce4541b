"""Sink stages: Parquet and WebDataset shards, the id index, dead letters, and the outcome counters."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.records import RejectedError, Sample
from beam_pipelines.sinks.counters import MergeCounts, outcome_stats
from beam_pipelines.sinks.dead_letters import DeadLetterWriterFn, write_error_records
from beam_pipelines.sinks.parquet import IndexShardWriterFn, ParquetShardWriterFn
from beam_pipelines.sinks.schema import row_problems
from beam_pipelines.sinks.shards import ChunkWriterFn, ShardTarget
from beam_pipelines.sinks.webdataset import WebDatasetShardWriterFn
from beam_pipelines.stages import SampleStage, SampleStageFn


class _ConformFn(SampleStageFn):
    stage = "conform_rows"

    def apply(self, sample: Sample) -> Sample:
        problems = row_problems(sample)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise RejectedError("write", "row_out_of_schema", "; ".join(problems[:3]) + more)
        return sample


class ConformRows(SampleStage):
    """Accepted samples whose rows would not fit the outputs' schemas are rejected here, once, before the writers
    fan out: a writer's failure would fail the whole job, and a row rejected by one writer only would leave the
    Parquet, tar and index files of a chunk disagreeing."""

    def __init__(self, errors: ErrorHandler):
        super().__init__(_ConformFn(), errors)


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

    These are rare (a bug or an environment fault), so grouping them by chunk is cheap. Returns (the files
    written, their outcome counters), for the report.
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


class CountOutcomes(beam.PTransform):
    """Outcomes → one merged counter dict (pre-combined per bundle, so only counters move); a step's annotation
    score counts as the model's `+` from `prm_threshold` on."""

    def __init__(self, prm_threshold: float = 0.5):
        super().__init__()
        self.prm_threshold = prm_threshold

    def expand(self, outcomes):
        return (
            outcomes
            | "OutcomeStats" >> beam.Map(outcome_stats, self.prm_threshold)
            | "MergeCounts" >> beam.CombineGlobally(MergeCounts()).without_defaults()
        )
