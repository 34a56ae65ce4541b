"""What every reader shares: the record file, the chunk base type, streams over files and zip members, and the
conversion of Arrow record batches to rows that survives strings that are not UTF-8."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.records import Provenance
from beam_pipelines.sources.huggingface import HUB_PREFIX, open_hub_file

_SAFE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class RecordFile:
    """One readable stream of records of a source: a file, or a JSON Lines member of a zip archive."""

    source: str
    path: str
    format: str  # parquet | jsonl | json | arrow
    member: str | None = None

    @property
    def tag(self) -> str:
        """File-name-safe, collision-free prefix for the chunk ids of this file."""
        name = (self.member or self.path).rsplit("/", 1)[-1].split(".", 1)[0]
        digest = hashlib.sha1(f"{self.path}!{self.member or ''}".encode()).hexdigest()[:8]
        return f"{_SAFE.sub('_', name)[:60]}-{digest}"


@dataclass(frozen=True)
class Chunk:
    """Rows [first_row, first_row + num_rows) of a record file; each format's chunk adds where they start."""

    file: RecordFile
    index: int
    first_row: int
    num_rows: int

    @property
    def chunk_id(self) -> str:
        return f"{self.file.tag}-{self.index:05d}"

    def provenance(self, row: int) -> Provenance:
        return Provenance(self.file.path, row, self.chunk_id, self.file.member, row - self.first_row)


def open_file(path: str):
    """A seekable binary stream over a local, gs:// or Hugging Face Hub file."""
    if path.startswith(HUB_PREFIX):
        return open_hub_file(path)
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


COMPRESSED = (".gz", ".bz2", ".zst", ".zstd", ".xz", ".lzma", ".deflate")
"""What JSON Lines and JSON files may be compressed with (Beam's file systems decompress them as they read)."""


def compression_of(path: str) -> str:
    """The compression suffix of a file (`.gz`, ...), or "" for an uncompressed one."""
    lower = path.lower()
    return next((c for c in COMPRESSED if lower.endswith(c)), "")


class _Lines:
    """Beam's decompressing file, iterable by lines like the others."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        while line := self._inner.readline():
            yield line

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def close(self) -> None:
        self._inner.close()


class RecordStream:
    """A binary stream over a record file: the file itself, or its zip member (seekable either way)."""

    def __init__(self, file: RecordFile):
        compressed = not file.member and not file.path.startswith(HUB_PREFIX) and compression_of(file.path)
        if compressed:  # decompressed as read; seeking forward reads from the start
            self._file = _Lines(FileSystems.open(file.path, compression_type=CompressionTypes.AUTO))
        else:
            self._file = open_file(file.path)
        self._zip = zipfile.ZipFile(self._file) if file.member else None
        self.stream = self._zip.open(file.member) if self._zip else self._file

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self._zip:
            self.stream.close()
            self._zip.close()
        self._file.close()


@dataclass(frozen=True)
class Run:
    """Rows of consecutive groups (Parquet row groups, Arrow record batches) that make one chunk: whole groups, or
    rows [skip, skip + num_rows) of one group larger than a chunk. `groups` holds each group's locator."""

    first_row: int
    num_rows: int
    groups: tuple[Any, ...]
    skip: int = 0


def plan_runs(groups: Iterable[tuple[Any, int]], rows_per_chunk: int) -> list[Run]:
    """Chunks over (locator, rows) groups in order: whole groups packed up to `rows_per_chunk`, a larger group cut
    into slices of its own."""
    runs: list[Run] = []
    pending: list[Any] = []
    first = rows = row = 0
    for locator, n in groups:
        if pending and rows + n > rows_per_chunk:
            runs.append(Run(first, rows, tuple(pending)))
            pending, rows = [], 0
        if not pending:
            first = row
        if n > rows_per_chunk:
            runs.extend(
                Run(row + skip, min(rows_per_chunk, n - skip), (locator,), skip) for skip in range(0, n, rows_per_chunk)
            )
        elif n:
            pending.append(locator)
            rows += n
        row += n
    if pending:
        runs.append(Run(first, rows, tuple(pending)))
    return runs


def _text_as_binary(t: pa.DataType) -> pa.DataType:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.large_binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.large_list(_text_as_binary(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _text_as_binary(f.type)) for f in t])
    return t


def _escaped(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def batch_rows(batch: pa.RecordBatch) -> Iterator[tuple[dict, str | None]]:
    """(row, None) per row; (row with its strings escaped, why) for a row holding bytes that are not UTF-8, which
    Arrow does not check when it reads a file but Python does when it makes a str (and would fail the batch)."""
    try:
        rows = batch.to_pylist()
    except UnicodeDecodeError:
        yield from _row_by_row(batch)
        return
    for row in rows:
        yield row, None


def _row_by_row(batch: pa.RecordBatch) -> Iterator[tuple[dict, str | None]]:
    binary = pa.schema([pa.field(f.name, _text_as_binary(f.type)) for f in batch.schema])
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        try:
            yield one.to_pylist()[0], None
        except UnicodeDecodeError as exc:
            row = pa.Table.from_batches([one]).cast(binary).to_pylist()[0]
            yield _escaped(row), f"a string is not valid UTF-8 (byte {exc.start}: {exc.reason}); shown escaped"
