"""Agreement with the labels, against numbers worked out by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from beam_pipelines.annotation.agreement import auroc, sample_counters, section, spearman, step_statistics
from beam_pipelines.records import Provenance, Sample, Step


def sample(labels: str, scores: list[float], source: str = "visualprm", subset: str = "s", **step) -> Sample:
    steps = tuple(
        Step(
            i, f"s{i}", "+" if c == "+" else "-" if c == "-" else None, {"+": 1, "-": -1}.get(c, 0), prm_score=v, **step
        )
        for i, (c, v) in enumerate(zip(labels, scores, strict=True))
    )
    return Sample(
        f"{source}-{labels}{scores}", source, subset, Provenance("f", 0, "c"), ("a.png",), "q", None, steps=steps
    )


def test_confusion_accuracy_macro_f1_and_auroc_on_a_small_table():
    # labels + + + - -  with scores .9 .6 .3 .4 .1 at threshold .5: tp 2, fn 1, fp 0, tn 2
    stats = sample_counters(sample("+++--", [0.9, 0.6, 0.3, 0.4, 0.1]), 0.5)
    got = section(dict(stats), 0.5)["steps"]["overall"]
    assert got["confusion"] == {"label+_model+": 2, "label+_model-": 1, "label-_model+": 0, "label-_model-": 2}
    assert got["accuracy"] == 0.8
    # F1(+) = 2·2/(2·2+0+1) = 0.8; F1(-) = 2·2/(2·2+1+0) = 0.8
    assert got["f1_positive"] == 0.8 and got["f1_negative"] == 0.8 and got["macro_f1"] == 0.8
    # pairs (pos, neg): .9>.4 .9>.1 .6>.4 .6>.1 .3<.4 .3>.1 → 5 of 6
    assert got["auroc"] == pytest.approx(5 / 6, abs=1e-6)
    # first error: labels step 3, model step 2 → no match
    assert got["first_error_agreement"] == 0.0 and got["samples"] == 1 and got["steps"] == 5


def test_unmeasured_raw_steps_and_neutral_steps_are_left_out():
    raw = sample("+--", [0.9, 0.2, 0.8], source="visualprm_raw", measured=True)
    tail = raw.steps[2].__class__(
        2, "s2", "-", -1, mc_score=0.0, num_mc_correct=0, num_mc_total=0, measured=False, prm_score=0.8
    )
    raw = Sample(
        raw.sample_id, raw.source, raw.subset, raw.provenance, raw.image_paths, "q", None, steps=(*raw.steps[:2], tail)
    )
    neutral = sample("+ -", [0.9, 0.5, 0.1], source="visualprocessbench")
    stats = sample_counters(raw, 0.5) + sample_counters(neutral, 0.5)
    got = section(dict(stats), 0.5)["steps"]
    assert got["by_source"]["visualprm_raw"]["steps"] == 2 and got["by_source"]["visualprocessbench"]["steps"] == 2
    assert got["overall"]["steps"] == 4 and got["by_subset"]["visualprocessbench:s"]["macro_f1"] == 1.0


def test_auroc_and_spearman_from_binned_counts():
    assert auroc({1: 1}, {0: 1}) == 1.0 and auroc({0: 1}, {1: 1}) == 0.0 and auroc({3: 2}, {3: 2}) == 0.5
    assert auroc({}, {1: 2}) is None
    assert spearman({(0, 0): 1, (1, 1): 1, (2, 2): 1}) == pytest.approx(1.0)
    assert spearman({(0, 2): 1, (1, 1): 1, (2, 0): 1}) == pytest.approx(-1.0)
    assert spearman({(0, 0): 1, (0, 1): 1}) is None


def test_the_raw_forms_scores_correlate_with_their_monte_carlo_estimates():
    steps = tuple(
        Step(i, "s", "+" if mc > 0 else "-", 1 if mc > 0 else -1, mc_score=mc, measured=True, prm_score=p)
        for i, (mc, p) in enumerate([(0.9, 0.95), (0.5, 0.61), (0.25, 0.31), (0.0, 0.05)])
    )
    s = Sample("visualprm_raw-x", "visualprm_raw", "s", Provenance("f", 0, "c"), ("a.png",), "q", None, steps=steps)
    assert (
        step_statistics({k.split("/", 2)[2]: v for k, v in sample_counters(s, 0.5).items() if "/all/" in k})[
            "spearman_mc"
        ]
        == 1.0
    )


def test_nothing_scored_gives_no_statistics():
    got = section(dict(Counter()), 0.5)
    assert got["steps"] is None and got["regions"] is None and got["inference_failed"] == 0
