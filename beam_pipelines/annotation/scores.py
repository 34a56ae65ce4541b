"""Scores back onto their samples, the per-sample summaries, the filters, and failed batches."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from beam_pipelines.annotation.encode import STAGE, Sequence
from beam_pipelines.records import ErrorInfo, Outcome, RejectedError, Sample, Step

FIRST_ERROR_DISAGREES = "prm_first_error_disagrees"
VERIFY_BELOW_MIN = "verify_score_below_min"


@dataclass(frozen=True)
class AnnotationExample:
    """One outcome on its way through RunInference; samples to score carry their sequences (`kind`: steps: one
    sequence for the whole solution; regions: one per region)."""

    outcome: Outcome
    sequences: tuple[Sequence, ...] = ()
    kind: str = ""


def first_below(scores: list[float], threshold: float) -> int:
    """The first index whose score is below the threshold, -1 if none: the model's first error."""
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def label_first_error(steps: tuple[Step, ...]) -> int:
    """The first step the data labels wrong (`-`, correctness -1), -1 if none: neutral steps are not errors."""
    return next((s.index for s in steps if s.correctness == -1), -1)


def attach(example: AnnotationExample, scores: list[tuple[float, ...]] | None, threshold: float) -> Outcome:
    """The example's sample with its step or region scores and, for steps, the model's first error."""
    if scores is None or not isinstance(example.outcome, Sample):
        return example.outcome
    sample = example.outcome
    if example.kind == "steps":
        step_scores = list(scores[0])
        steps = tuple(replace(s, prm_score=v) for s, v in zip(sample.steps, step_scores, strict=True))
        return replace(sample, steps=steps, prm_first_error=first_below(step_scores, threshold))
    regions = tuple(replace(r, verify_score=s[0]) for r, s in zip(sample.regions, scores, strict=True))
    return replace(sample, regions=regions)


def step_summary(sample: Sample) -> tuple[float, float] | None:
    """(mean, min) of the sample's step scores; None when no step is scored."""
    scores = [s.prm_score for s in sample.steps if s.prm_score is not None]
    return (math.fsum(scores) / len(scores), min(scores)) if scores else None


def region_summary(sample: Sample) -> tuple[float, float] | None:
    """(min, mean) of the sample's region verification scores; None when no region is scored."""
    scores = [r.verify_score for r in sample.regions if r.verify_score is not None]
    return (min(scores), math.fsum(scores) / len(scores)) if scores else None


def _verdict(sample: Sample, check: str, message: str, severity: str) -> Sample:
    if severity == "error":
        raise RejectedError(STAGE, check, message)
    return replace(sample, warnings=(*sample.warnings, check))


def check_sample(sample: Sample, prm_filter: str, prm_severity: str, min_verify: float | None, verify_severity: str):
    """The filters: consensus on the first error (PRM), the minimum verification score (regions)."""
    if prm_filter == "consensus" and sample.prm_first_error is not None:
        labels = label_first_error(sample.steps)
        if labels != sample.prm_first_error:
            message = (
                f"the model's first error is step {sample.prm_first_error}, the labels' step {labels} "
                "(-1: none); --prm_filter consensus keeps only samples where they agree"
            )
            sample = _verdict(sample, FIRST_ERROR_DISAGREES, message, prm_severity)
    summary = region_summary(sample)
    if min_verify is not None and summary is not None and summary[0] < min_verify:
        worst = min((r for r in sample.regions if r.verify_score is not None), key=lambda r: r.verify_score)
        message = (
            f"verification score {summary[0]:.4f} of region {worst.region_index} is below "
            f"--min_verify_score={min_verify} (sample mean {summary[1]:.4f})"
        )
        sample = _verdict(sample, VERIFY_BELOW_MIN, message, verify_severity)
    return sample


def failed_batch(bad: tuple[list[tuple[str, AnnotationExample]], tuple[Any, str, list[str]]]) -> list[Outcome]:
    """A batch RunInference dead-lettered: its samples rejected with the exception, the rest unchanged."""
    batch, (exc_type, exc_repr, _) = bad
    name = getattr(exc_type, "__name__", str(exc_type))
    info = ErrorInfo(STAGE, "inference_failed", f"annotation model: {name}: {exc_repr}")
    return [e.outcome.reject(info) if e.sequences else e.outcome for _, e in batch]
