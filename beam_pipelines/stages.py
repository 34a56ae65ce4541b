"""The stage contract shared by every per-record transform.

A stage maps an outcome to an outcome: `Sample`s are transformed, `Rejection`s and `Duplicate`s pass
through untouched, so one ordered stream carries every input record to the writers. Expected
failures are `RejectedError`s raised by the pure per-record functions and become `Rejection` values
with the stage, check and message. Anything else is a bug or an environment fault: Beam's exception
handling routes that element to the error handler (the dead-letter output) with its traceback
instead of failing the job.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.error_handling import ErrorHandler

from beam_pipelines.beam_internals import remember_dofn_specs
from beam_pipelines.coders import OutcomeCoder
from beam_pipelines.records import ErrorInfo, Outcome, Provenance, RawRecord, RejectedError, Rejection, Sample

TIMING_NAMESPACE = "vgr_etl.stage_us"
beam.coders.registry.register_coder(Outcome, OutcomeCoder)
remember_dofn_specs()  # in every process that builds or runs the stages: the launcher and each worker


_worked: Counter = Counter()
_worked_lock = threading.Lock()


class StageClock:
    """Microseconds spent in a stage's own work: a Beam counter (for the runner's metrics) and this process's tally,
    which the shard writers hand on to the report (`take_stage_times`), so the job itself can report it.

    Only the work is timed, never a `yield`: in a fused chain the consumer runs inside the yield.
    """

    def __init__(self, stage: str):
        self.stage = stage
        self.counter = Metrics.counter(TIMING_NAMESPACE, stage)

    def __enter__(self) -> StageClock:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        us = int((time.perf_counter() - self.started) * 1e6)
        self.counter.inc(us)
        with _worked_lock:
            _worked[self.stage] += us


@dataclass(frozen=True)
class StageTimes:
    """Microseconds of work per stage that one process did since the last hand-over."""

    us: tuple[tuple[str, int], ...]


def take_stage_times() -> StageTimes:
    """This process's stage tally since the last call, emptied: each microsecond is handed on once."""
    with _worked_lock:
        taken = tuple(sorted(_worked.items()))
        _worked.clear()
    return StageTimes(taken)


class SampleStageFn(beam.DoFn):
    """Applies `apply(sample, *side_inputs)` to samples, passes other outcomes through, turns RejectedError into
    values."""

    stage = ""

    def apply(self, sample: Sample, *side_inputs: Any) -> Sample:
        raise NotImplementedError

    def setup(self) -> None:
        self.clock = StageClock(self.stage)

    def process(self, element: Any, *side_inputs):  # unannotated: Beam would type-check the tuple
        if not isinstance(element, Sample):
            yield element
            return
        with self.clock:
            try:
                out = self.apply(element, *side_inputs)
            except RejectedError as exc:
                out = element.reject(exc.info)
        yield out


def unexpected_error(bad: tuple[Any, tuple[Any, str, list[str]]], stage: str) -> Rejection:
    """A dead-lettered element (element, (type, repr, traceback)) as a rejection with the stage that failed."""
    element, (exc_type, exc_repr, trace) = bad
    name = getattr(exc_type, "__name__", str(exc_type))
    message = f"{name} in stage {stage}: {exc_repr}; at {trace[-2].strip() if len(trace) > 1 else ''}"
    info = ErrorInfo(stage, "unexpected_error", message)
    if isinstance(element, Sample):
        return element.reject(info)
    if isinstance(element, RawRecord):
        line = element.line.decode("utf-8", "backslashreplace") if element.line is not None else None
        return Rejection(element.source, element.provenance, (info,), record=element.record, raw_line=line)
    if isinstance(element, Rejection):
        return element
    provenance = getattr(element, "provenance", Provenance("", -1, "unknown"))
    return Rejection(getattr(element, "source", ""), provenance, (info,), record=None)


def apply_stage(
    pcoll, label: str, fn: beam.DoFn, errors: ErrorHandler, *side_inputs: Any, outputs: type | None = Outcome
):
    """`pcoll | ParDo(fn)` with Beam's dead-letter handling, errors labelled and sent to `errors`; the output
    typed `outputs` (default `Outcome`, whose coder sizes elements without pickling them) unless None."""
    pardo = beam.ParDo(fn, *side_inputs)
    result = pcoll | label >> (pardo.with_output_types(outputs) if outputs else pardo).with_exception_handling()
    errors.add_error_pcollection(result["bad"] | f"{label}Errors" >> beam.Map(unexpected_error, fn.stage or label))
    return result["good"]


class SampleStage(beam.PTransform):
    """A per-record stage as a PTransform: `fn` applied with dead-letter handling, errors sent to `errors`, and
    `side_inputs` (Beam side-input views) handed to each call of `fn.apply`."""

    def __init__(self, fn: SampleStageFn, errors: ErrorHandler, *side_inputs: Any):
        super().__init__()
        self.fn = fn
        self.errors = errors
        self.side_inputs = side_inputs

    def expand(self, outcomes):
        return apply_stage(outcomes, type(self).__name__, self.fn, self.errors, *self.side_inputs)
