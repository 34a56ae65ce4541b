"""VisualPRM400K-v1.1-Raw: the official label rule, the early-stop tail, malformed steps."""

import pytest

from beam_pipelines.records import RejectedError
from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV, raw_row

PARSERS = {name: dataset_named(name).parse for name in names()}


def test_visualprm_raw_official_label_rule_and_early_stop_tail():
    s = PARSERS["visualprm_raw"](raw_row(), PROV)
    assert [st.label for st in s.steps] == ["+", "-", "-"]
    assert [st.measured for st in s.steps] == [True, True, False]
    assert s.answer == "3" and s.question == "Q"


@pytest.mark.parametrize(
    ("steps", "check"),
    [
        ([{"step": "a", "score": float("nan"), "num_mc_correct": 0, "num_mc_total": 16}], "non_finite"),
        ([{"step": "a", "score": "high", "num_mc_correct": 0, "num_mc_total": 16}], "wrong_type"),
        ([{"step": "a", "score": 0.5, "num_mc_correct": 8}], "missing_field"),
        (["just text"], "wrong_type"),
        ([{"step": "a", "score": 1.0, "num_mc_correct": 2**40, "num_mc_total": 2**40}], "integer_out_of_range"),
        ([{"step": "a", "score": 1.0, "num_mc_correct": 2**70, "num_mc_total": 2**70}], "integer_out_of_range"),
        (
            [{"step": "a", "score": 1.0, "num_mc_correct": 2**31 - 1, "num_mc_total": -(2**31) - 1}],
            "integer_out_of_range",
        ),
    ],
)
def test_visualprm_raw_malformed(steps, check):
    with pytest.raises(RejectedError) as err:
        PARSERS["visualprm_raw"](raw_row(steps), PROV)
    assert err.value.info.check == check
