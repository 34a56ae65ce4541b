"""Files on any Beam filesystem (local, gs://): atomic writes, deletes, reads, and the record of a written file.

Every file the product writes appears whole or not at all. `AtomicFile` writes to a temporary name and publishes
on `commit()`: under a scratch folder and renamed into place (the output's data files: a gs:// rename is a copy that
replaces the final object in one step), or, without a scratch folder, to a hidden sibling renamed into place
(local) or straight to the object (gs://: an upload is invisible until closed). Sinks, versioning and image
staging all write through it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO


def _beam():
    """Beam's filesystem layer, imported when a remote path (or a pattern) first needs it: local reads, and help
    and launch errors, do without the import."""
    from apache_beam.io.filesystem import BeamIOError, CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems, BeamIOError, CompressionTypes.UNCOMPRESSED


def is_remote(path: str) -> bool:
    return "://" in path


def join(base: str, *parts: str) -> str:
    """`base/part/...`, as Beam's filesystems join: `os.path.join` locally, `/` between the parts of a URL."""
    if not is_remote(base):
        return os.path.join(base, *parts)
    out = base
    for part in parts:
        out = out + part if out.endswith("/") else f"{out}/{part}"
    return out


def relative(root: str, path: str) -> str:
    """`path` relative to `root` (with `/` separators), or ValueError when it does not lie under it."""
    base = root.rstrip("/") + "/"
    if not path.startswith(base):
        raise ValueError(f"{path} is not under {root}")
    return path[len(base) :]


@dataclass(frozen=True)
class WrittenFile:
    """A file a run wrote: its kind, its path relative to the output root, rows, bytes and SHA-256, and the unit
    (the version and input chunk, or compaction group) it belongs to. Manifests list these under their unit."""

    kind: str
    path: str
    rows: int
    bytes: int
    sha256: str = ""
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        """The manifest entry (the unit is the enclosing one)."""
        return {"kind": self.kind, "path": self.path, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


def open_read(path: str) -> BinaryIO:
    if not is_remote(path):
        return open(path, "rb")
    filesystems, _, uncompressed = _beam()
    return filesystems.open(path, compression_type=uncompressed)


def read_text(path: str) -> str:
    with open_read(path) as f:
        return f.read().decode("utf-8")


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    return _beam()[0].exists(path)


def remove_matching(patterns: list[str]) -> None:
    """Delete every file matching the patterns (a pattern under a missing directory matches nothing)."""
    filesystems, beam_io_error, _ = _beam()
    found = []
    for pattern in patterns:
        try:
            found.extend(m.path for m in filesystems.match([pattern])[0].metadata_list)
        except beam_io_error:
            continue
    if found:
        filesystems.delete(found)


def remove_tree(path: str) -> None:
    """Delete a file or a directory tree, local or remote; nothing there is fine."""
    if not is_remote(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        return
    remove_matching([path, path + "/**"])


class AtomicFile:
    """A file-like object that appears under its final name, whole, on `commit()`; `abort()` leaves nothing.

    With `scratch`, it is written under that folder and renamed into place; without, next to the final name as a
    hidden `.NAME.<uuid>.partial` (local) or straight to the object (gs://). It counts, and with `digest` hashes,
    what is written (remote streams cannot always `tell()`), so writers learn file sizes and manifests get
    checksums without reading the file again.
    """

    def __init__(self, final: str, scratch: str | None = None, digest: bool = True):
        self.final = final
        name = final.rsplit("/", 1)[-1]
        if scratch is not None:
            self.temp = join(scratch, f"{uuid.uuid4().hex}-{name}")
        elif is_remote(final):
            self.temp = final
        else:
            self.temp = os.path.join(os.path.dirname(final), f".{name}.{uuid.uuid4().hex}.partial")
        if not is_remote(self.temp):
            os.makedirs(os.path.dirname(self.temp) or ".", exist_ok=True)
        filesystems, _, uncompressed = _beam()
        self._stream: BinaryIO = filesystems.create(self.temp, compression_type=uncompressed)
        self.size = 0
        self.closed = False
        self._hash = hashlib.sha256() if digest else None

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        if self._hash is not None:
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

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest() if self._hash is not None else ""

    def commit(self) -> None:
        """Close the stream (which commits a gs:// upload), then rename into place over any earlier version.

        Readers see the old file or the new one, never a part or a gap. Only filesystems whose rename refuses to
        overwrite (HDFS) get the earlier version deleted first.
        """
        self._stream.close()
        self.closed = True
        if self.temp == self.final:
            return
        if not is_remote(self.final):
            os.makedirs(os.path.dirname(self.final) or ".", exist_ok=True)
            os.replace(self.temp, self.final)
            return
        filesystems, beam_io_error, _ = _beam()
        try:
            filesystems.rename([self.temp], [self.final])
        except beam_io_error:
            if not filesystems.exists(self.final):
                raise
            filesystems.delete([self.final])
            filesystems.rename([self.temp], [self.final])

    def written(self, root: str, kind: str, rows: int, unit: str = "") -> WrittenFile:
        """The record of this (committed) file, its path relative to `root`."""
        return WrittenFile(kind, relative(root, self.final), rows, self.size, self.sha256, unit)

    def abort(self) -> None:
        """Discard what was written. A direct gs:// upload is committed by closing, so it is deleted again."""
        self._stream.close()
        self.closed = True
        if exists(self.temp):
            _beam()[0].delete([self.temp])


def write_text(path: str, text: str, scratch: str | None = None) -> None:
    """A small text file (report, page, manifest, pointer), published atomically."""
    f = AtomicFile(path, scratch)
    f.write(text.encode("utf-8"))
    f.commit()
