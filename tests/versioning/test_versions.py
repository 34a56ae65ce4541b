"""Pure parts of versioning: names, the manifest round trip, input fingerprints, compaction groups."""

from __future__ import annotations

import os

import pytest

from beam_pipelines.files import WrittenFile
from beam_pipelines.versioning.inputs import fingerprint, unchanged
from beam_pipelines.versioning.maintenance import plan_groups
from beam_pipelines.versioning.manifest import (
    Manifest,
    Unit,
    unit_origin,
    units_of,
    version_name,
    version_number,
)
from beam_pipelines.versioning.plan import incompatible_options
from beam_pipelines.versioning.transforms import Replacement, replaced_rows, rewritten_name


def test_version_names_sort_and_parse():
    assert version_name(7) == "v000007" and version_number("v000123") == 123
    assert sorted(version_name(n) for n in (10, 9, 100)) == ["v000009", "v000010", "v000100"]
    with pytest.raises(ValueError):
        version_number("7")
    # a rewrite is named after the unit it descends from, so rewrites of units of different versions of one chunk
    # (appended rows) stay apart, and names do not grow with every rewrite
    assert unit_origin("v000002-rewrite-v000001-a-1f-00003") == "v000001-a-1f-00003"
    assert rewritten_name("v000004", "v000002-rewrite-v000001-a-1f-00003") == "v000004-rewrite-v000001-a-1f-00003"
    assert rewritten_name("v000003", "v000001-a-1f-00003") != rewritten_name("v000003", "v000002-a-1f-00003")
    assert rewritten_name("v000003", "v000002-compact-00001") == "v000003-rewrite-v000002-compact-00001"


def _info(kind: str, path: str, rows: int, unit: str) -> WrittenFile:
    return WrittenFile(kind, path, rows, 10 * rows, "ab" * 32, unit)


def test_units_group_files_and_count_samples_from_the_index():
    infos = [
        _info("index", "index/v1-a-000.parquet", 3, "v1-a"),
        _info("parquet_samples", "parquet/samples/v1-a-000.parquet", 3, "v1-a"),
        _info("webdataset", "webdataset/v1-a-000.tar", 3, "v1-a"),
        _info("rejected", "rejected/v1-a-000.jsonl", 2, "v1-a"),
        _info("index", "index/v1-b-000.parquet", 1, "v1-b"),
    ]
    units = units_of(infos)
    assert [(u.name, u.samples, len(u.files)) for u in units] == [("v1-a", 3, 3), ("v1-b", 1, 1)]
    assert units[0].of_kind("webdataset")[0].path == "webdataset/v1-a-000.tar"


def test_manifest_round_trips_through_json():
    unit = Unit(
        "v000001-a-00000",
        2,
        (WrittenFile("index", "index/v000001-a-00000-000000.parquet", 2, 99, "00" * 32, "v000001-a-00000"),),
    )
    manifest = Manifest(
        version="v000001",
        parent=None,
        command="run",
        created_at="2026-11-22T00:00:00+00:00",
        source="vgr",
        options={"source": "vgr", "formats": "parquet"},
        inputs=({"path": "/in/a.parquet", "size": 5, "mtime_ns": 1, "content": "sha256:x"},),
        units=(unit,),
        counts={"new": 2},
        report="versions/v000001/report.json",
    )
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest and again.samples == 2 and again.files("index")[0].bytes == 99


def test_fingerprints_see_changes_and_forgive_a_touch(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"x": 1}\n')
    first = fingerprint(str(path))
    assert first["content"].startswith("sha256:") and first["size"] == 9
    assert fingerprint(str(path), first) is first  # same size and time: not even hashed
    os.utime(path, ns=(first["mtime_ns"] + 10**9, first["mtime_ns"] + 10**9))
    touched = fingerprint(str(path), first)
    assert touched["mtime_ns"] != first["mtime_ns"] and unchanged(touched, first)
    path.write_text('{"x": 2}\n')
    assert not unchanged(fingerprint(str(path), first), first)
    assert not unchanged(first, None)
    assert not unchanged({"path": "hf://datasets/o/n/x.parquet"}, {"path": "hf://datasets/o/n/x.parquet"})


def _unit(name: str, samples: int, size: int) -> Unit:
    return Unit(name, samples, (WrittenFile("webdataset", f"webdataset/{name}-000000.tar", samples, size, "", name),))


def test_compaction_packs_consecutive_small_units_and_leaves_full_ones():
    units = [_unit("v1-a", 100, 100), _unit("v2-b", 10, 10), _unit("v2-c", 10, 10), _unit("v3-d", 95, 10)]
    groups = plan_groups(units, max_samples=100, max_bytes=1000)
    assert [[u.name for u in g] for g in groups] == [["v2-b", "v2-c"]]
    by_bytes = plan_groups([_unit("a", 1, 600), _unit("b", 1, 600), _unit("c", 1, 300)], 100, 1000)
    assert [[u.name for u in g] for g in by_bytes] == [["b", "c"]]


def test_content_options_are_compared_as_they_shape_the_rows():
    options = {"source": "vgr", "formats": "parquet,webdataset", "replay_preset": "vgr_llava_next_clip336"}
    parent = Manifest("v000001", None, "run", "", "vgr", {**options, "box_units": "normalized"}, (), ())
    same = {**parent.options, "formats": "webdataset, parquet", "replay_frame": "unpadded"}  # the preset's frame
    assert incompatible_options(parent, same) == []
    assert incompatible_options(parent, {**same, "box_units": "pixels", "replay_frame": "canvas"}) == [
        "--box_units (current version: 'normalized', now: 'pixels')",
        "--replay_frame (current version: None, now: 'canvas')",
    ]


def test_a_replacement_must_hold_the_rows_of_what_it_replaces_less_what_it_drops():
    def unit(name: str, samples: int, regions: int) -> Unit:
        files = (
            WrittenFile("index", f"index/{name}-000000.parquet", samples, 1, "", name),
            WrittenFile("parquet_samples", f"parquet/samples/{name}-000000.parquet", samples, 1, "", name),
            WrittenFile("parquet_regions", f"parquet/regions/{name}-000000.parquet", regions, 1, "", name),
        )
        return Unit(name, samples, files)

    units = {"a": unit("a", 4, 9), "b": unit("b", 2, 3)}
    merged = replaced_rows(Replacement(("a", "b"), ()), units)
    assert merged == {"index": 6, "parquet_samples": 6, "parquet_regions": 12}
    dropped = replaced_rows(Replacement(("a",), (), dropped=1), units)
    assert dropped == {"index": 3, "parquet_samples": 3}, "how many regions a dropped sample had is not known"
