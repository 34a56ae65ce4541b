"""Command line (also `python -m beam_pipelines`): `vgr-etl run|refresh ...` build a new version of the output
dataset from the inputs (all of them, or what changed); `compact`, `gc` and `files` maintain and read it;
`demo` and `stage-images` help getting started.

`run`/`refresh` exit 0 on success and non-zero with a one-line reason otherwise, including when the rejected
fraction exceeds `--max_reject_fraction` (the files and report are written, the version is not published).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from beam_pipelines.files import remove_tree, write_text
from beam_pipelines.layout import DATASET_KINDS, PREVIEW_PAGE, VALIDATION_PAGE, OutputLayout, manifest_path
from beam_pipelines.local_workers import local_runner
from beam_pipelines.options import VgrEtlOptions, check_required, unknown_flags
from beam_pipelines.pipeline import build_pipeline
from beam_pipelines.sinks.transforms import read_report
from beam_pipelines.stages import TIMING_NAMESPACE
from beam_pipelines.versioning.maintenance import build_compaction, collect_garbage, compaction_plan, plan_groups
from beam_pipelines.versioning.manifest import data_files
from beam_pipelines.versioning.plan import VersionPlan, plan_version

LOCAL_RUNNER = "FnApiRunner"  # the DirectRunner first tries to download the Prism binary
FLEX_TEMPLATE_ENV = "FLEX_TEMPLATE_PYTHON_PY_FILE"  # set in the Flex Template launcher image


class RunFailed(Exception):
    """A run that finished with a reason to exit non-zero; the report has been written."""

    def __init__(self, reason: str, report: dict[str, Any] | None = None):
        super().__init__(reason)
        self.report = report


def _with_default_runner(argv: list[str]) -> list[str]:
    if any(a == "--runner" or a.startswith("--runner=") for a in argv):
        return argv
    return [*argv, f"--runner={LOCAL_RUNNER}"]


def launch_mode(options: VgrEtlOptions) -> str | None:
    """Runs that return right after `run()`: "build" (a Dataflow dry run or classic template creation: nothing
    runs, outputs are not touched) or "flex" (a Flex Template launcher: the job is submitted, and waiting for it
    would keep the launcher VM up for the whole job); None for runs we wait for."""
    all_options = options.get_all_options()
    if all_options.get("dry_run") or all_options.get("template_location"):
        return "build"
    flex = FLEX_TEMPLATE_ENV in os.environ and "Dataflow" in str(all_options.get("runner"))
    return "flex" if flex else None


def _write_report(output: str, report: dict[str, Any], version: str | None) -> None:
    layout = OutputLayout(output)
    for path in filter(None, (version and layout.report(version), layout.report())):
        write_text(path, json.dumps(report, indent=2) + "\n", layout.scratch)


def _nothing_to_do(plan: VersionPlan, started: float) -> dict[str, Any]:
    """The report of a refresh that found every input file unchanged: nothing read, nothing published."""
    assert plan.parent is not None
    report = {
        "command": "refresh",
        "input_records": 0,
        "accepted": 0,
        "rejected": 0,
        "duplicates": 0,
        "new": 0,
        "unchanged": plan.parent.samples,
        "removed": 0,
        "version": {
            "version": plan.parent.version,
            "command": "refresh",
            "published": False,
            "nothing_to_do": True,
            "input_files": plan.input_files,
        },
        "config": plan.parent.options,
        "wall_time_s": round(time.time() - started, 3),
    }
    _write_report(plan.output, report, None)
    remove_tree(plan.layout.scratch)
    return report


def run_pipeline(argv: list[str], command: str = "run") -> dict[str, Any] | None:
    """Run (or refresh) to completion; return the final report (None when `launch_mode` says not to wait)."""
    bad = unknown_flags(argv)
    if bad:
        raise ValueError(f"unknown option(s): {', '.join(bad)} (see `vgr-etl {command} --help`)")
    options = VgrEtlOptions(_with_default_runner(argv))
    o = options.view_as(VgrEtlOptions)
    check_required(o)
    started = time.time()
    mode = launch_mode(options)
    with local_runner(options, o.local_worker_start) as runner:
        plan = plan_version(options, command, list_inputs=mode != "build", clean=mode != "build")
        if plan.nothing_to_do:
            return _nothing_to_do(plan, started)
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_pipeline(pipeline, options, plan)
        result = pipeline.run()
        if mode is not None:
            return None
        result.wait_until_finish()
    report = read_report(o.output)
    report["wall_time_s"] = round(time.time() - started, 3)
    report["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
    report["finished_at"] = datetime.now(UTC).isoformat()
    report["stage_time_s"] = stage_times(result)
    report["invariant_holds"] = (
        report["input_records"] == report["accepted"] + report["rejected"] + report["duplicates"]
    )
    _write_report(o.output, report, plan.version)
    remove_tree(plan.layout.scratch)
    if not report["version"]["published"]:
        raise RunFailed(
            f"rejected {report['rejected']} of {report['input_records']} input records "
            f"({report['rejected'] / report['input_records']:.1%}), above --max_reject_fraction="
            f"{o.max_reject_fraction}; {plan.version} not published (see {plan.layout.path('rejected')})",
            report,
        )
    return report


def stage_times(result: beam.runners.runner.PipelineResult) -> dict[str, float]:
    """Seconds of work per stage (summed over workers), from the stages' Beam counters."""
    query = result.metrics().query(MetricsFilter().with_namespace(TIMING_NAMESPACE))
    totals: dict[str, int] = {}
    for counter in query["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (counter.committed or 0)
    return {name: round(us / 1e6, 3) for name, us in sorted(totals.items())}


def summary(report: dict[str, Any], output: str) -> str:
    v = report["version"]
    if v.get("nothing_to_do"):
        files = v["input_files"]
        return (
            f"refresh: nothing to do: {files['unchanged']} input files unchanged, none new, changed or gone; "
            f"{v['version']} stays current ({report['unchanged']} samples)"
        )
    checks = ", ".join(f"{k}={v}" for k, v in report["rejected_by_check"].items()) or "none"
    state = "published" if v["published"] else "NOT published"
    layout = OutputLayout(output)
    pointer = (
        f"{layout.current} -> {manifest_path(v['version'])}"
        if v["published"]
        else f"{layout.current} unchanged (the previous version, if any, stays current)"
    )
    return (
        f"{report['config']['source']}: {report['input_records']} input records -> {report['accepted']} accepted, "
        f"{report['rejected']} rejected ({checks}), {report['duplicates']} duplicates "
        f"({report['already_present']} already published), {report['regions']} regions "
        f"in {report['wall_time_s']:.1f}s\n"
        f"  {v['command']} {v['version']} {state}: {report['new']} new, {report['unchanged']} unchanged, "
        f"{report['removed']} removed ({v['on_removed']}: {v['dropped']} dropped); "
        f"dataset {v['dataset']['samples']} samples in {v['dataset']['units']} units\n"
        f"  manifest: {pointer}\n"
        f"  report:  {layout.report()}, {layout.page(VALIDATION_PAGE)}, {layout.page(PREVIEW_PAGE)}"
    )


def _output_of(argv: list[str]) -> str:
    output = next((a.split("=", 1)[1] for a in argv if a.startswith("--output=")), None)
    if output is None and "--output" in argv[:-1]:
        output = argv[argv.index("--output") + 1]
    return output or ""


def _fail(command: str, exc: Exception) -> int:
    """One line for the user; the traceback is in the log at debug level."""
    logging.getLogger(__name__).debug("%s failed", command, exc_info=True)
    print(
        f"vgr-etl: {command} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        file=sys.stderr,
    )
    return 2


def _pipeline_command(command: str, description: str):
    def run(argv: list[str]) -> int:
        if argv and argv[0] in ("-h", "--help"):
            parser = argparse.ArgumentParser(prog=f"vgr-etl {command}", description=description)
            VgrEtlOptions._add_argparse_args(parser)
            parser.print_help()
            return 0
        output = _output_of(argv)
        try:
            report = run_pipeline(argv, command)
        except RunFailed as exc:
            if exc.report is not None:
                print(summary(exc.report, output), file=sys.stderr)
            print(f"vgr-etl: {command} failed: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:
            return _fail(command, exc)
        if report is None:
            print("vgr-etl: job built or submitted without waiting (dry run, template or Flex Template launch)")
        else:
            print(summary(report, output))
        return 0

    return run


def _compact_command(argv: list[str]) -> int:
    """`vgr-etl compact --output DIR [--shard_max_samples N] [--shard_max_bytes B] [Beam options]`."""
    try:
        bad = unknown_flags(argv)
        if bad:
            raise ValueError(f"unknown option(s): {', '.join(bad)}")
        options = VgrEtlOptions(_with_default_runner(argv))
        o = options.view_as(VgrEtlOptions)
        if not o.output:
            raise ValueError("missing required option: --output")
        plan = compaction_plan(o.output)
        assert plan.parent is not None
        groups = plan_groups(list(plan.parent.units), o.shard_max_samples, o.shard_max_bytes)
        if not groups:
            print(f"compact: nothing to do: {len(plan.parent.units)} units, none small enough to merge")
            return 0
        pipeline = beam.Pipeline(options=options)
        build_compaction(pipeline, plan, groups)
        pipeline.run().wait_until_finish()
        remove_tree(plan.layout.scratch)
        report = read_report(o.output)
    except Exception as exc:
        return _fail("compact", exc)
    v = report["version"]
    print(
        f"compact: {v['version']} published: {plan.parent.samples} samples, {len(plan.parent.units)} units -> "
        f"{v['dataset']['units']} units ({sum(len(g) for g in groups)} merged into {len(groups)})"
    )
    return 0


def _gc_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vgr-etl gc", description="Delete all but the newest N versions.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--keep", type=int, required=True, help="Versions to keep, the current one included.")
    args = parser.parse_args(argv)
    try:
        result = collect_garbage(args.output, args.keep)
    except Exception as exc:
        return _fail("gc", exc)
    print(json.dumps(result))
    return 0


def _files_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vgr-etl files", description="The current version's files, one per line.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--kind", default="parquet_samples", choices=DATASET_KINDS)
    args = parser.parse_args(argv)
    try:
        paths = data_files(args.output, args.kind)
    except Exception as exc:
        return _fail("files", exc)
    print("\n".join(paths))
    return 0


def _demo_command(argv: list[str]) -> int:
    from beam_pipelines.demo.run import run_demo

    parser = argparse.ArgumentParser(prog="vgr-etl demo", description="Generate the demo dataset and run all sources.")
    parser.add_argument("--output", required=True, help="Directory for the demo data and outputs.")
    args, beam_args = parser.parse_known_args(argv)
    return run_demo(args.output, beam_args)


def _stage_images_command(argv: list[str]) -> int:
    from beam_pipelines.staging import main as stage_images_main

    return stage_images_main(argv)


COMMANDS = {
    "run": _pipeline_command("run", "Build a new version of the output dataset from every input record."),
    "refresh": _pipeline_command(
        "refresh", "Add the input records not yet in the current version, as a new version (same options as run)."
    ),
    "compact": _compact_command,
    "gc": _gc_command,
    "files": _files_command,
    "demo": _demo_command,
    "stage-images": _stage_images_command,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: vgr-etl {{{','.join(COMMANDS)}}} [options]  (vgr-etl COMMAND --help)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
