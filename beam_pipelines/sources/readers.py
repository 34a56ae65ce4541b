"""Input files → chunks → raw records.

A *chunk* is a run of consecutive input rows of one file (or zip member). It is the unit of
parallelism and of output: every shard the pipeline writes holds the accepted records of exactly one
chunk, in input order, so no element-level shuffle is needed (as img2dataset, seqio and datatrove do)
and reruns give the same files. Planning reads only what it must to find row boundaries: Parquet
metadata, or one sequential pass over JSONL text (line offsets) or an Arrow IPC stream (record batch offsets;
`datasets.save_to_disk` writes these), holding one batch at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.records import Provenance, RawRecord
from beam_pipelines.sources.huggingface import HUB_PREFIX, expand_hf, open_hub_file

FORMATS = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".arrow": "arrow",
    ".zip": "zip",
}
_SAFE = re.compile(r"[^A-Za-z0-9_]+")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class InputUnit:
    """One readable stream: a file, or a JSONL member of a zip archive."""

    source: str
    path: str
    kind: str  # parquet | jsonl | json | arrow
    member: str | None = None

    @property
    def tag(self) -> str:
        """File-name-safe, collision-free prefix for the chunk ids of this unit."""
        name = (self.member or self.path).rsplit("/", 1)[-1].split(".", 1)[0]
        digest = hashlib.sha1(f"{self.path}!{self.member or ''}".encode()).hexdigest()[:8]
        return f"{_SAFE.sub('_', name)[:60]}-{digest}"


@dataclass(frozen=True)
class Chunk:
    """Rows [first_row, first_row + num_rows) of a unit; `offset` is a byte offset (JSONL; Arrow: of the first
    record batch, with `skip` rows of it before the chunk) or a skip (Parquet)."""

    unit: InputUnit
    index: int
    first_row: int
    num_rows: int
    offset: int = 0
    row_groups: tuple[int, ...] = ()
    skip: int = 0

    @property
    def chunk_id(self) -> str:
        return f"{self.unit.tag}-{self.index:05d}"


def file_kind(path: str) -> str:
    lower = path.lower()
    for ext, kind in FORMATS.items():
        if lower.endswith(ext):
            return kind
    raise ValueError(f"--input {path}: unsupported file type (expected .parquet, .jsonl, .json, .arrow or .zip)")


def expand_pattern(pattern: str, option: str = "--input") -> list[str]:
    """Files matched by a local path, glob, directory or gs:// pattern, sorted; an empty match is an error.

    A gs:// "directory" is a prefix, not an object: a glob-free pattern that names no object is read as one.
    """
    hf_files = expand_hf(pattern)
    if hf_files is not None:
        if not hf_files:
            raise ValueError(f"{option} {pattern!r} resolved to no data files")
        for path in hf_files:
            file_kind(path)  # an unsupported file (say .jsonl.gz) is an error, not a silent skip
        return hf_files
    if "://" not in pattern and os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    result = FileSystems.match([pattern])[0]
    if not result.metadata_list and "://" in pattern and not _GLOB.search(pattern):
        result = FileSystems.match([pattern.rstrip("/") + "/*"])[0]
    paths = sorted(m.path for m in result.metadata_list if any(m.path.lower().endswith(e) for e in FORMATS))
    if not paths:
        raise ValueError(f"{option} {pattern!r} matched no .parquet, .jsonl, .json, .arrow or .zip files")
    return paths


def _open(path: str):
    if path.startswith(HUB_PREFIX):
        return open_hub_file(path)
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _zip_members(source: str, names: list[str]) -> list[str]:
    """The annotation members of an upstream `annotations.zip` for this source."""
    jsonl = sorted(
        n
        for n in names
        if n.lower().endswith(".jsonl") and "__MACOSX" not in n and not n.rsplit("/", 1)[-1].startswith(".")
    )
    prm = [n for n in jsonl if n.lower().endswith("_prm.jsonl")]
    if source == "visualprm" and prm:
        return prm
    if source == "visualprm_raw":
        return [n for n in jsonl if not n.lower().endswith(("_prm.jsonl", "_orm.jsonl"))]
    return jsonl


def list_units(source: str, path: str) -> list[InputUnit]:
    kind = file_kind(path)
    if kind != "zip":
        return [InputUnit(source, path, kind)]
    with _open(path) as f, zipfile.ZipFile(f) as zf:
        members = _zip_members(source, zf.namelist())
    if not members:
        raise ValueError(f"--input {path}: the archive holds no .jsonl annotation members for source {source}")
    return [InputUnit(source, path, "jsonl", m) for m in members]


class _UnitStream:
    """A binary stream over a unit: the file itself, or its zip member (seekable either way)."""

    def __init__(self, unit: InputUnit):
        self._file = _open(unit.path)
        self._zip = zipfile.ZipFile(self._file) if unit.member else None
        self.stream = self._zip.open(unit.member) if self._zip else self._file

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        if self._zip:
            self.stream.close()
            self._zip.close()
        self._file.close()


def plan_chunks(unit: InputUnit, rows_per_chunk: int) -> list[Chunk]:
    if unit.kind == "parquet":
        return _plan_parquet(unit, rows_per_chunk)
    if unit.kind == "arrow":
        return _plan_arrow(unit, rows_per_chunk)
    if unit.kind == "json":
        with _UnitStream(unit) as s:
            data = s.read()
        document = _json_document(data, unit)
        if document is not None:
            n = len(document)
            return [
                Chunk(unit, i, start, min(rows_per_chunk, n - start))
                for i, start in enumerate(range(0, n, rows_per_chunk))
            ]
        unit = InputUnit(unit.source, unit.path, "jsonl", unit.member)
    return _plan_jsonl(unit, rows_per_chunk)


def _json_document(data: bytes, unit: InputUnit) -> list | None:
    """The records of a `.json` file that is one JSON document: an array of records, or a single (pretty-printed)
    record; None when it is JSON Lines. A BOM is allowed, as in JSON Lines."""
    text = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] == b"[":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--input {unit.path}: not a valid JSON array ({exc})") from exc
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


def _plan_jsonl(unit: InputUnit, rows_per_chunk: int) -> list[Chunk]:
    """One pass over the lines: a chunk starts every `rows_per_chunk` non-blank lines."""
    chunks: list[Chunk] = []
    offset = 0
    start_line = start_offset = None
    count = 0
    with _UnitStream(unit) as s:
        for line_no, line in enumerate(s):
            if line.strip():
                if count == 0:
                    start_line, start_offset = line_no, offset
                count += 1
                if count == rows_per_chunk:
                    chunks.append(Chunk(unit, len(chunks), start_line, count, start_offset))
                    count = 0
            offset += len(line)
    if count:
        chunks.append(Chunk(unit, len(chunks), start_line, count, start_offset))
    return chunks


def _plan_parquet(unit: InputUnit, rows_per_chunk: int) -> list[Chunk]:
    """Chunks of whole row groups where they are small, sub-ranges of one row group where it is large."""
    with _open(unit.path) as f:
        meta = pq.ParquetFile(f).metadata
    chunks: list[Chunk] = []
    groups: list[int] = []
    first = rows = row = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if groups and rows + n > rows_per_chunk:
            chunks.append(Chunk(unit, len(chunks), first, rows, 0, tuple(groups)))
            groups, rows = [], 0
        if not groups:
            first = row
        if n > rows_per_chunk:
            for skip in range(0, n, rows_per_chunk):
                take = min(rows_per_chunk, n - skip)
                chunks.append(Chunk(unit, len(chunks), row + skip, take, skip, (g,)))
        elif n:
            groups.append(g)
            rows += n
        row += n
    if groups:
        chunks.append(Chunk(unit, len(chunks), first, rows, 0, tuple(groups)))
    return chunks


def _text_as_binary(t: pa.DataType) -> pa.DataType:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.large_binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.large_list(_text_as_binary(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _text_as_binary(f.type)) for f in t])
    return t


def _escaped(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _batch_rows(batch: pa.RecordBatch) -> Iterator[tuple[dict, str | None]]:
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


def _arrow_batches(stream) -> Iterator[tuple[int, pa.RecordBatch]]:
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


def _plan_arrow(unit: InputUnit, rows_per_chunk: int) -> list[Chunk]:
    """Chunks of whole record batches where they are small, slices of one batch where it is large."""
    chunks: list[Chunk] = []
    start = rows = row = 0
    with _UnitStream(unit) as s:
        for offset, batch in _arrow_batches(s):
            n = batch.num_rows
            if rows and rows + n > rows_per_chunk:
                chunks.append(Chunk(unit, len(chunks), row - rows, rows, start))
                rows = 0
            if n > rows_per_chunk:
                for skip in range(0, n, rows_per_chunk):
                    take = min(rows_per_chunk, n - skip)
                    chunks.append(Chunk(unit, len(chunks), row + skip, take, offset, skip=skip))
            elif n:
                start = offset if not rows else start
                rows += n
            row += n
    if rows:
        chunks.append(Chunk(unit, len(chunks), row - rows, rows, start))
    return chunks


def _read_arrow(chunk: Chunk) -> Iterator[tuple[dict, str | None]]:
    with _UnitStream(chunk.unit) as s:
        schema = pa.ipc.read_schema(pa.ipc.read_message(pa.PythonFile(s, mode="r")))
        s.seek(chunk.offset)
        native, skip, left = pa.PythonFile(s, mode="r"), chunk.skip, chunk.num_rows
        while left > 0:
            batch = pa.ipc.read_record_batch(pa.ipc.read_message(native), schema).slice(skip, left)
            skip = 0
            left -= batch.num_rows
            yield from _batch_rows(batch)


def read_chunk(chunk: Chunk) -> Iterator[RawRecord]:
    unit = chunk.unit

    def provenance(row: int) -> Provenance:
        return Provenance(unit.path, row, chunk.chunk_id, unit.member, row - chunk.first_row)

    if unit.kind == "parquet":
        with _open(unit.path) as f:
            pf = pq.ParquetFile(f)
            row, skip, left = chunk.first_row, chunk.offset, chunk.num_rows
            for batch in pf.iter_batches(batch_size=256, row_groups=list(chunk.row_groups)):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                batch = batch.slice(skip, left)
                skip = 0
                for rec, unreadable in _batch_rows(batch):
                    yield RawRecord(unit.source, provenance(row), record=rec, unreadable=unreadable)
                    row += 1
                left -= batch.num_rows
                if left <= 0:
                    return
    elif unit.kind == "arrow":
        for row, (rec, unreadable) in enumerate(_read_arrow(chunk), start=chunk.first_row):
            yield RawRecord(unit.source, provenance(row), record=rec, unreadable=unreadable)
    elif unit.kind == "json":
        with _UnitStream(unit) as s:
            data = s.read()
        rows = _json_document(data, unit) or []
        # with escaped surrogates in the file, records go the JSON Lines way, where unpaired ones are rejected
        escaped = b"\\ud" in data or b"\\uD" in data
        for i in range(chunk.first_row, chunk.first_row + chunk.num_rows):
            rec = rows[i]
            if isinstance(rec, dict) and not escaped:
                yield RawRecord(unit.source, provenance(i), record=rec)
            else:
                yield RawRecord(unit.source, provenance(i), line=json.dumps(rec).encode())
    else:
        with _UnitStream(unit) as s:
            s.seek(chunk.offset)
            left = chunk.num_rows
            for line_no, line in enumerate(s, start=chunk.first_row):
                if not line.strip():
                    continue
                yield RawRecord(unit.source, provenance(line_no), line=line.rstrip(b"\r\n"))
                left -= 1
                if left == 0:
                    return
