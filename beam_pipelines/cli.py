"""Command line: `vgr-etl run ...`, `vgr-etl demo --output DIR` and `vgr-etl stage-images ...` (also
`python -m beam_pipelines`).

`run` exits 0 on success and non-zero with a one-line reason otherwise, including when the rejected
fraction exceeds `--max_reject_fraction`; outputs and report are written first either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from beam_pipelines.options import VgrEtlOptions, check_required, unknown_flags
from beam_pipelines.pipeline import build_pipeline
from beam_pipelines.sinks.shards import TMP_DIR, AtomicFile, join
from beam_pipelines.sinks.transforms import PREVIEW_PAGE, REPORT, VALIDATION_PAGE, read_report
from beam_pipelines.stages import TIMING_NAMESPACE

LOCAL_RUNNER = "FnApiRunner"  # the DirectRunner first tries to download the Prism binary
OUTPUT_PARTS = ("parquet", "webdataset", "rejected", "validation", "preview", TMP_DIR, REPORT)
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


def _remove(path: str) -> None:
    if "://" not in path:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        return
    matches = FileSystems.match([path, path + "/**"])
    found = [m.path for r in matches for m in r.metadata_list]
    if found:
        FileSystems.delete(found)


def prepare_output(output: str) -> None:
    """A run replaces what an earlier run wrote to the same output (only our own parts are touched)."""
    for part in OUTPUT_PARTS:
        _remove(join(output, part))


def launch_mode(options: VgrEtlOptions) -> str | None:
    """Runs that return right after `run()`: "build" (a Dataflow dry run or classic template creation: nothing
    runs, outputs are not touched) or "flex" (a Flex Template launcher: the job is submitted, and waiting for it
    would keep the launcher VM up for the whole job); None for runs we wait for."""
    all_options = options.get_all_options()
    if all_options.get("dry_run") or all_options.get("template_location"):
        return "build"
    flex = FLEX_TEMPLATE_ENV in os.environ and "Dataflow" in str(all_options.get("runner"))
    return "flex" if flex else None


def run_pipeline(argv: list[str]) -> dict[str, Any] | None:
    """Run the pipeline to completion; return the final report (None when `launch_mode` says not to wait)."""
    bad = unknown_flags(argv)
    if bad:
        raise ValueError(f"unknown option(s): {', '.join(bad)} (see `vgr-etl run --help`)")
    options = VgrEtlOptions(_with_default_runner(argv))
    o = options.view_as(VgrEtlOptions)
    check_required(o)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options)
    mode = launch_mode(options)
    if mode == "build":
        pipeline.run()
        return None
    prepare_output(o.output)
    result = pipeline.run()
    if mode == "flex":
        return None
    result.wait_until_finish()
    _remove(join(o.output, TMP_DIR))
    report = read_report(o.output)
    report["wall_time_s"] = round(time.time() - started, 3)
    report["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
    report["finished_at"] = datetime.now(UTC).isoformat()
    report["stage_time_s"] = stage_times(result)
    report["invariant_holds"] = (
        report["input_records"] == report["accepted"] + report["rejected"] + report["duplicates"]
    )
    f = AtomicFile(o.output, join(o.output, REPORT))
    f.write(json.dumps(report, indent=2).encode("utf-8") + b"\n")
    f.commit()
    _remove(join(o.output, TMP_DIR))
    if report["input_records"] and report["rejected"] / report["input_records"] > o.max_reject_fraction:
        raise RunFailed(
            f"rejected {report['rejected']} of {report['input_records']} input records "
            f"({report['rejected'] / report['input_records']:.1%}), above --max_reject_fraction="
            f"{o.max_reject_fraction}; see {join(o.output, 'rejected')}",
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
    checks = ", ".join(f"{k}={v}" for k, v in report["rejected_by_check"].items()) or "none"
    return (
        f"{report['config']['source']}: {report['input_records']} input records -> {report['accepted']} accepted, "
        f"{report['rejected']} rejected ({checks}), {report['duplicates']} duplicates, "
        f"{report['regions']} regions in {report['wall_time_s']:.1f}s\n"
        f"  outputs: {output}/parquet, {output}/webdataset, {output}/rejected\n"
        f"  report:  {join(output, REPORT)}, {join(output, VALIDATION_PAGE)}, {join(output, PREVIEW_PAGE)}"
    )


def _run_command(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        parser = argparse.ArgumentParser(prog="vgr-etl run", description="Run the ETL on one source.")
        VgrEtlOptions._add_argparse_args(parser)
        parser.print_help()
        return 0
    output = next((a.split("=", 1)[1] for a in argv if a.startswith("--output=")), None)
    if output is None and "--output" in argv:
        output = argv[argv.index("--output") + 1]
    try:
        report = run_pipeline(argv)
    except RunFailed as exc:
        if exc.report is not None:
            print(summary(exc.report, output or ""), file=sys.stderr)
        print(f"vgr-etl: run failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line for the user; the traceback is in the log at debug level
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(
            f"vgr-etl: run failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return 2
    if report is None:
        print("vgr-etl: job built or submitted without waiting (dry run, template or Flex Template launch)")
    else:
        print(summary(report, output or ""))
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


COMMANDS = {"run": _run_command, "demo": _demo_command, "stage-images": _stage_images_command}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: vgr-etl {run,demo,stage-images} [options]  (vgr-etl COMMAND --help)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
