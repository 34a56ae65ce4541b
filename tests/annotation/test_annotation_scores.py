"""Scores on the samples, the first error, and the filters."""

from __future__ import annotations

import pytest

from beam_pipelines.annotation.scores import (
    FIRST_ERROR_DISAGREES,
    VERIFY_BELOW_MIN,
    AnnotationExample,
    attach,
    check_sample,
    first_below,
    label_first_error,
)
from beam_pipelines.records import Provenance, Region, RejectedError, Sample, Step


def prm(labels: str) -> Sample:
    steps = tuple(Step(i, "t", c, {"+": 1, "-": -1}[c]) for i, c in enumerate(labels))
    return Sample("visualprm-a", "visualprm", "s", Provenance("f", 0, "c"), ("a.png",), "q", None, steps=steps)


def test_first_errors():
    assert first_below([0.9, 0.4, 0.2], 0.5) == 1 and first_below([0.9, 0.6], 0.5) == -1
    assert label_first_error(prm("++-+").steps) == 2 and label_first_error(prm("++").steps) == -1


@pytest.mark.parametrize(
    ("labels", "scores", "kept"),
    [
        ("++-", [0.9, 0.8, 0.1], True),
        ("++-", [0.9, 0.1, 0.1], False),
        ("+++", [0.9, 0.8, 0.7], True),
        ("+++", [0.9, 0.8, 0.2], False),
        ("-++", [0.2, 0.9, 0.9], True),
    ],
)
def test_consensus_keeps_a_sample_only_when_the_first_errors_agree(labels, scores, kept):
    sample = attach(AnnotationExample(prm(labels), (), "steps"), [tuple(scores)], 0.5)
    assert [s.prm_score for s in sample.steps] == scores
    if kept:
        assert check_sample(sample, "consensus", "error", None, "error") is sample
        return
    with pytest.raises(RejectedError) as err:
        check_sample(sample, "consensus", "error", None, "error")
    assert err.value.info.check == FIRST_ERROR_DISAGREES and err.value.info.stage == "annotate"
    assert check_sample(sample, "consensus", "warning", None, "error").warnings == (FIRST_ERROR_DISAGREES,)
    assert check_sample(sample, "none", "error", None, "error") is sample


def test_a_region_below_the_minimum_verification_score():
    regions = tuple(Region(i, (0.1, 0.1, 0.5, 0.5), None, True, None, "c") for i in range(2))
    sample = Sample("vgr-a", "vgr", "s", Provenance("f", 0, "c"), ("a.png",), "q", None, regions=regions)
    scored = attach(AnnotationExample(sample, (), "regions"), [(0.8,), (0.3,)], 0.5)
    assert [r.verify_score for r in scored.regions] == [0.8, 0.3]
    with pytest.raises(RejectedError, match=r"region 1 is below --min_verify_score=0\.5"):
        check_sample(scored, "none", "error", 0.5, "error")
    assert check_sample(scored, "none", "error", 0.5, "warning").warnings == (VERIFY_BELOW_MIN,)
    assert check_sample(scored, "none", "error", 0.2, "error") is scored
