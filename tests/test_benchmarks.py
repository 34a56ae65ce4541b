"""The benchmark's floor loop does the pipeline's work: the same files, byte for byte (not a timing test)."""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import peer
from benchmarks.data import generate
from benchmarks.floor import decode_only, run_floor
from tests.conftest import parquet_rows, run_cli

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`


def data_files(output: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(output)): p.read_bytes()
        for folder in ("parquet", "index", "webdataset", "rejected")
        for p in sorted((output / folder).rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("source", ["vgr", "visualprm_raw"])
def test_floor_writes_the_files_the_pipeline_writes(tmp_path, source):
    data = generate(tmp_path / "data", n_vgr=12, n_prm=6)
    pipeline, floor = tmp_path / "pipeline", tmp_path / "floor"
    assert run_cli(*data.argv(source, str(pipeline)), "--chunk_rows=5") == 0
    pattern = data.vgr_input if source == "vgr" else data.prm_input
    result = run_floor(source, pattern, data.image_root, str(floor), 5)
    assert result["samples"] == len(parquet_rows(pipeline, "samples")) == (12 if source == "vgr" else 6)
    ours, theirs = data_files(floor), data_files(pipeline)
    assert sorted(ours) == sorted(theirs) and len(ours) >= 6
    assert [name for name in ours if ours[name] != theirs[name]] == []  # byte for byte
    assert decode_only(source, pattern, data.image_root)["images"] == result["images"]


def test_generated_mix_has_every_image_kind(tmp_path):
    data = generate(tmp_path / "data", n_vgr=40, n_prm=4)
    kinds = {p.split("/")[-2] for p in glob.glob(f"{data.image_root}/*/*")}
    assert kinds >= {"photo", "chart", "document"}


def test_the_annotation_benchmark_runs_the_pipelines_scorer_on_a_tiny_model(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from benchmarks import annotation

    monkeypatch.setattr(annotation, "RESULTS", tmp_path)
    results = annotation.main(["--quick", "--batches", "1"])
    for kind, positions in (("prm", 10), ("region", 1)):
        assert results[kind]["per_s"] > 0 and results[kind]["tflop_per_sequence"] >= 0
        assert (
            len(annotation.sequence(annotation.TINY, kind, annotation.np.random.default_rng(0)).positions) == positions
        )
    assert (tmp_path / "annotation-cpu-quick.json").exists() and results["parameters"] > 0


def test_the_peer_is_skipped_with_its_reason_when_it_is_not_installed(tmp_path, capsys):
    exe, reason = peer.installed(tmp_path / "none", install=False)
    assert exe is None and "img2dataset 1.47.0 is not installed" in reason


def test_the_peers_successes_are_counted_from_its_shard_stats(tmp_path):
    for shard, (ok, failed) in enumerate(((98, 2), (100, 0))):
        status = {"success": ok, **({"failed_to_resize": failed} if failed else {})}
        stats = {"count": ok + failed, "successes": ok, "status_dict": status}
        (tmp_path / f"{shard:05d}_stats.json").write_text(json.dumps(stats))
    assert peer.successes(tmp_path) == (198, {"failed_to_resize": 2})


def test_the_peer_data_is_one_two_box_record_per_jpeg(tmp_path):
    data = peer.generate(tmp_path, 4)
    assert [Image.open(p).size for p in data.images] == [(640, 480), (800, 600)] * 2
    out = tmp_path / "out"
    assert run_cli(*data.argv(str(out))) == 0
    assert len(parquet_rows(out, "samples")) == 4 and len(parquet_rows(out, "regions")) == 8


BURN_IN_AN_ORPHAN = """
import os, sys, time
parent = os.getpid()
if os.fork():
    sys.exit(0)  # the parent exits at once: its child is an orphan
os.close(1); os.close(2)  # let the caller's pipes close, as a finished worker's do
while os.getppid() == parent:
    time.sleep(0.001)
adopted_by = os.getppid()
end = time.process_time() + 1.0
while time.process_time() < end:
    pass
with open(sys.argv[1], "w") as out:
    out.write(f"{adopted_by} {time.monotonic()}")
"""


def test_the_peer_comparison_counts_the_cpu_of_workers_that_outlive_their_parent(tmp_path):
    marker = tmp_path / "orphan"
    called = time.monotonic()
    done, seconds, cpu = peer.whole_tree([sys.executable, "-c", BURN_IN_AN_ORPHAN, str(marker)])
    adopted_by, orphan_done = marker.read_text().split()  # there already: the orphan was waited for
    assert done.returncode == 0 and int(adopted_by) == os.getpid()
    assert cpu["user"] + cpu["system"] >= 1.0  # the orphan's second of CPU, which the parent alone cannot reach
    assert called + seconds < float(orphan_done)  # the wall is the command's, not its orphans'


def test_what_a_tool_wrote_is_every_file_under_its_output(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "g").write_bytes(b"y" * 24)
    assert peer.bytes_under(tmp_path) == 1024
