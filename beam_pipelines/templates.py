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

NAME = "vgr-etl"
DESCRIPTION = (
    "Visual-reasoning training data ETL: VGR-SFT, VisualPRM400K and VisualProcessBench records with their images "
    "to sharded Parquet and WebDataset, with dead letters and a run report."
)
COMMAND_PARAMETER = {
    "name": "command",
    "label": "Command",
    "helpText": "run: a full new version from every input record; refresh: only what changed since the current "
    "version (scheduled runs).",
    "isOptional": True,
    "regexes": ["^(" + "|".join(launcher.COMMANDS) + ")$"],
}


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
        "isOptional": not option.required,
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
        "parameters": [COMMAND_PARAMETER, *(_parameter(o) for o in template_options())],
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
        if name == "--command":
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
    """The launcher's entry: `--command=run|refresh` (default run) picks the command, the rest are options.

    The job is submitted and not waited for (it writes its report and publishes itself); 2 when it cannot be."""
    command = next((a.split("=", 1)[1] for a in argv if a.startswith("--command=")), "run")
    try:
        report = launcher.run(launcher.parse(launcher_argv(argv)), command)
    except Exception as exc:
        print(
            f"vgr-etl: {command} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            file=sys.stderr,
        )
        return 2
    if report is not None:  # a refresh with nothing to do runs no job
        print(report.summary(report.config.get("output", "")))
        return 1 if report.failure() else 0
    print("vgr-etl: job built or submitted without waiting (dry run, template or Flex Template launch)")
    return 0


if __name__ == "__main__":
    print(json.dumps(flex_template_metadata(), indent=2))
