"""Command line (also `python -m beam_pipelines`): parses arguments, calls the launcher, prints what happened.

`vgr-etl run|refresh ...` build a new version of the output dataset from the inputs (all of them, or what
changed); `compact`, `gc` and `files` maintain and read it; `demo` and `stage-images` help getting started.
`run`/`refresh` exit 0 on success, 1 when the version was not published (the rejected fraction exceeds
`--max_reject_fraction`, or the counts do not add up; the files and report are written), 2 with a one-line reason
when the run could not be done.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from beam_pipelines import archives, launcher
from beam_pipelines.demo.run import run_demo
from beam_pipelines.layout import DATASET_KINDS
from beam_pipelines.options import BY_NAME, VgrEtlOptions
from beam_pipelines.versioning.maintenance import collect_garbage
from beam_pipelines.versioning.manifest import data_files


def _fail(command: str, exc: Exception) -> int:
    """One line for the user; the traceback is in the log at debug level."""
    logging.getLogger(__name__).debug("%s failed", command, exc_info=True)
    print(
        f"vgr-etl: {command} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        file=sys.stderr,
    )
    return 2


def _pipeline_command(command: str, description: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        if argv and argv[0] in ("-h", "--help"):
            parser = argparse.ArgumentParser(prog=f"vgr-etl {command}", description=description)
            VgrEtlOptions._add_argparse_args(parser)
            parser.print_help()
            return 0
        try:
            options = launcher.parse(argv)
            report = launcher.run(options, command)
        except Exception as exc:
            return _fail(command, exc)
        if report is None:
            print("vgr-etl: job built or submitted without waiting (dry run, template or Flex Template launch)")
            return 0
        output = options.view_as(VgrEtlOptions).output
        failure = report.failure()
        print(report.summary(output), file=sys.stderr if failure else sys.stdout)
        if failure:
            print(f"vgr-etl: {command} failed: {failure} (see {output})", file=sys.stderr)
            return 1
        return 0

    return run


def _compact_command(argv: list[str]) -> int:
    """`vgr-etl compact --output DIR [--shard_max_samples N] [--shard_max_bytes B] [Beam options]`."""
    parser = argparse.ArgumentParser(prog="vgr-etl compact", description="Merge small units into a new version.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--shard_max_samples", type=int, default=1000, help="Samples per merged unit, at most.")
    parser.add_argument("--shard_max_bytes", type=int, default=512 * 1024 * 1024, help="Bytes per merged unit.")
    args, beam_args = parser.parse_known_args(argv)
    misplaced = [a.split("=", 1)[0] for a in beam_args if a.split("=", 1)[0].lstrip("-") in BY_NAME]
    if misplaced:
        print(
            f"vgr-etl: compact failed: {', '.join(misplaced)}: an option of run and refresh; compact takes --output, "
            "--shard_max_samples, --shard_max_bytes and Beam's options",
            file=sys.stderr,
        )
        return 2
    try:
        options = launcher.parse([*beam_args, f"--output={args.output}"])
        report = launcher.compact(options, args.shard_max_samples, args.shard_max_bytes)
    except Exception as exc:
        return _fail("compact", exc)
    if report is None:
        print("compact: nothing to do: no run of small units to merge")
        return 0
    v = report.version
    if not v.published:
        print(f"vgr-etl: compact failed: {report.failure()}", file=sys.stderr)
        return 1
    print(f"compact: {v.version} published: {v.dataset.samples} samples in {v.dataset.units} units")
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
    parser = argparse.ArgumentParser(prog="vgr-etl demo", description="Generate the demo dataset and run all sources.")
    parser.add_argument("--output", required=True, help="Directory for the demo data and outputs.")
    args, beam_args = parser.parse_known_args(argv)
    return run_demo(args.output, beam_args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _pipeline_command("run", "Build a new version of the output dataset from every input record."),
    "refresh": _pipeline_command(
        "refresh", "Add the input records not yet in the current version, as a new version (same options as run)."
    ),
    "compact": _compact_command,
    "gc": _gc_command,
    "files": _files_command,
    "demo": _demo_command,
    "stage-images": archives.main,
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
