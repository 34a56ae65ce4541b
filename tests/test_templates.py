"""Flex Template: the committed metadata equals what VgrEtlOptions gives, and the launcher's arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from beam_pipelines.launcher import FLEX_TEMPLATE_ENV, launch_mode
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.templates import flex_template_metadata, launch, launcher_argv
from tests.helpers.options import option_actions
from tests.test_dataflow import dataflow_args

METADATA = Path(__file__).resolve().parents[1] / "infra" / "dataflow" / "metadata.json"


def test_committed_metadata_equals_the_options_class():
    assert json.loads(METADATA.read_text()) == flex_template_metadata(), (
        "regenerate: python -m beam_pipelines.templates > infra/dataflow/metadata.json"
    )


def test_every_option_is_a_parameter_with_help_and_a_working_regex():
    params = {p["name"]: p for p in json.loads(METADATA.read_text())["parameters"]}
    assert params.pop("command")["regexes"] == ["^(run|refresh|compact|gc)$"]
    assert params.pop("keep_versions")["regexes"] == ["^[1-9][0-9]*$"]
    actions = {a.dest: a for a in option_actions()}
    assert set(params) == set(actions) and len(params) >= 15
    defaults = VgrEtlOptions([]).view_as(VgrEtlOptions)
    for name, param in params.items():
        assert param["helpText"] == actions[name].help and param["helpText"]
        assert param["isOptional"] == (name != "output"), "compact and gc launch with the output alone"
        for regex in param.get("regexes", []):
            for choice in actions[name].choices or []:
                assert re.match(regex, str(choice))
            default = getattr(defaults, name)
            if default is not None:
                assert re.match(regex, str(default).lower()), (name, regex, default)
            assert not re.match(regex, "nonsense value")


def test_launcher_arguments():
    got = launcher_argv(["--source=vgr", "--replay_pixels=true", "--output=gs://b/o"])
    assert got == ["--source=vgr", "--replay_pixels", "--output=gs://b/o", "--runner=DataflowRunner"]
    assert launcher_argv(["--replay_pixels=false", "--runner=DataflowRunner"]) == ["--runner=DataflowRunner"]


@pytest.mark.parametrize(
    ("extra", "flex", "expected"),
    [
        ([], False, None),
        (["--dry_run=True"], False, "build"),
        (["--template_location=gs://b/t.json"], True, "build"),
        ([], True, "flex"),
    ],
)
def test_runs_that_must_not_wait(monkeypatch, extra, flex, expected):
    if flex:
        monkeypatch.setenv(FLEX_TEMPLATE_ENV, "/template/main.py")
    else:
        monkeypatch.delenv(FLEX_TEMPLATE_ENV, raising=False)
    assert launch_mode(VgrEtlOptions([*dataflow_args("vgr"), *extra])) == expected
    assert launch_mode(VgrEtlOptions(["--runner=FnApiRunner"])) is None


@pytest.mark.slow
def test_the_launcher_builds_the_dataflow_graph(monkeypatch, capsys):
    monkeypatch.setenv(FLEX_TEMPLATE_ENV, "/template/main.py")
    args = [a for a in dataflow_args("visualprm") if not a.startswith("--runner")]
    assert launch([*args, "--replay_pixels=false", "--dry_run=True"]) == 0
    assert "without waiting" in capsys.readouterr().out
