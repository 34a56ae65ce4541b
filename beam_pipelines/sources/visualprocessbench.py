"""VisualProcessBench `test.jsonl`: `image` (a list), `question`, `answer`, `response.steps` and
`response.process_correctness` in {1, 0, -1} (0: neutral); the subset is `data_source`.

Label values and the steps/labels count are the `vpb_samples`/`vpb_steps` suites' call, not the parser's.
"""

from __future__ import annotations

from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample, Step
from beam_pipelines.sources import prm
from beam_pipelines.sources.dataset import RECORDS, Dataset, Row, Table
from beam_pipelines.sources.fields import STAGE, image_paths, make_sample_id, metadata_of, optional, require, text_value

NAME = "visualprocessbench"
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
        sample_id=make_sample_id(NAME, paths, question, answer, texts, correctness),
        source=NAME,
        subset=data_source or "",
        provenance=provenance,
        image_paths=paths,
        question=question,
        answer=answer,
        steps=tuple(steps),
        metadata=metadata_of(record, ("image", "question", "answer", "response")),
        record=record,
    )


def _label_value(value: Any) -> Any:
    """Labels as written, except that booleans become text, so `True` never passes as the label 1."""
    return repr(value) if isinstance(value, bool) or not isinstance(value, int | str) else value


def _lists(sample: Sample) -> tuple[list[Any], list[Any]]:
    response = sample.record["response"]
    return response["steps"], response["process_correctness"]


def sample_rows(sample: Sample, _units: str) -> list[Row]:
    steps, labels = _lists(sample)
    return [{"num_steps": len(steps), "num_labels": len(labels)}]


def step_rows(sample: Sample, _units: str) -> list[Row]:
    _, labels = _lists(sample)
    return [
        {"_item": i, "correctness": _label_value(label), "step_chars": prm.step_chars(sample, i)}
        for i, label in enumerate(labels)
    ]


SAMPLES = Table("vpb_samples", RECORDS, "sample", ("num_steps", "num_labels"), sample_rows)
STEPS = Table("vpb_steps", RECORDS, "step", ("correctness", "step_chars"), step_rows)


class VisualProcessBench(Dataset):
    name = NAME
    description = "VisualProcessBench test.jsonl: response.steps with process_correctness in {1, 0, -1}"
    id_fields = ("image", "question", "answer", "response.steps", "response.process_correctness")
    tables = (SAMPLES, STEPS)
    annotated = ("steps",)
    upstream = "Hugging Face: OpenGVLab/VisualProcessBench"
    image_root_hint = "point it at the folder that holds the release's images/ folder"

    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        return parse(record, provenance)

    def image_candidates(self, rel: str) -> list[tuple[str, str]]:
        return prm.image_candidates(rel)

    def recognises(self, record: dict[str, Any]) -> bool:
        response = record.get("response")
        return isinstance(response, dict) and "process_correctness" in response

    def prm_turns(self, sample: Sample, template: Any) -> list[tuple[str, str]] | None:
        return prm.from_template(sample, sample.question, template)


DATASET = VisualProcessBench()
