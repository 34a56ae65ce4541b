"""Row builders: the Parquet rows of a sample, its regions and its index entry fit the declared Arrow schemas, and
every JSON the product writes is strict (NaN and Infinity become strings)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import zlib

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from beam_pipelines.materialisation import replay
from beam_pipelines.materialisation.crops import CropSettings, crop_regions
from beam_pipelines.materialisation.images import release_pixels
from beam_pipelines.records import EncodedImage, ErrorInfo, LoadedImage, Provenance, Rejection, Sample, Step
from beam_pipelines.sinks.schema import (
    INDEX_SCHEMA,
    REGION_SCHEMA,
    REPLAY_COLUMNS,
    SAMPLE_SCHEMA,
    crop_name,
    index_row,
    record_fields,
    region_rows,
    rejection_line,
    replay_columns,
    row_problems,
    sample_row,
    to_json,
)
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation.boxes import normalise_boxes

PRESET = replay.preset(replay.DEFAULT_PRESET, None)


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as strict JSON readers do."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _png(size: tuple[int, int]) -> tuple[bytes, Image.Image]:
    image = Image.new("RGB", size, (20, 120, 220))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), image


def _vgr(with_replay: bool = True, pixels: bool = True, metadata: dict | None = None) -> Sample:
    gpt = "<think> a <SOT>[0.1, 0.2, 0.5, 0.6]<EOT><image> b <SOT>[0, 0, 1, 1]<EOT> </think> Final answer: 3"
    record = {
        "image": "coco/a.png",
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
    }
    sample = dataset_named("vgr").parse(record, Provenance("in.jsonl", 4, "c0", "part/m.jsonl", offset=4))
    data, pixels_ = _png((60, 40))
    image = LoadedImage("coco/a.png", "/r/a.png", "as_written", EncodedImage(data, "png", 60, 40), "PNG", 1, pixels_)
    sample = dataclasses.replace(sample, images=(image,), metadata=metadata or sample.metadata)
    sample = crop_regions(normalise_boxes(sample, "normalized"), CropSettings())
    if with_replay:
        sample = replay.compute_replay(sample, PRESET, with_pixels=pixels)
    return release_pixels(sample)


def _prm() -> Sample:
    """A process-supervision sample: two images, steps, no regions."""
    images = tuple(
        LoadedImage(p, "/r/" + p, "as_written", EncodedImage(_png((8, 6))[0], "png", 8, 6), "PNG")
        for p in ("a.png", "b.png")
    )
    steps = (
        Step(0, "first", "+", 1, 0.75, 12, 16, True),
        Step(1, "second", None, 0),
    )
    return Sample(
        "visualprm-x",
        "visualprm",
        "Geo",
        Provenance("in.parquet", 9, "c0"),
        ("a.png", "b.png"),
        "q",
        None,
        steps=steps,
        warnings=("w1",),
        images=images,
    )


def test_a_sample_row_fits_the_sample_schema():
    sample = _vgr()
    row = sample_row(sample)
    table = pa.Table.from_pylist([row], schema=SAMPLE_SCHEMA)
    assert table.num_rows == 1 and table.schema.names == SAMPLE_SCHEMA.names
    assert set(row) == set(SAMPLE_SCHEMA.names)
    read = table.to_pylist()[0]
    assert read["image"] == {"bytes": sample.images[0].encoded.data, "path": "coco/a.png"}
    assert read["additional_images"] == []
    assert (read["width"], read["height"], read["num_regions"]) == (60, 40, 2)
    assert [r["box_px"] for r in read["regions"]] == [[6, 8, 30, 24], [0, 0, 60, 40]]
    assert [r["replay_marker"] for r in read["regions"]] == [True, False]
    assert (read["input_file"], read["input_member"], read["input_row"]) == ("in.jsonl", "part/m.jsonl", 4)
    assert read["visual_tokens_base"] == sample.visual_tokens[0] and read["visual_tokens_replay"] > 0


def test_a_sample_row_with_further_images_and_steps_fits_the_sample_schema():
    sample = _prm()
    read = pa.Table.from_pylist([sample_row(sample)], schema=SAMPLE_SCHEMA).to_pylist()[0]
    assert read["image"]["path"] == "a.png"
    assert [i["path"] for i in read["additional_images"]] == ["b.png"]
    assert read["image_paths"] == ["a.png", "b.png"] and read["image_resolution"] == ["as_written"] * 2
    assert read["num_steps"] == 2 and read["num_regions"] == 0 and read["regions"] == []
    assert read["steps"][0] == {
        "index": 0,
        "text": "first",
        "label": "+",
        "correctness": 1,
        "mc_score": 0.75,
        "num_mc_correct": 12,
        "num_mc_total": 16,
        "measured": True,
        "prm_score": None,
    }
    assert read["steps"][1]["label"] is None and read["steps"][1]["mc_score"] is None
    assert read["answer"] is None and read["visual_tokens_base"] is None and read["grounding_score_min"] is None
    assert read["warnings"] == ["w1"] and read["input_member"] is None


def test_record_fields_summarise_grounding_scores_and_hold_no_bytes():
    sample = _vgr()
    regions = (dataclasses.replace(sample.regions[0], grounding_score=0.2), sample.regions[1])
    regions += (dataclasses.replace(sample.regions[1], region_index=2, grounding_score=0.6),)
    fields = record_fields(dataclasses.replace(sample, regions=regions))
    assert fields["grounding_score_min"] == 0.2 and fields["grounding_score_mean"] == pytest.approx(0.4)
    assert [r["grounding_score"] for r in fields["regions"]] == [0.2, None, 0.6]
    assert "image" not in fields and "additional_images" not in fields
    assert not any(isinstance(v, bytes) for v in fields.values())
    _strict(to_json(fields))


def test_metadata_is_a_strict_json_string_even_with_non_finite_numbers():
    sample = _vgr(metadata={"score": math.nan, "hi": math.inf, "nested": [{"lo": -math.inf}], "ok": 1.5, "text": "é"})
    metadata = sample_row(sample)["metadata"]
    assert _strict(metadata) == {
        "score": "NaN",
        "hi": "Infinity",
        "nested": [{"lo": "-Infinity"}],
        "ok": 1.5,
        "text": "é",
    }


def test_region_rows_fit_the_region_schema_with_replay_pixels():
    sample = _vgr()
    rows = region_rows(sample)
    table = pa.Table.from_pylist(rows, schema=REGION_SCHEMA)
    assert set(rows[0]) == set(REGION_SCHEMA.names)
    read = table.to_pylist()
    assert [(r["sample_id"], r["region_index"]) for r in read] == [(sample.sample_id, 0), (sample.sample_id, 1)]
    assert read[0]["crop"] == {"bytes": sample.regions[0].crop.data, "path": crop_name(sample.sample_id, 0, "png")}
    assert (read[0]["crop_width"], read[0]["crop_height"]) == (24, 16)
    assert (read[0]["subset"], read[0]["image_path"]) == ("coco", "coco/a.png")
    first = sample.regions[0].replay
    assert read[0]["replay_token_indices"] == first["replay_token_indices"].tolist()
    shape = read[0]["replay_pixels_shape"]
    pixels = np.frombuffer(zlib.decompress(read[0]["replay_pixels"]), np.uint8).reshape(shape)
    assert np.array_equal(pixels, first["replay_pixels"])
    assert json.loads(read[0]["replay_preset"]) == json.loads(PRESET.to_json())
    assert read[0]["replay_features"] is None and read[0]["replay_features_shape"] is None


def test_region_rows_carry_replay_features_flat_with_their_shape():
    sample = _vgr(pixels=False)
    features = (np.arange(6, dtype=np.float16) / 4).reshape(2, 3)
    region = dataclasses.replace(sample.regions[0], replay={**sample.regions[0].replay, "replay_features": features})
    sample = dataclasses.replace(sample, regions=(region, sample.regions[1]))
    read = pa.Table.from_pylist(region_rows(sample), schema=REGION_SCHEMA).to_pylist()
    assert read[0]["replay_features"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert read[0]["replay_features_shape"] == [2, 3]
    assert read[0]["replay_pixels"] is None and read[1]["replay_features"] is None


def test_replay_columns_are_all_null_without_replay():
    sample = _vgr(with_replay=False)
    assert replay_columns(sample.regions[0]) == dict.fromkeys(REPLAY_COLUMNS)
    read = pa.Table.from_pylist(region_rows(sample), schema=REGION_SCHEMA).to_pylist()
    assert all(r[c] is None for r in read for c in REPLAY_COLUMNS)


def test_replay_columns_do_not_change_the_region():
    region = _vgr().regions[0]
    indices = region.replay["replay_token_indices"].copy()
    columns = replay_columns(region)
    assert isinstance(columns["replay_token_indices"], list) and isinstance(columns["replay_pixels"], bytes)
    assert isinstance(region.replay["replay_token_indices"], np.ndarray)
    assert np.array_equal(region.replay["replay_token_indices"], indices)


def test_index_rows_fit_the_index_schema():
    rows = [index_row(_vgr(with_replay=False)), index_row(_prm())]
    read = pa.Table.from_pylist(rows, schema=INDEX_SCHEMA).to_pylist()
    assert read[1] == {"sample_id": "visualprm-x", "input_file": "in.parquet", "input_member": None, "input_row": 9}
    assert read[0]["input_member"] == "part/m.jsonl" and read[0]["input_row"] == 4


def test_to_json_is_strict_json_whatever_the_numbers():
    value = {"a": math.nan, "b": [math.inf, (-math.inf, 1.0)], "c": {"d": np.float64("nan")}, "e": 2}
    text = to_json(value)
    assert _strict(text) == {"a": "NaN", "b": ["Infinity", ["-Infinity", 1.0]], "c": {"d": "NaN"}, "e": 2}


def test_to_json_handles_numpy_bytes_and_other_values():
    value = {"f32": np.float32("nan"), "arr": np.array([1.0, np.inf]), "i": np.int64(3), "raw": b"\xffab", "set": {1}}
    assert _strict(to_json(value)) == {"f32": "NaN", "arr": [1.0, "Infinity"], "i": 3, "raw": "\\xffab", "set": "{1}"}
    assert to_json({"x": np.array([1, 2])}) == '{"x": [1, 2]}'


def test_to_json_keeps_finite_values_and_unicode_as_written():
    assert to_json({"q": "ü ✓", "n": 0.1, "m": None}) == '{"q": "ü ✓", "n": 0.1, "m": null}'


def test_to_json_turns_a_non_finite_key_into_a_string():
    assert _strict(to_json({math.nan: 1, 1.5: 2})) == {"NaN": 1, "1.5": 2}


def test_rejection_lines_are_strict_json():
    error = ErrorInfo("validate", "box_finite", "box is not finite", "vgr_regions", "expect_x", "box_finite", math.nan)
    rejection = Rejection(
        "vgr", Provenance("in.jsonl", 2, "c0", "m.jsonl"), (error,), record={"v": math.inf}, sample_id="vgr-1"
    )
    line = rejection_line(rejection)
    assert "\n" not in line
    assert _strict(line) == {
        "source": "vgr",
        "provenance": {"input_file": "in.jsonl", "row": 2, "member": "m.jsonl"},
        "errors": [
            {
                "stage": "validate",
                "check": "box_finite",
                "message": "box is not finite",
                "suite": "vgr_regions",
                "expectation": "expect_x",
                "column": "box_finite",
                "value": "NaN",
            }
        ],
        "sample_id": "vgr-1",
        "record": {"v": "Infinity"},
    }


def test_a_rejected_raw_line_is_kept_as_text():
    rejection = Rejection("vgr", Provenance("in.jsonl", 0, "c0"), (ErrorInfo("read", "bad_json", "no"),), raw_line="{x")
    assert _strict(rejection_line(rejection)) == {
        "source": "vgr",
        "provenance": {"input_file": "in.jsonl", "row": 0},
        "errors": [{"stage": "read", "check": "bad_json", "message": "no"}],
        "raw_line": "{x",
    }


def test_rows_that_would_not_fit_the_schemas_are_found_before_a_writer_fails_on_them():
    sample = _vgr()
    assert row_problems(sample) == []
    pa.Table.from_pylist([sample_row(sample)], schema=SAMPLE_SCHEMA)  # what the check stands in for
    huge = dataclasses.replace(
        sample, steps=(Step(0, "s", "+", 1, 1.0, num_mc_correct=2**40, num_mc_total=2**70),), visual_tokens=(-1, 3)
    )
    assert row_problems(huge) == [
        "steps[0].num_mc_correct = 1099511627776 does not fit int32",
        f"steps[0].num_mc_total = {2**70} does not fit int32",
    ]
    with pytest.raises((pa.ArrowInvalid, OverflowError)):  # and why: the writer would have failed on it
        pa.Table.from_pylist([sample_row(huge)], schema=SAMPLE_SCHEMA)
    wide = dataclasses.replace(sample, regions=(dataclasses.replace(sample.regions[0], box_px=(0, 0, 2**31, 4)),))
    assert row_problems(wide) == ["regions[0].box_px[2] = 2147483648 does not fit int32"]
    assert row_problems(dataclasses.replace(sample, prm_first_error=-(2**31) - 1)) == [
        f"samples.prm_first_error = {-(2**31) - 1} does not fit int32"
    ]
