"""Input patterns → files → record files: what `--input` names, resolved on the launching machine or a worker.

A pattern is a local path, glob or directory, a gs:// pattern (a glob-free prefix reads as a directory), or one of
the Hugging Face forms (`huggingface`). A `.zip` stands for its JSON Lines members, of which the source's dataset
picks the ones it reads (VisualPRM400K ships both forms of its annotations in one archive).
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable

from apache_beam.io.filesystems import FileSystems

from beam_pipelines.sources.huggingface import expand_hf
from beam_pipelines.sources.readers.base import COMPRESSED, RecordFile, compression_of, open_file

FORMATS = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".arrow": "arrow",
    ".zip": "zip",
}
_GLOB = re.compile(r"[*?\[]")
MemberRule = Callable[[list[str]], list[str]]
"""Which of an archive's JSON Lines members (sorted names) a source reads."""


def file_format(path: str) -> str:
    lower = path.lower()
    compression = compression_of(path)
    stem = lower[: len(lower) - len(compression)]
    for ext, kind in FORMATS.items():
        if stem.endswith(ext) and (not compression or kind in ("jsonl", "json")):
            return kind
    raise ValueError(
        f"--input {path}: unsupported file type (expected .parquet, .jsonl, .json, .arrow or .zip; JSON Lines and "
        f"JSON may be compressed: {', '.join(COMPRESSED)})"
    )


def readable(path: str) -> bool:
    try:
        file_format(path)
    except ValueError:
        return False
    return True


def expand_pattern(pattern: str, option: str = "--input") -> list[str]:
    """Files matched by a local path, glob, directory or gs:// pattern, sorted; an empty match is an error.

    A gs:// "directory" is a prefix, not an object: a glob-free pattern that names no object is read as one.
    """
    hf_files = expand_hf(pattern)
    if hf_files is not None:
        if not hf_files:
            raise ValueError(f"{option} {pattern!r} resolved to no data files")
        for path in hf_files:
            file_format(path)  # an unsupported file (say .jsonl.gz) is an error, not a silent skip
        return hf_files
    matched = match_pattern(pattern)
    paths = sorted(p for p in matched if readable(p))
    if not paths:
        raise ValueError(f"{option} {pattern!r} matched no .parquet, .jsonl, .json, .arrow or .zip files")
    for path in paths:
        _check_regular(path, option)
    return paths


def match_pattern(pattern: str) -> list[str]:
    """Everything a pattern matches: a directory's entries but hidden ones (not recursively: a subfolder is one
    entry, which is not read), a glob's matches, a gs:// prefix's objects."""
    if "://" not in pattern and os.path.isdir(pattern):
        return sorted(os.path.join(pattern, n) for n in os.listdir(pattern) if not n.startswith("."))
    result = FileSystems.match([pattern])[0]
    if not result.metadata_list and "://" in pattern and not _GLOB.search(pattern):
        result = FileSystems.match([pattern.rstrip("/") + "/*"])[0]
    return sorted(m.path for m in result.metadata_list)


def skipped(pattern: str) -> list[str]:
    """What a pattern matches that is not read: files of other types and subfolders (a directory is not read
    recursively), so that the launch can say so."""
    if expand_hf(pattern) is not None:
        return []
    return [
        p + ("/" if os.path.isdir(p) else "") for p in match_pattern(pattern) if not readable(p) or os.path.isdir(p)
    ]


def _check_regular(path: str, option: str) -> None:
    """A local input that is a FIFO or device would block the launch when read: refused with what it is."""
    if "://" in path:
        return
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "directory" if stat.S_ISDIR(mode) else "special file"
        raise ValueError(f"{option} {path}: a {kind}, not a regular file")


def annotation_members(names: list[str]) -> list[str]:
    """The JSON Lines members of an archive, sorted, without macOS resource forks and hidden files."""
    return sorted(
        n
        for n in names
        if n.lower().endswith(".jsonl") and "__MACOSX" not in n and not n.rsplit("/", 1)[-1].startswith(".")
    )


def record_files(source: str, path: str, members: MemberRule) -> list[RecordFile]:
    """The record files of one input file: itself, or the archive members `members` picks."""
    kind = file_format(path)
    if kind != "zip":
        return [RecordFile(source, path, kind)]
    with open_file(path) as f, zipfile.ZipFile(f) as zf:
        picked = members(annotation_members(zf.namelist()))
    if not picked:
        raise ValueError(f"--input {path}: the archive holds no .jsonl annotation members for source {source}")
    return [RecordFile(source, path, "jsonl", m) for m in picked]
