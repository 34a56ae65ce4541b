"""JSON Lines (`.jsonl`, `.ndjson`, and `.json` files that hold one record per line): one record per non-blank line.

Lines are handed on as bytes; decoding them is the parser's, so a bad line becomes a rejection with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.readers.base import Chunk, RecordFile, RecordStream, compression_of

UTF8_BOM = b"\xef\xbb\xbf"
"""Some editors start UTF-8 files with it; it is not part of the first record."""


@dataclass(frozen=True)
class JsonlChunk(Chunk):
    """`num_rows` non-blank lines from byte `offset`, the first of them line `first_row`."""

    offset: int = 0


def plan(file: RecordFile, rows_per_chunk: int) -> list[Chunk]:
    """One pass over the lines: a chunk starts every `rows_per_chunk` non-blank lines. A compressed file is one
    chunk (read in one pass: a compressed stream cannot seek but by reading from its start)."""
    if not file.member and compression_of(file.path):
        rows_per_chunk = 2**62
    chunks: list[Chunk] = []
    offset = 0
    start_line = start_offset = 0
    count = 0
    with RecordStream(file) as s:
        for line_no, line in enumerate(s):
            if line.strip():
                if count == 0:
                    start_line, start_offset = line_no, offset
                count += 1
                if count == rows_per_chunk:
                    chunks.append(JsonlChunk(file, len(chunks), start_line, count, start_offset))
                    count = 0
            offset += len(line)
    if count:
        chunks.append(JsonlChunk(file, len(chunks), start_line, count, start_offset))
    return chunks


def read(chunk: JsonlChunk) -> Iterator[RawRecord]:
    with RecordStream(chunk.file) as s:
        s.seek(chunk.offset)
        left = chunk.num_rows
        for line_no, line in enumerate(s, start=chunk.first_row):
            if line_no == 0 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
            if not line.strip():
                continue
            yield RawRecord(chunk.file.source, chunk.provenance(line_no), line=line.rstrip(b"\r\n"))
            left -= 1
            if left == 0:
                return
