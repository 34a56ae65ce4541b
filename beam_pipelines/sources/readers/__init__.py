"""Record files → chunks → raw records, one reader module per input format behind one small interface.

A *chunk* is a run of consecutive input rows of one record file (a file, or a JSON Lines member of a zip archive).
It is the unit of parallelism and of output: every shard the pipeline writes holds the accepted records of one
chunk, in input order, so no element-level shuffle is needed (as img2dataset, seqio and datatrove do) and reruns
give the same files. Planning reads only what it must to find row boundaries: Parquet metadata, or one sequential
pass over JSON Lines text (line offsets) or an Arrow IPC stream (record batch offsets), holding one batch at a time.

Each format module (`jsonl`, `json_document`, `parquet`, `arrow`) has its own chunk type and two functions:
`plan(file, rows_per_chunk) -> list[Chunk]` and `read(chunk) -> Iterator[RawRecord]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.readers import arrow, json_document, jsonl, parquet
from beam_pipelines.sources.readers.base import Chunk, RecordFile


class Reader(Protocol):
    def plan(self, file: RecordFile, rows_per_chunk: int) -> list[Chunk]: ...

    def read(self, chunk: Chunk) -> Iterator[RawRecord]: ...


READERS: dict[str, Reader] = {"jsonl": jsonl, "json": json_document, "parquet": parquet, "arrow": arrow}
"""The reader of each record-file format (`RecordFile.format`)."""


def plan_chunks(file: RecordFile, rows_per_chunk: int) -> list[Chunk]:
    return READERS[file.format].plan(file, rows_per_chunk)


def read_chunk(chunk: Chunk) -> Iterator[RawRecord]:
    return READERS[chunk.file.format].read(chunk)


__all__ = ["READERS", "Chunk", "Reader", "RecordFile", "plan_chunks", "read_chunk"]
