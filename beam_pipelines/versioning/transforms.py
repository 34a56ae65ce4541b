"""Versioning stages: the current version's ids for a refresh, unit rewrites, and publication.

    current version's index files ─ ReadPublishedIds ─→ FindDuplicates (skips published ids, finds removed ones)
    removed (unit, sample_id) ─ RewriteRemoved (--on_removed drop) ─→ replacements ─┐
    this run's files, counters, records read, outcomes, stage times ────────────────┴─ PublishVersion

Only ids travel through the shuffle of `RewriteRemoved` (grouped by the unit that holds them); each affected unit
is then rewritten by one worker, file to file. `PublishVersion` is the job's last step: it counts the rows of every
file written (one worker per file), checks the invariant, writes the pages and the report once, and switches the
pointer if the run passes; if it does not, the step fails the job (`NotPublished`) after writing the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq

from beam_pipelines.files import WrittenFile, remove_tree, write_text
from beam_pipelines.layout import DATASET_KINDS, REPORT, version_dir
from beam_pipelines.report import DatasetSize, Invariant, Report, VersionSection
from beam_pipelines.sinks import invariant
from beam_pipelines.sinks.counters import MergeCounts, count_sections
from beam_pipelines.sinks.pages import write_pages
from beam_pipelines.sinks.showcase import Showcase
from beam_pipelines.sources.dataset import Dataset
from beam_pipelines.stages import StageTimes
from beam_pipelines.versioning import lease
from beam_pipelines.versioning.card import write_card
from beam_pipelines.versioning.manifest import (
    Manifest,
    Unit,
    missing_files,
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
    """Units of the parent version (`old`) replaced in the new one by the files `files` (none: all dropped), without
    the `dropped` samples they held."""

    old: tuple[str, ...]
    files: tuple[WrittenFile, ...]
    dropped: int = 0


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
    drop = frozenset(ids)
    files = rewrite_units(plan.output, rewritten_name(plan.version, unit), [source], drop)
    return Replacement((unit,), tuple(files), len(drop))


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
    written = [*infos, *(f for r in replacements for f in r.files)]
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


def version_section(plan: VersionPlan, manifest: Manifest, accepted: int, removed: int, already: int) -> VersionSection:
    """What the report says about versions: new, unchanged and removed samples, and what the dataset holds now.

    `run` rebuilds the dataset (nothing is carried over); `refresh` and `compact` carry the parent's samples
    over, less those dropped under `--on_removed drop`.
    """
    unchanged = manifest.samples - accepted if plan.command != "run" else 0
    return VersionSection(
        version=plan.version,
        parent=manifest.parent,
        command=plan.command,
        published=False,
        nothing_to_do=False,
        new=accepted,
        unchanged=unchanged,
        removed=removed,
        on_removed=plan.on_removed,
        dropped=plan.parent_samples - unchanged if plan.command != "run" else 0,
        already_present=already,
        input_files=plan.input_files,
        dataset=DatasetSize(
            samples=manifest.samples,
            units=len(manifest.units),
            files={k: len(manifest.files(k)) for k in DATASET_KINDS},
        ),
        skipped_inputs=list(plan.skipped),
    )


def passes_gate(plan: VersionPlan, input_records: int, rejected: int) -> bool:
    """A run whose rejected fraction is above --max_reject_fraction is not published."""
    return not input_records or rejected / input_records <= plan.max_reject_fraction


class ConcurrentWriter(RuntimeError):
    """The current version moved while this run worked: another run published first."""


class NotPublished(RuntimeError):
    """The job's last step wrote the report but did not publish: the job fails, so that every scheduler (a Flex
    Template job nobody waits for, an Airflow task) sees it; the report says why."""


def still_current(plan: VersionPlan) -> bool:
    """The pointer still names the version this run was planned on, or this very run's (a retried bundle)."""
    current = (read_pointer(plan.output) or {}).get("version")
    return current == (plan.parent.version if plan.parent else None) or _published_by_this_run(plan)


def _published_by_this_run(plan: VersionPlan) -> bool:
    current = (read_pointer(plan.output) or {}).get("version")
    return current == plan.version and read_manifest(plan.output, plan.version).created_at == plan.created_at


def expected_rows(stats: dict[str, int], formats: tuple[str, ...]) -> dict[str, int]:
    """The rows each kind of file a run writes must hold, from its outcome counters."""
    accepted, regions = stats.get("accepted", 0), stats.get("regions", 0)
    rows = {"index": accepted, "rejected": stats.get("rejected", 0)}
    if "parquet" in formats:
        rows.update(parquet_samples=accepted, parquet_regions=regions)
    if "webdataset" in formats:
        rows["webdataset"] = accepted
    return rows


def stage_seconds(times: list[StageTimes]) -> dict[str, float]:
    totals: dict[str, int] = {}
    for handed in times:
        for stage, us in handed.us:
            totals[stage] = totals.get(stage, 0) + us
    return {name: round(us / 1e6, 3) for name, us in sorted(totals.items())}


SAMPLE_KINDS = ("index", "parquet_samples", "webdataset")
"""The kinds of file with one row per sample: what a rewrite that drops samples holds fewer rows of."""


def replaced_rows(replacement: Replacement, units: dict[str, Unit]) -> dict[str, int]:
    """The rows per kind a replacement's files must hold: all those of the units it replaces, less the dropped
    samples (a drop leaves the regions count unknown, so regions are checked only when nothing is dropped)."""
    rows: dict[str, int] = {}
    for f in (f for name in replacement.old for f in units[name].files):
        rows[f.kind] = rows.get(f.kind, 0) + f.rows
    if not replacement.dropped:
        return rows
    return {kind: n - replacement.dropped for kind, n in rows.items() if kind in SAMPLE_KINDS}


@dataclass(frozen=True)
class Finish:
    """What the last step needs besides its side inputs."""

    plan: VersionPlan
    config: dict[str, Any]
    expectations: dict[str, dict[str, str]]
    formats: tuple[str, ...]
    suites: tuple[str, ...] = ()
    """The suites that apply to the run's dataset: the validation page shows those."""

    def check(
        self,
        stats: dict[str, int],
        sections: dict[str, Any],
        records: tuple[int, int],
        files: list[WrittenFile],
        replacements: list[Replacement],
        found: list[invariant.FileRows],
    ) -> Invariant:
        """A run's new files against its counters; each rewritten or merged unit against the units it replaces; a
        compaction's merges in total against the samples they merge."""
        units = {u.name: u for u in self.plan.parent.units} if self.plan.parent else {}
        groups = tuple(
            invariant.Group(
                f"the rewrite of {', '.join(r.old)}", frozenset(f.path for f in r.files), replaced_rows(r, units)
            )
            for r in replacements
        )
        rewritten = [f for r in replacements for f in r.files]
        if self.plan.command == "compact":
            outcomes = {"accepted": sum(f.rows for f in rewritten if f.kind == "index")}
            expected: dict[str, int] = {}
            for group in groups:
                for kind, n in group.expected.items():
                    expected[kind] = expected.get(kind, 0) + n
            own = rewritten
        else:
            outcomes = {k: sections[k] for k in invariant.OUTCOMES}
            expected, own = expected_rows(stats, self.formats), files
        read, planned = records
        return invariant.check(
            read,
            outcomes,
            expected,
            [*files, *rewritten],
            found,
            totalled={f.path for f in own},
            records_planned=planned,
            groups=groups,
        )


def _finish(_: Any, *side: Any) -> Iterator[Report]:
    """The last step, under the output's lease: checked before anything is published, released however it ends
    (a retried bundle of a run that already published finds its own version current and does not check again)."""
    finish: Finish = side[-1]
    plan = finish.plan
    if plan.lease and not _published_by_this_run(plan):
        lease.check(plan.output, plan.lease)
    try:
        report = _conclude(*side)
    finally:
        if plan.lease:
            lease.release(plan.output, plan.lease)
    yield report


def _conclude(
    stats: dict[str, int],
    files: list[WrittenFile],
    replacements: list[Replacement],
    found: list[invariant.FileRows],
    records_read: int,
    records_planned: int,
    showcase: dict[str, Any] | None,
    times: list[StageTimes],
    finish: Finish,
) -> Report:
    plan, layout = finish.plan, finish.plan.layout
    if not still_current(plan):
        pointer = read_pointer(plan.output)
        expected = plan.parent.version if plan.parent else None
        raise ConcurrentWriter(
            f"{plan.output}: the current version is {pointer and pointer['version']}, not {expected} as when this "
            f"run was planned; another run published meanwhile (one writer per output), {plan.version} not published"
        )
    rewritten = [f for r in replacements for f in r.files]
    sections = count_sections(
        stats, files if plan.command != "compact" else rewritten, layout, finish.config, finish.expectations
    )
    checked = finish.check(stats, sections, (records_read, records_planned), files, replacements, found)
    manifest = next_manifest(plan, finish.config, files, replacements)
    gone = missing_files(plan.output, manifest)
    if gone:
        problems = (
            *checked.problems,
            f"{len(gone)} files the manifest lists are not as written: {'; '.join(gone[:5])}",
        )
        checked = replace(checked, holds=False, problems=problems)
    section = version_section(plan, manifest, sections["accepted"], sections["removed"], sections["already_present"])
    section = replace(
        section, published=checked.holds and passes_gate(plan, sections["input_records"], sections["rejected"])
    )
    manifest = replace(
        manifest,
        counts={
            "new": section.new,
            "unchanged": section.unchanged,
            "removed": section.removed,
            "dropped": section.dropped,
        },
    )
    started, finished = datetime.fromisoformat(plan.created_at), datetime.now(UTC)
    report = Report(
        command=plan.command,
        **sections,
        new=section.new,
        unchanged=section.unchanged,
        version=section,
        invariant=checked,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        wall_time_s=round((finished - started).total_seconds(), 3),
        stage_time_s=stage_seconds(times),
    )
    if showcase is not None:
        write_pages(layout, plan.version, report, showcase, finish.suites)
    text = report.to_json()
    write_text(layout.report(plan.version), text, layout.scratch)
    write_text(layout.report(), text, layout.scratch)
    if section.published:
        publish(plan.output, manifest)
        write_card(plan.output, manifest, manifest.counts)
    else:
        write_text(layout.unpublished_manifest(plan.version), manifest.to_json(), layout.scratch)
    remove_tree(layout.scratch)
    if not section.published:
        raise NotPublished(f"{report.failure()} (report: {layout.report(plan.version)})")
    return report


class KeepLease(beam.PTransform):
    """Renews the output's lease from the element stream while the job works (at most every few minutes per
    process), so a long job keeps it and a crashed one loses it; a lease taken over meanwhile fails the job."""

    def __init__(self, plan: VersionPlan):
        super().__init__()
        self.plan = plan

    def expand(self, elements):
        output, owner = self.plan.output, self.plan.lease
        return elements | "Renew" >> beam.FlatMap(lambda _: lease.renew_if_due(output, owner) or ())


class PublishVersion(beam.PTransform):
    """Last step of a command: count the rows of every file written, check the invariant, write the pages and the
    report once, then switch the pointer, only if the invariant holds and the run passes --max_reject_fraction;
    otherwise fail the job, so that a scheduler that does not read the report still sees the failure.

    The inputs, by name: `counts` (counter dicts), `files` (every WrittenFile the run's writers wrote, with the
    writers' StageTimes), `replacements` (Replacement), `records_read` and `records_planned` (one int each) and,
    for a run, `outcomes` (every outcome, for the pages).
    """

    def __init__(self, finish: Finish, dataset: Dataset | None = None):
        super().__init__()
        self.finish = finish
        self.dataset = dataset

    def expand(self, outputs: dict[str, beam.PCollection]):
        p = outputs["counts"].pipeline
        output = self.finish.plan.output
        written = outputs["files"] | "Files" >> beam.Filter(lambda x: isinstance(x, WrittenFile))
        times = outputs["files"] | "StageTimes" >> beam.Filter(lambda x: isinstance(x, StageTimes))
        rewritten = outputs["replacements"] | "RewrittenFiles" >> beam.FlatMap(lambda r: r.files)
        found = (
            (written, rewritten)
            | "AllFiles" >> beam.Flatten()
            | "SpreadFiles" >> beam.Reshuffle()
            | "CountRowsInFiles" >> beam.Map(invariant.rows_in_file, output)
        )
        merged = outputs["counts"] | "MergeAll" >> beam.CombineGlobally(MergeCounts()).without_defaults()
        side = [
            beam.pvalue.AsSingleton(merged, default_value={}),
            beam.pvalue.AsList(written),
            beam.pvalue.AsList(outputs["replacements"]),
            beam.pvalue.AsList(found),
            beam.pvalue.AsSingleton(outputs["records_read"], default_value=0),
            beam.pvalue.AsSingleton(outputs["records_planned"], default_value=0),
        ]
        if "outcomes" in outputs and self.dataset is not None:
            fn = Showcase(self.dataset)
            showcase = outputs["outcomes"] | "Showcase" >> beam.CombineGlobally(fn).without_defaults()
            side.append(beam.pvalue.AsSingleton(showcase, default_value=fn.extract_output(fn.create_accumulator())))
        else:
            side.append(None)
        side.append(beam.pvalue.AsList(times))
        return p | "Once" >> beam.Create([None]) | "WriteReport" >> beam.FlatMap(_finish, *side, self.finish)
