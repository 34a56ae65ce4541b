"""`run(options, command) -> Report`: plan, build, run and wait, for every caller (the CLI, the demo, the Flex
Template launcher, tests).

The job writes its own report (`versioning.transforms.PublishVersion`), so a run the launcher does not wait for (a
Flex Template launch) reports exactly like one it does; waiting, the launcher only reads that report back. A
refresh that finds nothing to read runs no job: the launcher writes its report.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipelines import preflight, progress
from beam_pipelines.beam_internals import job_counters
from beam_pipelines.files import remove_tree, write_text
from beam_pipelines.flags import check_options, warn_deprecated
from beam_pipelines.imports import freeze_imports
from beam_pipelines.layout import DATASET_KINDS
from beam_pipelines.local_workers import local_runner
from beam_pipelines.options import LaunchOptions, VgrEtlOptions, unknown_flags
from beam_pipelines.pipeline import build_pipeline
from beam_pipelines.report import DatasetSize, Invariant, Report, VersionSection, read_report
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.stages import take_stage_times
from beam_pipelines.versioning import lease
from beam_pipelines.versioning.maintenance import build_compaction, collect_garbage, compaction_plan, plan_groups
from beam_pipelines.versioning.manifest import read_current
from beam_pipelines.versioning.plan import VersionPlan, plan_version

LOCAL_RUNNER = "FnApiRunner"  # the DirectRunner first tries to download the Prism binary
FLEX_TEMPLATE_ENV = "FLEX_TEMPLATE_PYTHON_PY_FILE"  # set in the Flex Template launcher image
COMMANDS = ("run", "refresh")


def stray_message(unknown: list[str]) -> str:
    """Why the arguments no option knows fail the launch, and what the user likely meant."""
    flags = [a for a in unknown if a.startswith("-")]
    words = [a for a in unknown if not a.startswith("-")]
    if flags:
        return f"unknown option(s): {', '.join(flags)} (vgr-etl COMMAND --help lists them)"
    shown = ", ".join(repr(w) for w in words[:3]) + (f" and {len(words) - 3} more" if len(words) > 3 else "")
    paths = any("/" in w or "." in w for w in words)
    hint = (
        "a shell expanded a glob into several files: quote it (--input '/data/parts/*.jsonl') or repeat --input"
        if paths
        else "every value goes right after its option (--name value or --name=value)"
    )
    return f"unexpected argument(s) {shown}: {hint}"


def parse(argv: list[str], default_runner: str = LOCAL_RUNNER) -> PipelineOptions:
    """Pipeline options from command-line arguments; an argument no option knows is an error, never dropped."""
    unknown = unknown_flags(argv)
    if unknown:
        raise ValueError(stray_message(unknown))
    warn_deprecated(argv)
    if not any(a == "--runner" or a.startswith("--runner=") for a in argv):
        argv = [*argv, f"--runner={default_runner}"]
    return LaunchOptions(argv)


def launch_mode(options: PipelineOptions) -> str | None:
    """Runs that return right after `run()`: "build" (a Dataflow dry run or classic template creation: nothing
    runs, outputs are not touched) or "flex" (a Flex Template launcher: the job is submitted, and waiting for it
    would keep the launcher VM up for the whole job); None for runs we wait for."""
    all_options = options.get_all_options()
    if all_options.get("dry_run") or all_options.get("template_location"):
        return "build"
    flex = FLEX_TEMPLATE_ENV in os.environ and "Dataflow" in str(options.view_as(StandardOptions).runner)
    return "flex" if flex else None


def run(options: PipelineOptions, command: str = "run") -> Report | None:
    """Run (or refresh) to completion and return the job's report; None when `launch_mode` says not to wait."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}")
    freeze_imports()
    o = options.view_as(VgrEtlOptions)
    check_options(o)
    mode = launch_mode(options)
    if mode != "build":
        preflight.check_output(o.output)
    dataset = dataset_named(o.source)

    def check_files(files: list[str]) -> None:
        preflight.check_output_apart(o.output, o.input, files)
        preflight.check_inputs(dataset, files, o.image_root)

    label = f"{command} {o.source}"
    with (
        progress.shown(label, o.progress if mode is None else "off") as display,
        local_runner(options, o.local_worker_start) as runner,
    ):
        plan = plan_version(
            options, command, list_inputs=mode != "build", clean=mode != "build", check_files=check_files
        )
        if plan.skipped:
            shown = ", ".join(plan.skipped[:3]) + (", …" if len(plan.skipped) > 3 else "")
            print(
                f"vgr-etl: note: {len(plan.skipped)} matched by --input not read (other file types, or subfolders: "
                f"a directory is not read recursively): {shown}; listed in the report",
                file=sys.stderr,
            )
        with _lease_released_unless_submitted(plan, waits=mode is None):
            if plan.nothing_to_do:
                if mode == "flex":
                    work = functools.partial(_nothing_to_do, plan)
                    return _submit_one_step(options, "WriteNothingToDoReport", work)
                return _nothing_to_do(plan)
            pipeline = beam.Pipeline(runner=runner, options=options)
            build_pipeline(pipeline, options, plan)
            take_stage_times()  # what an earlier job left in this process's tally is not this one's
            if mode is not None:
                pipeline.run()
                return None
            display.start()
            return _wait_for(plan, lambda: _run_and_wait(pipeline, display))


@contextlib.contextmanager
def _lease_released_unless_submitted(plan: VersionPlan, waits: bool) -> Iterator[None]:
    """The job's last step releases the output's lease; when the launcher waits, it also releases it once the job
    has ended (a job that failed before its last step), and in any case if the launch itself failed."""
    try:
        yield
    except BaseException:
        lease.release(plan.output, plan.lease)
        raise
    if waits:
        lease.release(plan.output, plan.lease)


def compact(options: PipelineOptions, max_samples: int, max_bytes: int) -> Report | None:
    """Merge runs of small units into units of up to the limits, as a new version; None when nothing merges, or
    when `launch_mode` says not to wait."""
    output = options.view_as(VgrEtlOptions).output
    mode = launch_mode(options)
    plan = compaction_plan(output)
    assert plan.parent is not None
    with _lease_released_unless_submitted(plan, waits=mode is None):
        groups = plan_groups(list(plan.parent.units), max_samples, max_bytes)
        if not groups:
            lease.release(output, plan.lease)
            if mode == "flex":
                _submit_one_step(options, "NothingToMerge", functools.partial(_log, f"{output}: nothing to merge"))
            return None
        pipeline = beam.Pipeline(options=options)
        build_compaction(pipeline, plan, groups)
        if mode is not None:
            pipeline.run()
            return None
        labels = {"unit": "samples", "part": "groups"}
        with progress.shown("compact", options.view_as(VgrEtlOptions).progress, **labels) as display:
            samples = sum(u.samples for group in groups for u in group)
            display.tally.set({"records_planned": samples, "chunks_planned": len(groups)})
            display.start()
            return _wait_for(plan, lambda: _run_and_wait(pipeline, display))


def _run_and_wait(pipeline: beam.Pipeline, display: progress.Display) -> None:
    """Run the job and wait for it; while waiting on a remote one, the display reads its metrics (a local job
    reports to the display directly, and has ended when `run` returns), and once more when it has ended."""
    result = pipeline.run()
    display.poll = functools.partial(job_counters, result, progress.NAMESPACE)
    result.wait_until_finish()
    display.final_poll()


def gc_job(options: PipelineOptions, keep: int) -> dict[str, Any] | None:
    """`vgr-etl gc` as a job of one step (what a Flex Template launch must submit): the result, once the job ends,
    when the launcher waits; None when `launch_mode` says not to wait."""
    output = options.view_as(VgrEtlOptions).output
    if keep < 1:
        raise ValueError("--keep_versions must be at least 1 (the current version)")
    if read_current(output) is None:
        raise ValueError(f"{output}: no published version")
    _submit_one_step(options, "CollectGarbage", functools.partial(_logged_gc, output, keep))
    return None if launch_mode(options) else {"output": output, "keep": keep}


def _logged_gc(output: str, keep: int) -> None:
    logging.getLogger(__name__).info("gc: %s", json.dumps(collect_garbage(output, keep)))


def _log(message: str) -> None:
    logging.getLogger(__name__).info(message)


def _submit_one_step(options: PipelineOptions, name: str, work: Callable[[], Any]) -> None:
    """Submit a job whose one step calls `work` once on a worker, and wait for it unless `launch_mode` says not to.
    A Flex Template launch must submit a job: work that needs no pipeline (gc, the report of a refresh with nothing
    to do) runs as one, so that its success or failure is the job's, like every other command's."""
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "Once" >> beam.Create([None]) | name >> beam.Map(lambda _, work: work(), work)
    result = pipeline.run()
    if launch_mode(options) is None:
        result.wait_until_finish()


def _wait_for(plan: VersionPlan, job: Callable[[], None]) -> Report:
    """Run `job` (submit and wait) and return the report it wrote. A job that fails because it did not publish
    (`NotPublished`, raised once its report is written) is an outcome here, not an error: its report is returned.
    Any other failure propagates."""
    try:
        job()
    except Exception:
        report = _own_report(plan)
        if report is None or report.version.published:
            raise
        return report
    remove_tree(plan.layout.scratch)
    return read_report(plan.output)


def _own_report(plan: VersionPlan) -> Report | None:
    """The report this very job wrote for its version, if it got that far."""
    try:
        report = read_report(plan.output, plan.version)
    except Exception:
        return None
    return report if report.started_at == datetime.fromisoformat(plan.created_at).isoformat() else None


def _nothing_to_do(plan: VersionPlan) -> Report:
    """The report of a refresh that found every input file unchanged: nothing read, nothing published."""
    assert plan.parent is not None
    now = datetime.now(UTC)
    started = datetime.fromisoformat(plan.created_at)
    report = Report(
        command="refresh",
        input_records=0,
        accepted=0,
        rejected=0,
        duplicates=0,
        already_present=0,
        new=0,
        unchanged=plan.parent.samples,
        removed=0,
        rejected_by_check={},
        rejected_by_stage={},
        regions=0,
        regions_with_replay_marker=0,
        steps=0,
        warnings={},
        expectations={},
        image_resolution={},
        per_source={},
        per_subset={},
        token_economy={},
        grounding={},
        annotation={},
        replay_preset=None,
        shards={},
        shard_files=[],
        config=plan.parent.options,
        version=VersionSection(
            version=plan.parent.version,
            parent=plan.parent.parent,
            command="refresh",
            published=False,
            nothing_to_do=True,
            new=0,
            unchanged=plan.parent.samples,
            removed=0,
            on_removed=plan.on_removed,
            dropped=0,
            already_present=0,
            input_files=plan.input_files,
            dataset=DatasetSize(
                plan.parent.samples, len(plan.parent.units), {k: len(plan.parent.files(k)) for k in DATASET_KINDS}
            ),
        ),
        invariant=Invariant(0, 0, {"accepted": 0, "rejected": 0, "duplicates": 0}, {}, True),
        started_at=started.isoformat(),
        finished_at=now.isoformat(),
        wall_time_s=round((now - started).total_seconds(), 3),
        stage_time_s={},
    )
    write_text(plan.layout.report(), report.to_json(), plan.layout.scratch)
    remove_tree(plan.layout.scratch)
    lease.release(plan.output, plan.lease)
    return report
