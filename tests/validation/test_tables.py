"""The tables the suites check: image rows, which tables exist and are checked when, and the VGR rows (boxes in
normalised and pixel units, before clamping; non-finite and overflowing boxes)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Sample
from beam_pipelines.sources import registry
from beam_pipelines.sources.dataset import IMAGES, IMAGES_TABLE, RECORDS, Dataset, Table, image_rows
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.validation.tables import ID_COLUMNS, known_tables, tables_for

PROV = Provenance("in.jsonl", 0, "c0")


def _image(width: int, height: int, fmt: str = "JPEG", orientation: int = 1, size: int = 10) -> LoadedImage:
    ext = "jpg" if fmt == "JPEG" else fmt.lower()
    return LoadedImage("a", "/r/a", "as_written", EncodedImage(b"\xff" * size, ext, width, height), fmt, orientation)


def _vgr(gpt: str, width: int = 640, height: int = 480) -> Sample:
    record = {
        "image": "coco/a.jpg",
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": gpt}],
    }
    return dataclasses.replace(dataset_named("vgr").parse(record, PROV), images=(_image(width, height),))


def _boxed(box: str, width: int = 640, height: int = 480) -> Sample:
    return _vgr(f"<think> The bar <SOT>{box}<EOT><image> is tall. </think> Final answer: 3", width, height)


def _region_row(box: str, units: str, width: int = 640, height: int = 480) -> dict:
    (row,) = dataset_named("vgr").tables[1].rows(_boxed(box, width, height), units)
    return row


def _records() -> dict[str, dict]:
    """One clean record of each shipped dataset."""
    conv = [{"from": "system", "value": "You are a PRM."}]
    first = "### Question:\nFind m.\n\n### Solution Process:\nStep zero."
    for i, label in enumerate(("+", "-")):
        conv += [{"from": "human", "value": first if i == 0 else f"Step {i}."}, {"from": "gpt", "value": label}]
    step = {"step": "s", "score": 0.5, "num_mc_correct": 8, "num_mc_total": 16}
    return {
        "vgr": {
            "image": "coco/a.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nQ?"},
                {"from": "gpt", "value": "<think> a <SOT>[0.1, 0.1, 0.5, 0.5]<EOT><image> b </think> Final answer: 3"},
            ],
        },
        "visualprm": {"id": -1, "image": "Geo/a.png", "conversations": conv},
        "visualprm_raw": {
            "image": "Geo/a.png",
            "question": "<image>\nQ",
            "question_orig": "Q",
            "answer": "3",
            "response": "r",
            "num_mc_sequences": 16,
            "steps_with_score": [step, {**step, "score": 0.0, "num_mc_correct": 0}],
        },
        "visualprocessbench": {
            "image": ["images/DynaMath/1.png"],
            "question": "Q",
            "answer": "5",
            "response": {"steps": ["a", "b"], "process_correctness": [1, -1]},
            "data_source": "DynaMath",
        },
    }


def test_image_rows_describe_each_stored_image():
    sample = dataclasses.replace(
        _boxed("[0.1, 0.1, 0.5, 0.5]"),
        images=(_image(300, 100, "PNG", 1, size=123), _image(50, 200, "JPEG", 6), _image(0, 7, "GIF", 9)),
    )
    rows = image_rows(sample, "normalized")
    assert rows[0] == {
        "_item": 0,
        "width": 300,
        "height": 100,
        "min_side": 100,
        "aspect_ratio": 3.0,
        "format": "PNG",
        "file_bytes": 123,
        "exif_rotated": False,
    }
    assert (rows[1]["_item"], rows[1]["aspect_ratio"], rows[1]["exif_rotated"]) == (1, 4.0, True)
    assert rows[2]["min_side"] == 0 and rows[2]["aspect_ratio"] == 7.0, "a zero side divides by one, not zero"
    assert rows[2]["exif_rotated"] is False, "orientation 9 is not an EXIF rotation"


@pytest.mark.parametrize("orientation, rotated", [(1, False), (2, True), (6, True), (8, True), (0, False)])
def test_exif_rotated_means_an_orientation_tag_from_2_to_8(orientation, rotated):
    sample = dataclasses.replace(_boxed("[0.1, 0.1, 0.5, 0.5]"), images=(_image(10, 10, orientation=orientation),))
    assert image_rows(sample, "normalized")[0]["exif_rotated"] is rotated


def test_known_tables_are_every_registered_datasets_tables_and_images():
    tables = known_tables()
    expected = {t.name for name in registry.names() for t in dataset_named(name).tables} | {"images"}
    assert set(tables) == expected
    assert {"vgr_samples", "vgr_regions", "prm_samples", "prm_steps", "vpb_samples", "vpb_steps"} <= expected
    assert {"prm_raw_samples", "prm_raw_steps"} <= expected
    assert tables["images"] is IMAGES_TABLE and tables["vgr_regions"] is dataset_named("vgr").tables[1]


class _Fifth(Dataset):
    name = "fifth_for_tables"
    description = "a dataset registered by a test"
    id_fields = ("x",)
    tables = (
        Table("fifth_z", RECORDS, "sample", ("n",), lambda s, u: [{"n": 1}]),
        Table("fifth_a", RECORDS, "sample", ("n",), lambda s, u: [{"n": 2}]),
        Table("fifth_img", IMAGES, "image", ("n",), lambda s, u: []),
    )

    def parse(self, record, provenance):
        raise NotImplementedError


@pytest.fixture
def fifth():
    dataset = registry.register(_Fifth())
    yield dataset
    registry.unregister(dataset.name)


def test_a_registered_dataset_adds_its_tables(fifth):
    tables = known_tables()
    assert {"fifth_z", "fifth_a", "fifth_img", "images", "vgr_regions"} <= set(tables)
    assert [t.name for t in tables_for(fifth, RECORDS)] == ["fifth_a", "fifth_z"], "sorted by name"
    assert [t.name for t in tables_for(fifth, IMAGES)] == ["fifth_img", "images"]


def test_a_dataset_gone_takes_its_tables_with_it(fifth):
    registry.unregister(fifth.name)
    assert "fifth_a" not in known_tables()
    registry.register(fifth)


def test_tables_for_a_phase_are_sorted_by_name_and_images_applies_to_every_dataset():
    assert [t.name for t in tables_for(dataset_named("vgr"), RECORDS)] == ["vgr_samples"]
    assert [t.name for t in tables_for(dataset_named("vgr"), IMAGES)] == ["images", "vgr_regions"]
    assert [t.name for t in tables_for(dataset_named("visualprm"), RECORDS)] == ["prm_samples", "prm_steps"]
    for name in registry.names():
        assert IMAGES_TABLE in tables_for(dataset_named(name), IMAGES)
        assert IMAGES_TABLE not in tables_for(dataset_named(name), RECORDS)


@pytest.mark.parametrize("source", ["vgr", "visualprm", "visualprm_raw", "visualprocessbench"])
def test_rows_hold_exactly_the_declared_columns(source):
    """A suite may name any declared column, and a row key no suite could name is a typo."""
    dataset = dataset_named(source)
    sample = dataclasses.replace(dataset.parse(_records()[source], PROV), images=(_image(100, 80),))
    for table in (*dataset.tables, IMAGES_TABLE):
        rows = table.rows(sample, "normalized")
        assert rows, table.name
        for row in rows:
            assert set(row) - set(ID_COLUMNS) == set(table.columns), table.name


def test_vgr_sample_rows_count_regions_markers_and_anomalies():
    sample = _vgr("<think> a <SOT>[0.1, 0.1, 0.5, 0.5]<EOT> <image> b <SOT>[0, 0, 1, 1]<EOT> x <image> c <SOT> d")
    (row,) = dataset_named("vgr").tables[0].rows(sample, "normalized")
    assert row == {
        "num_regions": 2,
        "num_replay_markers": 1,
        "regions_without_marker": 1,
        "orphan_tags": 1,
        "stray_image_markers": 1,
        "think_balanced": False,
        "has_final_answer": False,
        "turn_pattern": "human,gpt",
    }
    assert [r.replay_marker for r in sample.regions] == [True, False], "only whitespace may part a box and its marker"


def test_vgr_region_rows_for_a_normalised_box():
    row = _region_row("[0.1, 0.2, 0.5, 0.75]", "normalized")
    assert row == {
        "_item": 0,
        "box_finite": True,
        "x1": 0.1,
        "y1": 0.2,
        "x2": 0.5,
        "y2": 0.75,
        "px_x1": 64,
        "px_y1": 96,
        "px_x2": 320,
        "px_y2": 360,
        "image_width": 640,
        "image_height": 480,
        "crop_width": 256,
        "crop_height": 264,
        "replay_marker": True,
    }


def test_vgr_region_rows_keep_a_box_outside_the_image_unclamped_but_its_crop_clamped():
    row = _region_row("[0.5, 0.5, 1.2, 1.1]", "normalized")
    assert (row["px_x1"], row["px_y1"], row["px_x2"], row["px_y2"]) == (320, 240, 768, 528)
    assert (row["crop_width"], row["crop_height"]) == (320, 240)
    reversed_box = _region_row("[0.5, 0.5, 0.2, 0.2]", "normalized")
    assert (reversed_box["crop_width"], reversed_box["crop_height"]) == (0, 0), "never negative"


def test_vgr_region_rows_for_a_pixel_box():
    row = _region_row("[64, 96, 320, 360]", "pixels")
    assert (row["x1"], row["y1"], row["x2"], row["y2"]) == (0.1, 0.2, 0.5, 0.75)
    assert (row["px_x1"], row["px_y1"], row["px_x2"], row["px_y2"]) == (64, 96, 320, 360)
    assert (row["crop_width"], row["crop_height"]) == (256, 264)
    fractional = _region_row("[10.5, 20.2, 30.7, 40.1]", "pixels")
    assert (fractional["px_x1"], fractional["px_y1"], fractional["px_x2"], fractional["px_y2"]) == (10, 20, 31, 41)
    outside = _region_row("[-3, 0, 700, 480]", "pixels")
    assert (outside["px_x1"], outside["px_x2"], outside["crop_width"]) == (-3, 700, 640)


@pytest.mark.parametrize("box", ["[NaN, 0.1, 0.5, 0.5]", "[0.1, Infinity, 0.5, 0.5]", "[0.1, 0.1, -Infinity, 0.5]"])
@pytest.mark.parametrize("units", ["normalized", "pixels"])
def test_a_non_finite_box_has_no_pixel_box(box, units):
    row = _region_row(box, units)
    assert row["box_finite"] is False
    assert [row[k] for k in ("px_x1", "px_y1", "px_x2", "px_y2", "crop_width", "crop_height")] == [None] * 6
    assert not all(math.isfinite(row[k]) for k in ("x1", "y1", "x2", "y2"))


def test_a_runaway_integer_is_not_finite():
    row = _region_row("[0, 0, 1" + "0" * 400 + ", 1]", "normalized")
    assert row["box_finite"] is False and row["x2"] == math.inf and row["px_x2"] is None


def test_a_1e306_box_is_finite_but_has_no_pixel_box():
    """1e306 × 640 overflows a float: the box is finite, the range rules reject it, but no pixel box exists."""
    row = _region_row("[0.1, 0.1, 1e306, 0.5]", "normalized")
    assert row["box_finite"] is True and row["x2"] == 1e306
    assert [row[k] for k in ("px_x1", "px_y1", "px_x2", "px_y2", "crop_width", "crop_height")] == [None] * 6
    assert (row["image_width"], row["image_height"]) == (640, 480)


def test_a_1e306_pixel_box_normalises_to_a_finite_value():
    row = _region_row("[0, 0, 1e306, 50]", "pixels")
    assert row["box_finite"] is True and row["x2"] == pytest.approx(1e306 / 640)
    assert row["px_x2"] == math.ceil(1e306) and row["crop_width"] == 640


def test_region_rows_follow_region_order_and_markers():
    sample = _vgr("a <SOT>[0, 0, 0.5, 0.5]<EOT><image> b <SOT>[0.5, 0.5, 1, 1]<EOT> c Final answer: 1")
    rows = dataset_named("vgr").tables[1].rows(sample, "normalized")
    assert [(r["_item"], r["replay_marker"], r["px_x1"]) for r in rows] == [(0, True, 0), (1, False, 320)]
    assert dataset_named("vgr").tables[1].rows(_vgr("no boxes. Final answer: 1"), "normalized") == []
