"""Chunk planning and reading: every row exactly once, in order, with its provenance."""

import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipelines.records import RejectedError
from beam_pipelines.sources.inputs import expand_pattern, record_files
from beam_pipelines.sources.parsing import decode_raw
from beam_pipelines.sources.readers.base import RecordFile
from beam_pipelines.sources.readers.formats import plan_chunks, read_chunk
from beam_pipelines.sources.registry import dataset_named


def read_all(unit, rows_per_chunk):
    chunks = plan_chunks(unit, rows_per_chunk)
    return chunks, [r for c in chunks for r in read_chunk(c)]


def test_jsonl_chunks_skip_blank_lines_and_keep_line_numbers(tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"i": i}) for i in range(7)]
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    chunks, records = read_all(RecordFile("vgr", str(path), "jsonl"), 3)
    assert [c.num_rows for c in chunks] == [3, 3, 1]
    assert [json.loads(r.line)["i"] for r in records] == list(range(7))
    assert [r.provenance.row for r in records] == [0, 1, 2, 4, 5, 6, 7]
    assert len({c.chunk_id for c in chunks}) == 3


@pytest.mark.parametrize("row_group_size", [2, 5, 100])
def test_parquet_chunks_over_small_and_large_row_groups(tmp_path, row_group_size):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.Table.from_pylist([{"i": i} for i in range(23)]), path, row_group_size=row_group_size)
    chunks, records = read_all(RecordFile("vgr", str(path), "parquet"), 4)
    assert [r.record["i"] for r in records] == list(range(23))
    assert [r.provenance.row for r in records] == list(range(23))
    assert all(c.num_rows <= 4 for c in chunks)


def test_json_array(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps([{"i": i} for i in range(5)]))
    _, records = read_all(RecordFile("vgr", str(path), "json"), 2)
    assert [r.record["i"] for r in records] == list(range(5))


@pytest.mark.parametrize(
    "text, count",
    [
        ("\ufeff" + json.dumps([{"i": 0}, {"i": 1}], indent=2), 2),  # an array behind a BOM
        (json.dumps({"i": 0, "nested": {"a": [1, 2]}}, indent=2), 1),  # one pretty-printed record
        (json.dumps({"i": 0}), 1),  # one line: JSON Lines of one record
    ],
)
def test_a_json_file_that_is_one_document(tmp_path, text, count):
    path = tmp_path / "v.json"
    path.write_text(text, encoding="utf-8")
    _, records = read_all(RecordFile("vgr", str(path), "json"), 2)
    decoded = [r.record if r.record is not None else json.loads(r.line) for r in records]
    assert [d["i"] for d in decoded] == list(range(count))


def test_unpaired_surrogates_in_a_json_array_are_rejected_like_in_json_lines(tmp_path):
    path = tmp_path / "v.json"
    path.write_text('[{"q": "cut \\ud83d"}, {"q": "whole \\ud83d\\ude00"}]')
    _, records = read_all(RecordFile("vgr", str(path), "json"), 10)
    with pytest.raises(RejectedError) as err:
        decode_raw(records[0])
    assert err.value.info.check == "invalid_unicode"
    assert decode_raw(records[1]) == {"q": "whole \U0001f600"}


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


def test_zip_members_by_source(tmp_path):
    path = tmp_path / "annotations.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a_prm.jsonl", "\n".join(json.dumps({"i": i}) for i in range(5)))
        zf.writestr("a_orm.jsonl", "{}")
        zf.writestr("b.jsonl", "{}")
        zf.writestr("C_EXTRACTED.JSONL", "{}")

    def members(source: str) -> list[RecordFile]:
        return record_files(source, str(path), dataset_named(source).archive_members)

    assert [u.member for u in members("visualprm")] == ["a_prm.jsonl"]
    assert [u.member for u in members("visualprm_raw")] == ["C_EXTRACTED.JSONL", "b.jsonl"]
    _, records = read_all(members("visualprm")[0], 2)
    assert [json.loads(r.line)["i"] for r in records] == list(range(5))
    assert records[0].provenance.member == "a_prm.jsonl"


def test_expand_pattern(tmp_path):
    (tmp_path / "b.jsonl").write_text("{}")
    (tmp_path / "a.parquet").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert [p.rsplit("/", 1)[1] for p in expand_pattern(str(tmp_path))] == ["a.parquet", "b.jsonl"]
    with pytest.raises(ValueError, match="matched no"):
        expand_pattern(str(tmp_path / "*.zip"))
