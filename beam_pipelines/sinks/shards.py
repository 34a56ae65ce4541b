"""Chunk-aligned shard writing: the base of every writer of the outputs' data files.

The elements of one input chunk normally reach a writer consecutively and in input order: the stages between the
chunk reader and the writers are fused ParDos. A writer opens one shard when a chunk starts (rolling over to a new
part when a size target is hit), streams elements into it, and publishes it atomically once complete. No element
is shuffled and memory stays bounded by one row group. A part is named after the row offset of its first record
within the chunk (`layout.part_name`), so a runner that splits a chunk across bundles (a fusion break) gets
distinct parts, never one file written twice, and a rerun (or a retried bundle) rewrites the same names with the
same content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from beam_pipelines.files import AtomicFile, WrittenFile
from beam_pipelines.layout import OutputLayout, part_name
from beam_pipelines.records import Sample
from beam_pipelines.stages import StageClock, take_stage_times


@dataclass(frozen=True)
class ShardLimits:
    max_samples: int
    max_bytes: int


@dataclass(frozen=True)
class ShardTarget:
    """Where a run's shards go: the output layout, the size limits, and the version that names them."""

    layout: OutputLayout
    limits: ShardLimits
    version: str

    def unit(self, chunk_id: str) -> str:
        return f"{self.version}-{chunk_id}"

    def open(self, kind: str, name: str) -> AtomicFile:
        """A data file of this run, written under the output's scratch folder until committed."""
        return AtomicFile(self.layout.data_file(kind, name), self.layout.scratch)

    def written(self, f: AtomicFile, kind: str, rows: int, unit: str) -> WrittenFile:
        return f.written(self.layout.root, kind, rows, unit)


def payload_bytes(sample: Sample) -> int:
    """The size of a sample's image payload: both writers roll parts on it, so their parts line up."""
    return sum(len(i.encoded.data) for i in sample.images) + sum(
        len(r.crop.data) for r in sample.regions if r.crop is not None
    )


class ChunkWriterFn(beam.DoFn):
    """Base writer: one shard per (chunk, part), named `<version>-<chunk>-<offset>`; subclasses open, write and close
    the concrete files."""

    kind = ""  # names the writer's stage clock, `write_<kind>`

    def __init__(self, target: ShardTarget):
        self.target = target
        self.limits = target.limits

    def setup(self) -> None:
        self.clock = StageClock(f"write_{self.kind}")

    def start_bundle(self) -> None:
        self._chunk: str | None = None
        self._rows = 0
        self._bytes = 0

    def accepts(self, element: Any) -> bool:
        return isinstance(element, Sample)

    def size_of(self, element: Any) -> int:
        return payload_bytes(element)

    def process(self, element: Any):
        if not self.accepts(element):
            return
        chunk = element.provenance.chunk_id
        size = self.size_of(element)
        rolls = self._rows and (self._rows >= self.limits.max_samples or self._bytes + size > self.limits.max_bytes)
        if chunk != self._chunk or rolls:
            yield from self._close()
            self._chunk = chunk
            with self.clock:
                self.open_shard(part_name(self.unit, element.provenance.offset))
        with self.clock:
            self.write(element)
        self._rows += 1
        self._bytes += size

    @property
    def unit(self) -> str:
        return self.target.unit(self._chunk or "")

    def finish_bundle(self):
        """The bundle's last files, then this process's stage times: writers end the fused chain, so by now every
        stage upstream has finished its share of the bundle."""
        for info in self._close():
            yield GlobalWindows.windowed_value(info)
        yield GlobalWindows.windowed_value(take_stage_times())

    def _close(self):
        if self._chunk is not None and self._rows:
            with self.clock:
                infos = list(self.close_shard())
            yield from infos
        self._rows = self._bytes = 0

    def open_shard(self, name: str) -> None:
        raise NotImplementedError

    def write(self, element: Any) -> None:
        raise NotImplementedError

    def close_shard(self):
        raise NotImplementedError
