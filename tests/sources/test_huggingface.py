"""Hugging Face inputs: reference syntax, data-file resolution (real `datasets` code on a local repository
layout), `save_to_disk` directories (local and on a GCS emulator), and Arrow IPC stream chunks."""

from __future__ import annotations

import io

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipelines.sources.huggingface import HubReference, parse_reference, resolve_reference
from beam_pipelines.sources.inputs import expand_pattern
from beam_pipelines.sources.readers.base import RecordFile
from beam_pipelines.sources.readers.formats import plan_chunks, read_chunk

README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
- config_name: small
  data_files:
  - split: train
    path: data/train-00000-of-00002.parquet
---
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf:OWNER/NAME", HubReference("OWNER/NAME")),
        ("hf:OWNER/NAME:cfg", HubReference("OWNER/NAME", "cfg")),
        ("hf:OWNER/NAME@train", HubReference("OWNER/NAME", None, "train")),
        ("hf:OWNER/NAME:cfg@test", HubReference("OWNER/NAME", "cfg", "test")),
        ("hf:/data/repo@train", HubReference("/data/repo", None, "train")),
        ("hf://datasets/OWNER/NAME/data/*.parquet", None),
        ("gs://b/x.parquet", None),
        ("data/x.jsonl", None),
    ],
)
def test_reference_syntax(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["hf:", "hf:a/b:c:d", "hf:a/b@x@y"])
def test_malformed_references_fail(text):
    with pytest.raises(ValueError, match="expected hf:OWNER/NAME"):
        parse_reference(text)


@pytest.fixture
def repo(tmp_path):
    """A directory laid out like a Hub dataset repository: YAML configs in README.md, Parquet shards."""
    (tmp_path / "data").mkdir()
    for split in ("train", "test"):
        for i in range(2):
            table = pa.table({"i": [i, i + 10], "split": [split, split]})
            pq.write_table(table, tmp_path / "data" / f"{split}-0000{i}-of-00002.parquet")
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def test_resolution_follows_the_dataset_card(repo):
    names = [p.rsplit("/", 1)[1] for p in resolve_reference(HubReference(str(repo)))]
    assert names == [f"{s}-0000{i}-of-00002.parquet" for s in ("train", "test") for i in range(2)]
    assert [p.rsplit("/", 1)[1] for p in expand_pattern(f"hf:{repo}:small@train")] == ["train-00000-of-00002.parquet"]
    with pytest.raises(ValueError, match="no split 'validation'"):
        expand_pattern(f"hf:{repo}@validation")


def rows(n: int) -> list[dict]:
    return [{"i": i, "text": f"row {i}", "tags": [str(i)] * (i % 3)} for i in range(n)]


def read_everything(paths: list[str], rows_per_chunk: int) -> tuple[list, list]:
    chunks = [c for p in paths for c in plan_chunks(RecordFile("vgr", p, "arrow"), rows_per_chunk)]
    return chunks, [r for c in chunks for r in read_chunk(c)]


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    ds = datasets.Dataset.from_list(rows(25))
    ds.save_to_disk(str(tmp_path / "one"), num_shards=3)
    files = expand_pattern(str(tmp_path / "one"))
    assert [f.rsplit("/", 1)[1] for f in files] == [f"data-0000{i}-of-00003.arrow" for i in range(3)]
    _, records = read_everything(files, 4)
    assert [r.record for r in records] == rows(25)
    datasets.DatasetDict({"train": ds.select(range(20)), "test": ds.select(range(20, 25))}).save_to_disk(
        str(tmp_path / "dict")
    )
    files = expand_pattern(str(tmp_path / "dict"))
    assert [f.split("/")[-2] for f in files] == ["train", "test"]
    assert [r.record["i"] for r in read_everything(files, 7)[1]] == list(range(25))
    assert [r.record["i"] for r in read_everything(expand_pattern(str(tmp_path / "dict" / "test")), 7)[1]] == list(
        range(20, 25)
    )


@pytest.mark.parametrize(("batch_rows", "rows_per_chunk"), [(30, 4), (3, 10), (7, 7), (1, 2), (100, 100)])
def test_arrow_stream_chunks_cover_every_row_once_in_order(tmp_path, batch_rows, rows_per_chunk):
    table = pa.Table.from_pylist(rows(61))
    path = tmp_path / "data.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    chunks, records = read_everything([str(path)], rows_per_chunk)
    assert [r.record for r in records] == rows(61)
    assert [r.provenance.row for r in records] == list(range(61))
    assert all(0 < c.num_rows <= rows_per_chunk for c in chunks)
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_arrow_stream_with_dictionary_columns_is_refused(tmp_path):
    table = pa.table({"c": pa.array(["a", "b", "a"]).dictionary_encode()})
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, table.schema) as writer:
        writer.write_table(table)
    (tmp_path / "d.arrow").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="dictionary"):
        plan_chunks(RecordFile("vgr", str(tmp_path / "d.arrow"), "arrow"), 10)


def test_saved_dataset_on_gcs(gcs, tmp_path):
    datasets.Dataset.from_list(rows(30)).save_to_disk(str(tmp_path / "saved"), num_shards=2)
    url = gcs.upload_tree(tmp_path / "saved", f"{gcs.bucket('hf-inputs')}/saved")
    files = expand_pattern(url)
    assert all(f.startswith(url + "/") for f in files) and len(files) == 2
    assert [r.record for r in read_everything(files, 8)[1]] == rows(30)
