"""VisualPRM400K, both versions: the conversation form (`*_prm.jsonl`) and the v1.1-Raw form.

Conversation form, as built by InternVL's `item2conv_prm`: `system, (human step, gpt "+"|"-")+`, the first
human turn being `### Question:\\n{question}\\n\\n### Solution Process:\\n{step0}`; every `id` is -1.
Raw form: `steps_with_score` with mc scores; steps after the first zero are the early-stop tail (0/0),
i.e. not rolled out, which we keep as `measured = False` while applying the official `+` iff score > 0.
"""

from __future__ import annotations

from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample, Step
from beam_pipelines.sources.fields import (
    STAGE,
    conversations,
    image_paths,
    make_sample_id,
    metadata_of,
    optional,
    require,
    subset_of,
    text_value,
)

QUESTION_HEADER = "### Question:\n"
SOLUTION_HEADER = "\n\n### Solution Process:\n"
_QUESTION_MARK = "Question:\n\n"
_CORRECTNESS = {"+": 1, "-": -1}


def _subset(provenance: Provenance) -> str:
    return subset_of(provenance.member or provenance.input_file)


def original_question(prompt: str) -> str:
    """The question inside InternVL's rollout instruction (`...\\n\\nQuestion:\\n\\n{question}`), if wrapped."""
    body = prompt.split(_QUESTION_MARK)[-1] if _QUESTION_MARK in prompt else prompt
    return body.replace("<image>", "").strip()


def split_first_turn(first: str) -> tuple[str, str]:
    """(prompt, step 0) of `### Question:\n{q}\n\n### Solution Process:\n{step0}`; ("", first) without headers."""
    start = first.find(QUESTION_HEADER)
    if start < 0 or SOLUTION_HEADER not in first[start:]:
        return "", first
    prompt, step0 = first[start + len(QUESTION_HEADER) :].split(SOLUTION_HEADER, 1)
    return prompt, step0


def parse_conversation(record: dict[str, Any], provenance: Provenance) -> Sample:
    """Steps from the turns read positionally; whether the turns have the official shape (system, then
    (human, gpt) pairs, the question template, `+`/`-` labels) is the `prm_samples`/`prm_steps` suites' call.
    """
    paths = image_paths(record)
    turns = conversations(record)
    body = turns[1:] if turns and turns[0][0] == "system" else turns
    prompt, step0 = split_first_turn(body[0][1]) if body else ("", "")
    step_texts = [step0] + [value for _, value in body[2::2]]
    labels = [value for _, value in body[1::2]]
    steps = tuple(
        Step(index=i, text=text, label=label if label in _CORRECTNESS else None, correctness=_CORRECTNESS.get(label, 0))
        for i, (text, label) in enumerate(zip(step_texts, labels, strict=False))
    )
    return Sample(
        sample_id=make_sample_id("visualprm", paths, turns),
        source="visualprm",
        subset=_subset(provenance),
        provenance=provenance,
        image_paths=paths,
        question=original_question(prompt),
        answer=None,
        prompt=prompt,
        steps=steps,
        metadata=metadata_of(record, ("image", "conversations")),
        record=record,
    )


def parse_raw(record: dict[str, Any], provenance: Provenance) -> Sample:
    paths = image_paths(record)
    prompt = require(record, "question", str)
    question_orig = optional(record, "question_orig", str)
    answer = text_value(record, "answer")
    response = optional(record, "response", str)
    raw_steps = require(record, "steps_with_score", list)
    steps = []
    for i, item in enumerate(raw_steps):
        where = f"steps_with_score[{i}]."
        if not isinstance(item, dict):
            raise RejectedError(STAGE, "wrong_type", f"steps_with_score[{i}] is {type(item).__name__}, not an object")
        text = require(item, "step", str, where)
        score = require(item, "score", (int, float), where)
        correct = require(item, "num_mc_correct", int, where)
        total = require(item, "num_mc_total", int, where)
        steps.append(
            Step(
                index=i,
                text=text,
                label="+" if score > 0 else "-",
                correctness=1 if score > 0 else -1,
                mc_score=float(score),
                num_mc_correct=correct,
                num_mc_total=total,
                measured=total > 0,
            )
        )
    return Sample(
        sample_id=make_sample_id("visualprm_raw", paths, prompt, answer, response, raw_steps),
        source="visualprm_raw",
        subset=_subset(provenance),
        provenance=provenance,
        image_paths=paths,
        question=question_orig.strip() if question_orig else original_question(prompt),
        answer=answer,
        response=response,
        prompt=prompt,
        steps=tuple(steps),
        metadata=metadata_of(record, ("image", "question", "question_orig", "answer", "response", "steps_with_score")),
        record=record,
    )
