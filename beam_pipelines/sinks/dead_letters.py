"""Dead letters: `rejected/<unit>-<part>.jsonl`, one JSON line per rejected input record, in input order.

Rejections of the main stream are written chunk-aligned like the data shards. Records that raised unexpectedly in
some stage reach the error handler instead; they are rare (a bug or an environment fault), so they are grouped by
chunk and written as `rejected/<unit>-errors.jsonl`.
"""

from __future__ import annotations

from typing import Any

from beam_pipelines.files import WrittenFile
from beam_pipelines.records import Rejection
from beam_pipelines.sinks.schema import rejection_line
from beam_pipelines.sinks.shards import ChunkWriterFn, ShardTarget

KIND = "rejected"


class DeadLetterWriterFn(ChunkWriterFn):
    kind = KIND

    def accepts(self, element: Any) -> bool:
        return isinstance(element, Rejection)

    def size_of(self, element: Any) -> int:
        return 0

    def open_shard(self, name: str) -> None:
        self._file = self.target.open(KIND, name)

    def write(self, element: Rejection) -> None:
        self._file.write(rejection_line(element).encode("utf-8") + b"\n")

    def close_shard(self):
        self._file.commit()
        yield self.target.written(self._file, KIND, self._rows, self.unit)


def write_error_records(chunk_and_rejections: tuple[str, list[Rejection]], target: ShardTarget) -> WrittenFile:
    """One chunk's unexpected-error rejections, in input order, as `rejected/<unit>-errors.jsonl`."""
    chunk, rejections = chunk_and_rejections
    ordered = sorted(rejections, key=lambda r: r.provenance.sort_key())
    unit = target.unit(chunk)
    f = target.open(KIND, f"{unit}-errors")
    for rejection in ordered:
        f.write(rejection_line(rejection).encode("utf-8") + b"\n")
    f.commit()
    return target.written(f, KIND, len(ordered), unit)
