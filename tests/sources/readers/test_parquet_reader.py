"""Parquet: chunks over small and large row groups, every row once; rows that are not UTF-8 are marked, not fatal."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipelines.sources.readers.base import RecordFile
from tests.helpers.readers import read_all


@pytest.mark.parametrize("row_group_size", [2, 5, 100])
def test_parquet_chunks_over_small_and_large_row_groups(tmp_path, row_group_size):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.Table.from_pylist([{"i": i} for i in range(23)]), path, row_group_size=row_group_size)
    chunks, records = read_all(RecordFile("vgr", str(path), "parquet"), 4)
    assert [r.record["i"] for r in records] == list(range(23))
    assert [r.provenance.row for r in records] == list(range(23))
    assert all(c.num_rows <= 4 for c in chunks)


def test_a_parquet_row_with_bytes_that_are_not_utf8_is_marked_not_fatal(tmp_path):
    """Arrow does not validate strings when it reads a file; Python does when it makes them."""
    raw = pa.array([b"a.png", b"b.png", b"c\xff\xfe.png", b"d.png"], pa.binary())
    images = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())
    turns = pa.array([[{"from": "human", "value": f"q{i}"}] for i in range(4)])
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"image": images, "conversations": turns}), path)
    _, records = read_all(RecordFile("vgr", str(path), "parquet"), 10)
    assert [r.unreadable is None for r in records] == [True, True, False, True]
    assert "not valid UTF-8" in records[2].unreadable
    assert records[2].record == {"image": "c\\xff\\xfe.png", "conversations": [{"from": "human", "value": "q2"}]}
    assert [r.record["image"] for r in records[:2]] == ["a.png", "b.png"] and records[3].provenance.row == 3
