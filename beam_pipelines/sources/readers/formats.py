"""The reader of each record-file format, behind the two calls every reader answers."""

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
