"""The output tables declared once, as Hugging Face `datasets.Features`, and the files derived from them.

The Arrow schemas the writers use are derived from these and carry the `huggingface` metadata, so
`datasets.load_dataset("parquet", ...)` decodes image columns as `Image` features without a cast. They are
generated into the package (`sinks/arrow/*.arrows`, read by `sinks.schema`: a run does not import `datasets`, a
third of a second on every worker's start) and into `schemas/*.json` for users and other tools, by
`python -m beam_pipelines.sinks.features`; a test keeps both in sync with these declarations.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import pyarrow as pa

from beam_pipelines.sinks.schema import PACKAGE_SCHEMAS

_str = datasets.Value("string")
_i32 = datasets.Value("int32")
_f32 = datasets.Value("float32")

STEP = {
    "index": _i32,
    "text": _str,
    "label": _str,
    "correctness": datasets.Value("int8"),
    "mc_score": datasets.Value("float64"),
    "num_mc_correct": _i32,
    "num_mc_total": _i32,
    "measured": datasets.Value("bool"),
    "prm_score": _f32,
}
BOX_NORM = datasets.List(datasets.Value("float64"), length=4)
BOX_PX = datasets.List(_i32, length=4)
REGION_IN_SAMPLE = {
    "region_index": _i32,
    "box_norm": BOX_NORM,
    "box_px": BOX_PX,
    "replay_marker": datasets.Value("bool"),
    "label": _str,
    "context": _str,
    "grounding_score": _f32,
    "verify_score": _f32,
}

SAMPLE_FEATURES = datasets.Features(
    {
        "sample_id": _str,
        "source": _str,
        "subset": _str,
        "image_path": _str,
        "image_paths": datasets.List(_str),
        "image": datasets.Image(),
        "additional_images": datasets.List(datasets.Image()),
        "width": _i32,
        "height": _i32,
        "question": _str,
        "answer": _str,
        "reasoning": _str,
        "response": _str,
        "prompt": _str,
        "num_regions": _i32,
        "regions": datasets.List(REGION_IN_SAMPLE),
        "num_steps": _i32,
        "steps": datasets.List(STEP),
        "visual_tokens_base": _i32,
        "visual_tokens_replay": _i32,
        "grounding_score_min": _f32,
        "grounding_score_mean": _f32,
        "prm_score_mean": _f32,
        "prm_score_min": _f32,
        "prm_first_error": _i32,
        "verify_score_min": _f32,
        "verify_score_mean": _f32,
        "warnings": datasets.List(_str),
        "metadata": _str,
        "image_resolution": datasets.List(_str),
        "input_file": _str,
        "input_member": _str,
        "input_row": datasets.Value("int64"),
    }
)

REGION_FEATURES = datasets.Features(
    {
        "sample_id": _str,
        "region_index": _i32,
        "source": _str,
        "subset": _str,
        "image_path": _str,
        "box_norm": BOX_NORM,
        "box_px": BOX_PX,
        "crop": datasets.Image(),
        "crop_width": _i32,
        "crop_height": _i32,
        "replay_marker": datasets.Value("bool"),
        "label": _str,
        "context": _str,
        "grounding_score": _f32,
        "verify_score": _f32,
        "replay_preset": _str,
        "anyres_best_resolution": datasets.List(_i32),
        "anyres_resized_size": datasets.List(_i32),
        "anyres_paste_offset": datasets.List(_i32),
        "replay_grid_box": datasets.List(_i32),
        "replay_token_count": _i32,
        "replay_token_indices": datasets.List(_i32),
        "replay_pixels": datasets.Value("binary"),
        "replay_pixels_shape": datasets.List(_i32),
        "replay_features": datasets.List(datasets.Value("float16")),
        "replay_features_shape": datasets.List(_i32),
    }
)

INDEX_FEATURES = datasets.Features(
    {"sample_id": _str, "input_file": _str, "input_member": _str, "input_row": datasets.Value("int64")}
)

TABLES = {"samples": SAMPLE_FEATURES, "regions": REGION_FEATURES, "index": INDEX_FEATURES}


def arrow_schema_bytes(schema: pa.Schema) -> bytes:
    """The schema as an Arrow IPC stream of no batches (what `pyarrow.ipc.open_stream(...).schema` reads)."""
    sink = pa.BufferOutputStream()
    pa.ipc.new_stream(sink, schema).close()
    return sink.getvalue().to_pybytes()


def write_schema_files(directory: Path, package: Path = PACKAGE_SCHEMAS) -> None:
    """`directory/*.schema.json` (the HF features and Arrow types of every table) and `package/*.arrows`."""
    package.mkdir(parents=True, exist_ok=True)
    for name, features in TABLES.items():
        doc = {
            "table": name,
            "huggingface_features": features.to_dict(),
            "arrow": {f.name: str(f.type) for f in features.arrow_schema},
        }
        (directory / f"{name}.schema.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        (package / f"{name}.arrows").write_bytes(arrow_schema_bytes(features.arrow_schema))


if __name__ == "__main__":
    write_schema_files(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas"))
