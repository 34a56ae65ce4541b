"""VisualPRM400K's conversation form (`*_prm.jsonl`, v1 and v1.1), as built by InternVL's `item2conv_prm`:
`system, (human step, gpt "+"|"-")+`, the first human turn being `### Question:\\n{question}\\n\\n### Solution
Process:\\n{step0}`; every `id` is -1.

Steps are read positionally; whether the turns have the official shape is the `prm_samples`/`prm_steps` suites'
call. v1 records hold image paths relative to a per-source folder (`images/Geometry3K/…`) that the record does not
name, so paths that resolve nowhere are looked for under the folders of the image root. With `--label_reference`,
each record is matched to its Raw form (`visualprm_raw`) on prompt and step texts, and its labels are checked
against the official rule (`+` iff score > 0).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from beam_pipelines.records import Provenance, Sample, Step
from beam_pipelines.sources import prm, visualprm_raw
from beam_pipelines.sources.dataset import RECORDS, Dataset, LabelReference, Row, Table
from beam_pipelines.sources.fields import conversations, image_paths, make_sample_id, metadata_of

NAME = "visualprm"
_CORRECTNESS = {"+": 1, "-": -1}


def parse(record: dict[str, Any], provenance: Provenance) -> Sample:
    paths = image_paths(record)
    turns = conversations(record)
    body = turns[1:] if turns and turns[0][0] == "system" else turns
    prompt, step0 = prm.split_first_turn(body[0][1]) if body else ("", "")
    step_texts = [step0] + [value for _, value in body[2::2]]
    labels = [value for _, value in body[1::2]]
    steps = tuple(
        Step(index=i, text=text, label=label if label in _CORRECTNESS else None, correctness=_CORRECTNESS.get(label, 0))
        for i, (text, label) in enumerate(zip(step_texts, labels, strict=False))
    )
    return Sample(
        sample_id=make_sample_id(NAME, paths, turns),
        source=NAME,
        subset=prm.subset_of(provenance),
        provenance=provenance,
        image_paths=paths,
        question=prm.original_question(prompt),
        answer=None,
        prompt=prompt,
        steps=steps,
        metadata=metadata_of(record, ("image", "conversations")),
        record=record,
    )


def _conversation_body(sample: Sample) -> tuple[list[tuple[str, str]], list[str]]:
    turns = conversations(sample.record)
    body = turns[1:] if turns and turns[0][0] == "system" else turns
    return turns, [value for _, value in body[1::2]]


def sample_rows(sample: Sample, _units: str) -> list[Row]:
    turns, labels = _conversation_body(sample)
    first = next((value for role, value in turns if role != "system"), "")
    header = first.find("### Question:")
    return [
        {
            "turn_pattern": ",".join(role for role, _ in turns),
            "first_human_turn": first,
            "text_before_question": header > 0 and bool(first[:header].strip()),
            "num_steps": len(labels),
            "label_reference_found": sample.facts.get("label_reference_found"),  # None: no --label_reference
        }
    ]


def step_rows(sample: Sample, _units: str) -> list[Row]:
    """Labels as written, beside the Raw form's official label where both forms were given."""
    _, labels = _conversation_body(sample)
    official = sample.facts.get("official_labels") or []
    return [
        {
            "_item": i,
            "label": label,
            "official_label": official[i] if i < len(official) else None,
            "step_chars": prm.step_chars(sample, i),
        }
        for i, label in enumerate(labels)
    ]


SAMPLES = Table(
    "prm_samples",
    RECORDS,
    "sample",
    ("turn_pattern", "first_human_turn", "text_before_question", "num_steps", "label_reference_found"),
    sample_rows,
)
STEPS = Table("prm_steps", RECORDS, "step", ("label", "official_label", "step_chars"), step_rows)


def form_key(prompt: str, step_texts: list[str]) -> str:
    """What a record of either form is matched on: its prompt and step texts (`item2conv_prm` keeps both)."""
    payload = json.dumps([prompt.strip(), [t.strip() for t in step_texts]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def conversation_key(sample: Sample) -> str:
    return form_key(sample.prompt or "", [s.text for s in sample.steps])


def raw_key_and_labels(sample: Sample) -> tuple[str, list[str]]:
    """The Raw record's key and its official labels (`+` iff score > 0, as its parser sets them)."""
    prompt = sample.record.get("question", "") if isinstance(sample.record, dict) else ""
    return form_key(prompt, [s.text for s in sample.steps]), [s.label or "-" for s in sample.steps]


def reference_facts(sample: Sample, references: dict[str, list[list[str]]]) -> dict[str, Any]:
    """Whether `--label_reference` has the sample's Raw form and, if so, its official labels: those of the Raw
    record that agrees with the sample's labels when one of several does, else the first."""
    candidates = references.get(sample.sample_id)
    if not candidates:
        return {"label_reference_found": False}
    labels = [step.label for step in sample.steps]
    return {
        "label_reference_found": True,
        "official_labels": next((c for c in candidates if c == labels), candidates[0]),
    }


class VisualPrm(Dataset):
    name = NAME
    description = "VisualPRM400K conversation form (*_prm.jsonl): step turns labelled + or -"
    id_fields = ("image", "conversations")
    tables = (SAMPLES, STEPS)
    searches_source_folders = True
    annotated = ("steps",)
    upstream = "Hugging Face: OpenGVLab/VisualPRM400K, OpenGVLab/VisualPRM400K-v1.1"
    image_root_hint = prm.IMAGE_ROOT_HINT
    reference = LabelReference(visualprm_raw.DATASET, conversation_key, raw_key_and_labels, reference_facts)

    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        return parse(record, provenance)

    def recognises(self, record: dict[str, Any]) -> bool:
        """Turns whose assistant answers are all `+` or `-` labels."""
        turns = record.get("conversations")
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            return False
        labels = [t.get("value") for t in turns if t.get("from") == "gpt"]
        return bool(labels) and all(v in ("+", "-") for v in labels)

    def archive_members(self, names: list[str]) -> list[str]:
        """The `*_prm.jsonl` members when the archive has any (it may also hold the `_orm` and Raw forms)."""
        picked = [n for n in names if n.lower().endswith("_prm.jsonl")]
        return picked or names

    def image_candidates(self, rel: str) -> list[tuple[str, str]]:
        return prm.image_candidates(rel)

    def prm_turns(self, sample: Sample, template: Any) -> list[tuple[str, str]] | None:
        """The record's own conversation: its system prompt and turns, each label turn a placeholder."""
        turns = conversations(sample.record)
        body = turns[1:] if turns and turns[0][0] == "system" else turns
        if not sample.steps or not body:
            return None
        system = turns[0][1] if turns[0][0] == "system" else template.system
        later = tuple(s.text for s in sample.steps[1:])
        return prm.conversation(system, body[0][1], later, template.positive)


DATASET = VisualPrm()
