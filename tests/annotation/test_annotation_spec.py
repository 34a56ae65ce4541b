"""Launch checks: a folder that is no such model, labels its tokenizer lacks, templates that do not parse."""

from __future__ import annotations

import json

import pytest

from beam_pipelines.annotation import templates
from beam_pipelines.annotation.spec import REGIONS, STEPS, read_spec
from beam_pipelines.annotation.templates import PrmTemplate, VerifyTemplate


def test_a_folder_without_a_model_config(tmp_path):
    with pytest.raises(ValueError, match=r"no config\.json"):
        read_spec(str(tmp_path), PrmTemplate(), VerifyTemplate(), (STEPS,))


def test_a_model_that_is_not_a_vision_language_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(ValueError, match="model_type 'clip' is not a vision-language model"):
        read_spec(str(tmp_path), PrmTemplate(), VerifyTemplate(), (STEPS,))


@pytest.mark.parametrize(
    ("prm", "verify", "scores", "message"),
    [
        (PrmTemplate(positive="✓"), VerifyTemplate(), (STEPS,), "'✓' is not in its vocabulary"),
        (PrmTemplate(), VerifyTemplate(yes="Yes No"), (REGIONS,), "'Yes No' is 2 tokens, not one"),
        (PrmTemplate(negative="+"), VerifyTemplate(), (STEPS,), "not distinct tokens"),
    ],
)
def test_labels_must_be_single_tokens_of_the_tokenizer(tiny_llava, prm, verify, scores, message):
    with pytest.raises(ValueError, match=message):
        read_spec(tiny_llava, prm, verify, scores)


def test_only_the_labels_of_what_the_source_scores_are_needed(tiny_llava):
    spec = read_spec(tiny_llava, PrmTemplate(positive="✓"), VerifyTemplate(), (REGIONS,))
    assert set(spec.label_ids) == {"Yes", "No"} and spec.model_type == "llava" and spec.pad_id == 1


def test_template_files(tmp_path):
    path = tmp_path / "prm.json"
    path.write_text(json.dumps({"system": "judge the steps", "positive": "Yes", "negative": "No"}))
    template = templates.load(PrmTemplate, str(path))
    assert template.system == "judge the steps" and template.first_turn == PrmTemplate().first_turn
    assert template.first("q", "s0") == "### Question:\nq\n\n### Solution Process:\ns0"
    assert templates.load(PrmTemplate, None) == PrmTemplate()
    path.write_text(json.dumps({"sytem": "typo"}))
    with pytest.raises(ValueError, match=r"unknown keys \['sytem'\]"):
        templates.load(PrmTemplate, str(path))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        templates.load(VerifyTemplate, str(path))
    with pytest.raises(ValueError, match="does not exist"):
        templates.load(VerifyTemplate, str(tmp_path / "missing.json"))
