"""VGR-SFT: LLaVA-style rows `{image, conversations: [{from: human, value}, {from: gpt, value}]}` whose assistant turn
embeds grounded regions as `<SOT>[x1, y1, x2, y2]<EOT><image>` (grammar: `boxes`).

Images are LLaVA-NeXT-Data's raw folders, paths as written (`chartqa/train/png/…`); the subset is the image path's
top folder. The `vgr_samples` suite checks the turn structure and the grammar's anomalies after parsing; the
`vgr_regions` suite checks every box against the stored image size once the header is read.
"""

from __future__ import annotations

import math
import re
from typing import Any

from beam_pipelines.geometry import as_float, pixel_box, raw_pixel_box
from beam_pipelines.records import Provenance, RejectedError, Sample
from beam_pipelines.sources.boxes import parse_regions, reference_segments, strip_tags
from beam_pipelines.sources.dataset import IMAGES, RECORDS, Dataset, Row, Segments, Table
from beam_pipelines.sources.fields import STAGE, conversations, image_paths, make_sample_id, metadata_of, path_parts

NAME = "vgr"
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
        sample_id=make_sample_id(NAME, paths, turns),
        source=NAME,
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


def sample_rows(sample: Sample, _units: str) -> list[Row]:
    f = sample.facts
    markers = sum(r.replay_marker for r in sample.regions)
    return [
        {
            "num_regions": len(sample.regions),
            "num_replay_markers": markers,
            "regions_without_marker": len(sample.regions) - markers,
            "orphan_tags": f.get("orphan_tags", 0),
            "stray_image_markers": f.get("stray_image_markers", 0),
            "think_balanced": f.get("think_open", 0) == f.get("think_close", 0),
            "has_final_answer": bool(f.get("final_answer", 0)),
            "turn_pattern": f.get("turn_pattern", ""),
        }
    ]


def region_rows(sample: Sample, units: str) -> list[Row]:
    """Boxes in [0,1] units (pixel boxes divided by the stored size) and in pixels, before clamping."""
    width, height = sample.images[0].encoded.width, sample.images[0].encoded.height
    rows = []
    for region in sample.regions:
        raw = tuple(as_float(v) for v in region.box_raw)
        finite = all(math.isfinite(v) for v in raw)
        norm = (raw[0] / width, raw[1] / height, raw[2] / width, raw[3] / height) if units == "pixels" else raw
        # a finite but huge normalised value (1e306) overflows in pixels: no pixel box, the range rules reject it
        scaled = raw if units == "pixels" else (raw[0] * width, raw[1] * height, raw[2] * width, raw[3] * height)
        in_pixels = finite and all(math.isfinite(v) for v in scaled)
        px = raw_pixel_box(raw, width, height, units) if in_pixels else (None,) * 4
        crop = pixel_box(raw, width, height, units) if in_pixels else None
        rows.append(
            {
                "_item": region.region_index,
                "box_finite": finite,
                **dict(zip(("x1", "y1", "x2", "y2"), norm, strict=True)),
                **dict(zip(("px_x1", "px_y1", "px_x2", "px_y2"), px, strict=True)),
                "image_width": width,
                "image_height": height,
                "crop_width": max(0, crop[2] - crop[0]) if crop else None,
                "crop_height": max(0, crop[3] - crop[1]) if crop else None,
                "replay_marker": region.replay_marker,
            }
        )
    return rows


SAMPLES = Table(
    "vgr_samples",
    RECORDS,
    "sample",
    (
        "num_regions",
        "num_replay_markers",
        "regions_without_marker",
        "orphan_tags",
        "stray_image_markers",
        "think_balanced",
        "has_final_answer",
        "turn_pattern",
    ),
    sample_rows,
)
REGIONS = Table(
    "vgr_regions",
    IMAGES,
    "region",
    (
        "box_finite",
        "x1",
        "y1",
        "x2",
        "y2",
        "px_x1",
        "px_y1",
        "px_x2",
        "px_y2",
        "image_width",
        "image_height",
        "crop_width",
        "crop_height",
        "replay_marker",
    ),
    region_rows,
)


class Vgr(Dataset):
    name = NAME
    description = "VGR-SFT rows {image, conversations: [human, gpt]} with <SOT>[x1, y1, x2, y2]<EOT> regions"
    id_fields = ("image", "conversations")
    tables = (SAMPLES, REGIONS)
    annotated = ("regions",)
    upstream = "Hugging Face: BytedanceDouyinContent/VGR; images: lmms-lab/LLaVA-NeXT-Data"
    licence = "cc0-1.0"
    image_root_hint = "point it at LLaVA-NeXT-Data's llava_next_raw_format/, the folder that holds chartqa/, coco/, …"

    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        return parse(record, provenance)

    def recognises(self, record: dict[str, Any]) -> bool:
        """LLaVA-style turns of a human and an assistant whose answer is text, not a `+`/`-` label."""
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) for t in turns):
            return False
        roles = [t.get("from") for t in turns]
        answers = [t.get("value") for t in turns if t.get("from") == "gpt"]
        return set(roles) <= {"human", "gpt"} and bool(answers) and not all(a in ("+", "-") for a in answers)

    def card_text(self, sample: Sample) -> Segments | None:
        """The assistant turn, each region reference marked with its region's index."""
        return reference_segments(sample.response or "")


DATASET = Vgr()
