"""VisualPRM400K-v1.1-Raw: `question`, `question_orig`, `answer`, `response` and `steps_with_score` (Monte Carlo
`score`, `num_mc_correct`, `num_mc_total` per step).

The label follows the official rule, `+` iff score > 0. Steps after the first zero are the early-stop tail (0/0:
not rolled out), kept with `measured = False`. The `prm_raw_*` suites check the counts against the scores.
"""

from __future__ import annotations

from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample, Step
from beam_pipelines.sources import prm
from beam_pipelines.sources.dataset import RECORDS, Dataset, Row, Table
from beam_pipelines.sources.fields import STAGE, image_paths, make_sample_id, metadata_of, optional, require, text_value

NAME = "visualprm_raw"


def parse(record: dict[str, Any], provenance: Provenance) -> Sample:
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
        sample_id=make_sample_id(NAME, paths, prompt, answer, response, raw_steps),
        source=NAME,
        subset=prm.subset_of(provenance),
        provenance=provenance,
        image_paths=paths,
        question=question_orig.strip() if question_orig else prm.original_question(prompt),
        answer=answer,
        response=response,
        prompt=prompt,
        steps=tuple(steps),
        metadata=metadata_of(record, ("image", "question", "question_orig", "answer", "response", "steps_with_score")),
        record=record,
    )


def sample_rows(sample: Sample, _units: str) -> list[Row]:
    return [{"num_steps": len(sample.steps), "num_mc_sequences": sample.metadata.get("num_mc_sequences")}]


def step_rows(sample: Sample, _units: str) -> list[Row]:
    sequences = sample.metadata.get("num_mc_sequences")
    rows = []
    after_unmeasured = False
    for step in sample.steps:
        score, total = step.mc_score or 0.0, step.num_mc_total or 0
        # mc = correct / total: the residual is in rollouts (a whole number when the score is right), and a
        # step that was not rolled out (0/0) must score 0
        residual = abs(score * total - (step.num_mc_correct or 0)) if total > 0 else abs(score)
        rows.append(
            {
                "_item": step.index,
                "score": step.mc_score,
                "num_mc_correct": step.num_mc_correct,
                "num_mc_total": step.num_mc_total,
                "num_mc_sequences": sequences
                if isinstance(sequences, int) and not isinstance(sequences, bool)
                else None,
                "score_count_residual": residual,
                "after_unmeasured": after_unmeasured,
                "step_chars": prm.step_chars(sample, step.index),
            }
        )
        after_unmeasured = after_unmeasured or total == 0
    return rows


SAMPLES = Table("prm_raw_samples", RECORDS, "sample", ("num_steps", "num_mc_sequences"), sample_rows)
STEPS = Table(
    "prm_raw_steps",
    RECORDS,
    "step",
    (
        "score",
        "num_mc_correct",
        "num_mc_total",
        "num_mc_sequences",
        "score_count_residual",
        "after_unmeasured",
        "step_chars",
    ),
    step_rows,
)


class VisualPrmRaw(Dataset):
    name = NAME
    description = "VisualPRM400K-v1.1-Raw: steps_with_score with Monte Carlo scores and counts"
    id_fields = ("image", "question", "answer", "response", "steps_with_score")
    tables = (SAMPLES, STEPS)
    annotated = ("steps",)
    upstream = "Hugging Face: OpenGVLab/VisualPRM400K-v1.1-Raw"
    image_root_hint = prm.IMAGE_ROOT_HINT

    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        return parse(record, provenance)

    def recognises(self, record: dict[str, Any]) -> bool:
        return isinstance(record.get("steps_with_score"), list)

    def archive_members(self, names: list[str]) -> list[str]:
        """Every member but the conversation forms (`_prm`, `_orm`) an archive may hold beside it."""
        return [n for n in names if not n.lower().endswith(("_prm.jsonl", "_orm.jsonl"))]

    def image_candidates(self, rel: str) -> list[tuple[str, str]]:
        return prm.image_candidates(rel)

    def prm_turns(self, sample: Sample, template: Any) -> list[tuple[str, str]] | None:
        """The conversation `item2conv_prm` builds from the record: its `question` (the rollout prompt) and steps."""
        return prm.from_template(sample, sample.prompt or "", template)


DATASET = VisualPrmRaw()
