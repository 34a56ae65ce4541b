"""The tables the validation suites check: one row per sample, region, step or image, built from samples.

Each suite in `expectations/` is named after one of these tables. A table lists the columns a suite may
refer to (checked when the suites are loaded, so a typo fails the run at once) and a pure function that
turns one sample into its rows. Rows carry `_sample` (the sample's position in its batch) and `_item`
(region, step or image index), which is how Great Expectations' unexpected rows lead back to samples.

Derived columns (`box_finite`, `after_unmeasured`, `score_count_residual`, ...) exist so that rules that
are not a single Great Expectations call stay plain, editable expectations over one column.

Tables of the `records` phase are checked right after parsing; `images` tables need the stored image
size (read from the header, before any decode) and are checked after the images are loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from beam_pipelines.materialisation.crops import pixel_box, raw_pixel_box
from beam_pipelines.records import Sample
from beam_pipelines.sources.fields import conversations
from beam_pipelines.validation.boxes import as_float

RECORDS, IMAGES = "records", "images"
ID_COLUMNS = ("_sample", "_item")
Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    name: str
    phase: str
    sources: tuple[str, ...]
    item: str  # what a row is, for messages: "sample", "region", "step", "image"
    columns: tuple[str, ...]
    rows: Callable[[Sample, str], list[Row]]


def _label_value(value: Any) -> Any:
    """Labels as written, except that booleans become text, so `True` never passes as the label 1."""
    return repr(value) if isinstance(value, bool) or not isinstance(value, int | str) else value


def vgr_sample_rows(sample: Sample, _units: str) -> list[Row]:
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


def vgr_region_rows(sample: Sample, units: str) -> list[Row]:
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


def image_rows(sample: Sample, _units: str) -> list[Row]:
    return [
        {
            "_item": i,
            "width": img.encoded.width,
            "height": img.encoded.height,
            "min_side": min(img.encoded.width, img.encoded.height),
            "aspect_ratio": max(img.encoded.width, img.encoded.height)
            / max(1, min(img.encoded.width, img.encoded.height)),
            "format": img.format,
            "file_bytes": len(img.encoded.data),
            "exif_rotated": img.orientation in range(2, 9),
        }
        for i, img in enumerate(sample.images)
    ]


def _conversation_body(sample: Sample) -> tuple[list[tuple[str, str]], list[str]]:
    turns = conversations(sample.record)
    body = turns[1:] if turns and turns[0][0] == "system" else turns
    return turns, [value for _, value in body[1::2]]


def prm_sample_rows(sample: Sample, _units: str) -> list[Row]:
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


def _step_chars(sample: Sample, index: int) -> int | None:
    """Characters of step `index` once stripped; None for a label without a step (another expectation's call)."""
    return len(sample.steps[index].text.strip()) if index < len(sample.steps) else None


def prm_step_rows(sample: Sample, _units: str) -> list[Row]:
    """Labels as written, beside the Raw form's official label where both forms were given."""
    _, labels = _conversation_body(sample)
    official = sample.facts.get("official_labels") or []
    return [
        {
            "_item": i,
            "label": label,
            "official_label": official[i] if i < len(official) else None,
            "step_chars": _step_chars(sample, i),
        }
        for i, label in enumerate(labels)
    ]


def prm_raw_sample_rows(sample: Sample, _units: str) -> list[Row]:
    return [{"num_steps": len(sample.steps), "num_mc_sequences": sample.metadata.get("num_mc_sequences")}]


def prm_raw_step_rows(sample: Sample, _units: str) -> list[Row]:
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
                "step_chars": _step_chars(sample, step.index),
            }
        )
        after_unmeasured = after_unmeasured or total == 0
    return rows


def _vpb_lists(sample: Sample) -> tuple[list[Any], list[Any]]:
    response = sample.record["response"]
    return response["steps"], response["process_correctness"]


def vpb_sample_rows(sample: Sample, _units: str) -> list[Row]:
    steps, labels = _vpb_lists(sample)
    return [{"num_steps": len(steps), "num_labels": len(labels)}]


def vpb_step_rows(sample: Sample, _units: str) -> list[Row]:
    _, labels = _vpb_lists(sample)
    return [
        {"_item": i, "correctness": _label_value(label), "step_chars": _step_chars(sample, i)}
        for i, label in enumerate(labels)
    ]


_TABLES = (
    Table(
        "vgr_samples",
        RECORDS,
        ("vgr",),
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
        vgr_sample_rows,
    ),
    Table(
        "vgr_regions",
        IMAGES,
        ("vgr",),
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
        vgr_region_rows,
    ),
    Table(
        "images",
        IMAGES,
        ("vgr", "visualprm", "visualprm_raw", "visualprocessbench"),
        "image",
        ("width", "height", "min_side", "aspect_ratio", "format", "file_bytes", "exif_rotated"),
        image_rows,
    ),
    Table(
        "prm_samples",
        RECORDS,
        ("visualprm",),
        "sample",
        ("turn_pattern", "first_human_turn", "text_before_question", "num_steps", "label_reference_found"),
        prm_sample_rows,
    ),
    Table("prm_steps", RECORDS, ("visualprm",), "step", ("label", "official_label", "step_chars"), prm_step_rows),
    Table(
        "prm_raw_samples", RECORDS, ("visualprm_raw",), "sample", ("num_steps", "num_mc_sequences"), prm_raw_sample_rows
    ),
    Table(
        "prm_raw_steps",
        RECORDS,
        ("visualprm_raw",),
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
        prm_raw_step_rows,
    ),
    Table("vpb_samples", RECORDS, ("visualprocessbench",), "sample", ("num_steps", "num_labels"), vpb_sample_rows),
    Table("vpb_steps", RECORDS, ("visualprocessbench",), "step", ("correctness", "step_chars"), vpb_step_rows),
)
TABLES: dict[str, Table] = {t.name: t for t in _TABLES}
