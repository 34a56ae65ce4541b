"""Daily `vgr-etl refresh` on Dataflow through the Flex Template, then, once a week, `compact` and `gc` (Airflow
2.4+, apache-airflow-providers-google).

Configured by the Airflow Variable `vgr_etl_refresh` (JSON; keys in infra/schedule/README.md). One writer per output:
one DAG run at a time, its tasks one after another, each lasting until its Dataflow job ends (deferred to the
triggerer while it waits, so no worker slot is held). A job that does not publish fails, so its task fails: every
failed task calls `alert` (e-mail and/or a webhook) and skips the maintenance. A failed refresh is finished by the
next one: `refresh` processes whatever the published version still lacks.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow import DAG
from airflow.decorators import task
from airflow.models import Variable
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.utils.email import send_email
from vgr_etl_params import (
    failure_message,
    flex_template_body,
    is_maintenance_day,
    maintenance_body,
    post_alert,
)

VARIABLE = "vgr_etl_refresh"


def alert(context: dict[str, Any]) -> None:
    """A failed task (after its retries): one line to the log, to `alert_emails` and to `alert_webhook`."""
    text = failure_message(context)
    logging.getLogger(__name__).error(text)
    config = Variable.get(VARIABLE, deserialize_json=True)
    if config.get("alert_emails"):
        send_email(to=config["alert_emails"], subject=text[:200], html_content=text)
    if config.get("alert_webhook"):
        post_alert(config["alert_webhook"], text)


def _template_metadata(template: str) -> dict[str, Any]:
    bucket, _, name = template.removeprefix("gs://").partition("/")
    return json.loads(GCSHook().download(bucket_name=bucket, object_name=name))["metadata"]


def _launch(task_id: str, body: Any) -> DataflowStartFlexTemplateOperator:
    return DataflowStartFlexTemplateOperator(
        task_id=task_id,
        body=body,
        project_id="{{ var.json.vgr_etl_refresh.project }}",
        location="{{ var.json.vgr_etl_refresh.region }}",
        # Job names stay PREFIX[-COMMAND]-YYYYMMDD: Dataflow keeps one active job per name and region, so a retry
        # that relaunches while the job still runs cannot start a second writer. A unique suffix would defeat that.
        append_job_name=False,
        # The task must last as long as the job for max_active_runs=1 to mean one writer; the triggerer waits.
        wait_until_finished=True,
        deferrable=True,
    )


with DAG(
    dag_id="vgr_etl_refresh",
    description="Publish a new version of the vgr-etl output with the records that arrived since the last one",
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30), "on_failure_callback": alert},
    tags=["vgr-etl"],
):

    @task
    def launch_body(ds: str | None = None) -> dict[str, Any]:
        """The launch body for this run's logical date (`ds`, the day the data interval starts), checked against
        the metadata of the template file it launches, so a parameter the deployed template lacks fails here."""
        config = Variable.get(VARIABLE, deserialize_json=True)
        return flex_template_body(
            template=config["template"],
            job_prefix=config["job_prefix"],
            parameters=config["parameters"],
            logical_date=ds,
            metadata=_template_metadata(config["template"]),
            lookback_days=config.get("lookback_days", 0),
            pipeline_options=config.get("pipeline_options"),
            environment=config.get("environment"),
        )

    @task.short_circuit
    def maintenance_day(ds: str | None = None) -> bool:
        """Compact and gc after the refresh of `maintenance_weekday` only (default 6, Sunday; null: never)."""
        config = Variable.get(VARIABLE, deserialize_json=True)
        return is_maintenance_day(ds, config.get("maintenance_weekday", 6))

    @task
    def maintenance(command: str, ds: str | None = None) -> dict[str, Any]:
        """The launch body of this week's `compact` or `gc` of the refreshed output."""
        config = Variable.get(VARIABLE, deserialize_json=True)
        return maintenance_body(
            command,
            template=config["template"],
            job_prefix=config["job_prefix"],
            output=config["parameters"]["output"],
            logical_date=ds,
            metadata=_template_metadata(config["template"]),
            parameters=config.get(command, {"gc": {"keep_versions": 8}}.get(command, {})),
            pipeline_options=config.get("pipeline_options"),
            environment=config.get("environment"),
        )

    refresh = _launch("refresh", launch_body())
    compact_body = maintenance.override(task_id="compact_body")("compact")
    gc_body = maintenance.override(task_id="gc_body")("gc")
    refresh >> maintenance_day() >> compact_body
    _launch("compact", compact_body) >> gc_body
    _launch("gc", gc_body)
