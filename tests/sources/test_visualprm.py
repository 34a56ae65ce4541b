"""VisualPRM400K's conversation form: steps and labels read positionally, shape left to the suites."""

from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV, conv_row

PARSERS = {name: dataset_named(name).parse for name in names()}


def test_visualprm_conversation_form():
    s = PARSERS["visualprm"](conv_row(), PROV)
    assert s.question == "Find m." and s.subset == "geometry3k_en_20240402_extracted"
    assert [(st.text, st.label, st.correctness) for st in s.steps] == [("Step zero.", "+", 1), ("Step 1.", "-", -1)]
    assert s.metadata == {"id": -1}
    assert {(st.mc_score, st.measured) for st in s.steps} == {(None, None)}  # Monte Carlo fields: Raw form only


def test_visualprm_parser_is_lenient_and_leaves_shape_to_the_suites():
    s = PARSERS["visualprm"](conv_row(labels=("+", "maybe")), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0)]
    s = PARSERS["visualprm"](conv_row(first="no headers"), PROV)
    assert s.prompt == "" and s.steps[0].text == "no headers"
    s = PARSERS["visualprm"]({**conv_row(), "conversations": conv_row()["conversations"][:-1]}, PROV)
    assert len(s.steps) == 1


def test_visualprm_tolerates_a_placeholder_before_the_question_header():
    row = conv_row(first="<image>\n### Question:\nFind m.\n\n### Solution Process:\nStep zero.")
    s = PARSERS["visualprm"](row, PROV)
    assert s.question == "Find m." and s.steps[0].text == "Step zero."
