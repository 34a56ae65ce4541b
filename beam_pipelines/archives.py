"""`vgr-etl stage-images`: unpack the upstream image archives into an image root, local or gs://.

LLaVA-NeXT ships its images as `llava_next_raw_format_images_*.tar.gz`, VisualPRM400K as one zip split into
byte ranges (`images.zip_aa`, `images.zip_ab`, ...: concatenated in name order they form the zip). Archives are
read as streams through Beam's filesystem layer and members are copied in blocks, so memory stays bounded
whatever the archive size: a tar is read front to back by one worker; a zip (its parts seen as one seekable
stream) is split into member ranges that workers read in parallel.

Every member lands under the destination only if its path stays inside it: absolute paths, `..`, links and
device entries are refused and reported (on a local destination, also paths through a symlink leading out).
A file already there with the same size is skipped, so a rerun (or a resumed run) writes only what is missing.
Files appear whole: a gs:// object is invisible until its upload is closed, a local file is renamed into place.

Damage is reported, never staged silently. A tar is read to its very end: its gzip checksum is verified and
anything but zero padding after the last member (a corrupt header, where `tarfile` would quietly stop) is an
error; as a checksum covers the whole stream, the files written from a corrupt tar are removed again, so a rerun
with a good copy writes them afresh instead of skipping them by size. Zip members carry their own checksums: a
damaged one is reported and the next member is read.
"""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipelines import progress
from beam_pipelines.files import AtomicFile
from beam_pipelines.materialisation.images import MAX_ZIP_RATIO, check_relative
from beam_pipelines.records import RejectedError

BLOCK = 1 << 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_ZIP_PART = re.compile(r"^(?P<zip>.+\.zip)(?:_[a-z]+|\.\d{3})$")
_S_IFMT, _S_IFLNK, _S_IFREG = 0o170000, 0o120000, 0o100000


@dataclass(frozen=True)
class Archive:
    """One logical archive: a tar (possibly compressed), or a zip made of one or more byte-range parts."""

    name: str
    kind: str  # tar | zip
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Task:
    """The unit of work of one worker: a whole tar, or members [start, stop) of a zip."""

    archive: Archive
    start: int = 0
    stop: int | None = None


def group_archives(paths: list[str]) -> list[Archive]:
    """Archives from matched files: split zip parts grouped under their zip's name and ordered by suffix."""
    parts: dict[str, list[str]] = {}
    archives = []
    for path in sorted(set(paths)):
        lower = path.lower()
        split = _ZIP_PART.match(path)
        if split:
            parts.setdefault(split["zip"], []).append(path)
        elif lower.endswith(".zip"):
            parts.setdefault(path, []).insert(0, path)
        elif lower.endswith(TAR_SUFFIXES):
            archives.append(Archive(path, "tar", (path,)))
        else:
            raise ValueError(f"--archive {path}: not a .tar, .tar.gz, .tgz, .zip or split .zip_aa/.zip.001 part")
    archives.extend(Archive(name, "zip", tuple(members)) for name, members in parts.items())
    return sorted(archives, key=lambda a: a.name)


def member_path(name: str) -> str:
    """The member's path relative to the destination, or RejectedError if it would land outside."""
    try:
        return check_relative(name)
    except RejectedError as exc:
        raise RejectedError("stage", "path_escapes_root", exc.info.message.replace("image path", "member")) from None


class ConcatenatedParts(io.RawIOBase):
    """Seekable read-only stream over files laid end to end (a zip split into byte ranges)."""

    def __init__(self, parts: tuple[str, ...]):
        self._parts = parts
        self._starts: list[int] = []
        size = 0
        for part in parts:
            self._starts.append(size)
            size += FileSystems.get_filesystem(part).size(part)
        self._size = size
        self._pos = 0
        self._open_index: int | None = None
        self._stream: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _part_at(self, pos: int) -> int:
        index = len(self._starts) - 1
        while self._starts[index] > pos:
            index -= 1
        return index

    def readinto(self, buffer) -> int:
        """Fill `buffer` across part boundaries (a short read only at the end)."""
        filled = 0
        while filled < len(buffer) and self._pos < self._size:
            index = self._part_at(self._pos)
            if index != self._open_index:
                self._close_part()
                self._stream = FileSystems.open(self._parts[index], compression_type=CompressionTypes.UNCOMPRESSED)
                self._open_index = index
            end = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            self._stream.seek(self._pos - self._starts[index])
            data = self._stream.read(min(len(buffer) - filled, end - self._pos))
            if not data:
                raise EOFError(f"{self._parts[index]} is shorter than when it was listed")
            buffer[filled : filled + len(data)] = data
            filled += len(data)
            self._pos += len(data)
        return filled

    def _close_part(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = self._open_index = None

    def close(self) -> None:
        self._close_part()
        super().close()


def _open_zip(archive: Archive) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BufferedReader(ConcatenatedParts(archive.parts), buffer_size=BLOCK))


def plan_tasks(archive: Archive, workers: int) -> list[Task]:
    """One task for a tar; a zip split into up to `workers` member ranges of about equal uncompressed size.
    Raises what reading the zip's directory raises (a missing part, a file that is no zip)."""
    if archive.kind == "tar":
        return [Task(archive)]
    with _open_zip(archive) as zf:
        sizes = [i.file_size for i in zf.infolist()]
    tasks = []
    target, start, acc = max(1, sum(sizes) // max(1, workers)), 0, 0
    for index, size in enumerate(sizes):
        acc += size
        if acc >= target and index + 1 < len(sizes):
            tasks.append(Task(archive, start, index + 1))
            start, acc = index + 1, 0
    tasks.append(Task(archive, start, len(sizes)))
    return tasks


class CorruptArchive(Exception):
    """The archive's bytes are damaged (checksum, compressed data, a header): what was written from it is suspect."""


class _Recorder(io.RawIOBase):
    """Passes reads through, counting the bytes and keeping the last WINDOW of them, so that the end of a streamed
    tar (which `tarfile` has read ahead of, by at most one record) can be checked after `tarfile` stops."""

    WINDOW = 1 << 16

    def __init__(self, inner: BinaryIO):
        self._inner = inner
        self.count = 0
        self.window = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        self.window += data
        del self.window[: -self.WINDOW]
        return len(data)


def _check_tar_end(tf: tarfile.TarFile, recorder: _Recorder) -> None:
    """Everything after the last member must be zero blocks. `tarfile` ends a stream quietly at a corrupt header;
    reading the rest to EOF also makes gzip verify its checksum and length."""
    ahead = recorder.count - tf.offset  # read by tarfile past the start of the block it stopped at
    if ahead > len(recorder.window) or any(recorder.window[len(recorder.window) - ahead :]):
        raise CorruptArchive(f"unreadable tar header at byte {tf.offset} with data after it: the archive is corrupt")
    while block := recorder.read(BLOCK):
        if any(block):
            raise CorruptArchive(f"data after the end of the tar at byte {tf.offset}: the archive is corrupt")


@dataclass(frozen=True)
class Member:
    """An archive entry to write: `None` open means it is refused with `reason`."""

    name: str
    size: int
    open: Any = None
    reason: str | None = None
    is_dir: bool = False


def _tar_members(archive: Archive) -> Iterator[Member]:
    """The members in stream order; raises CorruptArchive for damage that `tarfile` alone would not report
    (gzip's own checksum and decompression errors surface as they are, wherever the stream is read)."""
    with FileSystems.open(archive.parts[0], compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        compressed = archive.name.lower().endswith((".gz", ".tgz"))
        recorder = _Recorder(gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw)
        with tarfile.open(fileobj=recorder, mode="r|") as tf:
            while (info := tf.next()) is not None:
                if info.isdir():
                    yield Member(info.name, 0, is_dir=True)
                elif info.isfile():
                    yield Member(info.name, info.size, open=lambda info=info: tf.extractfile(info))
                else:
                    kind = "symlink" if info.issym() else "hard link" if info.islnk() else "special file"
                    yield Member(info.name, info.size, reason=f"{kind} (only regular files are staged)")
                tf.members.clear()  # a streamed tar keeps every header it read: memory would grow with it
            _check_tar_end(tf, recorder)


def _zip_members(task: Task) -> Iterator[Member]:
    with _open_zip(task.archive) as zf:
        for info in zf.infolist()[task.start : task.stop]:
            mode = (info.external_attr >> 16) & _S_IFMT
            if info.is_dir():
                yield Member(info.filename, 0, is_dir=True)
            elif mode not in (0, _S_IFREG):
                kind = "symlink" if mode == _S_IFLNK else "device, FIFO or socket"
                yield Member(info.filename, info.file_size, reason=f"{kind} (only regular files are staged)")
            elif info.file_size > MAX_ZIP_RATIO * max(1, info.compress_size):
                reason = (
                    f"inflates from {info.compress_size} to {info.file_size} bytes, more than {MAX_ZIP_RATIO} times: "
                    "refused as a zip bomb"
                )
                yield Member(info.filename, info.file_size, reason=reason)
            else:
                yield Member(info.filename, info.file_size, open=lambda info=info: zf.open(info))


class Destination:
    """Writes files under the image root: skip-if-same-size, whole files only, never outside the root."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") or root
        self.local = "://" not in root
        self._real = os.path.realpath(root) if self.local else ""

    def target(self, rel: str) -> str:
        if not self.local:
            return f"{self.root}/{rel}"
        path = os.path.join(self.root, rel)
        real_parent = os.path.realpath(os.path.dirname(path))
        if os.path.commonpath([real_parent, self._real]) != self._real:
            raise RejectedError("stage", "path_escapes_root", f"member {rel!r} would be written through a symlink")
        return path

    def has(self, path: str, size: int) -> bool:
        fs = FileSystems.get_filesystem(path)
        return fs.exists(path) and fs.size(path) == size

    def remove(self, paths: list[str]) -> None:
        """Delete files this run wrote."""
        if paths:
            FileSystems.delete(paths)

    def write(self, path: str, stream: BinaryIO) -> int:
        """Copy `stream` to `path`, which appears whole or not at all (`files.AtomicFile`)."""
        out = AtomicFile(path, digest=False)
        try:
            while block := stream.read(BLOCK):
                out.write(block)
        except BaseException:
            out.abort()
            raise
        out.commit()
        return out.size


def _result(archive: str, errors: list[str]) -> dict[str, Any]:
    """The per-archive report entry, empty but for its errors."""
    return {"archive": archive, "written": 0, "skipped": 0, "bytes_written": 0, "refused": [], "errors": errors}


def run_task(task: Task, dest: str) -> dict[str, Any]:
    """Unpack one task's members; return its counts, refusals and errors. A damaged zip member is an error entry
    and the next member is read; a damaged tar ends the task and what it wrote is removed (see the module doc)."""
    destination = Destination(dest)
    result = _result(task.archive.name, [])
    refused, errors = result["refused"], result["errors"]
    written: list[tuple[str, int]] = []
    this_run: set[str] = set()
    members = _tar_members(task.archive) if task.archive.kind == "tar" else _zip_members(task)
    sender = progress.sender()
    try:
        for member in members:
            sender.add("records")
            if member.is_dir:
                continue
            try:
                if member.reason is not None:
                    raise RejectedError("stage", "not_a_file", member.reason)
                path = destination.target(member_path(member.name))
            except RejectedError as exc:
                refused.append({"member": member.name, "reason": exc.info.message})
                continue
            if path not in this_run and destination.has(path, member.size):  # a rerun; a duplicate: the last wins
                result["skipped"] += 1
                continue
            try:
                with member.open() as stream:
                    size = destination.write(path, stream)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # zip members carry their own checksums
                if task.archive.kind == "tar":
                    raise
                errors.append(f"{member.name}: {type(exc).__name__}: {exc}")
                continue
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                refused.append({"member": member.name, "reason": f"conflicts with a file or folder of its name: {exc}"})
                continue
            if path in this_run:
                written = [(p, n) for p, n in written if p != path]
            this_run.add(path)
            written.append((path, size))
    except (CorruptArchive, gzip.BadGzipFile, zlib.error) as exc:  # only a tar's stream raises these here
        destination.remove([path for path, _ in written])
        damage = str(exc) if isinstance(exc, CorruptArchive) else f"{type(exc).__name__}: {exc}"
        errors.append(f"{damage}; the {len(written)} files written from it in this run were removed again")
        written = []
    except Exception as exc:  # an archive that cannot be read to the end; what was written whole stays
        errors.append(f"{type(exc).__name__}: {exc}")
    result["written"] = len(written)
    result["bytes_written"] = sum(size for _, size in written)
    sender.add("chunks")
    sender.flush()
    return result


def _plan(archives: list[Archive], workers: int) -> tuple[list[Task], list[dict[str, Any]]]:
    """Tasks for the archives whose directory can be read; an error result for each of the others."""
    tasks, failed = [], []
    for archive in archives:
        try:
            tasks.extend(plan_tasks(archive, workers))
        except Exception as exc:  # a missing split part, a file that is no zip: that archive fails, not the run
            failed.append(_result(archive.name, [f"{type(exc).__name__}: {exc}"]))
    return tasks, failed


def expand_archives(patterns: list[str]) -> list[Archive]:
    paths = []
    for pattern in patterns:
        matched = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        if not matched:
            raise ValueError(f"--archive {pattern!r} matched no files")
        paths.extend(matched)
    return group_archives(paths)


def stage_images(
    patterns: list[str], dest: str, workers: int, display: progress.Display | None = None
) -> dict[str, Any]:
    """Unpack every archive matched by `patterns` into `dest` with `workers` processes; return the report. The
    `display` is told the plan (tasks, and members where every archive is a zip, whose directory lists them)."""
    archives = expand_archives(patterns)
    tasks, results = _plan(archives, workers)
    if display is not None:
        planned = {"chunks_planned": len(tasks)}
        if all(t.archive.kind == "zip" for t in tasks):
            planned["records_planned"] = sum(t.stop - t.start for t in tasks)
        display.tally.set(planned)
        display.start()
    if workers <= 1 or len(tasks) <= 1:
        results += [run_task(t, dest) for t in tasks]
    else:
        # spawn, not fork: the parent may hold gRPC/HTTP client threads that a forked child must not inherit
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            results += list(pool.map(run_task, tasks, [dest] * len(tasks)))
    per_archive: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r["archive"]):
        entry = per_archive.setdefault(r["archive"], _result(r["archive"], []))
        for key in ("written", "skipped", "bytes_written"):
            entry[key] += r[key]
        entry["refused"].extend(r["refused"])
        entry["errors"].extend(r["errors"])
    archives_report = [{k: v for k, v in a.items() if k != "errors" or v} for a in per_archive.values()]
    return {
        "dest": dest,
        "archives": archives_report,
        "written": sum(a["written"] for a in archives_report),
        "skipped": sum(a["skipped"] for a in archives_report),
        "refused": sum(len(a["refused"]) for a in archives_report),
        "bytes_written": sum(a["bytes_written"] for a in archives_report),
        "errors": sum(len(a.get("errors", [])) for a in archives_report),
        "tasks": len(tasks),
    }


def write_report(report: dict[str, Any], path: str) -> None:
    f = FileSystems.create(path, mime_type="application/json")
    f.write(json.dumps(report, indent=2).encode("utf-8") + b"\n")
    f.close()


def main(args: Any) -> int:
    """`vgr-etl stage-images` with its parsed arguments (`archive`, `dest`, `workers`, `report`): 0 when every archive
    was read (refused members are reported, not fatal), 1 when an archive could not be read to the end, 2 when
    nothing could be done (bad options, no archive matched)."""
    import sys

    try:
        with progress.shown("stage-images", args.progress, unit="members", part="tasks") as display:
            report = stage_images(args.archive, args.dest, max(1, args.workers), display)
    except (ValueError, OSError) as exc:
        print(f"vgr-etl: stage-images failed: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        write_report(report, args.report)
    print(
        f"vgr-etl: staged into {args.dest}: {report['written']} written, {report['skipped']} skipped, "
        f"{report['refused']} refused, {report['errors']} archive errors",
        file=sys.stderr,
    )
    return 1 if report["errors"] else 0
