"""Read a record file the way the pipeline does: planned into chunks, every chunk read."""

from __future__ import annotations

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.readers.base import Chunk, RecordFile
from beam_pipelines.sources.readers.formats import plan_chunks, read_chunk


def read_all(file: RecordFile, rows_per_chunk: int) -> tuple[list[Chunk], list[RawRecord]]:
    chunks = plan_chunks(file, rows_per_chunk)
    return chunks, [r for c in chunks for r in read_chunk(c)]
