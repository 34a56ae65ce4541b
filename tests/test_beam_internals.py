"""Beam's internal names the package relies on are still there (a Beam upgrade that moves one fails here, by name)."""

from __future__ import annotations

import gc

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer

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


SEEN = BagStateSpec("seen", VarIntCoder())
FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)
SEEN_STATE, FLUSH_TIMER = beam.DoFn.StateParam(SEEN), beam.DoFn.TimerParam(FLUSH)
SAME_NAME = (beam.DoFn.StateParam(BagStateSpec("same", VarIntCoder())),) * 2


class _Stateful(beam.DoFn):
    """A DoFn with one state and one timer parameter: what `get_dofn_specs` finds among its methods' defaults."""

    def process(self, element, seen=SEEN_STATE, flush=FLUSH_TIMER):
        seen.add(element[1])
        flush.set(0)

    @on_timer(FLUSH)
    def flushed(self, key=beam.DoFn.KeyParam, seen=SEEN_STATE):
        yield key, sorted(seen.read())


BEAMS_OWN = beam_internals.INSPECT_DOFN_SPECS


def _counting_inspections(monkeypatch) -> list:
    """Every DoFn the package has Beam inspect from now on in this test."""
    inspected = []

    def inspect(dofn):
        inspected.append(dofn)
        return BEAMS_OWN(dofn)

    monkeypatch.setattr(beam_internals, "INSPECT_DOFN_SPECS", inspect)
    return inspected


def test_remembered_specs_are_beams_own_and_inspected_once_per_kind_of_dofn(monkeypatch):
    inspected = _counting_inspections(monkeypatch)
    for make in (_Stateful, lambda: beam.Map(str).fn, lambda: beam.Map(lambda x: x).fn):
        first, second = make(), make()
        specs = beam_internals.remembered_dofn_specs(first)
        assert specs == BEAMS_OWN(first)
        specs[0].clear()  # a caller's copy: changing it changes nothing remembered
        before = len(inspected)
        assert beam_internals.remembered_dofn_specs(second) == BEAMS_OWN(second)
        assert len(inspected) == before, "another object of the same kind: not inspected again"
    assert {s.name for s in beam_internals.remembered_dofn_specs(_Stateful())[0]} == {"seen"}
    assert {t.name for t in beam_internals.remembered_dofn_specs(_Stateful())[1]} == {"ts-flush"}


def test_a_dofn_holding_a_bound_method_is_remembered_by_identity_and_forgotten_with_it(monkeypatch):
    inspected = _counting_inspections(monkeypatch)
    dofn = beam.FlatMap(_WithState().process).fn  # its `process` is a bound method with a state parameter
    specs = beam_internals.remembered_dofn_specs(dofn)
    assert specs == BEAMS_OWN(dofn) and {s.name for s in specs[0]} == {"seen"}
    assert beam_internals.remembered_dofn_specs(dofn) == specs and len(inspected) == 1, "inspected once"
    assert beam_internals.remembered_dofn_specs(beam.FlatMap(str).fn) == (set(), set()), "not the other's specs"
    key = id(dofn)
    assert key in beam_internals._specs
    del dofn
    inspected.clear()
    gc.collect()
    assert key not in beam_internals._specs, "forgotten with its DoFn"


class _WithState:
    def process(self, element, seen=SEEN_STATE):
        yield element


def test_the_stages_install_the_remembered_specs_and_stateful_dofns_still_run():
    import beam_pipelines.stages  # noqa: F401  (installs it, as in every process that runs the stages)

    assert userstate.get_dofn_specs is beam_internals.remembered_dofn_specs
    assert beam_internals.check() == []
    with pytest.raises(ValueError, match="duplicate process method parameters"):
        beam.ParDo(_TwoStatesOfOneName())
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create([("a", 2), ("a", 1), ("b", 3)]) | beam.ParDo(_Stateful())
        assert_that(out, equal_to([("a", [1, 2]), ("b", [3])]))


class _TwoStatesOfOneName(beam.DoFn):
    def process(self, element, one=SAME_NAME[0], two=SAME_NAME[1]):
        yield element
