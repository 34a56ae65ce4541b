"""The command-line contract: exit codes, one-line reasons, no Prism download by default, `--help`."""

import json
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import StandardOptions

from beam_pipelines.cli import main
from beam_pipelines.launcher import parse
from tests.conftest import report_of, run_cli


@pytest.mark.slow
def test_reject_fraction_fails_after_writing_outputs(demo, tmp_path, capsys):
    out = tmp_path / "o"
    assert run_cli(*demo["visualprocessbench"].argv(str(out)), "--max_reject_fraction=0.01") == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("vgr-etl: run failed: rejected 1 of 9 input records")
    assert "NOT published" in captured.err and "current.json unchanged" in captured.err
    assert report_of(out)["rejected"] == 1 and list((out / "parquet" / "samples").glob("*.parquet"))


def test_unknown_and_missing_options_fail_with_one_line(capsys):
    assert main(["run", "--source=vgr", "--imput=x", "--runner=FnApiRunner"]) == 2
    assert "unknown option(s): --imput" in capsys.readouterr().err
    assert main(["run", "--source=vgr", "--runner=FnApiRunner"]) == 2
    assert "missing required option(s): --input, --image_root, --output" in capsys.readouterr().err


def test_input_that_matches_nothing_fails_clearly(tmp_path, capsys):
    status = run_cli(
        "--source=vgr", f"--input={tmp_path}/*.jsonl", f"--image_root={tmp_path}", f"--output={tmp_path}/o"
    )
    assert status == 2
    assert "matched no .parquet, .jsonl, .json, .arrow or .zip files" in capsys.readouterr().err


@pytest.mark.slow
def test_a_label_reference_that_matches_nothing_is_named(demo, tmp_path, capsys):
    args = demo["visualprm"].argv(str(tmp_path / "o"))
    assert run_cli(*args, f"--label_reference={tmp_path}/raw/*.jsonl") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vgr-etl: run failed: --label_reference") and "matched no" in line


def test_default_runner_never_tries_prism():
    assert parse(["--source=vgr"]).view_as(StandardOptions).runner == "FnApiRunner"
    assert parse(["--runner", "DataflowRunner"]).view_as(StandardOptions).runner == "DataflowRunner"


@pytest.mark.slow
def test_console_entry_point_and_module_agree(demo, tmp_path):
    out = tmp_path / "m"
    cmd = [
        sys.executable,
        "-m",
        "beam_pipelines",
        "run",
        *demo["visualprm"].argv(str(out)),
        "--max_reject_fraction=0.5",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
    assert json.loads((out / "report.json").read_text())["accepted"] == 8
    helped = subprocess.run([sys.executable, "-m", "beam_pipelines", "run", "--help"], capture_output=True, text=True)
    assert "--max_reject_fraction" in helped.stdout
