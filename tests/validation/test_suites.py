"""Suite files: the shipped ones load and cover every table; a broken edit fails at launch with a clear reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from beam_pipelines.validation.suites import DEFAULT_DIR, SuiteError, expectation_infos, load_suites
from beam_pipelines.validation.tables import known_tables

TABLES = known_tables()


def test_shipped_suites_cover_every_table_and_document_every_expectation():
    suites = load_suites()
    assert set(suites) == set(TABLES)
    for info in expectation_infos(suites).values():
        assert info.description and info.severity in ("error", "warning")


def test_readme_lists_every_suite():
    readme = Path(DEFAULT_DIR, "README.md").read_text()
    for name in TABLES:
        assert f"`{name}`" in readme


def edited(tmp_path: Path, table: str, change) -> str:
    target = tmp_path / "suites"
    shutil.copytree(DEFAULT_DIR, target)
    path = target / f"{table}.json"
    suite = json.loads(path.read_text())
    change(suite)
    path.write_text(json.dumps(suite))
    return str(target)


@pytest.mark.parametrize(
    ("table", "change", "message"),
    [
        ("vgr_regions", lambda s: s["expectations"][0]["kwargs"].update(column="x9"), "x9"),
        ("vgr_regions", lambda s: s["expectations"][0]["meta"].pop("name"), "meta.name"),
        ("images", lambda s: s["expectations"][0].update(severity="fatal"), "severity"),
        ("images", lambda s: s.update(name="pictures"), "not a table"),
        ("images", lambda s: s["expectations"][0]["meta"].update(name="box_finite"), "already used"),
    ],
)
def test_broken_suites_fail_with_a_reason(tmp_path, table, change, message):
    with pytest.raises(SuiteError, match=message):
        load_suites(edited(tmp_path, table, change))


def test_not_json_fails_with_the_file_name(tmp_path):
    target = tmp_path / "s"
    target.mkdir()
    (target / "images.json").write_text("{")
    with pytest.raises(SuiteError, match=r"images\.json"):
        load_suites(str(target))
