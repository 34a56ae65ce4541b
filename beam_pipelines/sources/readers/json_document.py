"""`.json` files: one JSON document, an array of records or a single (pretty-printed) record; a `.json` file that
turns out to be JSON Lines is read by the `jsonl` reader. A BOM is allowed, as in JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.readers import jsonl
from beam_pipelines.sources.readers.base import Chunk, RecordFile, RecordStream


@dataclass(frozen=True)
class JsonChunk(Chunk):
    """Records [first_row, first_row + num_rows) of the document's array."""


def document(data: bytes, file: RecordFile) -> list | None:
    """The records of a `.json` file that is one JSON document; None when it is JSON Lines."""
    text = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] == b"[":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--input {file.path}: not a valid JSON array ({exc})") from exc
    if text[:1] != b"{":
        return None
    try:
        json.loads(text.split(b"\n", 1)[0])
        return None  # the first line is a record by itself: JSON Lines
    except ValueError:
        pass
    try:
        return [json.loads(text)]
    except ValueError:
        return None  # neither: read as lines, each bad line a rejection


def _data(file: RecordFile) -> bytes:
    with RecordStream(file) as s:
        return s.read()


def plan(file: RecordFile, rows_per_chunk: int) -> list[Chunk]:
    records = document(_data(file), file)
    if records is None:
        return jsonl.plan(replace(file, format="jsonl"), rows_per_chunk)
    n = len(records)
    return [
        JsonChunk(file, i, start, min(rows_per_chunk, n - start)) for i, start in enumerate(range(0, n, rows_per_chunk))
    ]


def read(chunk: JsonChunk) -> Iterator[RawRecord]:
    data = _data(chunk.file)
    rows = document(data, chunk.file) or []
    # with escaped surrogates in the file, records go the JSON Lines way, where unpaired ones are rejected
    escaped = b"\\ud" in data or b"\\uD" in data
    for i in range(chunk.first_row, chunk.first_row + chunk.num_rows):
        rec = rows[i]
        if isinstance(rec, dict) and not escaped:
            yield RawRecord(chunk.file.source, chunk.provenance(i), record=rec)
        else:
            yield RawRecord(chunk.file.source, chunk.provenance(i), line=json.dumps(rec).encode())
