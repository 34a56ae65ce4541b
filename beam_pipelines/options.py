"""`VgrEtlOptions`: the flags of `flags.OPTIONS` as Beam `PipelineOptions`, the single source of configuration.

The same class drives the command line, tests and the Dataflow template's parameters; Beam's own flags (`--runner`,
worker counts, Google Cloud options) pass through unchanged, and anything neither knows is an error
(`stray_arguments`), never dropped.
"""

from __future__ import annotations

from typing import TypeVar

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.beam_internals import BeamArgumentParser
from beam_pipelines.flags import OPTIONS


class VgrEtlOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: BeamArgumentParser) -> None:
        for option in OPTIONS:
            option.add_to(parser)


View = TypeVar("View", bound=PipelineOptions)


class LaunchOptions(PipelineOptions):
    """The options of one launch, with one view per options class. Beam asks for views at every transform it
    applies (hundreds per job graph), and each new view builds an argparse parser and parses every flag again;
    views of one object share their values, so one per class is the same options, at a fraction of the cost."""

    def view_as(self, cls: type[View]) -> View:
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]


def unknown_flags(argv: list[str]) -> list[str]:
    """Arguments no PipelineOptions subclass knows, flags and stray words alike: a typo, or the second file of an
    unquoted glob, must fail loudly, not be dropped with a log line."""
    parser = BeamArgumentParser(allow_abbrev=False)
    seen: set[type] = set()
    stack: list[type] = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(argv)
    return [a.split("=", 1)[0] if a.startswith("--") else a for a in unknown]
