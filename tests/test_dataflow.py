"""Dataflow offline: the job graph for every source (`--dry_run=True`, no network) and a classic template
staged on a real GCS emulator, both from the same command line as a local run."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.portability.api import beam_runner_api_pb2

from beam_pipelines.cli import main
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.pipeline import build_pipeline

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

SOURCES = ("vgr", "visualprm", "visualprm_raw", "visualprocessbench")
STAGES = (
    "PlanChunks",
    "FindDuplicates",
    "ParseSamples",
    "ValidateRecords",
    "ValidateImages",
    "DecodeImages",
    "LoadImages",
    "CropRegions",
    "ComputeReplay",
    "WriteParquetShards",
    "WriteWebDatasetShards",
    "WriteDeadLetters",
    "PublishVersion",
)


def dataflow_args(source: str, bucket: str = "gs://vgr-etl-test") -> list[str]:
    return [
        f"--source={source}",
        f"--input={bucket}/in/*.jsonl",
        f"--image_root={bucket}/images",
        f"--output={bucket}/out/{source}",
        "--runner=DataflowRunner",
        "--project=vgr-etl-test",
        "--region=us-central1",
        f"--temp_location={bucket}/tmp",
        f"--staging_location={bucket}/staging",
    ]


def stage_names(proto: beam_runner_api_pb2.Pipeline) -> set[str]:
    return {t.unique_name for t in proto.components.transforms.values()}


@pytest.mark.parametrize("source", SOURCES)
def test_dry_run_builds_the_job_graph_offline(source, capsys):
    args = [*dataflow_args(source), "--dry_run=True"]
    assert main(["run", *args]) == 0
    assert "without waiting" in capsys.readouterr().out
    options = VgrEtlOptions(args)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options)
    job = pipeline.run().job
    assert set(STAGES) <= stage_names(job.proto_pipeline)
    environments = job.proto_pipeline.components.environments.values()
    assert any(b"beam_python3.11_sdk" in env.payload for env in environments)
    assert job.options.view_as(VgrEtlOptions).source == source


def test_classic_template_is_staged_on_gcs(gcs):
    bucket = gcs.bucket("vgr-etl-template")
    template = f"{bucket}/templates/vgr.json"
    assert main(["run", *dataflow_args("vgr", bucket), f"--template_location={template}"]) == 0
    with FileSystems.open(template) as f:
        spec = json.loads(f.read())
    options = {d["key"]: d["value"] for d in spec["environment"]["sdkPipelineOptions"]["display_data"]}
    assert options["source"] == "vgr" and options["output"] == f"{bucket}/out/vgr"
    staged = gcs.names(f"{bucket}/staging")
    assert [n for n in staged if n.endswith("/pipeline.pb")], staged
    with FileSystems.open(f"{bucket}/staging/{next(n for n in staged if n.endswith('/pipeline.pb'))}") as f:
        proto = beam_runner_api_pb2.Pipeline.FromString(f.read())
    assert set(STAGES) <= stage_names(proto)
    assert not gcs.names(f"{bucket}/out"), "creating a template must not touch the outputs"
