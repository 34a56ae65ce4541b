"""Attaching scores, the per-sample summary, the threshold check and failed batches: pure functions."""

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from beam_pipelines.records import (
    Duplicate,
    EncodedImage,
    LoadedImage,
    Provenance,
    Region,
    RejectedError,
    Rejection,
    Sample,
)
from beam_pipelines.scoring.batch import SampleScores
from beam_pipelines.scoring.prepare import RegionInputs, ScoringExample
from beam_pipelines.scoring.scores import BELOW_MIN, attach, check_threshold, failed_batch, summary
from beam_pipelines.sinks.counters import grounding, outcome_stats

PROV = Provenance("in.jsonl", 3, "chunk")


def _sample(*scores: float | None) -> Sample:
    regions = tuple(
        Region(i, (0, 0, 1, 1), (0, 0, 1, 1), False, None, "ctx", replay={"replay_token_count": 4}, grounding_score=s)
        for i, s in enumerate(scores)
    )
    return Sample("vgr-x", "vgr", "s", PROV, ("a.png",), "q", "a", regions=regions, warnings=("w",))


def test_attach_puts_scores_and_features_on_their_regions():
    feats = np.ones((4, 8), np.float16)
    out = attach(ScoringExample(_sample(None, None)), SampleScores((0.25, -0.5), (None, feats)))
    assert [r.grounding_score for r in out.regions] == [0.25, -0.5]
    assert "replay_features" not in out.regions[0].replay
    assert out.regions[1].replay["replay_features"] is feats and out.regions[1].replay["replay_token_count"] == 4
    passthrough = Rejection("vgr", PROV, ())
    assert attach(ScoringExample(passthrough), None) is passthrough


def test_summary_is_min_and_mean_of_scored_regions():
    assert summary(_sample(0.5, 0.1, 0.3).regions) == pytest.approx((0.1, 0.3))
    assert summary(_sample().regions) is None and summary(_sample(None).regions) is None


def test_threshold_error_rejects_with_the_value():
    with pytest.raises(RejectedError) as exc:
        check_threshold(_sample(0.5, 0.1), 0.2, "error")
    info = exc.value.info
    assert (info.stage, info.check) == ("score", BELOW_MIN)
    assert "0.1000 of region 1" in info.message and "0.2" in info.message


def test_threshold_warning_keeps_the_sample_flagged():
    out = check_threshold(_sample(0.5, 0.1), 0.2, "warning")
    assert out.warnings == ("w", BELOW_MIN) and out.regions == _sample(0.5, 0.1).regions


def test_threshold_passes_samples_at_or_above_the_minimum_and_unscored_ones():
    for sample in (_sample(0.2, 0.9), _sample()):
        assert check_threshold(sample, 0.2, "error") is sample


def test_failed_batch_rejects_its_samples_and_keeps_the_rest():
    sample = _sample(None)
    inputs = RegionInputs(np.zeros((1, 2, 2, 3), np.uint8), np.zeros((1, 2), np.int64), np.ones((1, 2), np.int64))
    rejection, duplicate = Rejection("vgr", PROV, ()), Duplicate("vgr", PROV, "vgr-y", PROV)
    bad = (
        [("vgr-x", ScoringExample(sample, inputs)), ("r", ScoringExample(rejection)), ("d", ScoringExample(duplicate))],
        (IndexError, "IndexError('index out of range in self')", ["trace"]),
    )
    out = failed_batch(bad)
    assert out[1] is rejection and out[2] is duplicate
    assert out[0].sample_id == "vgr-x" and out[0].errors[0].check == "inference_failed"
    assert out[0].errors[0].message.startswith("IndexError: ")


def test_report_counters_give_the_grounding_summary():
    image = LoadedImage("a.png", "a.png", "as_written", EncodedImage(b"", "png", 4, 4), "PNG")
    stats = Counter()
    for sample in (_sample(0.5, 0.1), _sample(0.3), _sample(None)):
        stats.update(outcome_stats(replace(sample, images=(image,))))
    stats.update({"check/grounding_score_below_min": 2, "warning/grounding_score_below_min": 1})
    assert grounding(stats) == {
        "samples_scored": 2,
        "regions_scored": 3,
        "mean_region_score": 0.3,
        "below_min_rejected": 2,
        "below_min_flagged": 1,
        "inference_failed": 0,
    }
    assert grounding(Counter())["mean_region_score"] is None
