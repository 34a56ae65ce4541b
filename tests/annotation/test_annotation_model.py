"""The model's side: the logits that predict each placeholder, whatever the padding and the batch."""

from __future__ import annotations

import pytest
from PIL import Image

from beam_pipelines.annotation.encode import Encoder, prm_sequence, verify_sequence
from beam_pipelines.annotation.model import AnnotationModel
from beam_pipelines.annotation.spec import REGIONS, STEPS, read_spec
from beam_pipelines.annotation.templates import PrmTemplate, VerifyTemplate
from tests.annotation.test_encode import TURNS

IMAGE = Image.new("RGB", (40, 30), (10, 200, 40))


def sequences(path: str):
    spec = read_spec(path, PrmTemplate(), VerifyTemplate(), (STEPS, REGIONS))
    encoder = Encoder(path, spec.model_type)
    ids = spec.label_ids
    return spec, [
        prm_sequence(encoder, TURNS, IMAGE, PrmTemplate(), ids),
        prm_sequence(encoder, TURNS[:3], IMAGE, PrmTemplate(), ids),
        verify_sequence(encoder, IMAGE, "the area of the chart", VerifyTemplate(), ids),
    ]


def test_scores_are_read_where_the_placeholder_is_predicted_not_one_token_late(fixed_llava):
    spec, batch = sequences(fixed_llava)
    scores = AnnotationModel.load(spec, "cpu", "float32", 4, spec.pad_id).score(batch[:2])
    assert all(s > 0.99 for per in scores for s in per), scores


@pytest.mark.parametrize("model", ["tiny_llava", "tiny_internvl"])
def test_left_and_right_padding_and_any_batch_size_give_the_same_scores(model, request):
    spec, batch = sequences(request.getfixturevalue(model))
    right = AnnotationModel.load(spec, "cpu", "float32", 8, spec.pad_id).score(batch)
    left = AnnotationModel.load(spec, "cpu", "float32", 8, spec.pad_id)
    left.padding = "left"
    one = AnnotationModel.load(spec, "cpu", "float32", 1, spec.pad_id).score(batch)
    assert [len(s) for s in right] == [3, 1, 1]
    for a, b, c in zip(right, left.score(batch), one, strict=True):
        assert a == pytest.approx(b, abs=1e-5) and a == pytest.approx(c, abs=1e-5)
