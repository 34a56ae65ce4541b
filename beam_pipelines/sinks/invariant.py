"""The count invariant, from counts that are independent of each other.

Records are counted where they are read; outcomes by the counters; rows in the files written by reading the files
back (Parquet footers, tar member names, dead-letter lines). Before a version is published: records read =
accepted + rejected + duplicates; rows in `parquet/samples`, samples in the tars and rows in `index` = accepted;
rows in `parquet/regions` = regions; lines in `rejected/` = rejected; every file holds the rows its writer
reported; no two files were written under one path. Any difference keeps the version unpublished.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow.parquet as pq

from beam_pipelines.files import WrittenFile, open_read
from beam_pipelines.layout import DATA_FOLDERS, OutputLayout
from beam_pipelines.report import Invariant
from beam_pipelines.sinks.tar_members import member_names

OUTCOMES = ("accepted", "rejected", "duplicates")


@dataclass(frozen=True)
class FileRows:
    """A written file as found in storage: its path (relative to the output) and the rows it holds."""

    path: str
    kind: str
    rows: int


def rows_in_file(file: WrittenFile, output: str) -> FileRows:
    """The rows a data file holds, read from the file itself."""
    with open_read(OutputLayout(output).path(file.path)) as f:
        if file.kind == "webdataset":
            rows = len({name.split(".", 1)[0] for name in member_names(f)})
        elif file.kind == "rejected":
            rows = sum(1 for line in f if line.strip())
        else:
            rows = pq.ParquetFile(f).metadata.num_rows
    return FileRows(file.path, file.kind, rows)


def _folder(kind: str) -> str:
    return DATA_FOLDERS[kind][0]


@dataclass(frozen=True)
class Group:
    """Files that together must hold given rows per kind: a rewritten or merged unit against the units it replaces."""

    label: str
    paths: frozenset[str]
    expected: dict[str, int]


def check(
    records_read: int,
    outcomes: dict[str, int],
    expected_rows: dict[str, int],
    files: list[WrittenFile],
    found: list[FileRows],
    totalled: set[str] | None = None,
    records_planned: int | None = None,
    groups: tuple[Group, ...] = (),
) -> Invariant:
    """The invariant of one command: `expected_rows` per kind of file, `files` as the writers reported them, `found`
    as counted in storage; kinds are totalled over the paths in `totalled` (all found, by default), while every
    found file is checked against its writer's count, and each group of files against its own rows."""
    planned = records_read if records_planned is None else records_planned
    problems = []
    if records_read != planned:
        problems.append(f"{records_read} records read, but the chunks planned hold {planned}")
    total = sum(outcomes.get(k, 0) for k in OUTCOMES)
    if records_read != total:
        parts = " + ".join(f"{k} {outcomes.get(k, 0)}" for k in OUTCOMES)
        problems.append(f"{records_read} records read, but the outcomes count {total} ({parts})")
    unique = {r.path: r for r in found}
    counted: Counter = Counter()
    for row in unique.values():
        if totalled is None or row.path in totalled:
            counted[row.kind] += row.rows
    for kind, expected in expected_rows.items():
        if counted[kind] != expected:
            problems.append(f"{_folder(kind)}/ holds {counted[kind]} rows, expected {expected}")
    reported = {f.path: f.rows for f in files}
    problems += [
        f"{r.path} holds {r.rows} rows, its writer wrote {reported[r.path]}"
        for r in unique.values()
        if reported.get(r.path, r.rows) != r.rows
    ]
    for group in groups:
        held: Counter = Counter()
        for row in unique.values():
            if row.path in group.paths:
                held[row.kind] += row.rows
        problems += [
            f"{group.label}: {_folder(kind)}/ holds {held[kind]} rows, expected {n}"
            for kind, n in sorted(group.expected.items())
            if held[kind] != n
        ]
    twice = sorted(path for path, n in Counter(f.path for f in files).items() if n > 1)
    problems += [f"{path} was written more than once" for path in twice]
    return Invariant(
        records_read=records_read,
        records_planned=planned,
        outcomes={k: outcomes.get(k, 0) for k in OUTCOMES},
        rows_in_files=dict(sorted(counted.items())),
        holds=not problems,
        problems=problems,
    )
