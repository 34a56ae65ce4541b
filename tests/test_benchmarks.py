"""The benchmark's floor loop does the pipeline's work: same accepted samples, same rows (not a timing test)."""

from __future__ import annotations

import glob

import pyarrow.parquet as pq

from benchmarks.data import generate
from benchmarks.floor import decode_only, run_floor
from tests.conftest import parquet_rows, run_cli


def test_floor_writes_the_rows_the_pipeline_writes(tmp_path):
    data = generate(tmp_path / "data", n_vgr=12, n_prm=4)
    assert run_cli(*data.argv("vgr", str(tmp_path / "pipeline")), "--shard_max_samples=5") == 0
    result = run_floor("vgr", data.vgr_input, data.image_root, str(tmp_path / "floor"), 5)
    floor_rows = [
        r for p in sorted(glob.glob(str(tmp_path / "floor" / "s*.parquet"))) for r in pq.read_table(p).to_pylist()
    ]
    pipeline_rows = parquet_rows(tmp_path / "pipeline", "samples")
    assert result["samples"] == len(pipeline_rows) == 12
    key = lambda r: r["sample_id"]  # noqa: E731
    for ours, theirs in zip(sorted(floor_rows, key=key), sorted(pipeline_rows, key=key), strict=True):
        assert {k: v for k, v in ours.items() if k != "provenance"} == {
            k: v for k, v in theirs.items() if k != "provenance"
        }
    assert decode_only(data.vgr_input, data.image_root)["images"] == 12


def test_generated_mix_has_every_image_kind(tmp_path):
    data = generate(tmp_path / "data", n_vgr=40, n_prm=4)
    kinds = {p.split("/")[-2] for p in glob.glob(f"{data.image_root}/*/*")}
    assert kinds >= {"photo", "chart", "document"}
