"""Expectation suites: Great Expectations 1.x JSON files, one per validated table, read at launch.

A suite file is what `ExpectationSuite.to_json_dict()` writes, named after its table
(`expectations/<table>.json`). Every expectation carries `meta.name` (a stable check name, unique across
suites: it is what `rejected/` and the `warnings` column say), `meta.description` (why the rule exists)
and GX's own `severity`: `critical` rejects the row's sample (reported as severity `error`), `warning`
keeps it and marks it. Suites are checked against the tables' columns when loaded, so a typo in a column
name fails the run before any data is read, not halfway through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from beam_pipelines.flags import DEFAULT_EXPECTATIONS
from beam_pipelines.validation.tables import known_tables

DEFAULT_DIR = DEFAULT_EXPECTATIONS
SEVERITIES = {"critical": "error", "warning": "warning", "info": "warning"}
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


class SuiteError(ValueError):
    """A suite file that cannot be used as written."""


@dataclass(frozen=True)
class ExpectationInfo:
    suite: str
    name: str
    type: str
    column: str
    severity: str  # "error" or "warning"
    description: str

    def to_json(self) -> dict[str, str]:
        return {
            "suite": self.suite,
            "type": self.type,
            "column": self.column,
            "severity": self.severity,
            "description": self.description,
        }


def columns_of(kwargs: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in _COLUMN_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(value)
    return out


def info_of(suite: str, expectation: dict[str, Any]) -> ExpectationInfo:
    meta = expectation.get("meta") or {}
    return ExpectationInfo(
        suite=suite,
        name=meta["name"],
        type=expectation["type"],
        column=",".join(columns_of(expectation.get("kwargs", {}))),
        severity=SEVERITIES[expectation.get("severity", "critical")],
        description=meta.get("description", ""),
    )


def check_suite(suite: dict[str, Any], where: str) -> None:
    name = suite.get("name")
    tables = known_tables()
    if name not in tables:
        raise SuiteError(f"{where}: suite name {name!r} is not a table (known: {', '.join(sorted(tables))})")
    columns = set(tables[name].columns)
    for i, exp in enumerate(suite.get("expectations", [])):
        label = f"{where}: expectation {i} ({exp.get('type')})"
        if not (exp.get("meta") or {}).get("name"):
            raise SuiteError(f"{label} has no meta.name")
        if exp.get("severity", "critical") not in SEVERITIES:
            raise SuiteError(f"{label} has severity {exp.get('severity')!r}, expected one of {sorted(SEVERITIES)}")
        unknown = [c for c in columns_of(exp.get("kwargs", {})) if c not in columns]
        if unknown:
            raise SuiteError(f"{label} refers to {unknown}, not columns of table {name!r}: {sorted(columns)}")


def load_suites(directory: str = DEFAULT_DIR) -> dict[str, dict[str, Any]]:
    """{table: suite JSON} for every `*.json` in the directory (local or gs://), checked."""
    matches = FileSystems.match([FileSystems.join(directory, "*.json")])[0].metadata_list
    if not matches:
        raise SuiteError(f"no expectation suites (*.json) in {directory}")
    suites: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for meta in sorted(matches, key=lambda m: m.path):
        with FileSystems.open(meta.path) as f:
            try:
                suite = json.loads(f.read())
            except ValueError as exc:
                raise SuiteError(f"{meta.path}: not valid JSON: {exc}") from None
        check_suite(suite, meta.path)
        for exp in suite.get("expectations", []):
            name = exp["meta"]["name"]
            if name in names:
                raise SuiteError(f"{meta.path}: expectation name {name!r} is already used in {names[name]}")
            names[name] = meta.path
        suites[suite["name"]] = suite
    return suites


def expectation_infos(suites: dict[str, dict[str, Any]]) -> dict[str, ExpectationInfo]:
    return {
        info.name: info
        for table, suite in sorted(suites.items())
        for info in (info_of(table, e) for e in suite.get("expectations", []))
    }
