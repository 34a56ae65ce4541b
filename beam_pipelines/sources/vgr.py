"""VGR-SFT rows: `{image, conversations: [{from: human, value}, {from: gpt, value}]}` (LLaVA style)."""

from __future__ import annotations

import re
from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample
from beam_pipelines.sources.boxes import parse_regions, strip_tags
from beam_pipelines.sources.fields import STAGE, conversations, image_paths, make_sample_id, metadata_of

SOURCE = "vgr"
_THINK = re.compile(r"<\s*think\s*>(.*?)<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_THINK_TAG = re.compile(r"<\s*(/?)\s*think\s*>", re.IGNORECASE)
_FINAL = re.compile(r"final\s+answer\s*:", re.IGNORECASE)
_IMAGE_PLACEHOLDER = re.compile(r"<image>\s*", re.IGNORECASE)


def split_reasoning(assistant: str) -> tuple[str, str | None, list[str]]:
    """(reasoning, final answer, warnings) of an assistant turn; both stripped of region tags."""
    warnings = []
    opens = sum(1 for m in _THINK_TAG.finditer(assistant) if not m.group(1))
    closes = sum(1 for m in _THINK_TAG.finditer(assistant) if m.group(1))
    if opens != closes:
        warnings.append("unbalanced_think")
    finals = list(_FINAL.finditer(assistant))
    answer = strip_tags(assistant[finals[-1].end() :]) if finals else None
    if answer is None:
        warnings.append("missing_final_answer")
    think = _THINK.search(assistant)
    if think:
        reasoning = strip_tags(think.group(1))
    else:
        reasoning = strip_tags(assistant[: finals[-1].start()] if finals else assistant)
    return reasoning, answer, warnings


def parse(record: dict[str, Any], provenance: Provenance) -> Sample:
    paths = image_paths(record)
    turns = conversations(record)
    humans = [v for role, v in turns if role == "human"]
    gpts = [v for role, v in turns if role == "gpt"]
    if not humans:
        raise RejectedError(STAGE, "missing_turn", "conversations has no 'human' turn")
    if not gpts:
        raise RejectedError(STAGE, "missing_turn", "conversations has no 'gpt' (assistant) turn")
    warnings: list[str] = []
    if [role for role, _ in turns] != ["human", "gpt"]:
        warnings.append("unexpected_turns")
    assistant = gpts[0]
    parsed = parse_regions(assistant)
    warnings.extend(parsed.warnings)
    if not parsed.regions:
        warnings.append("no_regions")
    reasoning, answer, text_warnings = split_reasoning(assistant)
    warnings.extend(text_warnings)
    first = paths[0]
    return Sample(
        sample_id=make_sample_id(SOURCE, paths, turns),
        source=SOURCE,
        subset=first.split("/")[0] if "/" in first else "",
        provenance=provenance,
        image_paths=paths,
        question=_IMAGE_PLACEHOLDER.sub("", humans[0]).strip(),
        answer=answer,
        reasoning=reasoning,
        response=assistant,
        regions=parsed.regions,
        metadata=metadata_of(record, ("image", "conversations")),
        warnings=tuple(warnings),
        record=record,
    )
