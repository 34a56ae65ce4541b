"""Inputs, images and outputs in buckets of a real GCS emulator: the same outputs as a local run."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.cli import main
from beam_pipelines.versioning.inputs import fingerprint
from beam_pipelines.versioning.manifest import read_current
from tests.conftest import run_cli
from tests.helpers.outputs import shard_names, snapshot
from tests.helpers.reports import checked

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

SOURCES = ("vgr", "visualprm", "visualprm_raw", "visualprocessbench")


@pytest.fixture(scope="module")
def on_gcs(demo, gcs):
    """The demo data uploaded to a bucket: (local data root, its gs:// URL)."""
    local = os.path.commonpath([p for run in demo.values() for p in (*run.inputs, run.image_root)])
    url = gcs.upload_tree(local, gcs.bucket("vgr-inputs") + "/demo")
    return local, url


def gs_run(run, local: str, url: str):
    """The same run on the bucket; VGR's two globs become one gs:// directory (a prefix, not an object)."""
    inputs = tuple(p.replace(local, url) for p in run.inputs)
    if run.source == "vgr":
        inputs = (inputs[0].rsplit("/", 1)[0],)
    return replace(run, inputs=inputs, image_root=run.image_root.replace(local, url))


@pytest.mark.parametrize("source", SOURCES)
def test_whole_pipeline_on_gcs_equals_the_local_run(demo, gcs, on_gcs, source, tmp_path):
    local, url = on_gcs
    out_url = f"{gcs.bucket('vgr-outputs')}/{source}"
    assert run_cli(*gs_run(demo[source], local, url).argv(out_url), "--max_reject_fraction=0.5") == 0
    assert run_cli(*demo[source].argv(str(tmp_path / "local")), "--max_reject_fraction=0.5") == 0
    remote = gcs.download_tree(out_url, tmp_path / "remote")
    assert checked((remote / "report.json").read_text())["invariant"]["holds"]
    assert not [n for n in gcs.names(out_url) if n.startswith("_tmp/")]
    assert [n.split("-", 1)[0] for n in shard_names(remote)] == [
        n.split("-", 1)[0] for n in shard_names(tmp_path / "local")
    ]
    assert snapshot(remote, {url: local}) == snapshot(tmp_path / "local")


def test_a_rerun_on_gcs_publishes_a_new_version_and_gc_removes_the_old_one(demo, gcs, on_gcs, tmp_path):
    local, url = on_gcs
    out_url = f"{gcs.bucket('vgr-outputs')}/rerun"
    run = gs_run(demo["visualprocessbench"], local, url)
    assert run_cli(*run.argv(out_url), "--max_reject_fraction=0.5", "--chunk_rows=2") == 0
    first = [n for n in gcs.names(out_url) if n.startswith(("parquet/", "webdataset/", "index/"))]
    assert run_cli(*run.argv(out_url), "--max_reject_fraction=0.5", "--formats=parquet") == 0
    assert set(first) <= set(gcs.names(out_url)), "readers of the first version keep its files until gc"
    manifest = read_current(out_url)
    assert manifest is not None and manifest.version == "v000002" and manifest.parent == "v000001"
    assert len(manifest.files("parquet_samples")) == 1 and not manifest.files("webdataset")
    assert main(["gc", f"--output={out_url}", "--keep=1"]) == 0
    left = gcs.names(out_url)
    assert [n for n in left if n.startswith("parquet/samples/")] == [manifest.files("parquet_samples")[0].path]
    assert not [n for n in left if n.startswith(("webdataset/", "_tmp/", "versions/v000001/"))]
    assert snapshot(gcs.download_tree(out_url, tmp_path / "second"))["counts"]["input_records"] == 9


def test_a_refresh_on_gcs_fingerprints_objects_and_reads_only_what_changed(demo, gcs, on_gcs):
    local, url = on_gcs
    out_url = f"{gcs.bucket('vgr-outputs')}/refresh"
    run = gs_run(demo["visualprocessbench"], local, url)
    assert run_cli(*run.argv(out_url), "--max_reject_fraction=0.5") == 0
    inputs = read_current(out_url).inputs
    assert inputs and all(i["content"].startswith("gcs:") and i["size"] > 0 for i in inputs)
    assert main(["refresh", *run.argv(out_url), "--max_reject_fraction=0.5", "--runner=FnApiRunner"]) == 0
    assert read_current(out_url).version == "v000001"
    with FileSystems.open(f"{out_url}/report.json") as f:
        assert checked(f.read())["version"]["nothing_to_do"]
    blob = inputs[0]["path"]
    with FileSystems.open(blob) as f:
        data = f.read()
    with FileSystems.create(blob) as f:  # a new object generation with the same bytes: not read again
        f.write(data)
    assert main(["refresh", *run.argv(out_url), "--max_reject_fraction=0.5", "--runner=FnApiRunner"]) == 0
    with FileSystems.open(f"{out_url}/report.json") as f:
        assert checked(f.read())["version"]["nothing_to_do"]
    assert fingerprint(blob)["mtime_ns"] != inputs[0]["mtime_ns"]  # so it was the checksum that matched
