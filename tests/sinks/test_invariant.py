"""The count invariant: counted from the files, able to fail, and a fault keeps the version unpublished."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.cli import main
from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Sample
from beam_pipelines.sinks.invariant import FileRows, Group, check, rows_in_file
from beam_pipelines.sinks.parquet import ParquetShardWriterFn
from beam_pipelines.sinks.shards import ShardLimits, ShardTarget
from beam_pipelines.sinks.transforms import WriteIndexShards, WriteParquetShards, WriteWebDatasetShards
from beam_pipelines.versioning import rewrite
from tests.conftest import RUNNER, parquet_rows, report_of, run_cli


def test_rows_are_counted_in_each_kind_of_file(tmp_path):
    (tmp_path / "index").mkdir()
    pq.write_table(pa.table({"sample_id": ["a", "b", "c"]}), tmp_path / "index" / "u-000000.parquet")
    (tmp_path / "rejected").mkdir()
    (tmp_path / "rejected" / "u-000000.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (tmp_path / "webdataset").mkdir()
    with tarfile.open(tmp_path / "webdataset" / "u-000000.tar", "w") as tar:
        for name in ("k1.json", "k1.image.png", "k1.r000.png", "k2.json", "k2.image.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    files = [
        WrittenFile("index", "index/u-000000.parquet", 3, 1),
        WrittenFile("rejected", "rejected/u-000000.jsonl", 2, 1),
        WrittenFile("webdataset", "webdataset/u-000000.tar", 2, 1),
    ]
    assert [rows_in_file(f, str(tmp_path)).rows for f in files] == [3, 2, 2]


def test_the_invariant_names_every_difference():
    files = [WrittenFile("index", "index/a.parquet", 5, 1), WrittenFile("index", "index/b.parquet", 3, 1)]
    found = [FileRows("index/a.parquet", "index", 5), FileRows("index/b.parquet", "index", 3)]
    outcomes = {"accepted": 8, "rejected": 1, "duplicates": 1}
    good = check(10, outcomes, {"index": 8}, files, found)
    assert good.holds and good.problems == [] and good.rows_in_files == {"index": 8}

    lost = check(11, outcomes, {"index": 8}, files, found)
    assert not lost.holds and lost.problems == [
        "11 records read, but the outcomes count 10 (accepted 8 + rejected 1 + duplicates 1)"
    ]

    short = check(10, outcomes, {"index": 8}, files, [found[0], FileRows("index/b.parquet", "index", 2)])
    assert short.problems == ["index/ holds 7 rows, expected 8", "index/b.parquet holds 2 rows, its writer wrote 3"]

    twice = check(10, outcomes, {"index": 8}, [*files, files[1]], found)
    assert twice.problems == ["index/b.parquet was written more than once"]


def _sample(row: int, chunk: str) -> Sample:
    image = LoadedImage("a.png", "/r/a.png", "as_written", EncodedImage(b"\x89PNG" + bytes([row]), "png", 4, 3), "PNG")
    return Sample(
        sample_id=f"s{chunk}{row:03d}",
        source="vgr",
        subset="",
        provenance=Provenance("in.jsonl", row, chunk, offset=row % 100),
        image_paths=("a.png",),
        question="q",
        answer="a",
        images=(image,),
    )


@pytest.mark.slow
def test_a_chunk_split_across_bundles_loses_nothing_and_writes_no_name_twice(tmp_path):
    """A fusion break between the stages and the writers (a Reshuffle, two workers) hands the records of one chunk
    to several bundles: each bundle's parts are named after their first record, so no file replaces another."""
    output = str(tmp_path / "out")
    target = ShardTarget(OutputLayout(output), ShardLimits(100, 1 << 30), "v000001")
    samples = [_sample(row, chunk) for chunk in ("c0", "c1") for row in range(40)]
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    with beam.Pipeline(runner="FnApiRunner", options=options) as p:
        split = p | beam.Create(samples) | "FusionBreak" >> beam.Reshuffle()
        files = (
            split | "Parquet" >> WriteParquetShards(target),
            split | "Tars" >> WriteWebDatasetShards(target),
            split | "Index" >> WriteIndexShards(target),
        ) | beam.Flatten()
        _ = (
            files
            | beam.Filter(lambda f: isinstance(f, WrittenFile))
            | beam.Map(lambda f: json.dumps([f.kind, f.path, f.rows]))
            | beam.io.WriteToText(str(tmp_path / "written"), shard_name_template="")
        )
    written = [json.loads(line) for line in (tmp_path / "written").read_text().splitlines()]
    paths = Counter(path for _, path, _ in written)
    assert max(paths.values()) == 1, "no file is written twice"
    per_chunk = Counter(path.rsplit("-", 2)[-2] for kind, path, _ in written if kind == "index")
    assert min(per_chunk.values()) > 1, "the test must really split chunks across bundles"
    rows = parquet_rows(output, "samples")
    assert sorted(r["sample_id"] for r in rows) == sorted(s.sample_id for s in samples)
    found = [rows_in_file(WrittenFile(kind, path, n, 0), output) for kind, path, n in written]
    assert [f.rows for f in found] == [n for _, _, n in written]


@pytest.mark.slow
def test_a_writer_that_drops_a_row_leaves_the_version_unpublished(demo, tmp_path, monkeypatch, capsys):
    write = ParquetShardWriterFn.write
    calls = {"n": 0}

    def dropping(self, element):
        calls["n"] += 1
        if calls["n"] != 3:  # a writer fault: the third sample never reaches its file
            write(self, element)
        else:
            self._rows -= 1  # and the writer's own count agrees with its file, so only the invariant can tell

    monkeypatch.setattr(ParquetShardWriterFn, "write", dropping)
    out = tmp_path / "o"
    assert run_cli(*demo["visualprocessbench"].argv(str(out)), "--max_reject_fraction=0.5") == 1
    report = report_of(out)
    accepted = report["accepted"]
    assert not report["invariant"]["holds"] and not report["version"]["published"]
    assert f"parquet/samples/ holds {accepted - 1} rows, expected {accepted}" in report["invariant"]["problems"]
    assert report["invariant"]["rows_in_files"]["index"] == accepted
    assert "the counts do not add up: parquet/samples/ holds" in capsys.readouterr().err.splitlines()[-1]
    assert not (out / "current.json").exists()


def test_groups_and_planned_rows_are_checked_too():
    files = [WrittenFile("index", "index/r-000000.parquet", 2, 1)]
    found = [FileRows("index/r-000000.parquet", "index", 2)]
    rewrite = Group("the rewrite of u", frozenset({"index/r-000000.parquet"}), {"index": 3})
    checked = check(0, {}, {}, files, found, records_planned=0, groups=(rewrite,))
    assert checked.problems == ["the rewrite of u: index/ holds 2 rows, expected 3"]
    short = check(5, {"accepted": 5}, {}, [], [], records_planned=7)
    assert short.problems == ["5 records read, but the chunks planned hold 7"] and short.records_planned == 7


@pytest.mark.slow
def test_a_rewrite_that_loses_a_sample_leaves_the_refresh_unpublished(demo, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in" / "test.jsonl"
    source.parent.mkdir()
    lines = Path(demo["visualprocessbench"].inputs[0]).read_text().splitlines(keepends=True)
    source.write_text("".join(lines))
    out = tmp_path / "out"
    args = ["--source=visualprocessbench", f"--input={source}", f"--image_root={demo['visualprocessbench'].image_root}"]
    assert run_cli(*args, f"--output={out}", "--max_reject_fraction=0.5") == 0
    source.write_text("".join(lines[2:]))  # two records gone upstream
    kept = rewrite._kept
    monkeypatch.setattr(rewrite, "_kept", lambda table, drop: kept(table, drop).slice(1))  # and one more lost
    refresh = main(["refresh", *args, f"--output={out}", "--on_removed=drop", "--max_reject_fraction=0.5", RUNNER])
    assert refresh == 1
    report = report_of(out)
    assert not report["version"]["published"] and report["version"]["version"] == "v000002"
    assert any(p.startswith("the rewrite of v000001-") and "expected" in p for p in report["invariant"]["problems"])
    assert json.loads((out / "current.json").read_text())["version"] == "v000001"
    assert "the counts do not add up" in capsys.readouterr().err
