"""Hugging Face inputs resolved to data files that the chunk planner reads in parallel, never in one process.

Three forms of `--input`:

- `hf:OWNER/NAME[:CONFIG][@SPLIT]`: a Hub dataset. `datasets` resolves its data files exactly as
  `load_dataset` would (the YAML `configs` of the dataset card, else the split naming conventions) without
  downloading any data: what comes back are `hf://datasets/OWNER/NAME@COMMIT/...` Parquet, JSON Lines or Arrow
  files, which workers read by byte range through `huggingface_hub`'s file system. A local directory laid out
  like a Hub dataset repository can stand in for `OWNER/NAME` (`hf:/data/my_repo@train`).
- `hf://datasets/OWNER/NAME[@REVISION]/PATH_OR_GLOB`: files of a Hub dataset repository, as they are.
- a directory written by `Dataset.save_to_disk` (its `state.json` lists the Arrow stream files) or
  `DatasetDict.save_to_disk` (every split, in `dataset_dict.json` order; or name the split's sub-directory),
  local or gs://.

The Hub needs network access (and `HF_TOKEN` for gated or private datasets) wherever `PlanChunks` and the readers
run, i.e. on the workers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

HUB_PREFIX = "hf://"
_REFERENCE = re.compile(r"^hf:(?!//)(?P<path>[^:@]+)(?::(?P<config>[^:@]+))?(?:@(?P<split>[^:@]+))?$")


@dataclass(frozen=True)
class HubReference:
    """A dataset (Hub id or local repository directory), with an optional config and split."""

    path: str
    config: str | None = None
    split: str | None = None


def parse_reference(text: str) -> HubReference | None:
    """The reference in `hf:OWNER/NAME[:CONFIG][@SPLIT]`, None for anything else; malformed ones are errors."""
    if not text.startswith("hf:") or text.startswith(HUB_PREFIX):
        return None
    match = _REFERENCE.match(text)
    if match is None:
        raise ValueError(f"--input {text!r}: expected hf:OWNER/NAME[:CONFIG][@SPLIT]")
    return HubReference(match["path"], match["config"], match["split"])


def resolve_reference(ref: HubReference) -> list[str]:
    """The data files of the reference's config, for its split or for every split in the order declared."""
    import datasets

    try:
        builder = datasets.load_dataset_builder(ref.path, ref.config)
    except Exception as exc:  # datasets raises many kinds; the user needs the reason, not the type
        raise ValueError(f"--input hf:{ref.path}: cannot resolve the dataset ({type(exc).__name__}: {exc})") from exc
    files_by_split = builder.config.data_files or {}
    if not files_by_split:
        raise ValueError(f"--input hf:{ref.path}: the dataset declares no data files (a loading script?)")
    if ref.split is not None:
        if ref.split not in files_by_split:
            raise ValueError(f"--input hf:{ref.path}: no split {ref.split!r} (splits: {', '.join(files_by_split)})")
        return list(files_by_split[ref.split])
    return [f for split in files_by_split for f in files_by_split[split]]


def _read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read())


def saved_dataset_files(directory: str) -> list[str] | None:
    """The Arrow files of a `save_to_disk` directory in row order, or None if it is not one."""
    directory = directory.rstrip("/")
    state, splits = FileSystems.join(directory, "state.json"), FileSystems.join(directory, "dataset_dict.json")
    if FileSystems.exists(state):
        return [FileSystems.join(directory, f["filename"]) for f in _read_json(state)["_data_files"]]
    if FileSystems.exists(splits):
        split_dirs = [FileSystems.join(directory, split) for split in _read_json(splits)["splits"]]
        return [f for d in split_dirs for f in saved_dataset_files(d) or []]
    return None


def hub_files(pattern: str) -> list[str]:
    """Files under an `hf://` path or glob (a directory lists recursively)."""
    from huggingface_hub import HfFileSystem

    fs = HfFileSystem()
    found = fs.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
    files: list[str] = []
    for path in found:
        files.extend(fs.find(path) if fs.isdir(path) else [path])
    return [p if p.startswith(HUB_PREFIX) else HUB_PREFIX + p for p in files]


def open_hub_file(path: str):
    """A seekable stream over a Hub file: reads are HTTP range requests, so a chunk fetches only its bytes."""
    from huggingface_hub import HfFileSystem

    return HfFileSystem().open(path, "rb")


def expand_hf(pattern: str) -> list[str] | None:
    """The files a Hugging Face `--input` stands for, or None when the pattern is not one of the three forms."""
    ref = parse_reference(pattern)
    if ref is not None:
        return resolve_reference(ref)
    if pattern.startswith(HUB_PREFIX):
        return hub_files(pattern)
    if any(c in pattern for c in "*?["):
        return None
    return saved_dataset_files(pattern)
