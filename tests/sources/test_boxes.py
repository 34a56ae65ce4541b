"""The region grammar: every form upstream uses, the dirt, and never an exception other than a rejection."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipelines.records import RejectedError
from beam_pipelines.sources.boxes import parse_box_content, parse_regions, strip_tags


def test_released_form_with_replay_marker():
    text = "<think> For 2016, <SOT>[0.58, 0.34, 0.92, 0.53]<EOT><image> the green bar is 29%. </think> Final answer: 6"
    parsed = parse_regions(text)
    assert [r.box_raw for r in parsed.regions] == [(0.58, 0.34, 0.92, 0.53)]
    assert parsed.regions[0].replay_marker is True
    assert parsed.regions[0].context == "For 2016, the green bar is 29%."
    assert parsed.anomalies == ()


def test_each_region_gets_its_own_sentence():
    box = "<SOT>[0.1, 0.1, 0.2, 0.2]<EOT><image>"
    text = f"<think>First {box} here. Then {box} and {box} there!\nLast {box}</think> Final answer: 1"
    contexts = [r.context for r in parse_regions(text).regions]
    assert contexts == ["First here.", "Then and there!", "Then and there!", "Last"]


def test_lower_case_tags_whitespace_and_no_marker():
    parsed = parse_regions("The title <sot>  [ 0, 15, 337, 215 ]  <eot> , says tax.")
    assert parsed.regions[0].box_raw == (0, 15, 337, 215)
    assert parsed.regions[0].replay_marker is False


def test_marker_after_whitespace_counts_as_replay():
    parsed = parse_regions("a <SOT>[0.1,0.2,0.3,0.4]<EOT>\n <image> b")
    assert parsed.regions[0].replay_marker is True
    assert parsed.anomalies == ()


def test_bbox_2d_object_form_keeps_label():
    parsed = parse_regions('x <sot>{"bbox_2d": [744, 1651, 945, 1722], "label": "total"}<eot> y')
    assert parsed.regions[0].box_raw == (744, 1651, 945, 1722)
    assert parsed.regions[0].label == "total"


def test_boxes_after_think_are_parsed():
    text = "<think> a <SOT>[0.1,0.1,0.2,0.2]<EOT><image> </think> Summary: <SOT>[0.3,0.3,0.4,0.4]<EOT> Final answer: 1"
    assert len(parse_regions(text).regions) == 2


@pytest.mark.parametrize(
    ("text", "anomalies"),
    [
        ("a <SOT> b", ("orphan_sot",)),
        ("a <EOT> b", ("orphan_eot",)),
        ("a <image> b", ("stray_image_marker",)),
        ("<SOT> words <EOT>", ("orphan_sot", "orphan_eot")),
        ("<SOT> x <SOT>[0.1,0.1,0.2,0.2]<EOT>", ("orphan_sot",)),
    ],
)
def test_dirt_becomes_counted_anomalies(text, anomalies):
    assert parse_regions(text).anomalies == anomalies


def test_non_finite_values_are_parsed_for_the_suite_to_judge():
    numbers, _ = parse_box_content("[0.1, NaN, 0.3, Infinity]")
    assert numbers[0] == 0.1 and numbers[1] != numbers[1] and numbers[3] == float("inf")


@pytest.mark.parametrize(
    ("content", "check"),
    [
        ("[0.1, 0.2, 0.3]", "box_arity"),
        ("[0.1, 0.2, 0.3, 0.4, 0.5]", "box_arity"),
        ('["a", 0.2, 0.3, 0.4]', "box_type"),
        ("[true, 0.2, 0.3, 0.4]", "box_type"),
        ("[0.1, 0.2, 0.3, 0.4", "box_syntax"),
        ('{"label": "x"}', "box_syntax"),
        ("{not json}", "box_syntax"),
    ],
)
def test_malformed_boxes_reject_with_check(content, check):
    with pytest.raises(RejectedError) as err:
        parse_box_content(content)
    assert err.value.info.check == check
    assert err.value.info.stage == "parse"


def test_tolerant_numbers_outside_json():
    assert parse_box_content("[.5, .25, 1e-1, 0.75]")[0] == (0.5, 0.25, 0.1, 0.75)


def test_strip_tags_removes_boxes_and_markers():
    assert strip_tags("<think> a <SOT>[0.1,0.1,0.2,0.2]<EOT><image> b </think>") == "a b"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(["<SOT>", "<EOT>", "<sot>", "<eot>", "<image>", "[", "]", "{", "}", ",", "0.5", "NaN"]),
            st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(str),
        ),
        max_size=30,
    ).map("".join)
)
def test_any_text_yields_regions_or_a_reason(text):
    try:
        parsed = parse_regions(text)
    except RejectedError as err:
        assert err.info.stage == "parse" and err.info.check.startswith("box_")
        return
    for r in parsed.regions:
        assert len(r.box_raw) == 4
