"""What the three process-supervision layouts share."""

from beam_pipelines.sources import prm
from beam_pipelines.sources.registry import dataset_named, names

PARSERS = {name: dataset_named(name).parse for name in names()}


def test_original_question_unwraps_the_rollout_instruction():
    assert prm.original_question("<image>\nYour task ...\n\nQuestion:\n\nFind x.") == "Find x."
