"""Every report a test reads is checked against `schemas/report.schema.json` (derived from `report.Report`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from beam_pipelines.report import SCHEMA


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def checked(report: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """The report, parsed if need be, after validating it against the schema."""
    body = json.loads(report) if isinstance(report, str | bytes) else report
    _validator().validate(body)
    return body


def check_reports_under(root: Path) -> int:
    """Validate every run report under a directory (a report.json beside versions/, or kept with a version); how
    many there were."""
    paths = [
        p for p in root.rglob("report.json") if (p.parent / "versions").is_dir() or p.parent.parent.name == "versions"
    ]
    for path in paths:
        try:
            checked(path.read_text())
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{path} does not match {SCHEMA.name}: {exc.message}") from exc
    return len(paths)
