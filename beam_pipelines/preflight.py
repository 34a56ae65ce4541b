"""Launch checks that look at the output and at the first input records: a user's mistake caught in one line with
a hint before any job runs, instead of a job that rejects every record or a traceback from inside it."""

from __future__ import annotations

import os
import uuid

from beam_pipelines.files import AtomicFile, exists, is_remote, join
from beam_pipelines.layout import TMP
from beam_pipelines.records import Provenance, RejectedError
from beam_pipelines.sources import registry
from beam_pipelines.sources.dataset import Dataset
from beam_pipelines.sources.inputs import file_format, record_files
from beam_pipelines.sources.parsing import decode_raw
from beam_pipelines.sources.readers.base import RecordFile, RecordStream
from beam_pipelines.sources.readers.formats import head

SAMPLE = 20
"""Records read from the start of the inputs to check them."""
ARCHIVES = (".tar", ".tar.gz", ".tgz")
_PROVENANCE = Provenance("", 0, "preflight")


def check_output(output: str) -> None:
    """The output is a directory this launch can write (or can create); nothing is written to find out locally."""
    if not is_remote(output):
        if os.path.isfile(output):
            raise ValueError(f"--output {output!r} is a file; give a directory (it is created when missing)")
        existing = os.path.abspath(output)
        while not os.path.exists(existing):  # a missing output is created under its nearest existing folder
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ValueError(f"--output {output!r}: {existing!r} is a file, not a folder it can be created in")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"--output {output!r} is not writable: no permission to write in {existing!r}")
        return
    try:
        probe = AtomicFile(join(output, TMP, f".probe-{uuid.uuid4().hex}"), digest=False)
        probe.write(b"")
        probe.abort()
    except Exception as exc:  # the storage client's errors are many kinds; the user needs the reason
        raise ValueError(f"--output {output!r} is not writable: {str(exc).splitlines()[0]}") from None


def sample_records(dataset: Dataset, files: list[str]) -> list[dict]:
    """Up to `SAMPLE` records from the start of the inputs, decoded; lines that do not decode are skipped (the run
    will reject them with their reasons)."""
    out: list[dict] = []
    for path in files:
        for file in record_files(dataset.name, path, dataset.archive_members):
            for raw in head(file, SAMPLE - len(out)):
                try:
                    out.append(decode_raw(raw))
                except RejectedError:
                    continue
            if len(out) >= SAMPLE:
                return out
    return out


def check_source(dataset: Dataset, records: list[dict]) -> None:
    """The records are in the layout `--source` names, not plainly in another registered dataset's."""
    if not records or dataset.recognises(records[0]) is None:
        return
    mine = sum(bool(dataset.recognises(r)) for r in records)
    if mine * 2 >= len(records):
        return
    for other in (registry.dataset_named(n) for n in registry.names() if n != dataset.name):
        theirs = sum(bool(other.recognises(r)) for r in records)
        if theirs * 5 >= len(records) * 4:
            raise ValueError(
                f"--source {dataset.name}: {theirs} of the first {len(records)} records look like --source "
                f"{other.name} ({mine} like {dataset.name}'s layout); check --source"
            )


def check_image_root(dataset: Dataset, records: list[dict], image_root: str) -> None:
    """The image root exists, is not an archive to unpack, and holds the images of at least one sampled record."""
    from beam_pipelines.materialisation.images import ImageRoot

    if image_root.lower().endswith(ARCHIVES):
        raise ValueError(
            f"--image_root {image_root!r} is a tar archive: unpack it first (vgr-etl stage-images --archive "
            f"{image_root} --dest DIR) and give DIR"
        )
    if not exists(image_root) and not is_remote(image_root):
        raise ValueError(f"--image_root {image_root!r} does not exist")
    paths = []
    for record in records:
        try:
            sample = dataset.parse(record, _PROVENANCE)
        except RejectedError:
            continue
        paths.append((sample.image_paths[0], sample.subset))
    if not paths:
        return
    root = ImageRoot(image_root)
    try:
        found = 0
        for path, subset in paths:
            try:
                root.resolve(path, dataset, subset)
                found += 1
            except RejectedError:
                continue
    finally:
        root.close()
    if not found:
        hint = f"; {dataset.image_root_hint}" if dataset.image_root_hint else ""
        raise ValueError(
            f"--image_root {image_root!r}: none of the first {len(paths)} records' images is under it (0 of "
            f"{len(paths)}, e.g. {paths[0][0]!r}){hint}"
        )


SNIFF = 1 << 16
"""Bytes read from the start of each JSON Lines or JSON input to check its encoding and line endings."""


def check_text_inputs(files: list[str]) -> None:
    """JSON Lines and JSON inputs are UTF-8 with `\n` line ends: a UTF-16 file (split on `\n` bytes it reads as
    garbage records) or one with CR-only line ends (read as one record) is refused at launch, with the fix."""
    for path in files:
        if file_format(path) not in ("jsonl", "json"):
            continue
        with RecordStream(RecordFile("", path, "jsonl")) as stream:
            head_bytes = stream.read(SNIFF)
        if head_bytes.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ValueError(
                f"--input {path}: UTF-16 text (a byte-order mark), not UTF-8; re-encode it, e.g. "
                f"`iconv -f UTF-16 -t UTF-8 {os.path.basename(path)}`"
            )
        if b"\r" in head_bytes and b"\n" not in head_bytes and len(head_bytes.strip()) > 0:
            lines = head_bytes.count(b"\r")
            if lines > 1:
                raise ValueError(
                    f"--input {path}: lines end in CR only (old Mac line ends: {lines} in the first {len(head_bytes)} "
                    f"bytes, no LF), which would read as one record; convert them, e.g. `tr '\\r' '\\n'`"
                )


def check_output_apart(output: str, patterns: list[str], files: list[str]) -> None:
    """The output is not an input directory nor inside one, and no input file lies inside it: a run would read an
    earlier one's report and pointer as records."""
    out = _normalised(output)
    inside = [f for f in files if _normalised(f).startswith(out + "/")]
    folders = [p for p in patterns if "://" in p or os.path.isdir(p)]
    same = [p for p in folders if _normalised(p) == out]
    within = [p for p in folders if out.startswith(_normalised(p).rstrip("/") + "/")]
    if same or within or inside:
        if same:
            what = f"is the --input directory {same[0]!r}"
        elif within:
            what = f"is inside the --input directory {within[0]!r}"
        else:
            what = f"holds --input files ({inside[0]!r})"
        raise ValueError(f"--output {output!r} {what}: runs would read the outputs as records; write it elsewhere")


def _normalised(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.realpath(path)


def check_inputs(dataset: Dataset, files: list[str], image_root: str) -> None:
    check_text_inputs(files)
    records = sample_records(dataset, files)
    check_source(dataset, records)
    check_image_root(dataset, records, image_root)
