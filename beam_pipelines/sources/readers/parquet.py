"""Parquet files, chunked by row group from the file's metadata alone, read 256 rows at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.parquet as pq

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.readers.base import Chunk, RecordFile, batch_rows, open_file, plan_runs

BATCH_ROWS = 256


@dataclass(frozen=True)
class ParquetChunk(Chunk):
    """Rows of the row groups `row_groups`, after skipping `skip` rows of the first (a slice of a large group)."""

    row_groups: tuple[int, ...] = ()
    skip: int = 0


def plan(file: RecordFile, rows_per_chunk: int) -> list[Chunk]:
    """Chunks of whole row groups where they are small, sub-ranges of one row group where it is large."""
    with open_file(file.path) as f:
        meta = pq.ParquetFile(f).metadata
    groups = ((g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups))
    return [
        ParquetChunk(file, i, run.first_row, run.num_rows, run.groups, run.skip)
        for i, run in enumerate(plan_runs(groups, rows_per_chunk))
    ]


def read(chunk: ParquetChunk) -> Iterator[RawRecord]:
    with open_file(chunk.file.path) as f:
        pf = pq.ParquetFile(f)
        row, skip, left = chunk.first_row, chunk.skip, chunk.num_rows
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=list(chunk.row_groups)):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch = batch.slice(skip, left)
            skip = 0
            for rec, unreadable in batch_rows(batch):
                yield RawRecord(chunk.file.source, chunk.provenance(row), record=rec, unreadable=unreadable)
                row += 1
            left -= batch.num_rows
            if left <= 0:
                return
