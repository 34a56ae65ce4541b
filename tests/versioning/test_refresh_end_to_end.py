"""The issue's sequence through the command line: run, refresh with unchanged input, add a file, change records
(both policies), a refresh killed part-way and re-run, compact, gc; every report states new/unchanged/removed."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from beam_pipelines.cli import main
from beam_pipelines.demo.generate import generate
from beam_pipelines.templates import launch
from beam_pipelines.versioning.manifest import data_files, read_current
from tests.conftest import RUNNER
from tests.helpers.gcs import subprocess_env

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`


def cli(*args: str) -> int:
    return main([*args, RUNNER])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The demo's VGR Parquet file (80 rows) alone in an input folder, and a second file of new rows."""
    root = tmp_path_factory.mktemp("refresh")
    run = generate(root / "data")["vgr"]
    inputs = root / "inputs"
    inputs.mkdir()
    table = pq.read_table(next(Path(p) for p in _glob(run.inputs[0])))
    pq.write_table(table, inputs / "part-a.parquet")
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        row["conversations"][0]["value"] += f" Variant {i}."
    extra = pa.Table.from_pylist(rows, schema=table.schema)
    return {"root": root, "inputs": inputs, "image_root": run.image_root, "extra": extra, "rows": len(rows)}


def _glob(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def args(src: dict, out: Path, *more: str) -> list[str]:
    return [
        "--source=vgr",
        f"--input={src['inputs']}/*.parquet",
        f"--image_root={src['image_root']}",
        f"--output={out}",
        "--shard_max_samples=20",
        *more,
    ]


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def dataset_ids(out: Path) -> list[str]:
    ids = []
    for path in data_files(str(out)):
        ids.extend(pq.read_table(path, columns=["sample_id"]).column(0).to_pylist())
    return sorted(ids)


def files_under(out: Path) -> dict[str, int]:
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for d in ("parquet", "webdataset", "index", "rejected")
        for p in (out / d).rglob("*")
        if p.is_file()
    }


def check_manifest(out: Path) -> None:
    """Every file the manifest lists exists with its size, checksum and row count."""
    manifest = read_current(str(out))
    assert manifest is not None
    for unit in manifest.units:
        for f in unit.files:
            data = (out / f.path).read_bytes()
            assert len(data) == f.bytes and hashlib.sha256(data).hexdigest() == f.sha256, f.path
            if f.path.endswith(".parquet"):
                assert pq.read_metadata(out / f.path).num_rows == f.rows


def test_run_refresh_change_compact_gc(source, tmp_path):
    out = tmp_path / "out"
    n = source["rows"]
    assert cli("run", *args(source, out)) == 0
    first = report(out)
    assert (first["new"], first["unchanged"], first["removed"]) == (n, 0, 0)
    assert first["version"]["version"] == "v000001" and first["version"]["published"]
    check_manifest(out)
    assert json.loads((out / "current.json").read_text())["manifest"] == "versions/v000001/manifest.json"
    ds = datasets.load_dataset("parquet", data_files={"train": data_files(str(out))}, split="train")
    assert len(ds) == n

    before = files_under(out)
    assert cli("refresh", *args(source, out)) == 0
    noop = report(out)
    assert noop["version"]["nothing_to_do"] and (noop["new"], noop["unchanged"], noop["removed"]) == (0, n, 0)
    assert noop["input_records"] == 0 and files_under(out) == before
    assert read_current(str(out)).version == "v000001"

    pq.write_table(source["extra"].slice(0, 10), source["inputs"] / "part-b.parquet")
    try:
        assert cli("refresh", *args(source, out)) == 0
        added = report(out)
        assert added["input_records"] == 10 and added["version"]["input_files"]["unchanged"] == 1
        assert (added["new"], added["unchanged"], added["removed"]) == (10, n, 0)
        assert all(files_under(out)[k] == v for k, v in before.items())  # nothing published is rewritten
        assert len(dataset_ids(out)) == n + 10
        check_manifest(out)

        kept = tmp_path / "kept"
        shutil.copytree(out, kept)
        table = pq.read_table(source["inputs"] / "part-a.parquet").to_pylist()
        edited = table[3]["conversations"][0]["value"]
        table[3]["conversations"][0]["value"] = edited + " (edited upstream)"
        del table[45]
        old_ids = set(dataset_ids(out))
        pq.write_table(pa.Table.from_pylist(table), source["inputs"] / "part-a.parquet")

        assert cli("refresh", *args(source, kept)) == 0
        keep = report(kept)
        assert (keep["new"], keep["unchanged"], keep["removed"]) == (1, n + 10, 2)
        assert keep["version"]["dropped"] == 0 and len(dataset_ids(kept)) == n + 11
        kept_units, kept_ids = len(read_current(str(kept)).units), set(dataset_ids(kept))
        scheduled = ["--command=compact", f"--output={kept}", "--chunk_rows=1000", "--runner=FnApiRunner"]
        assert launch(scheduled) == 0  # what the scheduled compact launches (the Flex launcher's entry)
        assert len(read_current(str(kept)).units) < kept_units and set(dataset_ids(kept)) == kept_ids
        check_manifest(kept)

        assert cli("refresh", *args(source, out, "--on_removed=drop")) == 0
        drop = report(out)
        assert (drop["new"], drop["unchanged"], drop["removed"]) == (1, n + 8, 2)
        assert drop["already_present"] == n - 2 and drop["version"]["dropped"] == 2
        ids = set(dataset_ids(out))
        assert len(ids) == n + 9 and len(old_ids - ids) == 2 and len(ids - old_ids) == 1
        manifest = read_current(str(out))
        rewritten = [u.name for u in manifest.units if "-rewrite-" in u.name]
        assert len(rewritten) == 2  # rows 3 and 45 are in chunks 0 and 2: only those two units are rewritten
        assert sum(u.name.startswith("v000001-") for u in manifest.units) == 2  # the other two stay as they were
        tars = [p for p in data_files(str(out), "webdataset") if "-rewrite-" in p]
        keys = {s["__key__"] for s in wds.WebDataset(tars, shardshuffle=False)}
        assert keys and not keys & (old_ids - ids)
        check_manifest(out)

        units_before = len(manifest.units)
        assert cli("compact", f"--output={out}", "--shard_max_samples=1000") == 0
        compacted = read_current(str(out))
        assert len(compacted.units) < units_before and set(dataset_ids(out)) == ids
        assert report(out)["unchanged"] == len(ids) and report(out)["new"] == 0
        rows_before = {r["sample_id"]: r for r in _rows(out)}
        assert len(rows_before) == len(ids)
        check_manifest(out)

        assert main(["gc", f"--output={out}", "--keep=2"]) == 0
        assert sorted(os.listdir(out / "versions")) == ["v000003", "v000004"]
        assert main(["gc", f"--output={out}", "--keep=1"]) == 0
        assert os.listdir(out / "versions") == ["v000004"]
        assert all(p.name.startswith("v000004-") for p in (out / "index").iterdir())
        check_manifest(out)
        assert {r["sample_id"]: r for r in _rows(out)} == rows_before
    finally:
        (source["inputs"] / "part-b.parquet").unlink(missing_ok=True)


def test_drop_keeps_rewrites_of_one_file_grown_over_versions_apart(source, tmp_path):
    """A file gained rows in two versions (two units of one chunk id), then lost a row from each: both units are
    rewritten in one version under distinct names, and the result holds what a full run of the file holds."""
    rows = pq.read_table(source["inputs"] / "part-a.parquet").slice(0, 5).to_pylist()
    inputs, out, full = tmp_path / "in", tmp_path / "out", tmp_path / "full"
    inputs.mkdir()

    def argv(output: Path) -> list[str]:
        return ["--source=vgr", f"--input={inputs}", f"--image_root={source['image_root']}", f"--output={output}"]

    def upstream(*keep: int) -> None:
        pq.write_table(pa.Table.from_pylist([rows[i] for i in keep]), inputs / "a.parquet")

    upstream(0, 1, 2)
    assert cli("run", *argv(out)) == 0
    upstream(0, 1, 2, 3, 4)
    assert cli("refresh", *argv(out)) == 0 and len(read_current(str(out)).units) == 2
    upstream(1, 2, 4)
    assert cli("refresh", *argv(out), "--on_removed=drop") == 0
    assert report(out)["version"]["dropped"] == 2
    manifest = read_current(str(out))
    paths = [f.path for u in manifest.units for f in u.files]
    assert len(paths) == len(set(paths)) and len([u for u in manifest.units if "-rewrite-" in u.name]) == 2
    check_manifest(out)
    assert cli("run", *argv(full)) == 0
    assert dataset_ids(out) == dataset_ids(full) and len(dataset_ids(out)) == 3
    assert cli("refresh", *argv(out), "--formats=webdataset, parquet", "--replay_frame=unpadded") == 0
    assert report(out)["version"]["nothing_to_do"]
    assert cli("refresh", *argv(out), "--box_units=pixels") == 2


def _rows(out: Path) -> list[dict]:
    return [r for path in data_files(str(out)) for r in pq.read_table(path).to_pylist()]


def _spawn(argv: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "beam_pipelines", *argv, RUNNER]
    return subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_refresh_killed_part_way_is_finished_by_the_next_run(tmp_path):
    """Kill the refresh as soon as its first shard is published; the current version stays readable, and the
    next refresh ends with the same samples and rows as one clean run over all the inputs."""
    data = generate(tmp_path / "data")["vgr"]
    src = {"inputs": tmp_path / "in", "image_root": data.image_root}
    src["inputs"].mkdir()
    table = pq.read_table(_glob(data.inputs[0])[0])
    pq.write_table(table, src["inputs"] / "a.parquet")
    out = tmp_path / "out"
    assert cli("run", *args(src, out, "--shard_max_samples=5")) == 0
    rows = table.to_pylist() * 3
    for i, row in enumerate(rows):
        row["conversations"][0]["value"] += f" Copy {i}."
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), src["inputs"] / "b.parquet")

    proc = _spawn(["refresh", *args(src, out, "--shard_max_samples=5")])
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "parquet" / "samples").glob("v000002-*")):
        assert proc.poll() is None, "the refresh ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_current(str(out)).version == "v000001"
    check_manifest(out)
    assert len(dataset_ids(out)) == len(table)

    assert cli("refresh", *args(src, out, "--shard_max_samples=5")) == 0
    clean = tmp_path / "clean"
    assert cli("run", *args(src, clean, "--shard_max_samples=5")) == 0
    assert dataset_ids(out) == dataset_ids(clean)
    by_id = {r["sample_id"]: r for r in _rows(clean)}
    assert {r["sample_id"]: r for r in _rows(out)} == by_id
    names = {p.name for p in (out / "parquet" / "samples").iterdir()}
    assert names == {Path(p).name for p in data_files(str(out))}  # the killed attempt's files were cleaned up
    with tarfile.open(data_files(str(out), "webdataset")[-1]) as tar:
        assert tar.getmembers()
