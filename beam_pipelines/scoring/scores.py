"""Scores back onto their samples, per-sample summaries, the threshold check and failed batches."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from beam_pipelines.records import ErrorInfo, Outcome, Region, RejectedError, Sample
from beam_pipelines.scoring.batch import SampleScores
from beam_pipelines.scoring.prepare import ScoringExample

STAGE = "score"
BELOW_MIN = "grounding_score_below_min"


def attach(example: ScoringExample, scores: SampleScores | None) -> Outcome:
    """The example's outcome with each region's score and, where computed, its replay features."""
    if scores is None:
        return example.outcome
    sample = example.outcome
    regions = []
    for region, score, features in zip(sample.regions, scores.scores, scores.features, strict=True):
        replay = region.replay if features is None else {**(region.replay or {}), "replay_features": features}
        regions.append(replace(region, grounding_score=score, replay=replay))
    return replace(sample, regions=tuple(regions))


def summary(regions: tuple[Region, ...]) -> tuple[float, float] | None:
    """(min, mean) of the regions' grounding scores; None when the sample has no scored region."""
    scores = [r.grounding_score for r in regions if r.grounding_score is not None]
    if not scores:
        return None
    return min(scores), math.fsum(scores) / len(scores)


def check_threshold(sample: Sample, min_score: float, severity: str) -> Sample:
    """Below `min_score`: a rejection (severity error, raised) or the `grounding_score_below_min` warning."""
    stats = summary(sample.regions)
    if stats is None or stats[0] >= min_score:
        return sample
    worst = min((r for r in sample.regions if r.grounding_score is not None), key=lambda r: r.grounding_score)
    message = (
        f"grounding score {stats[0]:.4f} of region {worst.region_index} is below "
        f"--min_grounding_score={min_score} (sample mean {stats[1]:.4f})"
    )
    if severity == "error":
        raise RejectedError(STAGE, BELOW_MIN, message)
    return replace(sample, warnings=(*sample.warnings, BELOW_MIN))


def failed_batch(bad: tuple[list[tuple[str, ScoringExample]], tuple[Any, str, list[str]]]) -> list[Outcome]:
    """A batch RunInference dead-lettered: its samples rejected with the exception, the rest unchanged."""
    batch, (exc_type, exc_repr, _) = bad
    name = getattr(exc_type, "__name__", str(exc_type))
    info = ErrorInfo(STAGE, "inference_failed", f"{name}: {exc_repr}")
    return [e.outcome.reject(info) if e.inputs is not None else e.outcome for _, e in batch]
