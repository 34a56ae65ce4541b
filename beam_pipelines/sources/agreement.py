"""Matching the two forms of VisualPRM400K, so conversation labels can be checked against Raw scores.

The conversation form is made from the Raw form by InternVL's `item2conv_prm`: the Raw `question` becomes the text
after `### Question:`, each `steps_with_score[i].step` a human turn, and the label `+` iff score > 0. A record of
either form is keyed by its prompt and step texts; where both forms are given (`--label_reference`), the official
labels of the Raw record travel to the conversation record, and the `prm_steps` suite compares them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from beam_pipelines.records import Sample


def form_key(prompt: str, step_texts: list[str]) -> str:
    payload = json.dumps([prompt.strip(), [t.strip() for t in step_texts]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def conversation_key(sample: Sample) -> str:
    return form_key(sample.prompt or "", [s.text for s in sample.steps])


def raw_key_and_labels(sample: Sample) -> tuple[str, list[str]]:
    """The Raw record's key and its official labels (`+` iff score > 0, as the parser sets them)."""
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
