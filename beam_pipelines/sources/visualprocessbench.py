"""VisualProcessBench `test.jsonl`: `response.steps` with `process_correctness` in {1, 0, -1}; `image` is a list."""

from __future__ import annotations

from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample, Step
from beam_pipelines.sources.fields import (
    STAGE,
    image_paths,
    make_sample_id,
    metadata_of,
    optional,
    require,
    text_value,
)

SOURCE = "visualprocessbench"
_LABELS = {1: "+", -1: "-", 0: None}


def parse(record: dict[str, Any], provenance: Provenance) -> Sample:
    paths = image_paths(record)
    question = require(record, "question", str)
    answer = text_value(record, "answer")
    response = require(record, "response", dict)
    texts = require(response, "steps", list, "response.")
    correctness = require(response, "process_correctness", list, "response.")
    if len(texts) != len(correctness):
        raise RejectedError(
            STAGE,
            "steps_labels_mismatch",
            f"{len(texts)} steps but {len(correctness)} process_correctness labels",
        )
    if not texts:
        raise RejectedError(STAGE, "missing_field", "response.steps is empty")
    steps = []
    for i, (text, label) in enumerate(zip(texts, correctness, strict=True)):
        if not isinstance(text, str):
            raise RejectedError(STAGE, "wrong_type", f"response.steps[{i}] is {type(text).__name__}, not a string")
        if isinstance(label, bool) or label not in _LABELS:
            raise RejectedError(
                STAGE, "invalid_label", f"process_correctness[{i}] is {label!r:.20}, expected 1, 0 or -1"
            )
        steps.append(Step(index=i, text=text, label=_LABELS[label], correctness=int(label)))
    data_source = optional(record, "data_source", str)
    return Sample(
        sample_id=make_sample_id(SOURCE, paths, question, answer, texts, correctness),
        source=SOURCE,
        subset=data_source or "",
        provenance=provenance,
        image_paths=paths,
        question=question,
        answer=answer,
        steps=tuple(steps),
        metadata=metadata_of(record, ("image", "question", "answer", "response")),
        record=record,
    )
