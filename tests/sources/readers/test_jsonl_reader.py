"""JSON Lines: every non-blank line exactly once, in order, with its line number."""

import json

from beam_pipelines.sources.readers.base import RecordFile
from tests.helpers.readers import read_all


def test_jsonl_chunks_skip_blank_lines_and_keep_line_numbers(tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"i": i}) for i in range(7)]
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    chunks, records = read_all(RecordFile("vgr", str(path), "jsonl"), 3)
    assert [c.num_rows for c in chunks] == [3, 3, 1]
    assert [json.loads(r.line)["i"] for r in records] == list(range(7))
    assert [r.provenance.row for r in records] == [0, 1, 2, 4, 5, 6, 7]
    assert len({c.chunk_id for c in chunks}) == 3
