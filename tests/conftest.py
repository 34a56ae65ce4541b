"""Shared fixtures: the demo dataset (generated, small) and helpers that run the real CLI and read outputs."""

from __future__ import annotations

import glob
import json
import os
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from beam_pipelines.cli import main
from beam_pipelines.demo.generate import generate
from tests.helpers.gcs import gcs  # noqa: F401  (fixture)
from tests.helpers.reports import check_reports_under, checked

RUNNER = "--runner=FnApiRunner"


def run_cli(*args: str) -> int:
    return main(["run", *args, RUNNER])


def report_of(output: str | Path) -> dict:
    return checked(Path(output, "report.json").read_text())


def parquet_rows(output: str | Path, table: str) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(glob.glob(os.path.join(output, "parquet", table, "*.parquet"))):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def rejected_lines(output: str | Path) -> list[dict]:
    lines: list[dict] = []
    for path in sorted(glob.glob(os.path.join(output, "rejected", "*.jsonl"))):
        lines.extend(json.loads(line) for line in Path(path).read_text().splitlines())
    return lines


def tar_keys(output: str | Path) -> list[str]:
    keys = []
    for path in sorted(glob.glob(os.path.join(output, "webdataset", "*.tar"))):
        with tarfile.open(path) as tf:
            keys.extend(m.name.split(".", 1)[0] for m in tf.getmembers() if m.name.endswith(".json"))
    return keys


def assert_invariant(output: str | Path) -> dict:
    """The count invariant, checked against the files themselves, not only the report's arithmetic."""
    report = report_of(output)
    accepted = parquet_rows(output, "samples")
    assert report["input_records"] == report["accepted"] + report["rejected"] + report["duplicates"]
    assert report["invariant"]["holds"] and report["invariant"]["records_read"] == report["input_records"]
    assert len(accepted) == report["accepted"]
    assert len(rejected_lines(output)) == report["rejected"]
    if os.path.isdir(os.path.join(output, "webdataset")):
        assert sorted(tar_keys(output)) == sorted(r["sample_id"] for r in accepted)
    return report


@pytest.fixture(autouse=True)
def _reports_match_the_schema(tmp_path):
    """After each test, every report.json it wrote under its tmp_path validates against the report schema."""
    yield
    check_reports_under(tmp_path)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return generate(root / "data", n_vgr=24, n_prm=8)
