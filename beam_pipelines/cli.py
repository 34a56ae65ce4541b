"""Command line (also `python -m beam_pipelines`): parses arguments, calls the launcher, prints what happened.

`vgr-etl run|refresh ...` build a new version of the output dataset from the inputs (all of them, or what
changed); `compact`, `gc` and `files` maintain and read it; `demo` and `stage-images` help getting started.
`run`/`refresh` exit 0 on success, 1 when the version was not published (the rejected fraction exceeds
`--max_reject_fraction`, or the counts do not add up; the files and report are written), 2 with a one-line reason
when the run could not be done. Help, and the mistakes the option declarations can tell (a misspelt source, a
missing option, a value out of range), answer before Beam is imported: in a fraction of a second.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from beam_pipelines import progress
from beam_pipelines.flags import OPTIONS, check_options
from beam_pipelines.layout import DATASET_KINDS
from beam_pipelines.quiet import quiet_launcher

BEAM_HELP = (
    "Beam's own pipeline options pass through unchanged: --runner (default FnApiRunner, the local runner), "
    "--direct_num_workers N --direct_running_mode multi_processing, and DataflowRunner's and FlinkRunner's options "
    "(docs/runners.md; https://beam.apache.org/documentation/runners/capability-matrix/)."
)


class UsageError(Exception):
    """A mistake on the command line, in one line."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (with a suggestion for a misspelt choice), not a usage page."""

    def error(self, message: str):
        match = _INVALID_CHOICE.match(message)
        if match:
            name, value, choices = match["name"], match["value"], [c.strip(" '") for c in match["choices"].split(",")]
            close = difflib.get_close_matches(value, choices)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"{name} {value!r}: expected one of {', '.join(choices)}{hint}")
        raise UsageError(message.replace("the following arguments are required", "missing required option(s)"))


_INVALID_CHOICE = re.compile(
    r"argument (?P<name>\S+?): invalid choice: '(?P<value>.*)' \(choose from (?P<choices>.*)\)"
)


def run_parser(command: str, description: str) -> Parser:
    """The parser of `run` and `refresh`, from the declarations: every option with its default."""
    parser = Parser(
        prog=f"vgr-etl {command}",
        description=description,
        epilog=BEAM_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    required = parser.add_argument_group("required")
    rest = parser.add_argument_group("options")
    for option in OPTIONS:
        option.add_to(required if option.required else rest)
    return parser


def _fail(command: str, exc: BaseException) -> int:
    """One line for the user (a mistake's message alone; anything else with its kind); the traceback is in the log
    at debug level."""
    logging.getLogger(__name__).debug("%s failed", command, exc_info=True)
    text = str(exc).splitlines()[0] if str(exc) else ""
    from beam_pipelines.versioning.lease import OutputLocked

    user = isinstance(exc, UsageError | ValueError | FileNotFoundError | OutputLocked)
    print(f"vgr-etl: {command} failed: {text if user else f'{type(exc).__name__}: {text}'}", file=sys.stderr)
    return 2


def _pipeline_command(command: str, description: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        parser = run_parser(command, description)
        if any(a in ("-h", "--help") for a in argv):
            parser.print_help()
            return 0
        try:
            declared, others = parser.parse_known_args(argv)
            if not others:  # else Beam's flags or strays, which only Beam's parser tells apart: it names strays first
                check_options(declared)
            from beam_pipelines import launcher

            options = launcher.parse(argv)
            report = launcher.run(options, command)
        except Exception as exc:
            return _fail(command, exc)
        if report is None:
            print("vgr-etl: job built or submitted without waiting (dry run, template or Flex Template launch)")
            return 0
        failure = report.failure()
        print(report.summary(declared.output), file=sys.stderr if failure else sys.stdout)
        if failure:
            print(f"vgr-etl: {command} failed: {failure} (see {declared.output})", file=sys.stderr)
            return 1
        return 0

    return run


def _add_progress(parser: argparse.ArgumentParser) -> None:
    """`--progress` of the commands that are not Beam jobs' own options (run and refresh declare it in OPTIONS)."""
    parser.add_argument(
        "--progress",
        choices=progress.MODES,
        default="auto",
        help="Progress on stderr: bar, log (a line every 30 s), off; auto is bar on a terminal, log elsewhere.",
    )


def _compact_command(argv: list[str]) -> int:
    parser = Parser(
        prog="vgr-etl compact",
        description="Merge runs of consecutive small units of the current version into units of up to the limits, "
        "as a new version (nothing is deleted: `vgr-etl gc` does that).",
        epilog=BEAM_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", required=True, help="The output directory (local or gs://).")
    parser.add_argument("--shard_max_samples", type=int, default=1000, help="Samples per merged unit, at most.")
    parser.add_argument("--shard_max_bytes", type=int, default=512 * 1024 * 1024, help="Bytes per merged unit.")
    _add_progress(parser)
    try:
        args, beam_args = parser.parse_known_args(argv)
        from beam_pipelines.flags import BY_NAME

        misplaced = [a.split("=", 1)[0] for a in beam_args if a.split("=", 1)[0].lstrip("-") in BY_NAME]
        if misplaced:
            raise UsageError(
                f"{', '.join(misplaced)}: an option of run and refresh; compact takes --output, --shard_max_samples, "
                "--shard_max_bytes and Beam's options"
            )
        from beam_pipelines import launcher

        options = launcher.parse([*beam_args, f"--output={args.output}", f"--progress={args.progress}"])
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
    parser = Parser(prog="vgr-etl gc", description="Delete all but the newest N versions and what no kept one lists.")
    parser.add_argument("--output", required=True, help="The output directory (local or gs://).")
    parser.add_argument("--keep", type=int, required=True, help="Versions to keep, the current one included.")
    try:
        args = parser.parse_args(argv)
        from beam_pipelines.versioning.maintenance import collect_garbage

        result = collect_garbage(args.output, args.keep)
    except Exception as exc:
        return _fail("gc", exc)
    print(json.dumps(result))
    return 0


def _files_command(argv: list[str]) -> int:
    parser = Parser(
        prog="vgr-etl files",
        description="The current version's files of one kind, one per line (what readers should load).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", required=True, help="The output directory (local or gs://).")
    parser.add_argument("--kind", default="parquet_samples", choices=DATASET_KINDS)
    try:
        args = parser.parse_args(argv)
        from beam_pipelines.versioning.manifest import data_files

        paths = data_files(args.output, args.kind)
    except Exception as exc:
        return _fail("files", exc)
    print("\n".join(paths))
    return 0


def _demo_command(argv: list[str]) -> int:
    parser = Parser(
        prog="vgr-etl demo", description="Generate the demo dataset and run every source on it.", epilog=BEAM_HELP
    )
    parser.add_argument("--output", required=True, help="Directory for the demo data and outputs.")
    try:
        args, beam_args = parser.parse_known_args(argv)
    except UsageError as exc:
        return _fail("demo", exc)
    from beam_pipelines.demo.run import run_demo

    return run_demo(args.output, beam_args)


def _stage_images_command(argv: list[str]) -> int:
    parser = Parser(
        prog="vgr-etl stage-images",
        description="Unpack the upstream image archives (tars, zips, split zips) into an image root, local or gs://.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--archive", action="append", required=True, help="Archive file or glob, local or gs://.")
    parser.add_argument("--dest", required=True, help="Image root to unpack into (directory or gs:// prefix).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Parallel worker processes.")
    parser.add_argument("--report", help="Also write the JSON report to this path (local or gs://).")
    _add_progress(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail("stage-images", exc)
    from beam_pipelines import archives

    return archives.main(args)


@dataclass(frozen=True)
class Command:
    summary: str
    handler: Callable[[list[str]], int]


RUN = "Build a new version of the output dataset from every input record."
REFRESH = "Add the input records not yet in the current version, as a new version (same options as run)."
COMMANDS: dict[str, Command] = {
    "run": Command(RUN, _pipeline_command("run", RUN)),
    "refresh": Command(REFRESH, _pipeline_command("refresh", REFRESH)),
    "compact": Command("Merge small units of the current version into fewer, well-sized ones.", _compact_command),
    "gc": Command("Delete all but the newest N versions.", _gc_command),
    "files": Command("List the current version's files of one kind, for readers.", _files_command),
    "demo": Command("Generate the demo dataset and run every source on it.", _demo_command),
    "stage-images": Command("Unpack the upstream image archives into an image root.", _stage_images_command),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
    return "usage: vgr-etl COMMAND [options]   (vgr-etl COMMAND --help)\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], list(COMMANDS)) if argv else []
        first = f"vgr-etl: unknown command {argv[0]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        print((first + "\n" if argv else "") + usage(), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_launcher()
    return COMMANDS[argv[0]].handler(argv[1:])


def entry() -> int:
    """The `vgr-etl` command: `main`, then the heap frozen, so that the interpreter's last garbage collection on
    the way out does not walk every object a run left (0.4 s after a 2-worker run); nothing is collected then
    anyway."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
