"""`parquet/samples/<unit>-<part>.parquet`, `parquet/regions/<unit>-<part>.parquet`, and the id index
`index/<unit>-<part>.parquet` (written whatever the formats: it is how a refresh knows what the dataset holds).

Rows are streamed in row groups of `ROW_GROUP` samples so a worker never holds a whole shard. Binary columns hold
encoded payloads (image files, crops, zlib-compressed pixels): they are stored plain and uncompressed, since
dictionary encoding and Snappy only spend time on them; every other column is dictionary-encoded and Snappy.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipelines.files import WrittenFile
from beam_pipelines.records import Sample
from beam_pipelines.sinks.schema import INDEX_SCHEMA, REGION_SCHEMA, SAMPLE_SCHEMA, index_row, region_rows, sample_row
from beam_pipelines.sinks.shards import ChunkWriterFn, ShardTarget

ROW_GROUP = 64


@functools.cache
def _columns(schema: pa.Schema) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every leaf column's Parquet path, the binary ones among them), as Parquet names them."""
    probe = io.BytesIO()
    pq.write_table(schema.empty_table(), probe)
    parquet_schema = pq.ParquetFile(probe).schema
    leaves = [parquet_schema.column(i) for i in range(len(parquet_schema))]
    binary = [c.path for c in leaves if c.physical_type == "BYTE_ARRAY" and c.logical_type.type == "NONE"]
    return tuple(c.path for c in leaves), tuple(binary)


def writer_options(schema: pa.Schema) -> dict[str, Any]:
    """`pq.ParquetWriter` options for a table of `schema`: payloads plain and uncompressed, the rest Snappy."""
    paths, payloads = _columns(schema)
    others = [path for path in paths if path not in payloads]
    return {
        "compression": {path: "none" if path in payloads else "snappy" for path in paths},
        "use_dictionary": others,
        "write_statistics": others,
    }


class _Table:
    """One Parquet file being written: buffered rows flushed as row groups into an atomic file."""

    def __init__(self, target: ShardTarget, kind: str, name: str, schema: pa.Schema, unit: str):
        self.target = target
        self.file = target.open(kind, name)
        self.schema = schema
        self.kind, self.unit = kind, unit
        self.writer = pq.ParquetWriter(self.file, schema, **writer_options(schema))
        self.rows: list[dict] = []
        self.count = 0

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        self.count += len(rows)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def commit(self) -> WrittenFile | None:
        self.flush()
        self.writer.close()
        if not self.count:
            self.file.abort()
            return None
        self.file.commit()
        return self.target.written(self.file, self.kind, self.count, self.unit)


class ParquetShardWriterFn(ChunkWriterFn):
    kind = "parquet"

    def _table(self, kind: str, name: str, schema: pa.Schema) -> _Table:
        return _Table(self.target, kind, name, schema, self.unit)

    def open_shard(self, name: str) -> None:
        self._samples = self._table("parquet_samples", name, SAMPLE_SCHEMA)
        self._regions = self._table("parquet_regions", name, REGION_SCHEMA)

    def write(self, element: Sample) -> None:
        self._samples.add([sample_row(element)])
        if element.regions:
            self._regions.add(region_rows(element))

    def close_shard(self):
        for table in (self._samples, self._regions):
            info = table.commit()
            if info is not None:
                yield info


class IndexShardWriterFn(ParquetShardWriterFn):
    """`index/<unit>-<part>.parquet`: sample_id and input position of every accepted sample."""

    kind = "index"

    def open_shard(self, name: str) -> None:
        self._index = self._table("index", name, INDEX_SCHEMA)

    def write(self, element: Sample) -> None:
        self._index.add([index_row(element)])

    def close_shard(self):
        info = self._index.commit()
        if info is not None:
            yield info
