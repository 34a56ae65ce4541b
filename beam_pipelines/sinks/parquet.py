"""`parquet/samples/<chunk>-<part>.parquet` and `parquet/regions/<chunk>-<part>.parquet`.

Rows are streamed in row groups of `ROW_GROUP` samples so a worker never holds a whole shard.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipelines.records import Sample
from beam_pipelines.sinks.schema import REGION_SCHEMA, SAMPLE_SCHEMA, region_rows, sample_row
from beam_pipelines.sinks.shards import AtomicFile, ChunkWriterFn, ShardInfo, join

ROW_GROUP = 64


class _Table:
    """One Parquet file being written: buffered rows flushed as row groups into an atomic file."""

    def __init__(self, output: str, final: str, schema: pa.Schema):
        self.file = AtomicFile(output, final)
        self.schema = schema
        self.writer = pq.ParquetWriter(self.file, schema, compression="snappy")
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

    def commit(self) -> ShardInfo | None:
        self.flush()
        self.writer.close()
        if not self.count:
            self.file.abort()
            return None
        self.file.commit()
        return ShardInfo(f"parquet_{self.file.final.rsplit('/', 2)[-2]}", self.file.final, self.count, self.file.size)


class ParquetShardWriterFn(ChunkWriterFn):
    kind = "parquet"

    def open_shard(self, name: str) -> None:
        self._samples = _Table(self.output, join(self.output, "parquet", "samples", f"{name}.parquet"), SAMPLE_SCHEMA)
        self._regions = _Table(self.output, join(self.output, "parquet", "regions", f"{name}.parquet"), REGION_SCHEMA)

    def write(self, element: Sample) -> None:
        self._samples.add([sample_row(element)])
        if element.regions:
            self._regions.add(region_rows(element))

    def close_shard(self):
        for table in (self._samples, self._regions):
            info = table.commit()
            if info is not None:
                yield info
