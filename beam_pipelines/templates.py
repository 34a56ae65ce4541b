"""Dataflow Flex Template support: the metadata derived from `options.OPTIONS` (so neither drifts), and the
launcher's entry point.

`python -m beam_pipelines.templates > infra/dataflow/metadata.json` regenerates the committed metadata; a test
checks that it still equals what the declarations give. `launch` is what the launcher image runs: it plans the
version, submits the job and returns; the job writes the report and publishes.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from beam_pipelines import launcher
from beam_pipelines.flags import OPTIONS, Option
from beam_pipelines.options import VgrEtlOptions

NAME = "vgr-etl"
DESCRIPTION = (
    "Visual-reasoning training data ETL: VGR-SFT, VisualPRM400K and VisualProcessBench records with their images "
    "to sharded Parquet and WebDataset, with dead letters and a run report."
)
MAINTENANCE = ("compact", "gc")
COMMAND_PARAMETER = {
    "name": "command",
    "label": "Command",
    "helpText": "run: a full new version from every input record; refresh: only what changed since the current "
    "version (scheduled runs); compact: merge small units into units of up to chunk_rows samples and "
    "shard_max_bytes bytes; gc: delete all but the newest keep_versions versions.",
    "isOptional": True,
    "regexes": ["^(" + "|".join((*launcher.COMMANDS, *MAINTENANCE)) + ")$"],
}
KEEP_PARAMETER = {
    "name": "keep_versions",
    "label": "Keep versions",
    "helpText": "gc only: the versions to keep, the current one included.",
    "isOptional": True,
    "regexes": ["^[1-9][0-9]*$"],
}
EVERY_COMMAND = ("output",)
"""The only option every command needs: the template marks the others that run and refresh require as optional,
since compact and gc launch without them (the launcher still refuses a run or refresh that lacks one)."""
COMPACT_OPTIONS = ("output", "chunk_rows", "shard_max_bytes")


def template_options() -> list[Option]:
    """The options that are template parameters: all but the local runner's."""
    return [o for o in OPTIONS if not o.local_only]


def _regexes(option: Option) -> list[str] | None:
    choices = option.choice_list()
    if choices:
        return ["^(" + "|".join(re.escape(str(c)) for c in choices) + ")$"]
    if option.type is int:
        return ["^[0-9]+$"]
    if option.type is float:
        return [r"^[0-9]*\.?[0-9]+$"]
    if option.type is bool:
        return ["^(true|false)$"]
    return None


def _parameter(option: Option) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": option.name,
        "label": option.name.replace("_", " ").capitalize(),
        "helpText": option.full_help(),
        "isOptional": not option.required or option.name not in EVERY_COMMAND,
    }
    regexes = _regexes(option)
    if regexes:
        param["regexes"] = regexes
    return param


def flex_template_metadata() -> dict[str, Any]:
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "streaming": False,
        "parameters": [COMMAND_PARAMETER, *(_parameter(o) for o in template_options()), KEEP_PARAMETER],
    }


def launcher_argv(argv: list[str]) -> list[str]:
    """`vgr-etl run|refresh` arguments from the Flex launcher's `--name=value` parameters (`--command` is `launch`'s).

    The launcher passes every parameter with a value, so `--replay_pixels=true|false` becomes the bare flag or
    nothing; a repeatable option (`--input`) takes one pattern per line, since a template parameter is one string
    (a line feed cannot occur in a GCS object name); the runner defaults to Dataflow (the CLI's own default is the
    local runner).
    """
    flags = {o.name for o in template_options() if o.type is bool}
    repeated = {o.name for o in template_options() if o.repeatable}
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in ("--command", "--keep_versions"):
            continue
        if eq and name.lstrip("-") in flags:
            if value.lower() == "true":
                out.append(name)
            continue
        if eq and name.lstrip("-") in repeated:
            out.extend(f"{name}={item.strip()}" for item in value.split("\n") if item.strip())
            continue
        out.append(arg)
    if not any(a == "--runner" or a.startswith("--runner=") for a in out):
        out.append("--runner=DataflowRunner")
    return out


def launch(argv: list[str]) -> int:
    """The launcher's entry: `--command=run|refresh|compact|gc` (default run) picks the command, the rest are
    options; compact takes output, chunk_rows and shard_max_bytes, gc output and keep_versions, both Beam's options.

    Every command submits a job and does not wait for it (it writes its report and publishes itself; gc deletes);
    2 when it cannot be submitted."""
    command = _value(argv, "command") or "run"
    try:
        args = launcher_argv(argv)
        if command == "gc":
            _only(args, ("output",), command)
            done = launcher.gc_job(launcher.parse(args), int(_value(argv, "keep_versions") or 0))
            if done is not None:
                print(f"vgr-etl: gc: {json.dumps(done)}")
                return 0
            report = None
        elif command == "compact":
            _only(args, COMPACT_OPTIONS, command)
            o = launcher.parse(args).view_as(VgrEtlOptions)
            report = launcher.compact(o, o.chunk_rows, o.shard_max_bytes)
        else:
            report = launcher.run(launcher.parse(args), command)
    except Exception as exc:
        print(
            f"vgr-etl: {command} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            file=sys.stderr,
        )
        return 2
    if report is not None:
        print(report.summary(report.config.get("output", "")))
        return 1 if report.failure() else 0
    print(f"vgr-etl: {command}: job built or submitted without waiting (dry run, template or Flex Template launch)")
    return 0


def _value(argv: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")), None)


def _only(args: list[str], allowed: tuple[str, ...], command: str) -> None:
    """A vgr-etl option other than `allowed` given to `command` is a mistake (a parameter copied from a refresh)."""
    ours = {o.name for o in template_options()}
    extra = [a.split("=", 1)[0] for a in args if a.split("=", 1)[0].lstrip("-") in ours - set(allowed)]
    if extra:
        raise ValueError(f"{', '.join(extra)}: not a parameter of {command}, which takes {', '.join(allowed)}")


if __name__ == "__main__":
    print(json.dumps(flex_template_metadata(), indent=2))
