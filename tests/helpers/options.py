"""The argparse actions `VgrEtlOptions` registers: what the command line parses, to compare with what is derived."""

from __future__ import annotations

import argparse

from beam_pipelines.beam_internals import BeamArgumentParser, parser_actions
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.templates import template_options


def option_actions() -> list[argparse.Action]:
    """The argparse actions of every template parameter, in declaration order."""
    parser = BeamArgumentParser(allow_abbrev=False)
    VgrEtlOptions._add_argparse_args(parser)
    names = {o.name for o in template_options()}
    return [a for a in parser_actions(parser) if a.option_strings and a.dest in names]
