"""`vgr-etl compact` and `vgr-etl gc`: fewer, well-sized shards as a new version; old versions' files removed.

Compaction merges runs of consecutive small units (refreshes add one small unit per new input chunk) into units
of up to `--shard_max_samples` samples and `--shard_max_bytes` bytes, one worker per group, and publishes the result
as a new version like any run; units already of a good size are listed again, not rewritten. Nothing is deleted:
readers of the previous version keep working until `gc` removes versions beyond the newest N.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.files import remove_tree
from beam_pipelines.layout import OutputLayout
from beam_pipelines.sinks.progress import count_done
from beam_pipelines.versioning import lease
from beam_pipelines.versioning.manifest import (
    Manifest,
    Unit,
    read_current,
    read_manifest,
    version_name,
    version_number,
)
from beam_pipelines.versioning.plan import VersionPlan, clean_leftovers
from beam_pipelines.versioning.rewrite import rewrite_units
from beam_pipelines.versioning.transforms import Finish, PublishVersion, Replacement


def plan_groups(units: list[Unit], max_samples: int, max_bytes: int) -> list[list[Unit]]:
    """Consecutive units packed greedily up to the limits; a unit alone in its group is left as it is."""
    groups: list[list[Unit]] = []
    samples = size = 0
    for unit in sorted(units, key=lambda u: u.name):
        if groups and samples + unit.samples <= max_samples and size + unit.bytes <= max_bytes:
            groups[-1].append(unit)
            samples += unit.samples
            size += unit.bytes
        else:
            groups.append([unit])
            samples, size = unit.samples, unit.bytes
    return [g for g in groups if len(g) > 1]


def compaction_plan(output: str) -> VersionPlan:
    parent = read_current(output)
    if parent is None:
        raise ValueError(f"{output}: no published version to compact")
    version = version_name(version_number(parent.version) + 1)
    held = lease.acquire(output, "compact", version)
    try:
        clean_leftovers(output, version)
    except BaseException:
        lease.release(output, held.owner)
        raise
    return VersionPlan(
        output=output,
        version=version,
        command="compact",
        parent=parent,
        files=(),
        inputs=parent.inputs,
        on_removed=parent.options.get("on_removed", "keep"),
        created_at=datetime.now(UTC).isoformat(),
        lease=held.owner,
    )


def _merge(indexed_group: tuple[int, list[Unit]], plan: VersionPlan) -> Replacement:
    index, group = indexed_group
    files = rewrite_units(plan.output, f"{plan.version}-compact-{index:05d}", group)
    count_done(sum(u.samples for u in group))
    return Replacement(tuple(u.name for u in group), tuple(files))


def build_compaction(p: beam.Pipeline, plan: VersionPlan, groups: list[list[Unit]]) -> None:
    assert plan.parent is not None
    merged = sum(u.samples for g in groups for u in g)
    replacements = (
        p
        | "Groups" >> beam.Create(list(enumerate(groups)))
        | "Spread" >> beam.Reshuffle()
        | "MergeUnits" >> beam.Map(_merge, plan)
    )
    run = {
        "counts": p | "NoCounts" >> beam.Create([{}]),
        "files": p | "NoFiles" >> beam.Create([]),
        "replacements": replacements,
        "records_read": p | "SamplesMerged" >> beam.Create([merged]),
        "records_planned": p | "SamplesToMerge" >> beam.Create([merged]),
    }
    finish = Finish(plan, plan.parent.options, {}, ())
    _ = run | "PublishVersion" >> PublishVersion(finish)


def _version_chain(output: str, current: Manifest, keep: int) -> list[Manifest]:
    chain = [current]
    while len(chain) < keep and chain[-1].parent is not None:
        try:
            chain.append(read_manifest(output, chain[-1].parent))
        except (BeamIOError, FileNotFoundError, OSError):
            break
    return chain


def _listed(pattern: str) -> list[tuple[str, int]]:
    try:
        return [(m.path, m.size_in_bytes) for m in FileSystems.match([pattern])[0].metadata_list]
    except BeamIOError:
        return []


def collect_garbage(output: str, keep: int) -> dict[str, Any]:
    """Keep the current version and the keep-1 versions before it; delete every other version's directory and
    every data file none of the kept manifests lists (including what crashed runs left), under the output's lease
    (no other command writes meanwhile)."""
    if keep < 1:
        raise ValueError("--keep must be at least 1 (the current version)")
    current = read_current(output)
    if current is None:
        raise ValueError(f"{output}: no published version")
    held = lease.acquire(output, "gc", current.version)
    try:
        return _collect(output, current, keep)
    finally:
        lease.release(output, held.owner)


def _collect(output: str, current: Manifest, keep: int) -> dict[str, Any]:
    kept = _version_chain(output, current, keep)
    names = {m.version for m in kept}
    listed = {f.path for m in kept for f in (*m.rejected, *(f for u in m.units for f in u.files))}
    layout = OutputLayout(output)
    removed_files, freed = 0, 0
    for folder in layout.data_folders:
        for path, size in _listed(layout.path(f"{folder}/*")):
            if layout.relative(path) not in listed:
                FileSystems.delete([path])
                removed_files += 1
                freed += size
    removed_versions = []
    for path, _ in _listed(layout.versions + "/**"):
        name = layout.relative(path).split("/")[1]
        if name not in names and name not in removed_versions:
            removed_versions.append(name)
    for name in removed_versions:
        remove_tree(layout.version_dir(name))
    return {
        "kept_versions": [m.version for m in kept],
        "removed_versions": sorted(removed_versions),
        "removed_files": removed_files,
        "freed_bytes": freed,
    }
