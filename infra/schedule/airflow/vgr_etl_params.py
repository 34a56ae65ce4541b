"""Parameters of a scheduled `vgr-etl refresh`, as a Dataflow Flex Template launch body or as a command line.

Standard library only: Airflow imports this next to the DAG (its workers have no Beam), and the tests check it
against the real template metadata and option parser.

Conventions:
- Only `input` patterns are rendered for the run's logical date, with `str.format` fields: `{ds}` (2025-03-01),
  `{ds_nodash}` (20250301), `{year}` (2025), `{month}` (03), `{day}` (01). Literal braces are written `{{` / `}}`.
  `lookback_days=N` renders every pattern for the logical date and the N days before it as well (oldest first,
  duplicates dropped), so a day a failed or skipped run missed is read again by the next run; `refresh` only
  processes the records the published version lacks.
- Several patterns for one repeatable option (`input`, `label_reference`) become repeated flags on the command line
  and one Flex Template parameter holding the patterns one per line (`INPUT_SEPARATOR`): template parameters are a
  string map, and a line feed cannot occur in a Cloud Storage object name.
- `parameters` holds template parameters only (checked against the template metadata: names, required ones, value
  regexes); `pipeline_options` holds Beam flags such as `sdk_container_image`, forwarded as they are (the launcher
  rejects an unknown flag when the job starts).
"""

from __future__ import annotations

import json
import re
import string
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

COMMAND = "refresh"
INPUT_SEPARATOR = "\n"
REPEATABLE = ("input", "label_reference")  # the `action="append"` options of VgrEtlOptions
SET_BY_SCHEDULE = ("command",)
# The template marks only `output` required (compact and gc launch without the rest); a refresh needs these too,
# and keeping or dropping vanished records is a decision, not a default.
REQUIRED_FOR_REFRESH = ("source", "input", "image_root", "on_removed")
MAINTENANCE = {"compact": ("chunk_rows", "shard_max_bytes"), "gc": ("keep_versions",)}
"""The maintenance commands and the parameters each takes besides `output`."""
REQUIRED_FOR_MAINTENANCE = {"compact": (), "gc": ("keep_versions",)}
DATE_FIELDS = ("ds", "ds_nodash", "year", "month", "day")
JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # Dataflow job names, capped at 63 characters
JOB_DATE_SUFFIX = len("-20250301")
FLAG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
BOOLEAN_REGEXES = ["^(true|false)$"]  # how the metadata marks a bare flag (`beam_pipelines.templates._parameter`)
# FlexTemplateRuntimeEnvironment (Dataflow v1b3), the `environment` of a launch request.
RUNTIME_ENVIRONMENT_FIELDS = frozenset(
    {
        "numWorkers",
        "maxWorkers",
        "zone",
        "serviceAccountEmail",
        "tempLocation",
        "machineType",
        "additionalExperiments",
        "network",
        "subnetwork",
        "additionalUserLabels",
        "kmsKeyName",
        "ipConfiguration",
        "workerRegion",
        "workerZone",
        "enableStreamingEngine",
        "flexrsGoal",
        "stagingLocation",
        "sdkContainerImage",
        "diskSizeGb",
        "autoscalingAlgorithm",
        "dumpHeapOnOom",
        "saveHeapDumpsToGcsPath",
        "launcherMachineType",
        "enableLauncherVmSerialPortLogging",
        "streamingMode",
        "additionalPipelineOptions",
    }
)


def logical_day(value: date | str) -> date:
    """The run's logical date from a `date`, a `datetime` (its own date) or an Airflow `ds` string (YYYY-MM-DD,
    nothing looser)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"logical date {value!r}: {exc}") from None
    raise ValueError(f"logical date {value!r}: expected a date or a YYYY-MM-DD string")


def _date_fields(day: date) -> dict[str, str]:
    return {
        "ds": day.isoformat(),
        "ds_nodash": day.strftime("%Y%m%d"),
        "year": f"{day.year:04d}",
        "month": f"{day.month:02d}",
        "day": f"{day.day:02d}",
    }


def _check_fields(pattern: str) -> None:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise ValueError(f"input pattern {pattern!r}: {exc} (write literal braces as {{{{ and }}}})") from None
    bad = [name for name in fields if name not in DATE_FIELDS]
    if bad:
        raise ValueError(f"input pattern {pattern!r}: unknown field(s) {bad}; the date fields are {DATE_FIELDS}")


def _is_dated(pattern: str) -> bool:
    _check_fields(pattern)
    return any(name is not None for _, name, _, _ in string.Formatter().parse(pattern))


def render_inputs(patterns: Sequence[str], logical_date: date | str, lookback_days: int = 0) -> list[str]:
    """Every pattern for the logical date and the `lookback_days` days before it, oldest first, without repeats."""
    day = logical_day(logical_date)
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, int) or lookback_days < 0:
        raise ValueError(f"lookback_days={lookback_days!r}: expected a non-negative integer")
    for pattern in patterns:
        _check_fields(pattern)
    days = [day - timedelta(days=n) for n in range(lookback_days, -1, -1)]
    rendered = [pattern.format(**_date_fields(d)) for pattern in patterns for d in days]
    return list(dict.fromkeys(rendered))


def job_name(prefix: str, logical_date: date | str) -> str:
    """`PREFIX-YYYYMMDD`: stable for a date, so a retried launch reuses the name and Dataflow, which keeps one
    active job per name and region, does not start a second one."""
    limit = 63 - JOB_DATE_SUFFIX
    if not isinstance(prefix, str) or not JOB_NAME.match(prefix) or len(prefix) > limit:
        raise ValueError(
            f"job name prefix {prefix!r}: lowercase letters, digits and hyphens, starting with a letter, not ending "
            f"with a hyphen, at most {limit} characters"
        )
    return f"{prefix}-{logical_day(logical_date):%Y%m%d}"


def _patterns(name: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items:
        raise ValueError(f"{name}: expected one or more patterns, got {value!r}")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name}: every pattern must be a non-empty string, got {item!r}")
        if INPUT_SEPARATOR in item:
            raise ValueError(f"{name}: pattern {item!r} contains a line feed, the separator of several patterns")
    return list(items)


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"{name}: expected a non-empty string, a number or a boolean, got {value!r}")


def refresh_options(
    parameters: Mapping[str, Any],
    logical_date: date | str,
    metadata: Mapping[str, Any],
    lookback_days: int = 0,
) -> dict[str, str | list[str]]:
    """The template parameters of one run, checked against the template metadata, inputs rendered for the date.

    `metadata` is the template's metadata (`infra/dataflow/metadata.json`, or the `metadata` of the built template
    file), whose parameter list must include `command` and `on_removed`: an older template cannot refresh.
    """
    known = {p["name"]: p for p in metadata["parameters"]}
    lacking = [n for n in (*SET_BY_SCHEDULE, *REQUIRED_FOR_REFRESH) if n not in known]
    if lacking:
        raise ValueError(f"the template has no {', '.join(lacking)} parameter(s): rebuild it from this version")
    preset = [n for n in SET_BY_SCHEDULE if n in parameters]
    if preset:
        raise ValueError(f"{', '.join(preset)}: set by the schedule ({COMMAND}), not a parameter to give")
    gc_only = [n for n in parameters if n in MAINTENANCE["gc"]]
    if gc_only:
        raise ValueError(f"{', '.join(gc_only)}: a parameter of gc, not of {COMMAND}")
    unknown = [n for n in parameters if n not in known]
    if unknown:
        raise ValueError(f"unknown template parameter(s) {', '.join(unknown)}; the template has {', '.join(known)}")
    required = [n for n, p in known.items() if not p.get("isOptional", False) and n not in SET_BY_SCHEDULE]
    required += REQUIRED_FOR_REFRESH
    missing = [n for n in required if n not in parameters]
    if missing:
        raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
    if _scalar("on_removed", parameters["on_removed"]) == "drop" and any(
        _is_dated(pattern) for pattern in _patterns("input", parameters.get("input", ()))
    ):
        raise ValueError(
            "on_removed=drop with dated input patterns: a refresh treats inputs it no longer lists as deleted "
            "upstream, so each day would drop the days before; use keep, or undated patterns"
        )
    options: dict[str, str | list[str]] = {}
    for name, value in parameters.items():
        if name in REPEATABLE:
            patterns = _patterns(name, value)
            options[name] = render_inputs(patterns, logical_date, lookback_days) if name == "input" else patterns
            continue
        text = _scalar(name, value)
        for regex in known[name].get("regexes", []):
            if not re.match(regex, text):
                raise ValueError(f"{name}={text!r} does not match {regex}")
        options[name] = text
    return options


def _pipeline_options(pipeline_options: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> dict[str, str]:
    names = {p["name"] for p in metadata["parameters"]}
    out: dict[str, str] = {}
    for name, value in (pipeline_options or {}).items():
        if not FLAG_NAME.match(name) or name in names:
            raise ValueError(f"pipeline option {name!r}: expected a Beam flag name that is not a template parameter")
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise ValueError(f"pipeline option {name}: expected a non-empty string or a number, got {value!r}")
        out[name] = str(value)
    return out


def template_parameters(
    parameters: Mapping[str, Any],
    logical_date: date | str,
    metadata: Mapping[str, Any],
    *,
    lookback_days: int = 0,
    pipeline_options: Mapping[str, str | int | float] | None = None,
) -> dict[str, str]:
    """The Flex Template `parameters` map: `command=refresh`, the checked parameters (repeatable ones one pattern
    per line), then the Beam pipeline options."""
    options = refresh_options(parameters, logical_date, metadata, lookback_days)
    flat = {k: INPUT_SEPARATOR.join(v) if isinstance(v, list) else v for k, v in options.items()}
    return {"command": COMMAND, **flat, **_pipeline_options(pipeline_options, metadata)}


def flex_template_body(
    *,
    template: str,
    job_prefix: str,
    parameters: Mapping[str, Any],
    logical_date: date | str,
    metadata: Mapping[str, Any],
    lookback_days: int = 0,
    pipeline_options: Mapping[str, str | int | float] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of `projects.locations.flexTemplates.launch` (what `DataflowStartFlexTemplateOperator` takes).

    `template` is the gs:// path of the built template file; `environment` holds FlexTemplateRuntimeEnvironment
    fields (camelCase: `tempLocation`, `maxWorkers`, ...).
    """
    launch: dict[str, Any] = {
        "jobName": job_name(job_prefix, logical_date),
        "containerSpecGcsPath": _template(template),
        "parameters": template_parameters(
            parameters, logical_date, metadata, lookback_days=lookback_days, pipeline_options=pipeline_options
        ),
    }
    if environment:
        launch["environment"] = _environment(environment)
    return {"launchParameter": launch}


def maintenance_body(
    command: str,
    *,
    template: str,
    job_prefix: str,
    output: str,
    logical_date: date | str,
    metadata: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
    pipeline_options: Mapping[str, str | int | float] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The launch body of a scheduled `compact` or `gc` of `output` (job `PREFIX-COMMAND-YYYYMMDD`): `parameters`
    holds compact's `chunk_rows` and `shard_max_bytes`, or gc's `keep_versions` (required)."""
    if command not in MAINTENANCE:
        raise ValueError(f"maintenance command {command!r}: expected one of {', '.join(MAINTENANCE)}")
    known = {p["name"]: p for p in metadata["parameters"]}
    lacking = [n for n in ("command", *MAINTENANCE[command]) if n not in known]
    if lacking or not all(re.match(r, command) for r in known["command"].get("regexes", [])):
        raise ValueError(f"the template cannot {command}: rebuild it from this version")
    parameters = dict(parameters or {})
    unknown = [n for n in parameters if n not in MAINTENANCE[command]]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a parameter of {command}, which takes {MAINTENANCE[command]}")
    missing = [n for n in REQUIRED_FOR_MAINTENANCE[command] if n not in parameters]
    if missing:
        raise ValueError(f"{command}: missing required parameter(s): {', '.join(missing)}")
    values = {"command": command, "output": _scalar("output", output)}
    for name, value in parameters.items():
        text = _scalar(name, value)
        for regex in known[name].get("regexes", []):
            if not re.match(regex, text):
                raise ValueError(f"{name}={text!r} does not match {regex}")
        values[name] = text
    launch: dict[str, Any] = {
        "jobName": job_name(f"{job_prefix}-{command}", logical_date),
        "containerSpecGcsPath": _template(template),
        "parameters": {**values, **_pipeline_options(pipeline_options, metadata)},
    }
    if environment:
        launch["environment"] = _environment(environment)
    return {"launchParameter": launch}


def _template(template: str) -> str:
    if not isinstance(template, str) or not template.startswith("gs://") or len(template) <= len("gs://"):
        raise ValueError(f"template {template!r}: expected the gs:// path of the built Flex Template file")
    return template


def _environment(environment: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(environment) - RUNTIME_ENVIRONMENT_FIELDS)
    if unknown:
        raise ValueError(f"unknown runtime environment field(s) {', '.join(unknown)}")
    return dict(environment)


def is_maintenance_day(logical_date: date | str, weekday: int | None) -> bool:
    """Whether the scheduled compact and gc run after the refresh of `logical_date`: on `weekday` (0 = Monday, as
    `date.weekday()`), never when it is None."""
    if weekday is None:
        return False
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise ValueError(f"maintenance_weekday={weekday!r}: expected 0 (Monday) to 6 (Sunday), or null for never")
    return logical_day(logical_date).weekday() == weekday


def failure_message(context: Mapping[str, Any]) -> str:
    """One line for an alert about a failed task, from the fields of an Airflow callback context that every
    version has (`dag`, `task_instance`, `ds`, `exception`)."""
    ti = context.get("task_instance")
    dag = getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    attempt = getattr(ti, "try_number", "?")
    error = context.get("exception")
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}" if error else "failed"
    url = getattr(ti, "log_url", None)
    return f"vgr-etl: {dag}.{task_id} for {context.get('ds', '?')} failed (try {attempt}): {reason}" + (
        f" ({url})" if url else ""
    )


def post_alert(webhook: str, text: str, timeout_s: float = 10.0) -> int:
    """POST `{"text": ...}` (what Slack and Google Chat incoming webhooks take) to `webhook`; the HTTP status."""
    if not isinstance(webhook, str) or not webhook.startswith(("https://", "http://")):
        raise ValueError(f"alert_webhook {webhook!r}: expected an http(s) URL")
    body = json.dumps({"text": text}).encode("utf-8")
    request = urllib.request.Request(webhook, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.status


def refresh_argv(
    parameters: Mapping[str, Any],
    logical_date: date | str,
    metadata: Mapping[str, Any],
    *,
    lookback_days: int = 0,
    pipeline_options: Mapping[str, str | int | float] | None = None,
) -> list[str]:
    """The same run as a `vgr-etl refresh` command line (without the program name): repeatable options repeated,
    bare flags present when true and absent when false (as the Flex launcher does), then the Beam options."""
    options = refresh_options(parameters, logical_date, metadata, lookback_days)
    flags = {p["name"] for p in metadata["parameters"] if p.get("regexes") == BOOLEAN_REGEXES}
    argv = [COMMAND]
    for name, value in options.items():
        if isinstance(value, list):
            argv.extend(f"--{name}={item}" for item in value)
        elif name in flags:
            argv.extend([f"--{name}"] if value == "true" else [])
        else:
            argv.append(f"--{name}={value}")
    argv.extend(f"--{name}={value}" for name, value in _pipeline_options(pipeline_options, metadata).items())
    return argv
