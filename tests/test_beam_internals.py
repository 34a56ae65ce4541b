"""Beam's internal names the package relies on are still there (a Beam upgrade that moves one fails here, by name)."""

from __future__ import annotations

import pytest

from beam_pipelines import beam_internals
from beam_pipelines.beam_internals import BeamInternalsChanged


def test_every_internal_name_is_where_the_package_expects_it():
    assert beam_internals.check() == [], f"Apache Beam {beam_internals.BEAM_VERSION} changed internals"


def test_a_moved_name_fails_with_the_name_and_where_to_adapt():
    with pytest.raises(
        BeamInternalsChanged, match=r"has no apache_beam\.runners\.nowhere\.Runner .*beam_internals\.py"
    ):
        beam_internals._internal("apache_beam.runners.nowhere", "Runner")
    with pytest.raises(BeamInternalsChanged, match=r"FnApiRunner\.gone"):
        beam_internals._internal("apache_beam.runners.portability.fn_api_runner", "FnApiRunner.gone")


def test_the_option_parser_and_the_worker_handlers_are_the_ones_beam_uses():
    from apache_beam.options import pipeline_options
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    assert beam_internals.BeamArgumentParser is pipeline_options._BeamArgumentParser
    assert beam_internals.ExternalWorkerHandler is worker_handlers.ExternalWorkerHandler
    parser = beam_internals.BeamArgumentParser()
    parser.add_argument("--x")
    assert "--x" in [s for a in beam_internals.parser_actions(parser) for s in a.option_strings]
