"""VisualProcessBench `test.jsonl`: `response.steps` with `process_correctness` in {1, 0, -1}; `image` is a list.

Label values and the steps/labels count are the `vpb_samples`/`vpb_steps` suites' call, not the parser's.
"""

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
    steps = []
    for i, (text, label) in enumerate(zip(texts, correctness, strict=False)):
        if not isinstance(text, str):
            raise RejectedError(STAGE, "wrong_type", f"response.steps[{i}] is {type(text).__name__}, not a string")
        known = isinstance(label, int) and not isinstance(label, bool) and label in _LABELS
        steps.append(Step(i, text, _LABELS[label] if known else None, correctness=label if known else 0))
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
