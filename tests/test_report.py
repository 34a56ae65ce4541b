"""The typed report: its schema file is derived from the dataclasses, and reports round-trip through JSON."""

from __future__ import annotations

import json

import jsonschema
import pytest

from beam_pipelines.report import SCHEMA, Report, json_schema, read_report
from tests.conftest import run_cli
from tests.helpers.reports import checked


def test_the_committed_schema_is_the_one_the_dataclasses_give():
    assert json.loads(SCHEMA.read_text()) == json_schema(), "regenerate: python -m beam_pipelines.report > " + str(
        SCHEMA.relative_to(SCHEMA.parents[1])
    )


@pytest.mark.slow
def test_a_run_report_round_trips_and_a_broken_one_fails_the_schema(demo, tmp_path):
    out = tmp_path / "o"
    assert run_cli(*demo["visualprocessbench"].argv(str(out)), "--max_reject_fraction=0.5") == 0
    report = read_report(str(out))
    assert Report.from_json(report.to_json()) == report
    assert report.invariant.holds and report.version.published and report.failure() is None
    body = checked(report.to_json())
    for broken in ({k: v for k, v in body.items() if k != "invariant"}, {**body, "accepted": "30"}, {**body, "x": 1}):
        with pytest.raises(jsonschema.ValidationError):
            checked(broken)
