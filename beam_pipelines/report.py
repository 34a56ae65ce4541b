"""`Report`: what a command did, as one typed object, written once (by the job, or by the launcher when no job
runs) as `report.json` with the same keys on every runner.

`schemas/report.schema.json` is derived from these dataclasses (`python -m beam_pipelines.report`) and a test keeps
it in sync; the tests validate every report they read against it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beam_pipelines.files import read_text
from beam_pipelines.layout import PREVIEW_PAGE, VALIDATION_PAGE, OutputLayout, manifest_path

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "report.schema.json"


@dataclass(frozen=True)
class Invariant:
    """Records read against their outcomes, and the rows of the files written against what they should hold.

    `records_read` is counted where the records are read (and checked against `records_planned`, the rows of the
    chunks planned), `rows_in_files` from the files themselves after they are written; `problems` names each
    difference (none when `holds`)."""

    records_read: int
    records_planned: int
    outcomes: dict[str, int]
    rows_in_files: dict[str, int]
    holds: bool
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSize:
    """What the version's dataset holds once published: samples, units, files of each kind."""

    samples: int
    units: int
    files: dict[str, int]


@dataclass(frozen=True)
class VersionSection:
    """What the command did to the versioned output."""

    version: str
    parent: str | None
    command: str
    published: bool
    nothing_to_do: bool
    new: int
    unchanged: int
    removed: int
    on_removed: str
    dropped: int
    already_present: int
    input_files: dict[str, int]
    dataset: DatasetSize
    skipped_inputs: list[str] = dataclasses.field(default_factory=list)
    """What the `--input` patterns matched that was not read: files of other types, subfolders."""


@dataclass(frozen=True)
class Report:
    """The report of one `run`, `refresh` or `compact`."""

    command: str
    input_records: int
    accepted: int
    rejected: int
    duplicates: int
    already_present: int
    new: int
    unchanged: int
    removed: int
    rejected_by_check: dict[str, int]
    rejected_by_stage: dict[str, int]
    regions: int
    regions_with_replay_marker: int
    steps: int
    warnings: dict[str, int]
    expectations: dict[str, dict[str, Any]]
    image_resolution: dict[str, int]
    per_source: dict[str, dict[str, int]]
    per_subset: dict[str, dict[str, int]]
    token_economy: dict[str, Any]
    grounding: dict[str, Any]
    annotation: dict[str, Any]
    replay_preset: dict[str, Any] | None
    shards: dict[str, dict[str, int]]
    shard_files: list[str]
    config: dict[str, Any]
    version: VersionSection
    invariant: Invariant
    started_at: str
    finished_at: str
    wall_time_s: float
    stage_time_s: dict[str, float]

    @property
    def published(self) -> bool:
        return self.version.published

    def failure(self) -> str | None:
        """Why the version was not published, in one line; None when it was (or there was nothing to do)."""
        v = self.version
        if v.published or v.nothing_to_do:
            return None
        if not self.invariant.holds:
            return f"the counts do not add up: {'; '.join(self.invariant.problems)}; {v.version} not published"
        fraction = self.rejected / self.input_records if self.input_records else 0.0
        limit = self.config.get("max_reject_fraction")
        return (
            f"rejected {self.rejected} of {self.input_records} input records ({fraction:.1%}), above "
            f"--max_reject_fraction={limit}; {v.version} not published"
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Report:
        return _build(cls, json.loads(text))

    def summary(self, output: str) -> str:
        """What the command did, in four lines, for a terminal."""
        v, layout = self.version, OutputLayout(output)
        if v.nothing_to_do:
            return (
                f"refresh: nothing to do: {v.input_files.get('unchanged', 0)} input files unchanged, none new, "
                f"changed or gone; {v.version} stays current ({self.unchanged} samples)"
            )
        checks = ", ".join(f"{k}={n}" for k, n in self.rejected_by_check.items()) or "none"
        state = "published" if v.published else "NOT published"
        pointer = (
            f"{layout.current} -> {manifest_path(v.version)}"
            if v.published
            else f"{layout.current} unchanged (the previous version, if any, stays current)"
        )
        return (
            f"{self.config.get('source')}: {self.input_records} input records -> {self.accepted} accepted, "
            f"{self.rejected} rejected ({checks}), {self.duplicates} duplicates "
            f"({self.already_present} already published), {self.regions} regions in {self.wall_time_s:.1f}s\n"
            f"  {v.command} {v.version} {state}: {self.new} new, {self.unchanged} unchanged, "
            f"{self.removed} removed ({v.on_removed}: {v.dropped} dropped); "
            f"dataset {v.dataset.samples} samples in {v.dataset.units} units\n"
            f"  manifest: {pointer}\n"
            f"  report:  {layout.report()}, {layout.page(VALIDATION_PAGE)}, {layout.page(PREVIEW_PAGE)}"
        )


def read_report(output: str, version: str | None = None) -> Report:
    """The report at the output root (the last command's), or the one kept with a version."""
    return Report.from_json(read_text(OutputLayout(output).report(version)))


def _build(kind: Any, value: Any) -> Any:
    """`value` (parsed JSON) as an instance of the type hint `kind`, nested dataclasses included."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [f for f in dataclasses.fields(kind) if f.name in value or f.default_factory is dataclasses.MISSING]
        return kind(**{f.name: _build(hints[f.name], value[f.name]) for f in fields})  # a newer field: its default
    options = [a for a in typing.get_args(kind) if a is not type(None)] if _is_union(kind) else []
    if options and value is not None:
        return _build(options[0], value)
    return value


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


def json_schema(kind: Any = Report) -> dict[str, Any]:
    """The JSON Schema of a type hint: dataclasses become objects with every field required and no others."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        names = [f.name for f in dataclasses.fields(kind)]
        schema = {
            "type": "object",
            "description": (kind.__doc__ or "").split("\n\n")[0].replace("\n    ", " ").strip(),
            "properties": {name: json_schema(hints[name]) for name in names},
            "required": names,
            "additionalProperties": False,
        }
        if kind is Report:
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "report.json", **schema}
        return schema
    if _is_union(kind):
        return {"anyOf": [json_schema(a) for a in typing.get_args(kind)]}
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1])}
    if origin is list:
        return {"type": "array", "items": json_schema(args[0])}
    if kind in _JSON_TYPES:
        return {"type": _JSON_TYPES[kind]}
    return {}


if __name__ == "__main__":
    json.dump(json_schema(), sys.stdout, indent=2)
    print()
