"""Hugging Face inputs through the whole pipeline: the VGR demo rows as a `save_to_disk` Dataset, a DatasetDict
and a Hub-style repository (`hf:REPO@train`) give the same outputs as the Parquet file they came from."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli
from tests.helpers.outputs import PROVENANCE, snapshot

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
"""


@pytest.fixture(scope="module")
def parquet_input(demo) -> str:
    return next(p for p in demo["vgr"].inputs if p.endswith(".parquet")).replace("*.parquet", "vgr_shortcot.parquet")


@pytest.fixture(scope="module")
def reference(demo, parquet_input, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "out"
    args = ["--source=vgr", f"--input={parquet_input}", f"--image_root={demo['vgr'].image_root}"]
    assert run_cli(*args, f"--output={out}", "--max_reject_fraction=0.5") == 0
    return out


def save_dataset(parquet: str, root: Path) -> str:
    datasets.Dataset.from_parquet(parquet).save_to_disk(str(root), num_shards=2)
    return str(root)


def save_dataset_dict(parquet: str, root: Path) -> str:
    ds = datasets.Dataset.from_parquet(parquet)
    half = len(ds) // 2
    datasets.DatasetDict({"train": ds.select(range(half)), "test": ds.select(range(half, len(ds)))}).save_to_disk(
        str(root)
    )
    return str(root)


def hub_repository(parquet: str, root: Path) -> str:
    table = pq.read_table(parquet)
    (root / "data").mkdir(parents=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(half), root / "data" / "train-00001-of-00002.parquet")
    (root / "README.md").write_text(README)
    return f"hf:{root}@train"


@pytest.mark.parametrize("make_input", [save_dataset, save_dataset_dict, hub_repository])
def test_hugging_face_inputs_give_the_parquet_outputs(demo, parquet_input, reference, make_input, tmp_path):
    hf_input = make_input(parquet_input, tmp_path / "hf")
    out = tmp_path / "out"
    args = ["--source=vgr", f"--input={hf_input}", f"--image_root={demo['vgr'].image_root}", f"--output={out}"]
    assert run_cli(*args, "--max_reject_fraction=0.5", "--chunk_rows=4") == 0
    assert snapshot(out, drop=PROVENANCE) == snapshot(reference, drop=PROVENANCE)
    files = {r["input_file"] for r in pq.read_table(next((out / "parquet" / "samples").glob("*.parquet"))).to_pylist()}
    assert files and all(f.endswith((".arrow", ".parquet")) and "vgr_shortcot" not in f for f in files)
