"""All four sources end to end through the CLI on the demo data; outputs read back with real readers."""

import io
import json
import os
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from tests.conftest import assert_invariant, parquet_rows, rejected_lines, report_of, run_cli
from tests.helpers.outputs import digest_tree

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

SOURCES = ("vgr", "visualprm", "visualprm_raw", "visualprocessbench")


@pytest.fixture(scope="module")
def outputs(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    for source in SOURCES:
        assert run_cli(*demo[source].argv(str(root / source)), "--max_reject_fraction=0.5") == 0
    return root


@pytest.mark.parametrize("source", SOURCES)
def test_counts_hold_against_the_files(outputs, source):
    report = assert_invariant(outputs / source)
    assert report["accepted"] > 0 and report["rejected"] >= 1
    assert report["per_source"][source]["input_records"] == report["input_records"]


@pytest.mark.parametrize("source", SOURCES)
def test_parquet_loads_in_datasets_with_image_features(outputs, source):
    files = sorted(str(p) for p in (outputs / source / "parquet" / "samples").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    row = ds[0]
    assert row["image"].size == (row["width"], row["height"])
    assert "." not in row["sample_id"] and row["source"] == source
    if source == "vgr":
        assert row["regions"] and row["reasoning"] and row["answer"]
    else:
        assert row["steps"] and {s["label"] for s in ds["steps"][0]} <= {"+", "-", None}


def test_vgr_regions_decode_and_equal_the_source_pixels(outputs):
    files = sorted(str(p) for p in (outputs / "vgr" / "parquet" / "regions").glob("*.parquet"))
    regions = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    samples = {r["sample_id"]: r for r in parquet_rows(outputs / "vgr", "samples")}
    assert len(regions) == report_of(outputs / "vgr")["regions"]
    checked = 0
    for region in regions:
        sample = samples[region["sample_id"]]
        source = Image.open(io.BytesIO(sample["image"]["bytes"]))
        left, top, right, bottom = region["box_px"]
        assert region["crop"].size == (right - left, bottom - top)
        if source.format == "PNG":
            expected = np.asarray(source.convert("RGB"))[top:bottom, left:right]
            assert np.array_equal(np.asarray(region["crop"]), expected)
            checked += 1
    assert checked > 0


def test_webdataset_reads_with_standard_decoders(outputs):
    shards = sorted(str(p) for p in (outputs / "vgr" / "webdataset").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil"))
    assert len(samples) == report_of(outputs / "vgr")["accepted"]
    for s in samples:
        record = s["json"]
        assert s["__key__"] == record["sample_id"]
        image = s.get("image.png") or s.get("image.jpg")
        assert image.size == (record["width"], record["height"])
        crops = [k for k in s if k.startswith("r") and k[1:4].isdigit() and k.endswith((".png", ".jpg"))]
        assert sorted(crops) == sorted(r["crop"] for r in record["regions"])


def test_dirt_is_kept_with_warnings_and_bad_records_have_reasons(outputs):
    report = report_of(outputs / "vgr")
    assert report["duplicates"] == 1
    assert report["warnings"]["no_orphan_tags"] >= 1 and report["warnings"]["no_stray_image_markers"] >= 1
    checks = {e["check"] for line in rejected_lines(outputs / "vgr") for e in line["errors"]}
    assert {
        "malformed_json",
        "non_utf8",
        "x1_in_unit_range",
        "image_missing",
        "x1_before_x2",
        "path_escapes_root",
    } <= checks
    assert all(line["provenance"]["input_file"].endswith("vgr_extra.jsonl") for line in rejected_lines(outputs / "vgr"))


def test_visualprm_image_rules_are_counted(outputs):
    assert report_of(outputs / "visualprm")["image_resolution"] == {"add_images_prefix": 8}
    assert report_of(outputs / "visualprm_raw")["image_resolution"] == {"add_images_prefix": 8}
    assert report_of(outputs / "visualprocessbench")["image_resolution"] == {"as_written": 8}


def test_visualprm_v1_paths_resolve_in_the_source_folder_the_file_is_named_after(demo, tmp_path):
    """v1 layout: `annotations/<name>_prm.jsonl` with paths relative to `images/<Source>/`."""
    with zipfile.ZipFile(demo["visualprm"].inputs[0]) as zf:
        records = [json.loads(line) for line in zf.read("geometry3k_demo_prm.jsonl").splitlines()]
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    (annotations / "geometry3k_en_20240402_extracted_prm.jsonl").write_text(
        "".join(json.dumps(dict(r, image=r["image"].removeprefix("Geometry3K/"))) + "\n" for r in records)
    )
    out = tmp_path / "out"
    image_root = demo["visualprm"].image_root
    assert (
        run_cli(
            "--source",
            "visualprm",
            "--input",
            str(annotations),
            "--image_root",
            image_root,
            "--output",
            str(out),
            "--max_reject_fraction=0.5",
        )
        == 0
    )
    report = assert_invariant(out)
    assert report["image_resolution"] == {"source_folder": report["accepted"]}
    assert {row["image_resolution"][0] for row in parquet_rows(out, "samples")} == {"source_folder"}


def manifest_units(root: Path) -> list:
    return json.loads((root / "versions" / "v000001" / "manifest.json").read_text())["units"]


def test_rerun_with_inputs_reordered_and_two_workers_gives_identical_files(demo, outputs, tmp_path):
    run = demo["vgr"]
    args = ["--source", "vgr", "--input", run.inputs[1], "--input", run.inputs[0], "--image_root", run.image_root]
    out = tmp_path / "again"
    assert (
        run_cli(
            *args,
            "--output",
            str(out),
            "--max_reject_fraction=0.5",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        )
        == 0
    )
    assert digest_tree(out) == digest_tree(outputs / "vgr")
    assert manifest_units(out) == manifest_units(outputs / "vgr")
    again, first = report_of(out), report_of(outputs / "vgr")
    assert again["expectations"] == first["expectations"] and again["warnings"] == first["warnings"]


def test_shard_targets_split_outputs(demo, tmp_path):
    out = tmp_path / "small"
    assert (
        run_cli(
            *demo["vgr"].argv(str(out)),
            "--max_reject_fraction=0.5",
            "--chunk_rows=5",
            "--shard_max_bytes=150000",
            "--formats=parquet",
        )
        == 0
    )
    report = assert_invariant(out)
    assert not (out / "webdataset").exists()
    sample_files = list((out / "parquet" / "samples").glob("*.parquet"))
    assert len(sample_files) == report["shards"]["parquet_samples"]["files"] > 5
    import pyarrow.parquet as pq

    assert max(pq.read_metadata(p).num_rows for p in sample_files) <= 5
    assert any(not p.stem.endswith("-000000") for p in sample_files), "byte target should roll parts"
    assert not list(out.rglob("_tmp"))
    assert os.listdir(out / "rejected")


def test_replay_columns_types_and_webdataset_indices(outputs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((outputs / "vgr" / "parquet" / "regions").glob("*.parquet"))
    schema = pq.read_schema(files[0])
    for column in ("anyres_best_resolution", "anyres_resized_size", "anyres_paste_offset", "replay_grid_box"):
        assert schema.field(column).type == pa.list_(pa.int32())
    assert schema.field("replay_token_count").type == pa.int32()
    assert schema.field("replay_token_indices").type == pa.list_(pa.int32())
    rows = {(r["sample_id"], r["region_index"]): r for r in parquet_rows(outputs / "vgr", "regions")}
    for row in rows.values():
        u1, v1, u2, v2 = row["replay_grid_box"]
        assert len(row["replay_token_indices"]) == (u2 - u1) * (v2 - v1)
        assert row["replay_token_count"] == -(-(u2 - u1) // 2) * -(-(v2 - v1) // 2)
        assert '"frame": "unpadded"' in row["replay_preset"] and row["replay_pixels"] is None
    shards = sorted(str(p) for p in (outputs / "vgr" / "webdataset").glob("*.tar"))
    for s in wds.WebDataset(shards, shardshuffle=False).decode():
        for region in s["json"]["regions"]:
            idx = s[f"r{region['region_index']:03d}.replay_idx.npy"]
            assert idx.dtype == np.int32
            assert idx.tolist() == rows[(s["__key__"], region["region_index"])]["replay_token_indices"]
    economy = report_of(outputs / "vgr")["token_economy"]
    assert economy["baseline_tokens"] == 2880 and 144 < economy["mean_base_tokens"] <= 864
    assert economy["mean_total_tokens"] == pytest.approx(economy["mean_base_tokens"] + economy["mean_replay_tokens"])
    assert set(economy["by_subset"]) == {"vgr:ai2d", "vgr:chartqa", "vgr:coco", "vgr:docvqa"}


def test_replay_pixels_are_readable_with_numpy_alone(demo, tmp_path):
    import zlib

    out = tmp_path / "px"
    args = [*demo["vgr"].argv(str(out)), "--max_reject_fraction=0.5", "--replay_pixels", "--replay_frame=canvas"]
    assert run_cli(*args) == 0
    rows = parquet_rows(out, "regions")
    assert rows and all(r["replay_pixels"] for r in rows)
    for row in rows:
        u1, v1, u2, v2 = row["replay_grid_box"]
        assert row["replay_pixels_shape"] == [(v2 - v1) * 14, (u2 - u1) * 14, 3]
        pixels = np.frombuffer(zlib.decompress(row["replay_pixels"]), np.uint8).reshape(row["replay_pixels_shape"])
        assert pixels.any()
    shards = sorted(str(p) for p in (out / "webdataset").glob("*.tar"))
    first = next(iter(wds.WebDataset(shards, shardshuffle=False).decode()))
    assert first["r000.replay.npy"].shape[2] == 3
