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


def head(file: RecordFile, n: int) -> Iterator[RawRecord]:
    """The first `n` records of a file, reading no more of it than they need (a JSON document is parsed whole)."""
    if n <= 0:
        return iter(())
    if file.format == "jsonl":
        return jsonl.read(jsonl.JsonlChunk(file, 0, 0, n, 0))
    if file.format == "parquet":
        return parquet.read(parquet.ParquetChunk(file, 0, 0, n, (0,)))
    if file.format == "arrow":
        return arrow.head(file, n)
    chunks = json_document.plan(file, n)
    return read_chunk(chunks[0]) if chunks else iter(())
