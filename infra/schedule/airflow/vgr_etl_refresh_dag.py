"""Daily `vgr-etl refresh` on Dataflow through the Flex Template (Airflow 2.x, apache-airflow-providers-google).

Configured by the Airflow Variable `vgr_etl_refresh` (JSON; keys in infra/schedule/README.md). One writer per output:
one DAG run at a time, and the run lasts until the Dataflow job ends (the operator waits for it). A failed run is
finished by the next one: `refresh` processes whatever the published version still lacks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow import DAG
from airflow.decorators import task
from airflow.models import Variable
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from vgr_etl_params import flex_template_body

VARIABLE = "vgr_etl_refresh"

with DAG(
    dag_id="vgr_etl_refresh",
    description="Publish a new version of the vgr-etl output with the records that arrived since the last one",
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30)},
    tags=["vgr-etl"],
):

    @task
    def launch_body(ds: str | None = None) -> dict[str, Any]:
        """The launch body for this run's logical date (`ds`, the day the data interval starts), checked against
        the metadata of the template file it launches, so a parameter the deployed template lacks fails here."""
        config = Variable.get(VARIABLE, deserialize_json=True)
        bucket, _, name = config["template"].removeprefix("gs://").partition("/")
        spec = json.loads(GCSHook().download(bucket_name=bucket, object_name=name))
        return flex_template_body(
            template=config["template"],
            job_prefix=config["job_prefix"],
            parameters=config["parameters"],
            logical_date=ds,
            metadata=spec["metadata"],
            lookback_days=config.get("lookback_days", 0),
            pipeline_options=config.get("pipeline_options"),
            environment=config.get("environment"),
        )

    DataflowStartFlexTemplateOperator(
        task_id="refresh",
        body=launch_body(),
        project_id="{{ var.json.vgr_etl_refresh.project }}",
        location="{{ var.json.vgr_etl_refresh.region }}",
        # The job name stays PREFIX-YYYYMMDD: Dataflow keeps one active job per name and region, so a retry that
        # relaunches while the job still runs cannot start a second writer. A unique suffix would defeat that.
        append_job_name=False,
        # The run must last as long as the job for max_active_runs=1 to mean one writer.
        wait_until_finished=True,
        deferrable=False,
    )
