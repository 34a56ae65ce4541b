"""Arrow IPC streams (`.arrow`, what `datasets.save_to_disk` writes), chunked by record batch from one sequential
pass that holds one batch at a time; a chunk is read from its first batch's byte offset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from beam_pipelines.records import Provenance, RawRecord
from beam_pipelines.sources.readers.base import Chunk, RecordFile, RecordStream, batch_rows, plan_runs


@dataclass(frozen=True)
class ArrowChunk(Chunk):
    """Rows from the record batch at byte `offset` on, after skipping `skip` rows of it."""

    offset: int = 0
    skip: int = 0


def batches(stream) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(byte offset, batch) of every record batch of an Arrow IPC stream, from the stream's current position."""
    native = pa.PythonFile(stream, mode="r")
    schema = None
    while True:
        offset = stream.tell()
        try:
            message = pa.ipc.read_message(native)
        except EOFError:
            return
        if message.type == "schema":
            schema = pa.ipc.read_schema(message)
        elif message.type == "record batch":
            yield offset, pa.ipc.read_record_batch(message, schema)
        else:
            raise ValueError(f"unsupported Arrow IPC message {message.type!r} (dictionary-encoded columns?)")


def plan(file: RecordFile, rows_per_chunk: int) -> list[Chunk]:
    """Chunks of whole record batches where they are small, slices of one batch where it is large."""
    with RecordStream(file) as s:
        runs = plan_runs(((offset, batch.num_rows) for offset, batch in batches(s)), rows_per_chunk)
    return [ArrowChunk(file, i, run.first_row, run.num_rows, run.groups[0], run.skip) for i, run in enumerate(runs)]


def _rows(chunk: ArrowChunk) -> Iterator[tuple[dict, str | None]]:
    with RecordStream(chunk.file) as s:
        schema = pa.ipc.read_schema(pa.ipc.read_message(pa.PythonFile(s, mode="r")))
        s.seek(chunk.offset)
        native, skip, left = pa.PythonFile(s, mode="r"), chunk.skip, chunk.num_rows
        while left > 0:
            batch = pa.ipc.read_record_batch(pa.ipc.read_message(native), schema).slice(skip, left)
            skip = 0
            left -= batch.num_rows
            yield from batch_rows(batch)


def head(file: RecordFile, n: int) -> Iterator[RawRecord]:
    """The first `n` records (fewer if the file has fewer), batch by batch."""
    row = 0
    with RecordStream(file) as s:
        for _, batch in batches(s):
            for rec, unreadable in batch_rows(batch.slice(0, n - row)):
                yield RawRecord(
                    file.source, Provenance(file.path, row, "head", file.member, row), record=rec, unreadable=unreadable
                )
                row += 1
            if row >= n:
                return


def read(chunk: ArrowChunk) -> Iterator[RawRecord]:
    for row, (rec, unreadable) in enumerate(_rows(chunk), start=chunk.first_row):
        yield RawRecord(chunk.file.source, chunk.provenance(row), record=rec, unreadable=unreadable)
