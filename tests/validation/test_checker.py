"""Every shipped expectation, violated by one sample: rejected with its name (error) or flagged (warning)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import replace

import pytest

from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Rejection, Sample
from beam_pipelines.sources.dataset import IMAGES, RECORDS
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation import checker as checker_module
from beam_pipelines.validation.boxes import normalise_boxes
from beam_pipelines.validation.checker import SuiteChecker, configurations_remembered, great_expectations
from beam_pipelines.validation.suites import expectation_infos, load_suites

PROV = Provenance("in.jsonl", 0, "c0")
SUITES = load_suites()
INFOS = expectation_infos(SUITES)
BOX = "<SOT>[0.1, 0.1, 0.5, 0.5]<EOT><image>"


def vgr(gpt: str = f"<think> The bar {BOX} is tall. </think> Final answer: 3", turns=None) -> dict:
    convs = turns or [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}]
    return {"image": "coco/a.jpg", "conversations": convs}


def box(b: str) -> dict:
    return vgr(f"<think> The bar <SOT>{b}<EOT><image> is tall. </think> Final answer: 3")


def conv(labels=("+", "-"), first="### Question:\nFind m.\n\n### Solution Process:\nStep zero.", system=True) -> dict:
    turns = [{"from": "system", "value": "You are a PRM."}] if system else []
    for i, label in enumerate(labels):
        turns += [{"from": "human", "value": first if i == 0 else f"Step {i}."}, {"from": "gpt", "value": label}]
    return {"id": -1, "image": "Geo/a.png", "conversations": turns}


def blank_step(record: dict) -> dict:
    """The conversation with its second step's text blank."""
    turns = [dict(t) for t in record["conversations"]]
    turns[3]["value"] = "  "
    return dict(record, conversations=turns)


def step(score=0.5, correct=8, total=16, text="s") -> dict:
    return {"step": text, "score": score, "num_mc_correct": correct, "num_mc_total": total}


def raw(steps=None, sequences=16) -> dict:
    steps = [step(), step(0.0, 0, 16), step(0.0, 0, 0)] if steps is None else steps
    return {
        "image": "Geo/a.png",
        "question": "<image>\nQ",
        "question_orig": "Q",
        "answer": "3",
        "response": "r",
        "num_mc_sequences": sequences,
        "steps_with_score": steps,
    }


def vpb(steps=("a", "b"), labels=(1, -1)) -> dict:
    return {
        "image": ["images/DynaMath/1.png"],
        "question": "Q",
        "answer": "5",
        "response": {"steps": list(steps), "process_correctness": list(labels)},
        "data_source": "DynaMath",
    }


# expectation name -> (source, record, image (width, height, format[, EXIF orientation]), box units)
CASES = {
    "regions_per_sample": ("vgr", vgr(" ".join([BOX] * 65) + " Final answer: 1"), None, "normalized"),
    "has_regions": ("vgr", vgr("<think> no boxes </think> Final answer: 3"), None, "normalized"),
    "replay_marker_per_region": ("vgr", vgr("<SOT>[0.1,0.1,0.5,0.5]<EOT> x Final answer: 3"), None, "normalized"),
    "no_orphan_tags": ("vgr", vgr(f"a <SOT> b {BOX} Final answer: 3"), None, "normalized"),
    "no_stray_image_markers": ("vgr", vgr(f"a <image> b {BOX} Final answer: 3"), None, "normalized"),
    "think_balanced": ("vgr", vgr(f"<think> a {BOX} Final answer: 3"), None, "normalized"),
    "has_final_answer": ("vgr", vgr(f"<think> a {BOX} </think> 3"), None, "normalized"),
    "single_human_gpt_exchange": (
        "vgr",
        vgr(turns=[{"from": "human", "value": "Q"}, {"from": "gpt", "value": f"{BOX} Final answer: 1"}] * 2),
        None,
        "normalized",
    ),
    "box_finite": ("vgr", box("[NaN, 0.1, 0.5, 0.5]"), None, "normalized"),
    "x1_in_unit_range": ("vgr", box("[-0.1, 0.1, 0.5, 0.5]"), None, "normalized"),
    "y1_in_unit_range": ("vgr", box("[0.1, -0.1, 0.5, 0.5]"), None, "normalized"),
    "x2_in_unit_range": ("vgr", box("[0.1, 0.1, 1.2, 0.5]"), None, "normalized"),
    "y2_in_unit_range": ("vgr", box("[0.1, 0.1, 0.5, 1.5]"), None, "normalized"),
    "x1_before_x2": ("vgr", box("[0.5, 0.1, 0.2, 0.5]"), None, "normalized"),
    "y1_before_y2": ("vgr", box("[0.1, 0.5, 0.5, 0.2]"), None, "normalized"),
    "box_left_inside_image": ("vgr", box("[-3, 0, 50, 50]"), None, "pixels"),
    "box_top_inside_image": ("vgr", box("[0, -3, 50, 50]"), None, "pixels"),
    "box_right_inside_image": ("vgr", box("[0, 0, 101, 50]"), None, "pixels"),
    "box_bottom_inside_image": ("vgr", box("[0, 0, 50, 81]"), None, "pixels"),
    "min_region_width": ("vgr", box("[0.5, 0.1, 0.505, 0.5]"), None, "normalized"),
    "min_region_height": ("vgr", box("[0.1, 0.5, 0.5, 0.505]"), None, "normalized"),
    "image_min_side": ("vgr", vgr(), (100, 10, "JPEG"), "normalized"),
    "image_aspect_ratio": ("visualprm", conv(), (2100, 100, "PNG"), "normalized"),
    "image_format": ("visualprm", conv(), (100, 80, "PCX"), "normalized"),
    "no_exif_rotation": ("vgr", vgr(), (100, 80, "JPEG", 6), "normalized"),
    "turn_alternation": ("visualprm", conv(system=False), None, "normalized"),
    "question_template": ("visualprm", conv(first="Find m. Step zero."), None, "normalized"),
    "no_text_before_question": (
        "visualprm",
        conv(first="Intro.\n### Question:\nFind m.\n\n### Solution Process:\nStep zero."),
        None,
        "normalized",
    ),
    "prm_steps_per_sample": ("visualprm", conv(labels=("+",) * 13), None, "normalized"),
    "step_label_in_set": ("visualprm", conv(labels=("+", "maybe")), None, "normalized"),
    "label_matches_score_rule": ("visualprm", conv(labels=("+", "-")), None, "normalized"),
    "label_reference_found": ("visualprm", conv(), None, "normalized"),
    "raw_steps_per_sample": ("visualprm_raw", raw(steps=[]), None, "normalized"),
    "mc_score_in_unit_range": ("visualprm_raw", raw([step(1.5, 16, 16)]), None, "normalized"),
    "mc_correct_le_total": ("visualprm_raw", raw([step(1.0, 17, 16)]), None, "normalized"),
    "mc_total_is_sequences": ("visualprm_raw", raw([step(0.5, 4, 8)]), None, "normalized"),
    "mc_score_matches_counts": ("visualprm_raw", raw([step(0.75, 4, 16)]), None, "normalized"),
    "mc_early_stop_tail": ("visualprm_raw", raw([step(0.0, 0, 0), step(0.5, 8, 16)]), None, "normalized"),
    "vpb_labels_match_steps": ("visualprocessbench", vpb(labels=(1,)), None, "normalized"),
    "vpb_steps_per_sample": ("visualprocessbench", vpb(steps=(), labels=()), None, "normalized"),
    "vpb_correctness_in_set": ("visualprocessbench", vpb(labels=(1, True)), None, "normalized"),
    "prm_step_text_present": ("visualprm", blank_step(conv()), None, "normalized"),
    "raw_step_text_present": ("visualprm_raw", raw([step(0.5, 8, 16, text=" \n")]), None, "normalized"),
    "vpb_step_text_present": ("visualprocessbench", vpb(steps=("a", "")), None, "normalized"),
}


# facts the pipeline attaches before validation: the Raw form's labels (`--label_reference`)
FACTS = {
    "label_matches_score_rule": {"label_reference_found": True, "official_labels": ["+", "+"]},
    "label_reference_found": {"label_reference_found": False},
}


def sample_of(source: str, record: dict, image=None, facts=None) -> Sample:
    width, height, fmt, orientation = (*(image or (100, 80, "JPEG")), 1)[:4]
    sample = dataset_named(source).parse(record, PROV)
    encoded = EncodedImage(b"\xff" * 10, "jpg", width, height)
    images = (LoadedImage("a", "/r/a", "as_written", encoded, fmt, orientation),)
    return replace(sample, images=images, facts={**sample.facts, **(facts or {})})


def check(samples: list[Sample], units: str = "normalized") -> tuple[list, Counter]:
    """Both phases, as the pipeline applies them: record suites, then image suites on the survivors."""
    dataset = dataset_named(samples[0].source)
    outcomes, stats = SuiteChecker(SUITES, RECORDS, units, dataset).check(samples)
    survivors = [o for o in outcomes if isinstance(o, Sample)]
    checker = SuiteChecker(SUITES, IMAGES, units, dataset)
    checked, image_stats = checker.check([normalise_boxes(s, units) for s in survivors])
    merged = iter(checked)
    return [o if isinstance(o, Rejection) else next(merged) for o in outcomes], stats + image_stats


def test_every_shipped_expectation_has_a_violating_case():
    assert set(CASES) == set(INFOS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_violation_is_routed_by_severity(name):
    source, record, image, units = CASES[name]
    [outcome], _ = check([sample_of(source, record, image, FACTS.get(name))], units)
    if INFOS[name].severity == "error":
        assert isinstance(outcome, Rejection), name
        errors = {e.check: e for e in outcome.errors}
        assert name in errors, [e.check for e in outcome.errors]
        error = errors[name]
        assert (error.stage, error.suite, error.column) == ("validate", INFOS[name].suite, INFOS[name].column)
        assert error.value is not None and INFOS[name].suite in error.message
    else:
        assert isinstance(outcome, Sample) and name in outcome.warnings, name


@pytest.mark.parametrize("source", ["vgr", "visualprm", "visualprm_raw", "visualprocessbench"])
def test_clean_records_pass_every_suite(source):
    record = {"vgr": vgr(), "visualprm": conv(), "visualprm_raw": raw(), "visualprocessbench": vpb()}[source]
    [outcome], _ = check([sample_of(source, record)])
    assert isinstance(outcome, Sample) and outcome.warnings == ()


@pytest.mark.parametrize(
    "steps, failed",
    [
        ([step(0.5, 0, 0), step(0.0, 0, 0)], "mc_score_matches_counts"),  # not rolled out, yet scored
        ([step(0.25, 0, 16)], "mc_score_matches_counts"),  # a whole number of rollouts, but not the counted one
        ([step(0.5, 8, 16), step(0.0, 0, 0), step(0.0625, 1, 16)], "mc_early_stop_tail"),
        ([step(0.0, 0, 16), step(0.5, 8, 16), step(0.0, 0, 16)], None),  # generated without early stop
        ([step(1, 16, 16), step(0.9375, 15, 16), step(0.0, 0, 0)], None),
    ],
)
def test_raw_scores_must_be_the_counted_fraction(steps, failed):
    [outcome], _ = check([sample_of("visualprm_raw", raw(steps))])
    if failed is None:
        assert isinstance(outcome, Sample)
    else:
        assert isinstance(outcome, Rejection) and [e.check for e in outcome.errors] == [failed]


def test_batch_rows_lead_back_to_their_samples_and_counts_add_up():
    samples = [sample_of("vgr", vgr()), sample_of("vgr", box("[0.5, 0.1, 0.2, 0.5]")), sample_of("vgr", vgr())]
    outcomes, stats = check(samples)
    assert [type(o).__name__ for o in outcomes] == ["Sample", "Rejection", "Sample"]
    assert stats["expectation/vgr_regions/x1_before_x2/evaluated"] == 3
    assert stats["expectation/vgr_regions/x1_before_x2/failed"] == 1
    assert stats["expectation/vgr_samples/regions_per_sample/evaluated"] == 3


def test_pixel_boxes_are_normalised_against_the_stored_size():
    sample = normalise_boxes(sample_of("vgr", box("[10, 20, 50, 40]"), (100, 80, "JPEG")), "pixels")
    assert sample.regions[0].box_norm == (0.1, 0.25, 0.5, 0.5)


def _violations_of(source: str) -> list[Sample]:
    return [
        sample_of(s, record, image, FACTS.get(name)) for name, (s, record, image, _) in CASES.items() if s == source
    ]


@pytest.mark.parametrize("source", ["vgr", "visualprm", "visualprm_raw", "visualprocessbench"])
def test_remembered_configurations_give_the_same_outcomes_and_counts(source, monkeypatch):
    clean = {"vgr": vgr, "visualprm": conv, "visualprm_raw": raw, "visualprocessbench": vpb}[source]()
    samples = [*_violations_of(source), sample_of(source, clean)]
    remembered = check(samples)
    monkeypatch.setattr(checker_module, "configurations_remembered", contextlib.nullcontext)
    rebuilt = check(samples)
    assert remembered == rebuilt
    assert sum(isinstance(o, Rejection) for o in remembered[0]) >= 1


def test_a_configuration_is_built_once_inside_the_block_and_per_thread():
    expectation = great_expectations().expectations.ExpectColumnValuesToNotBeNull(column="a")
    with configurations_remembered():
        first = expectation.configuration
        assert expectation.configuration is first
        elsewhere: list = []
        thread = threading.Thread(target=lambda: elsewhere.extend([expectation.configuration for _ in range(2)]))
        thread.start()
        thread.join()
        assert elsewhere[0] is not first and elsewhere[0] == first
        assert elsewhere[0] is not elsewhere[1]
    assert expectation.configuration is not first and expectation.configuration == first
