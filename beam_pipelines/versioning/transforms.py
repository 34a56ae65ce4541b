"""Versioning stages: the current version's ids for a refresh, unit rewrites, and publication.

    current version's index files ─ ReadPublishedIds ─→ FindDuplicates (skips published ids, finds removed ones)
    removed (unit, sample_id) ─ RewriteRemoved (--on_removed drop) ─→ replacements ─┐
    this run's shard infos ─────────────────────────────────────────────────────────┼─ PublishVersion
    the run report ─────────────────────────────────────────────────────────────────┘

Only ids travel through the shuffle of `RewriteRemoved` (grouped by the unit that holds them); each affected unit
is then rewritten by one worker, file to file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq

from beam_pipelines.files import WrittenFile, write_text
from beam_pipelines.layout import DATASET_KINDS, REPORT, version_dir
from beam_pipelines.versioning.manifest import (
    Manifest,
    Unit,
    publish,
    read_manifest,
    read_pointer,
    unit_origin,
    units_of,
)
from beam_pipelines.versioning.plan import VersionPlan
from beam_pipelines.versioning.rewrite import open_file, rewrite_units


@dataclass(frozen=True)
class Replacement:
    """Units of the parent version (`old`) replaced in the new one by the files `infos` (none: all dropped)."""

    old: tuple[str, ...]
    infos: tuple[WrittenFile, ...]


def _published_ids(unit_and_path: tuple[str, str], output: str):
    unit, path = unit_and_path
    with open_file(output, path) as f:
        table = pq.read_table(f, columns=["sample_id", "input_file", "input_member", "input_row"])
    for sample_id, file, member, row in zip(*(c.to_pylist() for c in table.columns), strict=True):
        yield sample_id, (0, None, (unit, file, member or "", row))


class ReadPublishedIds(beam.PTransform):
    """(sample_id, IdState) of every sample of the current version, from its index files (ids only)."""

    def __init__(self, output: str, index_files: list[tuple[str, str]]):
        super().__init__()
        self.output, self.index_files = output, index_files

    def expand(self, pbegin):
        return (
            pbegin
            | "IndexFiles" >> beam.Create(self.index_files)
            | "Spread" >> beam.Reshuffle()
            | "ReadIds" >> beam.FlatMap(_published_ids, self.output)
        )


def rewritten_name(version: str, unit: str) -> str:
    return f"{version}-rewrite-{unit_origin(unit)}"


def _rewrite(unit_and_ids: tuple[str, list[str]], plan: VersionPlan) -> Replacement:
    unit, ids = unit_and_ids
    assert plan.parent is not None
    source = next(u for u in plan.parent.units if u.name == unit)
    infos = rewrite_units(plan.output, rewritten_name(plan.version, unit), [source], frozenset(ids))
    return Replacement((unit,), tuple(infos))


class RewriteRemoved(beam.PTransform):
    """--on_removed drop: every unit of the current version that holds a removed sample, rewritten without it."""

    def __init__(self, plan: VersionPlan):
        super().__init__()
        self.plan = plan

    def expand(self, removed):
        return (
            removed
            | "GroupByUnit" >> beam.GroupByKey()
            | "RewriteUnit" >> beam.Map(lambda kv, plan: _rewrite((kv[0], sorted(kv[1])), plan), self.plan)
        )


def next_manifest(
    plan: VersionPlan, config: dict[str, Any], infos: list[WrittenFile], replacements: list[Replacement]
) -> Manifest:
    """The parent's units, minus those replaced, plus the replacements' and this run's new units."""
    carried: list[Unit] = []
    if plan.parent is not None and plan.command != "run":
        replaced = {name for r in replacements for name in r.old}
        carried = [u for u in plan.parent.units if u.name not in replaced]
    written = [*infos, *(i for r in replacements for i in r.infos)]
    units = sorted([*carried, *units_of(written)], key=lambda u: u.name)
    rejected = sorted((i for i in infos if i.kind == "rejected"), key=lambda f: f.path)
    return Manifest(
        version=plan.version,
        parent=plan.parent.version if plan.parent else None,
        command=plan.command,
        created_at=plan.created_at,
        source=config.get("source", ""),
        options=config,
        inputs=plan.inputs,
        units=tuple(units),
        rejected=tuple(rejected),
        report=f"{version_dir(plan.version)}/{REPORT}",
    )


def version_section(plan: VersionPlan, manifest: Manifest, report: dict[str, Any]) -> dict[str, Any]:
    """What the report says about versions: new, unchanged and removed samples, and what the dataset holds now.

    `run` rebuilds the dataset (nothing is carried over); `refresh` and `compact` carry the parent's samples
    over, less those dropped under `--on_removed drop`.
    """
    new = report.get("accepted", 0)
    unchanged = manifest.samples - new if plan.command != "run" else 0
    return {
        "version": plan.version,
        "parent": manifest.parent,
        "command": plan.command,
        "new": new,
        "unchanged": unchanged,
        "removed": report.get("removed", 0),
        "on_removed": plan.on_removed,
        "dropped": plan.parent_samples - unchanged if plan.command != "run" else 0,
        "already_present": report.get("already_present", 0),
        "input_files": plan.input_files,
        "dataset": {
            "samples": manifest.samples,
            "units": len(manifest.units),
            "files": {k: len(manifest.files(k)) for k in DATASET_KINDS},
        },
    }


def passes_gate(plan: VersionPlan, report: dict[str, Any]) -> bool:
    """A run whose rejected fraction is above --max_reject_fraction is not published."""
    n = report.get("input_records", 0)
    return not n or report.get("rejected", 0) / n <= plan.max_reject_fraction


class ConcurrentWriter(RuntimeError):
    """The current version moved while this run worked: another run published first."""


def still_current(plan: VersionPlan) -> bool:
    """The pointer still names the version this run was planned on, or this very run's (a retried bundle)."""
    current = (read_pointer(plan.output) or {}).get("version")
    if current == (plan.parent.version if plan.parent else None):
        return True
    return current == plan.version and read_manifest(plan.output, plan.version).created_at == plan.created_at


def _publish(report: dict[str, Any], infos: list[WrittenFile], replacements: list[Replacement], plan, config):
    if not still_current(plan):
        pointer = read_pointer(plan.output)
        expected = plan.parent.version if plan.parent else None
        raise ConcurrentWriter(
            f"{plan.output}: the current version is {pointer and pointer['version']}, not {expected} as when this "
            f"run was planned; another run published meanwhile (one writer per output), {plan.version} not published"
        )
    manifest = next_manifest(plan, config, infos, replacements)
    section = version_section(plan, manifest, report)
    published = passes_gate(plan, report)
    manifest = replace(manifest, counts={k: section[k] for k in ("new", "unchanged", "removed", "dropped")})
    report = {**report, "version": {**section, "published": published}}
    report.update({k: section[k] for k in ("new", "unchanged", "removed")})
    text = json.dumps(report, indent=2) + "\n"
    layout = plan.layout
    write_text(layout.report(plan.version), text, layout.scratch)
    write_text(layout.report(), text, layout.scratch)
    if published:
        publish(plan.output, manifest)
    else:
        write_text(layout.unpublished_manifest(plan.version), manifest.to_json(), layout.scratch)
    yield report


class PublishVersion(beam.PTransform):
    """Last step of a run: the manifest of the new version, the final report (also at the output root), then the
    pointer, switched last and only if the run passes --max_reject_fraction."""

    def __init__(self, plan: VersionPlan, config: dict[str, Any], infos, replacements):
        super().__init__()
        self.plan, self.config = plan, config
        self.infos, self.replacements = infos, replacements

    def expand(self, report):
        return report | "Publish" >> beam.FlatMap(
            _publish,
            beam.pvalue.AsList(self.infos),
            beam.pvalue.AsList(self.replacements),
            self.plan,
            self.config,
        )
