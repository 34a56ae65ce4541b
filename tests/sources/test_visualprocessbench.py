"""VisualProcessBench: steps with process_correctness; label values left to the suites."""

from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV, vpb_row

PARSERS = {name: dataset_named(name).parse for name in names()}


def test_visualprocessbench():
    s = PARSERS["visualprocessbench"](vpb_row(), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0), ("-", -1)]
    assert s.subset == "DynaMath" and s.metadata["policy_model"] == "lmdeploy_internvl"


def test_visualprocessbench_parser_is_lenient_and_leaves_labels_to_the_suites():
    s = PARSERS["visualprocessbench"](vpb_row(labels=(1, 0)), PROV)
    assert len(s.steps) == 2
    s = PARSERS["visualprocessbench"](vpb_row(labels=(1, 2, True)), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0), (None, 0)]
