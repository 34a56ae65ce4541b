"""Prompts and positions: placeholders come from the rendered template, one pass equals every prefix alone."""

from __future__ import annotations

import pytest
from PIL import Image

from beam_pipelines.annotation.encode import Encoder, messages_of, prm_sequence, verify_sequence
from beam_pipelines.annotation.model import AnnotationModel
from beam_pipelines.annotation.spec import REGIONS, STEPS, read_spec
from beam_pipelines.annotation.templates import PrmTemplate, VerifyTemplate
from beam_pipelines.records import RejectedError

TURNS = [
    ("system", "the system"),
    ("user", "### Question:\n<image>\nfind x\n\n### Solution Process:\nthe area is a + x"),
    ("assistant", "+"),
    ("user", "step + step"),
    ("assistant", "+"),
    ("user", "final answer x"),
    ("assistant", "+"),
]
IMAGE = Image.new("RGB", (40, 30), (200, 40, 40))


def setup(path: str):
    spec = read_spec(path, PrmTemplate(), VerifyTemplate(), (STEPS, REGIONS))
    return spec, Encoder(path, spec.model_type)


@pytest.mark.parametrize("model", ["tiny_llava", "tiny_internvl"])
def test_placeholders_are_the_assistant_turns_not_a_plus_in_the_text(model, request):
    spec, encoder = setup(request.getfixturevalue(model))
    sequence = prm_sequence(encoder, TURNS, IMAGE, PrmTemplate(), spec.label_ids)
    ids = sequence.inputs["input_ids"][0].tolist()
    plus = spec.label_ids["+"]
    in_text = [i for i, t in enumerate(ids) if t == plus and i not in sequence.positions]
    assert len(sequence.positions) == 3 and len(in_text) == 2, "two + in the steps' text, three placeholders"
    assert all(ids[p] == plus for p in sequence.positions) and sequence.pair == (plus, spec.label_ids["-"])
    assert ids.count(spec.label_ids["+"]) == 5


def test_the_image_text_marker_is_removed_and_the_image_goes_with_the_first_user_turn():
    messages = messages_of(TURNS)
    assert messages[0]["content"] == [{"type": "text", "text": "the system"}]
    assert messages[1]["content"][0] == {"type": "image"} and "<image>" not in messages[1]["content"][1]["text"]
    assert all({"type": "image"} not in m["content"] for m in messages[2:])


@pytest.mark.parametrize("model", ["tiny_llava", "tiny_internvl"])
def test_one_pass_scores_every_step_as_its_prefix_alone_would(model, request):
    spec, encoder = setup(request.getfixturevalue(model))
    scorer = AnnotationModel.load(spec, "cpu", "float32", 4, spec.pad_id)
    whole = scorer.score([prm_sequence(encoder, TURNS, IMAGE, PrmTemplate(), spec.label_ids)])[0]
    ends = [k + 1 for k, (role, _) in enumerate(TURNS) if role == "assistant"]
    alone = [
        scorer.score([prm_sequence(encoder, TURNS[:end], IMAGE, PrmTemplate(), spec.label_ids)])[0][-1] for end in ends
    ]
    assert whole == pytest.approx(alone, abs=1e-5)
    assert len(set(round(s, 6) for s in whole)) > 1, "the steps do not all score alike"


def test_a_template_that_moves_the_label_is_a_rejection_with_the_reason(tiny_llava):
    spec, encoder = setup(tiny_llava)
    encoder.tokenizer.chat_template = encoder.processor.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {% if m['role'] == 'assistant' %}step {% endif %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}"
        "{% endfor %}</s> {% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
    )
    with pytest.raises(RejectedError) as err:
        prm_sequence(encoder, TURNS, IMAGE, PrmTemplate(), spec.label_ids)
    assert err.value.info.stage == "annotate" and err.value.info.check == "template_mismatch"


def test_a_region_is_asked_about_its_context_and_scored_at_the_answer(tiny_llava):
    spec, encoder = setup(tiny_llava)
    template = VerifyTemplate(prompt="does this image show {context}")
    sequence = verify_sequence(encoder, IMAGE.crop((0, 0, 20, 20)), "the bar chart", template, spec.label_ids)
    ids = sequence.inputs["input_ids"][0].tolist()
    assert sequence.positions == (len(ids),) and sequence.pair == (spec.label_ids["Yes"], spec.label_ids["No"])
    vocab = encoder.tokenizer.get_vocab()
    assert [vocab["bar"], vocab["chart"]] == ids[ids.index(vocab["bar"]) : ids.index(vocab["bar"]) + 2]
