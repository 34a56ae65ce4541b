"""Output schemas and row builders.

The tables are declared in `sinks.features` (Hugging Face `datasets.Features`); their Arrow schemas, with the
`huggingface` metadata, are read here from the files generated from those declarations, so a run never imports
`datasets`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from beam_pipelines.annotation.scores import region_summary, step_summary
from beam_pipelines.materialisation.replay import compress
from beam_pipelines.records import Region, Rejection, Sample
from beam_pipelines.scoring.scores import summary

PACKAGE_SCHEMAS = Path(__file__).parent / "arrow"
"""Where `python -m beam_pipelines.sinks.features` writes the tables' Arrow schemas, in the package."""


def _package_schema(name: str) -> pa.Schema:
    return pa.ipc.open_stream(PACKAGE_SCHEMAS.joinpath(f"{name}.arrows").read_bytes()).schema


SAMPLE_SCHEMA: pa.Schema = _package_schema("samples")
REGION_SCHEMA: pa.Schema = _package_schema("regions")
INDEX_SCHEMA: pa.Schema = _package_schema("index")
_STEP = {f.name: f.type for f in SAMPLE_SCHEMA.field("steps").type.value_type}
_REGION_IN_SAMPLE = {f.name: f.type for f in SAMPLE_SCHEMA.field("regions").type.value_type}
_SAMPLE = {f.name: f.type for f in SAMPLE_SCHEMA}


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and ±Infinity as the strings Python's and JavaScript's JSON readers know them by: upstream files may
    carry them (Python's `json.dumps` writes them by default), but they are not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {_finite(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Strict JSON (what every reader accepts); non-finite numbers become strings (see `_finite`)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)
    except ValueError:
        return json.dumps(
            _finite(value), ensure_ascii=False, default=lambda v: _finite(_json_default(v)), allow_nan=False
        )


def crop_name(sample_id: str, region_index: int, ext: str) -> str:
    return f"{sample_id}.r{region_index:03d}.{ext}"


def _region_fields(sample: Sample) -> list[dict[str, Any]]:
    return [
        {
            "region_index": r.region_index,
            "box_norm": list(r.box_norm) if r.box_norm else None,
            "box_px": list(r.box_px) if r.box_px else None,
            "replay_marker": r.replay_marker,
            "label": r.label,
            "context": r.context,
            "grounding_score": r.grounding_score,
            "verify_score": r.verify_score,
        }
        for r in sample.regions
    ]


def _step_fields(sample: Sample) -> list[dict[str, Any]]:
    return [
        {
            "index": s.index,
            "text": s.text,
            "label": s.label,
            "correctness": s.correctness,
            "mc_score": s.mc_score,
            "num_mc_correct": s.num_mc_correct,
            "num_mc_total": s.num_mc_total,
            "measured": s.measured,
            "prm_score": s.prm_score,
        }
        for s in sample.steps
    ]


def record_fields(sample: Sample) -> dict[str, Any]:
    """Everything about a sample except image bytes: the Parquet row's text columns and the WebDataset json."""
    first = sample.images[0].encoded
    grounding = summary(sample.regions)
    steps, verified = step_summary(sample), region_summary(sample)
    return {
        "sample_id": sample.sample_id,
        "source": sample.source,
        "subset": sample.subset,
        "image_path": sample.image_paths[0],
        "image_paths": list(sample.image_paths),
        "width": first.width,
        "height": first.height,
        "question": sample.question,
        "answer": sample.answer,
        "reasoning": sample.reasoning,
        "response": sample.response,
        "prompt": sample.prompt,
        "num_regions": len(sample.regions),
        "regions": _region_fields(sample),
        "num_steps": len(sample.steps),
        "steps": _step_fields(sample),
        "visual_tokens_base": sample.visual_tokens[0] if sample.visual_tokens else None,
        "visual_tokens_replay": sample.visual_tokens[1] if sample.visual_tokens else None,
        "grounding_score_min": grounding[0] if grounding else None,
        "grounding_score_mean": grounding[1] if grounding else None,
        "prm_score_mean": steps[0] if steps else None,
        "prm_score_min": steps[1] if steps else None,
        "prm_first_error": sample.prm_first_error,
        "verify_score_min": verified[0] if verified else None,
        "verify_score_mean": verified[1] if verified else None,
        "warnings": list(sample.warnings),
        "metadata": to_json(sample.metadata),
        "image_resolution": [img.rule for img in sample.images],
        "input_file": sample.provenance.input_file,
        "input_member": sample.provenance.member,
        "input_row": sample.provenance.row,
    }


def sample_row(sample: Sample) -> dict[str, Any]:
    row = record_fields(sample)
    images = [{"bytes": img.encoded.data, "path": img.path} for img in sample.images]
    row["image"] = images[0]
    row["additional_images"] = images[1:]
    return row


def index_row(sample: Sample) -> dict[str, Any]:
    p = sample.provenance
    return {"sample_id": sample.sample_id, "input_file": p.input_file, "input_member": p.member, "input_row": p.row}


def region_rows(sample: Sample) -> list[dict[str, Any]]:
    rows = []
    for region, fields in zip(sample.regions, _region_fields(sample), strict=True):
        crop = region.crop
        assert crop is not None
        rows.append(
            {
                "sample_id": sample.sample_id,
                "source": sample.source,
                "subset": sample.subset,
                "image_path": sample.image_paths[0],
                **fields,
                "crop": {"bytes": crop.data, "path": crop_name(sample.sample_id, region.region_index, crop.ext)},
                "crop_width": crop.width,
                "crop_height": crop.height,
                **replay_columns(region),
            }
        )
    return rows


REPLAY_COLUMNS = (
    "replay_preset",
    "anyres_best_resolution",
    "anyres_resized_size",
    "anyres_paste_offset",
    "replay_grid_box",
    "replay_token_count",
    "replay_token_indices",
    "replay_pixels",
    "replay_pixels_shape",
    "replay_features",
    "replay_features_shape",
)


def replay_columns(region: Region) -> dict[str, Any]:
    """The replay columns of a region row; indices as a list, pixels zlib-compressed (see materialisation.replay),
    features (with --replay_features) as a flat float16 list plus their [tokens, dim] shape."""
    values = dict.fromkeys(REPLAY_COLUMNS)
    if region.replay:
        values.update(region.replay)
        if region.replay["replay_token_indices"] is not None:
            values["replay_token_indices"] = region.replay["replay_token_indices"].tolist()
        if region.replay["replay_pixels"] is not None:
            values["replay_pixels"] = compress(region.replay["replay_pixels"])
        if region.replay.get("replay_features") is not None:
            values["replay_features"] = region.replay["replay_features"].reshape(-1)
            values["replay_features_shape"] = list(region.replay["replay_features"].shape)
    return values


def _fits(dtype: pa.DataType, value: int) -> bool:
    bits = dtype.bit_width - 1
    return -(2**bits) <= value < 2**bits


def _out_of_range(values: dict[str, Any], columns: dict[str, pa.DataType], where: str) -> Iterator[str]:
    for name, value in values.items():
        dtype = columns[name]
        if value is not None and pa.types.is_signed_integer(dtype) and not _fits(dtype, int(value)):
            yield f"{where}.{name} = {value} does not fit {dtype}"


def row_problems(sample: Sample) -> list[str]:
    """The integers of a sample that its output columns cannot hold (`pa.Table.from_pylist` would raise, and fail
    the job): checked once, before the writers fan out, so the record is rejected instead and the writers' files
    stay aligned. Only the fields a record's values reach are read (steps, regions, visual tokens): the rows are
    not built twice, and every other column is ours, or text the parser typed."""
    found: list[str] = []
    for step in sample.steps:
        ints = {k: getattr(step, k) for k in ("index", "correctness", "num_mc_correct", "num_mc_total")}
        found += _out_of_range(ints, _STEP, f"steps[{step.index}]")
    for region in sample.regions:
        found += _out_of_range(
            {"region_index": region.region_index}, _REGION_IN_SAMPLE, f"regions[{region.region_index}]"
        )
        for i, value in enumerate(region.box_px or ()):
            if not _fits(pa.int32(), value):
                found.append(f"regions[{region.region_index}].box_px[{i}] = {value} does not fit int32")
    tokens = dict(zip(("visual_tokens_base", "visual_tokens_replay"), sample.visual_tokens or (), strict=False))
    found += _out_of_range({**tokens, "prm_first_error": sample.prm_first_error}, _SAMPLE, "samples")
    return found


def rejection_line(rejection: Rejection) -> str:
    return to_json(rejection.to_json())
