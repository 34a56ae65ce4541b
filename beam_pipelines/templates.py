"""Dataflow Flex Template support: metadata derived from `VgrEtlOptions` (so neither drifts) and the launcher.

`python -m beam_pipelines.templates > infra/dataflow/metadata.json` regenerates the committed metadata; a test
checks that it still equals what the options class gives. `launch` is what the launcher image runs.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from apache_beam.options.pipeline_options import _BeamArgumentParser

from beam_pipelines.options import VgrEtlOptions

REQUIRED = ("source", "input", "image_root", "output")
LOCAL_ONLY = ("local_worker_start",)
"""Options of the local runner: not template parameters."""
NAME = "vgr-etl"
DESCRIPTION = (
    "Visual-reasoning training data ETL: VGR-SFT, VisualPRM400K and VisualProcessBench records with their images "
    "to sharded Parquet and WebDataset, with dead letters and a run report."
)


def option_actions() -> list[argparse.Action]:
    """The argparse actions of every `VgrEtlOptions` flag, in declaration order."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    VgrEtlOptions._add_argparse_args(parser)
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", *LOCAL_ONLY)]


def _parameter(action: argparse.Action) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": action.dest,
        "label": action.dest.replace("_", " ").capitalize(),
        "helpText": action.help,
        "isOptional": action.dest not in REQUIRED,
    }
    if action.choices:
        param["regexes"] = ["^(" + "|".join(re.escape(str(c)) for c in action.choices) + ")$"]
    elif action.type in (int, float):
        param["regexes"] = ["^[0-9]+$" if action.type is int else r"^[0-9]*\.?[0-9]+$"]
    elif action.nargs == 0:
        param["regexes"] = ["^(true|false)$"]
    return param


COMMANDS = ("run", "refresh")
COMMAND_PARAMETER = {
    "name": "command",
    "label": "Command",
    "helpText": "run: a full new version from every input record; refresh: only what changed since the current "
    "version (scheduled runs).",
    "isOptional": True,
    "regexes": ["^(" + "|".join(COMMANDS) + ")$"],
}


def flex_template_metadata() -> dict[str, Any]:
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "streaming": False,
        "parameters": [COMMAND_PARAMETER, *(_parameter(a) for a in option_actions())],
    }


def launcher_argv(argv: list[str]) -> list[str]:
    """`vgr-etl run|refresh` arguments from the Flex launcher's `--name=value` parameters (`--command` is `launch`'s).

    The launcher passes every parameter with a value, so `--replay_pixels=true|false` becomes the bare flag or
    nothing; a repeatable option (`--input`) takes one pattern per line, since a template parameter is one string
    (a line feed cannot occur in a GCS object name); the runner defaults to Dataflow (the CLI's own default is the
    local runner).
    """
    flags = {a.dest for a in option_actions() if a.nargs == 0}
    repeated = {a.dest for a in option_actions() if isinstance(a, argparse._AppendAction)}
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
    """The launcher's entry: `--command=run|refresh` (default run) picks the CLI command, the rest are options."""
    from beam_pipelines.cli import main

    command = next((a.split("=", 1)[1] for a in argv if a.startswith("--command=")), "run")
    if command not in COMMANDS:
        raise ValueError(f"--command must be one of {', '.join(COMMANDS)}")
    return main([command, *launcher_argv(argv)])


if __name__ == "__main__":
    print(json.dumps(flex_template_metadata(), indent=2))
