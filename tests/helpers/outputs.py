"""Run outputs as comparable values: rows, tar members, rejected lines and report counts, read back for real.

Works on a local output directory (download a gs:// output first). Paths of inputs and image roots differ
between a local run and a gs:// or Hugging Face run, so strings can be mapped before comparing.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.helpers.reports import checked

COUNT_KEYS = (
    "input_records",
    "accepted",
    "rejected",
    "duplicates",
    "rejected_by_check",
    "rejected_by_stage",
    "regions",
    "regions_with_replay_marker",
    "steps",
    "warnings",
    "image_resolution",
    "per_source",
    "per_subset",
    "token_economy",
)


PROVENANCE = ("input_file", "input_member", "input_row", "provenance")


def _map(value: Any, mapping: dict[str, str], drop: tuple[str, ...] = ()) -> Any:
    if isinstance(value, str):
        for old, new in mapping.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _map(v, mapping, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list | tuple):
        return [_map(v, mapping, drop) for v in value]
    return value


def _order(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _files(output: Path, sub: str, pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(output, sub, pattern)))


def snapshot(output: str | Path, mapping: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything a run produced except file names and timings, order-independent, with strings mapped and the
    `drop` keys left out at any depth (e.g. `PROVENANCE`, when the same rows come from differently split files)."""
    output, mapping = Path(output), mapping or {}
    tables = {}
    for table in ("samples", "regions"):
        rows = [r for p in _files(output, f"parquet/{table}", "*.parquet") for r in pq.read_table(p).to_pylist()]
        tables[table] = sorted((_map(r, mapping, drop) for r in rows), key=_order)
    members: dict[str, Any] = {}
    for path in _files(output, "webdataset", "*.tar"):
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                data = tf.extractfile(m).read()
                members[m.name] = _map(json.loads(data), mapping, drop) if m.name.endswith(".json") else data
    lines = [line for p in _files(output, "rejected", "*.jsonl") for line in Path(p).read_text().splitlines()]
    rejected = sorted((_map(json.loads(line), mapping, drop) for line in lines), key=_order)
    report = checked((output / "report.json").read_text())
    return {
        "tables": tables,
        "tar_members": members,
        "rejected": rejected,
        "counts": {k: report.get(k) for k in COUNT_KEYS},
    }


def shard_names(output: str | Path) -> list[str]:
    """Relative paths of the published files (not the report)."""
    output = Path(output)
    return sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() and p.name != "report.json")


def digest_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every output file, by relative path (the report, manifest and card hold times and paths of the
    run)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("report.json", "manifest.json", "README.md")
    }


def column_storage(path: str | Path) -> dict[str, tuple[str, bool]]:
    """Parquet column path -> (compression, dictionary-encoded) in the file's first row group."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    columns = (group.column(i) for i in range(group.num_columns))
    return {c.path_in_schema: (c.compression, c.dictionary_page_offset is not None) for c in columns}
