"""Input fingerprints: what a refresh compares to decide which input files it must read again.

A fingerprint is the path, the size and the modification time (object update time on gs://), plus a content
hash where it is cheap: the object's own checksum on gs:// (CRC32C or MD5, kept by the store), SHA-256 of local
files. A file whose size and time are unchanged is not read at all; one whose time changed but whose content hash
is unchanged (a copy or a `touch`) is unchanged too, at the cost of hashing it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from apache_beam.io.filesystems import FileSystems

HASH_BLOCK = 1 << 20


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_hash(path: str) -> str | None:
    if "://" not in path:
        return "sha256:" + _sha256(path)
    if path.startswith("gs://"):
        return "gcs:" + FileSystems.checksum(path)
    return None


def _stat(path: str) -> dict[str, Any]:
    if "://" not in path:
        st = os.stat(path)
        return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    metadata = FileSystems.match([path])[0].metadata_list
    if len(metadata) != 1:
        return {"path": path}
    return {"path": path, "size": metadata[0].size_in_bytes, "mtime_ns": int(metadata[0].last_updated_in_seconds * 1e9)}


def fingerprint(path: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of one input file, reusing `previous` (the last version's) when size and time agree.

    Files we cannot stat (Hugging Face Hub paths) get the path only, so they always count as changed; the
    refresh still skips their records that are already published, by sample_id.
    """
    current = _stat(path)
    if "size" not in current:
        return current
    if previous is not None and all(previous.get(k) == current[k] for k in ("size", "mtime_ns")):
        return previous
    content = _content_hash(path)
    return {**current, "content": content} if content else current


def unchanged(current: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    if previous is None or "size" not in current or current.get("size") != previous.get("size"):
        return False
    if current.get("mtime_ns") == previous.get("mtime_ns"):
        return True
    return current.get("content") is not None and current.get("content") == previous.get("content")
