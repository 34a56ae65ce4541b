"""`vgr-etl gc` on an output laid out by hand (manifests published as runs publish them), and the compaction plan:
which units merge, and the rows their merges must hold."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from beam_pipelines.files import WrittenFile
from beam_pipelines.templates import launch
from beam_pipelines.versioning.maintenance import collect_garbage, plan_groups
from beam_pipelines.versioning.manifest import Manifest, Unit, publish, read_current


def _file(root: Path, kind: str, path: str, rows: int, unit: str, size: int = 100) -> WrittenFile:
    data = bytes([rows % 256]) * size
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
    return WrittenFile(kind, path, rows, len(data), hashlib.sha256(data).hexdigest(), unit)


def _unit(root: Path, name: str, samples: int) -> Unit:
    return Unit(
        name,
        samples,
        (
            _file(root, "index", f"index/{name}-000000.parquet", samples, name, 10),
            _file(root, "parquet_samples", f"parquet/samples/{name}-000000.parquet", samples, name, 300),
            _file(root, "parquet_regions", f"parquet/regions/{name}-000000.parquet", samples, name, 200),
            _file(root, "webdataset", f"webdataset/{name}-000000.tar", samples, name, 400),
        ),
    )


def _publish(root: Path, version: str, parent: str | None, units: tuple[Unit, ...], rejected=()) -> Manifest:
    manifest = Manifest(
        version=version,
        parent=parent,
        command="run",
        created_at="2026-01-01T00:00:00+00:00",
        source="vgr",
        options={"source": "vgr"},
        inputs=(),
        units=units,
        rejected=tuple(rejected),
    )
    publish(str(root), manifest)
    (root / "versions" / version / "validation").mkdir(parents=True, exist_ok=True)
    (root / "versions" / version / "validation" / "index.html").write_text("<!doctype html>")
    return manifest


def _output(tmp_path) -> Path:
    """Three versions: a run, a refresh that lists the first unit again and adds one, a compaction of both; plus
    what a crashed fourth run left behind."""
    root = tmp_path / "out"
    a, b = _unit(root, "v000001-c0", 3), _unit(root, "v000002-c1", 2)
    compacted = _unit(root, "v000003-compact-00000", 5)
    _publish(root, "v000001", None, (a,), [_file(root, "rejected", "rejected/v000001-c0-000000.jsonl", 1, "")])
    _publish(root, "v000002", "v000001", (a, b), [_file(root, "rejected", "rejected/v000002-c1-000000.jsonl", 2, "")])
    _publish(root, "v000003", "v000002", (compacted,))
    _file(root, "parquet_samples", "parquet/samples/v000004-c9-000000.parquet", 1, "", 7)
    _file(root, "webdataset", "webdataset/v000004-c9-000000.tar", 1, "", 11)
    (root / "versions" / "v000004").mkdir(parents=True)
    (root / "versions" / "v000004" / "manifest.unpublished.json").write_text("{}")
    (root / "validation").mkdir()
    (root / "validation" / "index.html").write_text("<!doctype html>")
    return root


def _data_files(root: Path) -> set[str]:
    folders = ("parquet", "index", "webdataset", "rejected")
    return {str(p.relative_to(root)) for f in folders for p in (root / f).rglob("*") if p.is_file()}


def _files_of(root: Path, *names: str) -> set[str]:
    return {
        f.path
        for name in names
        for m in [Manifest.from_json((root / "versions" / name / "manifest.json").read_text())]
        for f in (*m.rejected, *(f for u in m.units for f in u.files))
    }


def test_gc_keeps_the_newest_versions_and_the_files_they_list(tmp_path):
    root = _output(tmp_path)
    before = _data_files(root)
    result = collect_garbage(str(root), keep=2)
    assert result["kept_versions"] == ["v000003", "v000002"]
    assert result["removed_versions"] == ["v000001", "v000004"]
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["v000002", "v000003"]
    kept = _files_of(root, "v000002", "v000003")
    assert _data_files(root) == kept
    removed = before - kept
    assert removed == {
        "rejected/v000001-c0-000000.jsonl",
        "parquet/samples/v000004-c9-000000.parquet",
        "webdataset/v000004-c9-000000.tar",
    }
    assert result["removed_files"] == 3 and result["freed_bytes"] == 100 + 7 + 11
    assert read_current(str(root)).version == "v000003", "the pointer is left alone"
    assert (root / "validation" / "index.html").exists(), "the last run's pages are not data files"


def test_gc_keeping_one_version_leaves_only_the_current_files(tmp_path):
    root = _output(tmp_path)
    result = collect_garbage(str(root), keep=1)
    assert result["kept_versions"] == ["v000003"]
    assert result["removed_versions"] == ["v000001", "v000002", "v000004"]
    assert _data_files(root) == {
        "index/v000003-compact-00000-000000.parquet",
        "parquet/samples/v000003-compact-00000-000000.parquet",
        "parquet/regions/v000003-compact-00000-000000.parquet",
        "webdataset/v000003-compact-00000-000000.tar",
    }
    assert result["removed_files"] == 8 + 2 + 2
    assert result["freed_bytes"] == 2 * (10 + 300 + 200 + 400) + 2 * 100 + 7 + 11
    assert (root / "versions" / "v000003" / "validation" / "index.html").exists()


def test_gc_keeping_more_versions_than_there_are_removes_only_strays(tmp_path):
    root = _output(tmp_path)
    result = collect_garbage(str(root), keep=10)
    assert result["kept_versions"] == ["v000003", "v000002", "v000001"]
    assert result["removed_versions"] == ["v000004"]
    assert result["removed_files"] == 2
    assert _data_files(root) == _files_of(root, "v000001", "v000002", "v000003")


def test_gc_twice_removes_nothing_more(tmp_path):
    root = _output(tmp_path)
    collect_garbage(str(root), keep=2)
    after = _data_files(root)
    again = collect_garbage(str(root), keep=2)
    assert again == {
        "kept_versions": ["v000003", "v000002"],
        "removed_versions": [],
        "removed_files": 0,
        "freed_bytes": 0,
    }
    assert _data_files(root) == after


def test_gc_after_an_earlier_gc_stops_at_the_oldest_manifest_left(tmp_path):
    root = _output(tmp_path)
    collect_garbage(str(root), keep=1)
    result = collect_garbage(str(root), keep=3)
    assert result["kept_versions"] == ["v000003"] and result["removed_files"] == 0


@pytest.mark.parametrize("keep", [0, -1])
def test_gc_refuses_to_keep_fewer_than_one_version(tmp_path, keep):
    root = _output(tmp_path)
    before = _data_files(root)
    with pytest.raises(ValueError, match="at least 1"):
        collect_garbage(str(root), keep=keep)
    assert _data_files(root) == before
    assert len(list((root / "versions").iterdir())) == 4


def test_gc_refuses_an_output_without_a_published_version(tmp_path):
    root = tmp_path / "out"
    _file(root, "index", "index/v000001-c0-000000.parquet", 1, "")
    with pytest.raises(ValueError, match="no published version"):
        collect_garbage(str(root), keep=1)
    assert (root / "index" / "v000001-c0-000000.parquet").exists()


def _sized(name: str, samples: int, size: int) -> Unit:
    files = (
        WrittenFile("index", f"index/{name}-000000.parquet", samples, 1, "", name),
        WrittenFile("parquet_samples", f"parquet/samples/{name}-000000.parquet", samples, size, "", name),
        WrittenFile("webdataset", f"webdataset/{name}-000000.tar", samples, size // 2, "", name),
    )
    return Unit(name, samples, files)


def test_plan_groups_packs_units_in_name_order_up_to_the_limits_inclusive():
    units = [_sized("v2-c", 3, 10), _sized("v1-a", 3, 10), _sized("v2-d", 4, 10), _sized("v2-b", 4, 10)]
    groups = plan_groups(units, max_samples=10, max_bytes=1000)
    assert [[u.name for u in g] for g in groups] == [["v1-a", "v2-b", "v2-c"]], "v2-d would make 14 samples"
    exact = plan_groups([_sized("a", 5, 10), _sized("b", 5, 10)], max_samples=10, max_bytes=20)
    assert [[u.name for u in g] for g in exact] == [["a", "b"]]


def test_plan_groups_sizes_units_by_their_largest_kind_of_file():
    a, b = _sized("a", 1, 600), _sized("b", 1, 600)
    assert a.bytes == 600, "the samples Parquet, not the sum of all kinds"
    assert plan_groups([a, b], max_samples=100, max_bytes=1200) == [[a, b]]
    assert plan_groups([a, b], max_samples=100, max_bytes=1199) == []


def test_plan_groups_leaves_lone_units_alone():
    assert plan_groups([], 10, 10) == []
    assert plan_groups([_sized("a", 1, 1)], 10, 10) == []
    big = [_sized("a", 10, 1), _sized("b", 10, 1), _sized("c", 10, 1)]
    assert plan_groups(big, max_samples=10, max_bytes=10) == []


@pytest.mark.slow
def test_gc_through_the_template_launcher_runs_as_a_job(tmp_path, capsys):
    """What a scheduled gc launches: the Flex launcher's entry with `--command=gc` submits a job of one step (here
    on the local runner, waited for) that deletes what `collect_garbage` deletes."""
    root = _output(tmp_path)
    args = ["--command=gc", f"--output={root}", "--keep_versions=1", "--runner=FnApiRunner"]
    assert launch(args) == 0
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["v000003"]
    assert _data_files(root) == _files_of(root, "v000003")
    assert "gc:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep_versions=0"], "--keep_versions must be at least 1"),
        (["--keep_versions=2", "--source=vgr"], "--source: not a parameter of gc"),
    ],
)
def test_gc_through_the_template_launcher_refuses_mistakes(tmp_path, capsys, args, message):
    root = _output(tmp_path)
    assert launch(["--command=gc", f"--output={root}", *args, "--runner=FnApiRunner"]) == 2
    assert message in capsys.readouterr().err
    assert len(list((root / "versions").iterdir())) == 4, "nothing deleted"
