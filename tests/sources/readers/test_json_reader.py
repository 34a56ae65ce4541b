"""`.json` files: an array, one pretty-printed record, or JSON Lines; surrogates as in JSON Lines."""

import json

import pytest

from beam_pipelines.records import RejectedError
from beam_pipelines.sources.parsing import decode_raw
from beam_pipelines.sources.readers.base import RecordFile
from tests.helpers.readers import read_all


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
