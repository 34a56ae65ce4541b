"""VGR-SFT rows: `{image, conversations: [{from: human, value}, {from: gpt, value}]}` (LLaVA style)."""

from __future__ import annotations

import re
from typing import Any

from beam_pipelines.records import Provenance, RejectedError, Sample
from beam_pipelines.sources.boxes import parse_regions, strip_tags
from beam_pipelines.sources.fields import STAGE, conversations, image_paths, make_sample_id, metadata_of, path_parts

SOURCE = "vgr"
_THINK = re.compile(r"<\s*think\s*>(.*?)<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_THINK_TAG = re.compile(r"<\s*(/?)\s*think\s*>", re.IGNORECASE)
_FINAL = re.compile(r"final\s+answer\s*:", re.IGNORECASE)
_IMAGE_PLACEHOLDER = re.compile(r"<image>\s*", re.IGNORECASE)


def split_reasoning(assistant: str) -> tuple[str, str | None, dict[str, int]]:
    """(reasoning, final answer, facts) of an assistant turn; text stripped of region tags.

    The facts (think-tag counts, whether a final answer exists) are checked by the `vgr_samples` suite.
    """
    opens = sum(1 for m in _THINK_TAG.finditer(assistant) if not m.group(1))
    closes = sum(1 for m in _THINK_TAG.finditer(assistant) if m.group(1))
    finals = list(_FINAL.finditer(assistant))
    answer = strip_tags(assistant[finals[-1].end() :]) if finals else None
    think = _THINK.search(assistant)
    if think:
        reasoning = strip_tags(think.group(1))
    else:
        reasoning = strip_tags(assistant[: finals[-1].start()] if finals else assistant)
    return reasoning, answer, {"think_open": opens, "think_close": closes, "final_answer": int(answer is not None)}


def parse(record: dict[str, Any], provenance: Provenance) -> Sample:
    paths = image_paths(record)
    turns = conversations(record)
    humans = [v for role, v in turns if role == "human"]
    gpts = [v for role, v in turns if role == "gpt"]
    if not humans:
        raise RejectedError(STAGE, "missing_turn", "conversations has no 'human' turn")
    if not gpts:
        raise RejectedError(STAGE, "missing_turn", "conversations has no 'gpt' (assistant) turn")
    assistant = gpts[0]
    parsed = parse_regions(assistant)
    reasoning, answer, facts = split_reasoning(assistant)
    facts.update(
        turn_pattern=",".join(role for role, _ in turns),
        orphan_tags=sum(w in ("orphan_sot", "orphan_eot") for w in parsed.anomalies),
        stray_image_markers=parsed.anomalies.count("stray_image_marker"),
    )
    folders = path_parts(paths[0])[:-1]  # the first is the subset: `chartqa` of `./chartqa/train/a.png`
    return Sample(
        sample_id=make_sample_id(SOURCE, paths, turns),
        source=SOURCE,
        subset=folders[0] if folders else "",
        provenance=provenance,
        image_paths=paths,
        question=_IMAGE_PLACEHOLDER.sub("", humans[0]).strip(),
        answer=answer,
        reasoning=reasoning,
        response=assistant,
        regions=parsed.regions,
        metadata=metadata_of(record, ("image", "conversations")),
        facts=facts,
        record=record,
    )
