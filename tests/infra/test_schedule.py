"""Scheduling files of infra/schedule/: the launch parameters module against the real template metadata and option
parser, and every committed schedule (Airflow DAG, Data Pipelines, Cloud Scheduler, Kubernetes CronJob) against it.

The schedule-facing contract these tests pin down: the template has `command` (run|refresh) and `on_removed`
(keep|drop) parameters, and the Flex launcher drops `--command=...` and turns a repeatable option's value with one
pattern per line into repeated flags.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud.dataflow_v1beta3.types import FlexTemplateRuntimeEnvironment, LaunchFlexTemplateRequest
from google.protobuf import json_format

from beam_pipelines.flags import OPTIONS
from beam_pipelines.options import VgrEtlOptions, unknown_flags
from beam_pipelines.templates import COMPACT_OPTIONS, EVERY_COMMAND, MAINTENANCE, flex_template_metadata, launcher_argv
from tests.helpers.options import option_actions

ROOT = Path(__file__).resolve().parents[2]
SCHEDULE = ROOT / "infra" / "schedule"
PARAMS_FILE = SCHEDULE / "airflow" / "vgr_etl_params.py"
DAG_FILE = SCHEDULE / "airflow" / "vgr_etl_refresh_dag.py"
DATA_PIPELINE = SCHEDULE / "dataflow" / "data-pipeline.json"
SCHEDULER_JOB = SCHEDULE / "dataflow" / "cloud-scheduler-job.yaml"
CRONJOB = SCHEDULE / "flink" / "refresh-cronjob.yaml"
FLINK = ROOT / "infra" / "flink"

# Dataflow's job name pattern, [a-z]([-a-z0-9]{0,1022}[a-z0-9])?, with the 63-character cap the schedules keep.
DATAFLOW_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
CRON_FIELD = re.compile(r"^[0-9*/,-]+$")
# Fields of the Data Pipelines v1 Pipeline and of its FlexTemplateRuntimeEnvironment (discovery document), which
# has fewer fields than Dataflow's (no sdkContainerImage, no stagingLocation).
PIPELINE_FIELDS = {"name", "displayName", "type", "state", "workload", "scheduleInfo", "schedulerServiceAccountEmail"}
DATA_PIPELINES_ENVIRONMENT = {
    "additionalExperiments",
    "additionalUserLabels",
    "enableStreamingEngine",
    "flexrsGoal",
    "ipConfiguration",
    "kmsKeyName",
    "machineType",
    "maxWorkers",
    "network",
    "numWorkers",
    "serviceAccountEmail",
    "subnetwork",
    "tempLocation",
    "workerRegion",
    "workerZone",
    "zone",
}
# `gcloud scheduler jobs create http` flags the flags file may set.
SCHEDULER_FLAGS = {
    "--schedule",
    "--time-zone",
    "--uri",
    "--http-method",
    "--headers",
    "--oauth-service-account-email",
    "--oauth-token-scope",
    "--message-body",
    "--attempt-deadline",
    "--description",
    "--max-retry-attempts",
}

CONFIG: dict[str, Any] = {
    "source": "vgr",
    "input": ["gs://data/vgr/{ds}/*.parquet", "gs://data/vgr-extra/{ds_nodash}.jsonl"],
    "image_root": "gs://data/images",
    "output": "gs://out/vgr",
    "on_removed": "keep",
    "replay_pixels": True,
    "chunk_rows": 500,
}


def _load_params():
    spec = importlib.util.spec_from_file_location("vgr_etl_params", PARAMS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


P = _load_params()


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return flex_template_metadata()


def assert_cron(expression: str) -> None:
    fields = expression.split()
    assert len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields), expression


def split_names(values: dict[str, Any], metadata: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Template parameters and the rest, which must all be flags some PipelineOptions class knows."""
    known = {p["name"] for p in metadata["parameters"]}
    beam = set(values) - known
    assert unknown_flags([f"--{n}={values[n]}" for n in sorted(beam)]) == [], beam
    return set(values) & known, beam


def flags_of(argv: list[str]) -> dict[str, Any]:
    """`--name=value` arguments as a mapping; repeated ones (the repeatable options) as lists."""
    out: dict[str, Any] = {}
    for arg in argv:
        name, _, value = arg.removeprefix("--").partition("=")
        if name in P.REPEATABLE:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def test_inputs_are_rendered_for_the_logical_date():
    patterns = ["gs://b/{ds}/*.parquet", "gs://b/y={year}/m={month}/d={day}/*", "gs://b/{ds_nodash}.jsonl"]
    assert P.render_inputs(patterns, "2024-03-01") == [
        "gs://b/2024-03-01/*.parquet",
        "gs://b/y=2024/m=03/d=01/*",
        "gs://b/20240301.jsonl",
    ]
    assert P.render_inputs(["gs://b/{{raw}}/{ds}/*"], date(2025, 1, 9)) == ["gs://b/{raw}/2025-01-09/*"]
    assert P.render_inputs(["gs://b/{ds}/*"], datetime(2025, 1, 9, 23, tzinfo=UTC)) == ["gs://b/2025-01-09/*"]


def test_lookback_covers_earlier_days_oldest_first_without_repeats():
    assert P.render_inputs(["gs://b/{ds}/*"], date(2024, 3, 1), lookback_days=2) == [
        "gs://b/2024-02-28/*",
        "gs://b/2024-02-29/*",
        "gs://b/2024-03-01/*",
    ]
    assert P.render_inputs(["gs://b/all/*", "gs://c/{year}/*"], "2025-01-01", lookback_days=3) == [
        "gs://b/all/*",
        "gs://c/2024/*",
        "gs://c/2025/*",
    ]


def test_job_names_are_valid_dataflow_names_with_the_date():
    assert P.job_name("vgr-etl-refresh-vgr", "2025-03-01") == "vgr-etl-refresh-vgr-20250301"
    longest = P.job_name("a" * 54, date(2025, 12, 31))
    assert len(longest) == 63 and DATAFLOW_JOB_NAME.match(longest)
    for prefix in ("Vgr", "1vgr", "vgr_etl", "vgr-", "", "a" * 55):
        with pytest.raises(ValueError, match="job name prefix"):
            P.job_name(prefix, "2025-03-01")


def test_flex_template_body(metadata):
    body = P.flex_template_body(
        template="gs://bucket/templates/vgr-etl.json",
        job_prefix="vgr-etl-refresh-vgr",
        parameters=CONFIG,
        logical_date="2025-03-01",
        metadata=metadata,
        lookback_days=1,
        pipeline_options={"sdk_container_image": "europe-docker.pkg.dev/p/r/vgr-etl:1"},
        environment={"tempLocation": "gs://bucket/tmp", "maxWorkers": 50},
    )
    assert body == {
        "launchParameter": {
            "jobName": "vgr-etl-refresh-vgr-20250301",
            "containerSpecGcsPath": "gs://bucket/templates/vgr-etl.json",
            "parameters": {
                "command": "refresh",
                "source": "vgr",
                "input": "gs://data/vgr/2025-02-28/*.parquet\n"
                "gs://data/vgr/2025-03-01/*.parquet\n"
                "gs://data/vgr-extra/20250228.jsonl\n"
                "gs://data/vgr-extra/20250301.jsonl",
                "image_root": "gs://data/images",
                "output": "gs://out/vgr",
                "on_removed": "keep",
                "replay_pixels": "true",
                "chunk_rows": "500",
                "sdk_container_image": "europe-docker.pkg.dev/p/r/vgr-etl:1",
            },
            "environment": {"tempLocation": "gs://bucket/tmp", "maxWorkers": 50},
        }
    }
    json_format.ParseDict(body, LaunchFlexTemplateRequest.pb()())  # the real request type: unknown fields fail
    assert DATAFLOW_JOB_NAME.match(body["launchParameter"]["jobName"])
    template, beam = split_names(body["launchParameter"]["parameters"], metadata)
    assert "command" in template and beam == {"sdk_container_image"}


def test_refresh_command_line(metadata):
    argv = P.refresh_argv(
        CONFIG, date(2025, 3, 1), metadata, pipeline_options={"runner": "PortableRunner", "parallelism": 8}
    )
    assert argv == [
        "refresh",
        "--source=vgr",
        "--input=gs://data/vgr/2025-03-01/*.parquet",
        "--input=gs://data/vgr-extra/20250301.jsonl",
        "--image_root=gs://data/images",
        "--output=gs://out/vgr",
        "--on_removed=keep",
        "--replay_pixels",
        "--chunk_rows=500",
        "--runner=PortableRunner",
        "--parallelism=8",
    ]
    assert unknown_flags(argv[1:]) == []
    parsed = VgrEtlOptions(argv[1:]).view_as(VgrEtlOptions)
    assert parsed.input == ["gs://data/vgr/2025-03-01/*.parquet", "gs://data/vgr-extra/20250301.jsonl"]
    assert parsed.replay_pixels is True and parsed.on_removed == "keep" and parsed.chunk_rows == 500
    off = P.refresh_argv({**CONFIG, "replay_pixels": False}, "2025-03-01", metadata)
    assert not any(a.startswith("--replay_pixels") for a in off)


def test_launcher_turns_the_flex_parameters_into_the_refresh_command_line(metadata):
    """The launcher contract: `--command` is not passed on as a flag, and a parameter with one pattern per line
    becomes one flag per pattern, so a Flex launch and the command line run the same refresh."""
    kwargs = {"lookback_days": 1, "pipeline_options": {"sdk_container_image": "img"}}
    params = P.template_parameters(CONFIG, "2025-03-01", metadata, **kwargs)
    expected = P.refresh_argv(CONFIG, "2025-03-01", metadata, **kwargs)
    assert launcher_argv([f"--{k}={v}" for k, v in params.items()]) == [*expected[1:], "--runner=DataflowRunner"]


def test_the_template_has_the_refresh_parameters(metadata):
    params = {p["name"]: p for p in metadata["parameters"]}
    assert {"command", "on_removed"} <= set(params)
    commands = ("run", "refresh", "compact", "gc")
    for name, good, bad in (("command", commands, ("compactx", "")), ("on_removed", ("keep", "drop"), ("x",))):
        regexes = params[name].get("regexes", [])
        assert regexes and params[name]["isOptional"]
        assert all(re.match(r, v) for r in regexes for v in good)
        assert all(not re.match(r, v) for r in regexes for v in bad)


def test_module_constants_match_the_option_parser_and_the_api():
    assert tuple(a.dest for a in option_actions() if isinstance(a, argparse._AppendAction)) == P.REPEATABLE
    required = {o.name for o in OPTIONS if o.required}
    assert required - set(EVERY_COMMAND) | {"on_removed"} == set(P.REQUIRED_FOR_REFRESH)
    assert set(P.MAINTENANCE) == set(MAINTENANCE) and set(P.MAINTENANCE["compact"]) == set(COMPACT_OPTIONS) - {"output"}
    replay_pixels = next(p for p in flex_template_metadata()["parameters"] if p["name"] == "replay_pixels")
    assert replay_pixels["regexes"] == P.BOOLEAN_REGEXES
    fields = {f.json_name for f in FlexTemplateRuntimeEnvironment.pb().DESCRIPTOR.fields}
    assert fields == P.RUNTIME_ENVIRONMENT_FIELDS


def test_the_module_needs_only_the_standard_library():
    tree = ast.parse(PARAMS_FILE.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parameters": {**CONFIG, "nonsense": "x"}}, "unknown template parameter.*nonsense"),
        ({"parameters": {**CONFIG, "command": "run"}}, "set by the schedule"),
        ({"parameters": {**CONFIG, "keep_versions": 3}}, "keep_versions: a parameter of gc"),
        ({"parameters": {k: v for k, v in CONFIG.items() if k != "source"}}, "missing required.*source"),
        ({"parameters": {k: v for k, v in CONFIG.items() if k != "input"}}, "missing required.*input"),
        ({"parameters": {k: v for k, v in CONFIG.items() if k != "output"}}, "missing required.*output"),
        ({"parameters": {k: v for k, v in CONFIG.items() if k != "on_removed"}}, "missing required.*on_removed"),
        ({"parameters": {**CONFIG, "on_removed": "maybe"}}, "on_removed='maybe' does not match"),
        ({"parameters": {**CONFIG, "source": "nope"}}, "source='nope' does not match"),
        ({"parameters": {**CONFIG, "replay_pixels": "yes"}}, "does not match"),
        ({"parameters": {**CONFIG, "formats": ""}}, "formats: expected a non-empty"),
        ({"parameters": {**CONFIG, "input": []}}, "input: expected one or more patterns"),
        ({"parameters": {**CONFIG, "input": ""}}, "input: every pattern must be a non-empty string"),
        ({"parameters": {**CONFIG, "input": ["gs://a/*\ngs://b/*"]}}, "line feed"),
        ({"parameters": {**CONFIG, "input": ["gs://b/{dt}/*"]}}, "unknown field"),
        ({"parameters": {**CONFIG, "input": ["gs://b/{}/*"]}}, "unknown field"),
        ({"parameters": {**CONFIG, "input": ["gs://b/{ds/*"]}}, "literal braces"),
        ({"logical_date": "2025-02-30"}, "logical date '2025-02-30'"),
        ({"logical_date": "2025/03/01"}, "expected a date or a YYYY-MM-DD"),
        ({"logical_date": "20250301"}, "expected a date or a YYYY-MM-DD"),
        ({"logical_date": 20250301}, "expected a date or a YYYY-MM-DD"),
        ({"logical_date": None}, "expected a date or a YYYY-MM-DD"),
        ({"parameters": {**CONFIG, "on_removed": "drop"}}, "on_removed=drop with dated input patterns"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"lookback_days": True}, "lookback_days"),
        ({"job_prefix": "VGR"}, "job name prefix"),
        ({"template": "bucket/vgr-etl.json"}, "gs:// path"),
        ({"environment": {"tempLoc": "gs://b/tmp"}}, "unknown runtime environment field.*tempLoc"),
        ({"pipeline_options": {"source": "vgr"}}, "pipeline option 'source'"),
        ({"pipeline_options": {"sdk-container-image": "x"}}, "pipeline option"),
        ({"pipeline_options": {"experiments": True}}, "pipeline option experiments"),
    ],
)
def test_bad_schedules_fail_with_a_reason(metadata, change, message):
    kwargs = {
        "template": "gs://bucket/templates/vgr-etl.json",
        "job_prefix": "vgr-etl-refresh-vgr",
        "parameters": CONFIG,
        "logical_date": "2025-03-01",
        "metadata": metadata,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        P.flex_template_body(**kwargs)


def test_a_template_without_the_refresh_parameters_is_refused():
    old = json.loads((ROOT / "infra" / "dataflow" / "metadata.json").read_text())
    old["parameters"] = [p for p in old["parameters"] if p["name"] not in ("command", "on_removed")]
    with pytest.raises(ValueError, match="rebuild it"):
        P.refresh_argv(CONFIG, "2025-03-01", old)


def assert_launch_parameter(launch: dict[str, Any], metadata: dict[str, Any]) -> None:
    """A static launch: valid job name, the template, and exactly what the parameters module gives for it."""
    assert DATAFLOW_JOB_NAME.match(launch["jobName"])
    assert launch["containerSpecGcsPath"].startswith("gs://")
    params = launch["parameters"]
    assert params["command"] == "refresh"
    template, beam = split_names(params, metadata)
    given = {k: params[k].split(P.INPUT_SEPARATOR) if k in P.REPEATABLE else params[k] for k in params}
    rebuilt = P.template_parameters(
        {k: given[k] for k in params if k in template - {"command"}},
        "2025-03-01",
        metadata,
        pipeline_options={k: given[k] for k in params if k in beam},
    )
    assert rebuilt == params


def test_data_pipelines_definition(metadata):
    pipeline = json.loads(DATA_PIPELINE.read_text())
    assert set(pipeline) <= PIPELINE_FIELDS
    assert pipeline["type"] == "PIPELINE_TYPE_BATCH" and pipeline["state"] == "STATE_ACTIVE"
    assert re.fullmatch(r"projects/[^/]+/locations/[^/]+/pipelines/[^/]+", pipeline["name"])
    assert re.fullmatch(r"[A-Za-z0-9_-]+", pipeline["displayName"])
    assert set(pipeline["scheduleInfo"]) == {"schedule", "timeZone"}
    assert_cron(pipeline["scheduleInfo"]["schedule"])
    request = pipeline["workload"]["dataflowFlexTemplateRequest"]
    json_format.ParseDict(request, LaunchFlexTemplateRequest.pb()())
    assert set(request["launchParameter"]["environment"]) <= DATA_PIPELINES_ENVIRONMENT
    assert_launch_parameter(request["launchParameter"], metadata)


def test_cloud_scheduler_job(metadata):
    flags = yaml.safe_load(SCHEDULER_JOB.read_text())
    assert set(flags) <= SCHEDULER_FLAGS
    assert_cron(flags["--schedule"])
    assert re.fullmatch(
        r"https://dataflow\.googleapis\.com/v1b3/projects/[^/]+/locations/[^/]+/flexTemplates:launch", flags["--uri"]
    )
    assert flags["--http-method"] == "post" and flags["--headers"] == {"Content-Type": "application/json"}
    assert flags["--oauth-token-scope"] == "https://www.googleapis.com/auth/cloud-platform"
    body = json.loads(flags["--message-body"])
    json_format.ParseDict(body, LaunchFlexTemplateRequest.pb()())
    assert_launch_parameter(body["launchParameter"], metadata)
    pipeline = json.loads(DATA_PIPELINE.read_text())
    same = pipeline["workload"]["dataflowFlexTemplateRequest"]["launchParameter"]
    assert body["launchParameter"]["parameters"] == same["parameters"]
    assert body["launchParameter"]["jobName"] == same["jobName"]


def test_flink_cronjob(metadata):
    cronjob = yaml.safe_load(CRONJOB.read_text())
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert_cron(spec["schedule"])
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["vgr-etl"] and container["args"][0] == "refresh"
    args = container["args"][1:]
    assert unknown_flags(args) == []

    flink = list(yaml.safe_load_all((FLINK / "flink-deployment.yaml").read_text()))
    deployment = next(d for d in flink if d["kind"] == "FlinkDeployment")
    pool = next(
        c
        for c in deployment["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
        if c["name"] == "beam-worker-pool"
    )
    service = next(d for d in yaml.safe_load_all((FLINK / "job-server.yaml").read_text()) if d["kind"] == "Service")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}"
    assert cronjob["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert container["image"] == pool["image"]  # the vgr-etl image of infra/dataflow
    assert pod["serviceAccountName"] == deployment["spec"]["serviceAccount"]

    flags = flags_of(args)
    assert flags["runner"] == "PortableRunner" and flags["environment_type"] == "EXTERNAL"
    assert flags["job_endpoint"] == f"{host}:{ports['job']}"
    assert flags["artifact_endpoint"] == f"{host}:{ports['artifact']}"
    assert flags["environment_config"] == f"localhost:{pool['ports'][0]['containerPort']}"
    template, beam = split_names(flags, metadata)
    rebuilt = P.refresh_argv(
        {k: v for k, v in flags.items() if k in template},
        "2025-03-01",
        metadata,
        pipeline_options={k: v for k, v in flags.items() if k in beam},
    )
    assert rebuilt == container["args"]


def _call(tree: ast.AST, name: str) -> ast.Call:
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]
    return call


def _keyword(call: ast.Call, name: str) -> Any:
    return ast.literal_eval(next(k.value for k in call.keywords if k.arg == name))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and (getattr(n.func, "id", None) or getattr(n.func, "attr", None)) == name
    ]


def test_airflow_dag_file():
    source = DAG_FILE.read_text()
    compile(source, str(DAG_FILE), "exec")
    tree = ast.parse(source)
    dag = _call(tree, "DAG")
    assert _keyword(dag, "max_active_runs") == 1
    assert _keyword(dag, "catchup") is False
    assert _keyword(dag, "schedule") == "@daily"
    default_args = next(k.value for k in dag.keywords if k.arg == "default_args")
    callbacks = {ast.literal_eval(k): v for k, v in zip(default_args.keys, default_args.values, strict=True)}
    assert isinstance(callbacks["on_failure_callback"], ast.Name) and callbacks["on_failure_callback"].id == "alert"
    (operator,) = _calls(tree, "DataflowStartFlexTemplateOperator")
    assert _keyword(operator, "append_job_name") is False
    assert _keyword(operator, "wait_until_finished") is True
    assert _keyword(operator, "deferrable") is True
    launched = [ast.literal_eval(c.args[0]) for c in sorted(_calls(tree, "_launch"), key=lambda c: c.lineno)]
    assert launched == ["refresh", "compact", "gc"]
    bodies = {
        _keyword(n.func, "task_id"): ast.literal_eval(n.args[0])
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Call) and getattr(n.func.func, "attr", "") == "override"
    }
    assert bodies == {"compact_body": "compact", "gc_body": "gc"}
    assert "task.short_circuit" in source and "refresh >> maintenance_day() >> compact_body" in source
    assert '_launch("compact", compact_body) >> gc_body' in source, "gc only after compact published"
    (params_import,) = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "vgr_etl_params"]
    assert all(hasattr(P, a.name) for a in params_import.names)


MAINTENANCE_KWARGS = {
    "template": "gs://bucket/templates/vgr-etl.json",
    "job_prefix": "vgr-etl-refresh-vgr",
    "output": "gs://out/vgr",
    "logical_date": "2025-03-02",
}


def test_maintenance_bodies_launch_compact_and_gc(metadata):
    compact = P.maintenance_body("compact", metadata=metadata, parameters={"chunk_rows": 5000}, **MAINTENANCE_KWARGS)
    gc = P.maintenance_body("gc", metadata=metadata, parameters={"keep_versions": 8}, **MAINTENANCE_KWARGS)
    for body, command in ((compact, "compact"), (gc, "gc")):
        launch = body["launchParameter"]
        json_format.ParseDict(body, LaunchFlexTemplateRequest.pb(LaunchFlexTemplateRequest()))
        assert launch["jobName"] == f"vgr-etl-refresh-vgr-{command}-20250302"
        assert DATAFLOW_JOB_NAME.match(launch["jobName"])
        assert launch["parameters"]["command"] == command and launch["parameters"]["output"] == "gs://out/vgr"
    assert compact["launchParameter"]["parameters"]["chunk_rows"] == "5000"
    assert gc["launchParameter"]["parameters"]["keep_versions"] == "8"
    params = gc["launchParameter"]["parameters"]
    assert launcher_argv([f"--{k}={v}" for k, v in params.items()]) == [
        "--output=gs://out/vgr",
        "--runner=DataflowRunner",
    ]


@pytest.mark.parametrize(
    ("command", "parameters", "message"),
    [
        ("vacuum", {}, "maintenance command 'vacuum'"),
        ("gc", {}, "gc: missing required parameter.*keep_versions"),
        ("gc", {"keep_versions": 0}, "keep_versions='0' does not match"),
        ("gc", {"keep_versions": 2, "chunk_rows": 5}, "chunk_rows: not a parameter of gc"),
        ("compact", {"source": "vgr"}, "source: not a parameter of compact"),
        ("compact", {"chunk_rows": "many"}, "chunk_rows='many' does not match"),
    ],
)
def test_bad_maintenance_fails_with_a_reason(metadata, command, parameters, message):
    with pytest.raises(ValueError, match=message):
        P.maintenance_body(command, metadata=metadata, parameters=parameters, **MAINTENANCE_KWARGS)


def test_an_old_template_cannot_run_maintenance():
    old = json.loads((ROOT / "infra" / "dataflow" / "metadata.json").read_text())
    old["parameters"] = [p for p in old["parameters"] if p["name"] != "keep_versions"]
    next(p for p in old["parameters"] if p["name"] == "command")["regexes"] = ["^(run|refresh)$"]
    for command, parameters in (("gc", {"keep_versions": 3}), ("compact", {})):
        with pytest.raises(ValueError, match=f"cannot {command}: rebuild it"):
            P.maintenance_body(command, metadata=old, parameters=parameters, **MAINTENANCE_KWARGS)


def test_maintenance_runs_on_its_weekday_only():
    sunday = "2025-03-02"
    assert P.is_maintenance_day(sunday, 6) and not P.is_maintenance_day(sunday, 0)
    assert P.is_maintenance_day(date(2025, 3, 3), 0)
    assert not P.is_maintenance_day(sunday, None)
    for bad in (7, -1, True, "6"):
        with pytest.raises(ValueError, match="maintenance_weekday"):
            P.is_maintenance_day(sunday, bad)


class _TaskInstance:
    dag_id, task_id, try_number, log_url = "vgr_etl_refresh", "refresh", 2, "https://airflow/log?x=1"


def test_a_failure_alert_names_the_task_the_date_and_the_reason():
    error = RuntimeError("Dataflow job vgr-etl-refresh-vgr-20250301 failed\ntraceback...")
    text = P.failure_message({"task_instance": _TaskInstance(), "ds": "2025-03-01", "exception": error})
    assert text == (
        "vgr-etl: vgr_etl_refresh.refresh for 2025-03-01 failed (try 2): RuntimeError: Dataflow job "
        "vgr-etl-refresh-vgr-20250301 failed (https://airflow/log?x=1)"
    )


def test_a_failure_alert_reaches_the_webhook():
    """A real HTTP POST to a server on 127.0.0.1: the body Slack and Google Chat webhooks take."""
    import http.server
    import threading

    received: list[tuple[str, bytes]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.headers["Content-Type"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert P.post_alert(f"http://127.0.0.1:{server.server_port}/hook", "vgr-etl: refresh failed") == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert received == [("application/json", b'{"text": "vgr-etl: refresh failed"}')]
    with pytest.raises(ValueError, match="alert_webhook"):
        P.post_alert("ftp://x", "t")


def _expand(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)


def test_images_are_pinned_and_workers_run_unprivileged():
    dockerfiles = sorted((ROOT / "infra").rglob("*Dockerfile"))
    assert len(dockerfiles) == 2
    for path in dockerfiles:
        text = path.read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
        images = [_expand(i, args) for i in re.findall(r"^FROM (\S+)", text, flags=re.M)]
        assert images and all(":" in i.rsplit("/", 1)[-1] and not i.endswith(":latest") for i in images), images
        users = re.findall(r"^USER (\S+)$", text, flags=re.M)
        assert users and users[-1] not in ("root", "0"), path
        assert text.rindex("USER") > text.rindex("RUN "), "nothing runs as root after the switch"
    for path in (*(ROOT / "infra").rglob("*.yaml"),):
        for image in re.findall(r"image: (\S+)", path.read_text()):
            assert ":" in image and not image.endswith(":latest"), (path, image)
