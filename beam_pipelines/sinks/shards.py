"""Chunk-aligned shard writing with atomic publication.

The elements of one input chunk reach a writer consecutively and in input order: the stages between
the chunk reader and the writers are fused ParDos, and a chunk is never split across bundles. A
writer therefore opens one shard per chunk (rolling over to a new part when a size target is hit),
streams elements into it, and publishes it by renaming a temp file once complete. No element is
shuffled, memory stays bounded by one row group, and names depend only on the input chunk, so a
rerun (or a retried bundle) rewrites the same files with the same content.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from beam_pipelines.records import Rejection, Sample
from beam_pipelines.sinks.schema import rejection_line
from beam_pipelines.stages import StageClock

TMP_DIR = "_tmp"


@dataclass(frozen=True)
class ShardLimits:
    max_samples: int
    max_bytes: int


@dataclass(frozen=True)
class ShardTarget:
    """Where a run's shards go: the output root, the size limits, and the version that names them."""

    output: str
    limits: ShardLimits
    version: str

    def unit(self, chunk_id: str) -> str:
        return f"{self.version}-{chunk_id}"


@dataclass(frozen=True)
class ShardInfo:
    """A published file: what kind, where, how many rows and bytes, its SHA-256, and the unit it belongs to
    (the version and input chunk that produced it; see `versioning.manifest`)."""

    kind: str
    path: str
    rows: int
    bytes: int
    sha256: str = ""
    unit: str = ""


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


FOLDERS = {
    "parquet_samples": ("parquet/samples", "parquet"),
    "parquet_regions": ("parquet/regions", "parquet"),
    "index": ("index", "parquet"),
    "webdataset": ("webdataset", "tar"),
    "rejected": ("rejected", "jsonl"),
}
"""Folder (under the output) and extension of each kind of shard file."""


def write_text(output: str, path: str, text: str) -> None:
    """A small text file (report, page, manifest, pointer) at `path` under `output`, published atomically."""
    f = AtomicFile(output, join(output, path))
    f.write(text.encode("utf-8"))
    f.commit()


def remove_matching(patterns: list[str]) -> None:
    """Delete every file matching the patterns (a pattern under a missing directory matches nothing)."""
    found = []
    for pattern in patterns:
        try:
            found.extend(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        except BeamIOError:
            continue
    if found:
        FileSystems.delete(found)


def remove_tree(path: str) -> None:
    """Delete a file or a directory tree, local or remote; nothing there is fine."""
    if "://" not in path:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        return
    remove_matching([path, path + "/**"])


class AtomicFile:
    """A file-like object written under `<output>/_tmp/` and renamed to its final name on `commit()`.

    It counts and hashes what is written (remote streams cannot always `tell()`), so writers learn shard sizes and
    the manifest gets checksums without reading the file again.
    """

    def __init__(self, output: str, final: str):
        self.final = final
        self.temp = join(output, TMP_DIR, f"{uuid.uuid4().hex}-{final.rsplit('/', 1)[-1]}")
        self._stream: BinaryIO = FileSystems.create(self.temp, compression_type=CompressionTypes.UNCOMPRESSED)
        self.size = 0
        self.closed = False
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Writers built on us (tar, Parquet) may close us: publication still waits for `commit()`."""

    def commit(self) -> None:
        """Close the stream (which commits a gs:// upload), then rename into place over any earlier version.

        A gs:// upload is invisible until closed and a GCS rename is a copy, which replaces the final object in
        one step, so readers see the old file or the new one, never a part or a gap. Only filesystems whose rename
        refuses to overwrite (HDFS) get the earlier version deleted first.
        """
        self._stream.close()
        self.closed = True
        if "://" not in self.final:
            os.makedirs(os.path.dirname(self.final) or ".", exist_ok=True)
        try:
            FileSystems.rename([self.temp], [self.final])
        except BeamIOError:
            if not FileSystems.exists(self.final):
                raise
            FileSystems.delete([self.final])
            FileSystems.rename([self.temp], [self.final])

    def info(self, kind: str, rows: int, unit: str) -> ShardInfo:
        return ShardInfo(kind, self.final, rows, self.size, self._hash.hexdigest(), unit)

    def abort(self) -> None:
        self._stream.close()
        self.closed = True
        FileSystems.delete([self.temp])


def payload_bytes(sample: Sample) -> int:
    """The size of a sample's image payload: both writers roll parts on it, so their parts line up."""
    return sum(len(i.encoded.data) for i in sample.images) + sum(
        len(r.crop.data) for r in sample.regions if r.crop is not None
    )


class ChunkWriterFn(beam.DoFn):
    """Base writer: one shard per (chunk, part), named `<version>-<chunk>-<part>`; subclasses open/write/close the
    concrete files."""

    kind = ""

    def __init__(self, target: ShardTarget):
        self.output = target.output
        self.limits = target.limits
        self.target = target

    def setup(self) -> None:
        self.clock = StageClock(f"write_{self.kind}")

    def start_bundle(self) -> None:
        self._chunk: str | None = None
        self._part = 0
        self._rows = 0
        self._bytes = 0
        self._parts_used: dict[str, int] = {}

    def accepts(self, element: Any) -> bool:
        return isinstance(element, Sample)

    def size_of(self, element: Any) -> int:
        return payload_bytes(element)

    def process(self, element: Any):
        if not self.accepts(element):
            return
        chunk = element.provenance.chunk_id
        size = self.size_of(element)
        if chunk != self._chunk:
            yield from self._close()
            # A chunk's records normally arrive together; if one comes back in the same bundle it continues with
            # the next part instead of overwriting the parts it already wrote.
            self._chunk, self._part = chunk, self._parts_used.get(chunk, 0)
            self.open_shard(self._name())
        elif self._rows and (self._rows >= self.limits.max_samples or self._bytes + size > self.limits.max_bytes):
            yield from self._close()
            self._part += 1
            self.open_shard(self._name())
        with self.clock:
            self.write(element)
        self._rows += 1
        self._bytes += size

    def _name(self) -> str:
        return f"{self.unit}-{self._part:03d}"

    @property
    def unit(self) -> str:
        return self.target.unit(self._chunk or "")

    def finish_bundle(self):
        for info in self._close():
            yield GlobalWindows.windowed_value(info)

    def _close(self):
        if self._chunk is not None and self._rows:
            with self.clock:
                infos = list(self.close_shard())
            self._parts_used[self._chunk] = self._part + 1
            yield from infos
        self._rows = self._bytes = 0

    def open_shard(self, name: str) -> None:
        raise NotImplementedError

    def write(self, element: Any) -> None:
        raise NotImplementedError

    def close_shard(self):
        raise NotImplementedError


class DeadLetterWriterFn(ChunkWriterFn):
    """`rejected/<chunk>-<part>.jsonl`: one JSON line per rejected input record, in input order."""

    kind = "rejected"

    def accepts(self, element: Any) -> bool:
        return isinstance(element, Rejection)

    def size_of(self, element: Any) -> int:
        return 0

    def open_shard(self, name: str) -> None:
        self._file = AtomicFile(self.output, join(self.output, "rejected", f"{name}.jsonl"))

    def write(self, element: Rejection) -> None:
        self._file.write(rejection_line(element).encode("utf-8") + b"\n")

    def close_shard(self):
        self._file.commit()
        yield self._file.info(self.kind, self._rows, self.unit)
