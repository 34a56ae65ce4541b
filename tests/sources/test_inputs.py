"""Input patterns to files, and the archive members each dataset reads."""

import json
import zipfile

import pytest

from beam_pipelines.sources.inputs import expand_pattern, record_files
from beam_pipelines.sources.readers.base import RecordFile
from beam_pipelines.sources.registry import dataset_named
from tests.helpers.readers import read_all


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
