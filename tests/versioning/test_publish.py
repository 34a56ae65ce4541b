"""Publication rules: the quality gate keeps a failing run unpublished, one writer per output, and the id
classification a refresh relies on (published ids skipped, vanished ones found)."""

from __future__ import annotations

import json
import os
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import launcher
from beam_pipelines.layout import CURRENT
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.pipeline import build_pipeline
from beam_pipelines.records import Provenance, RawRecord
from beam_pipelines.sources.parsing import parse_raw
from beam_pipelines.sources.registry import dataset_named
from beam_pipelines.sources.transforms import FindDuplicates
from beam_pipelines.versioning import lease
from beam_pipelines.versioning.manifest import missing_files, read_current
from beam_pipelines.versioning.plan import plan_version
from tests.conftest import RUNNER, run_cli


@pytest.mark.slow
def test_a_run_above_the_reject_fraction_is_not_published(demo, tmp_path):
    out = tmp_path / "o"
    argv = demo["visualprocessbench"].argv(str(out))
    assert run_cli(*argv, "--max_reject_fraction=0.5") == 0
    assert run_cli(*argv, "--max_reject_fraction=0.01") == 1
    report = json.loads((out / "report.json").read_text())
    assert report["version"]["version"] == "v000002" and report["version"]["published"] is False
    assert read_current(str(out)).version == "v000001"
    assert (out / "versions" / "v000002" / "manifest.unpublished.json").exists()
    assert run_cli(*argv, "--max_reject_fraction=0.5") == 0  # the next run reuses the unpublished number
    assert read_current(str(out)).version == "v000002"


@pytest.mark.slow
def test_the_job_itself_fails_when_it_does_not_publish(demo, tmp_path):
    """What a scheduler that does not read the report sees (a Flex Template job, an Airflow task): the job of a run
    above --max_reject_fraction fails, after writing its report; the launcher turns that back into the report."""
    out = tmp_path / "o"
    argv = [*demo["visualprocessbench"].argv(str(out)), "--max_reject_fraction=0.0", RUNNER]
    plan = plan_version(VgrEtlOptions(argv), "run")
    pipeline = beam.Pipeline(options=VgrEtlOptions(argv))
    build_pipeline(pipeline, VgrEtlOptions(argv), plan)
    with pytest.raises(Exception, match=r"above --max_reject_fraction=0.0; v000001 not published \(report: "):
        pipeline.run().wait_until_finish()
    report = json.loads((out / "versions" / "v000001" / "report.json").read_text())
    assert report["version"]["published"] is False and report["rejected"] > 0
    assert not (out / CURRENT).exists()
    summary = launcher.run(launcher.parse(argv))
    assert summary is not None and summary.failure() and summary.version.version == "v000001"


@pytest.mark.slow
def test_a_first_run_touches_only_its_own_files_and_a_failed_launch_nothing(demo, tmp_path):
    out = tmp_path / "o"
    mine = {"validation/my_notes.md": "notes", "index/keep.jsonl": "{}\n", "parquet/samples/other.parquet": "x"}
    for rel, text in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    (out / "parquet" / "samples" / "v000001-leftover-00000-000.parquet").write_text("an unfinished attempt")
    argv = demo["visualprocessbench"].argv(str(out))
    missing = [a if not a.endswith("test.jsonl") else str(tmp_path / "nope.jsonl") for a in argv]
    assert run_cli(*missing) == 2
    assert (out / "parquet" / "samples" / "v000001-leftover-00000-000.parquet").exists()
    assert run_cli(*argv, "--max_reject_fraction=0.5") == 0
    assert {rel: (out / rel).read_text() for rel in mine} == mine
    assert not (out / "parquet" / "samples" / "v000001-leftover-00000-000.parquet").exists()


@pytest.mark.slow
def test_a_second_writer_fails_at_launch_and_deletes_nothing_of_the_first(demo, tmp_path, capsys):
    """The race that lost data: run B starting between run A's last shard and its publish deleted A's shards as
    leftovers, and A published a manifest of missing files. Now B finds A's lease and stops at launch."""
    out = tmp_path / "o"
    argv = [*demo["visualprm"].argv(str(out)), "--max_reject_fraction=0.5", RUNNER]
    first = plan_version(VgrEtlOptions(argv), "run")
    shard = out / "parquet" / "samples" / "v000001-a-00000-000000.parquet"  # what A renamed into place already
    shard.parent.mkdir(parents=True)
    shard.write_text("A's shard")
    assert run_cli(*argv[:-1]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is being written by" in err[0] and f"pid {os.getpid()} (run of v000001" in err[0]
    assert err[0].startswith(f"vgr-etl: run failed: {out} is being written by"), "the user's message, no class name"
    assert shard.read_text() == "A's shard", "nothing of the first writer's is deleted"
    shard.unlink()
    with beam.Pipeline(options=VgrEtlOptions(argv)) as pipeline:
        build_pipeline(pipeline, VgrEtlOptions(argv), first)
    assert read_current(str(out)).version == "v000001" and missing_files(str(out), read_current(str(out))) == []
    assert not (out / lease.LEASE).exists(), "the job's last step released the lease"
    assert run_cli(*argv[:-1]) == 0


@pytest.mark.slow
def test_a_crashed_runs_lease_is_taken_over_and_it_can_no_longer_publish(demo, tmp_path):
    out = tmp_path / "o"
    argv = [*demo["visualprm"].argv(str(out)), "--max_reject_fraction=0.5", RUNNER]
    crashed = plan_version(VgrEtlOptions(argv), "run")
    body = json.loads((out / lease.LEASE).read_text())
    (out / lease.LEASE).write_text(json.dumps({**body, "expires_at": time.time() - 1}))
    leftover = out / "index" / "v000001-crashed-00000-000000.parquet"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half written")
    assert run_cli(*argv[:-1]) == 0
    assert not leftover.exists() and not (out / lease.LEASE).exists()
    published = read_current(str(out))
    pipeline = beam.Pipeline(options=VgrEtlOptions(argv))
    build_pipeline(pipeline, VgrEtlOptions(argv), crashed)
    with pytest.raises(Exception, match="lease"):
        pipeline.run().wait_until_finish()
    assert read_current(str(out)) == published and missing_files(str(out), published) == []


@pytest.mark.slow
def test_publishing_checks_every_listed_file_in_storage(demo, tmp_path):
    out = tmp_path / "o"
    assert run_cli(*demo["vgr"].argv(str(out)), "--max_reject_fraction=0.5") == 0
    manifest = read_current(str(out))
    assert missing_files(str(out), manifest) == []
    files = [f for u in manifest.units for f in u.files]
    (out / files[0].path).unlink()
    (out / files[1].path).write_bytes(b"short")
    assert missing_files(str(out), manifest) == [
        f"{files[0].path} is missing",
        f"{files[1].path} holds 5 bytes, not the {files[1].bytes} written",
    ]


def _raw(row: int, question: str, file: str = "new.jsonl") -> RawRecord:
    line = {
        "image": "coco/a.jpg",
        "conversations": [
            {"from": "human", "value": f"<image>\n{question}"},
            {"from": "gpt", "value": "<think>x</think> Final answer: y"},
        ],
    }
    return RawRecord("vgr", Provenance(file, row, "c"), line=json.dumps(line).encode())


@pytest.mark.slow
def test_published_ids_are_skipped_and_vanished_ones_found():
    vgr = dataset_named("vgr")
    published = parse_raw(_raw(0, "q-old"), vgr).sample_id
    vanished = parse_raw(_raw(1, "q-gone"), vgr).sample_id
    elsewhere = parse_raw(_raw(2, "q-other"), vgr).sample_id
    known = [
        (published, (0, None, ("v000001-a", "old.jsonl", "", 0))),
        (vanished, (0, None, ("v000001-a", "old.jsonl", "", 1))),
        (elsewhere, (0, None, ("v000001-b", "unchanged.jsonl", "", 0))),
    ]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        raws = p | "Raws" >> beam.Create([_raw(0, "q-old"), _raw(1, "q-new")])
        ids = raws | FindDuplicates(vgr, p | "Known" >> beam.Create(known), frozenset({"old.jsonl"}))
        assert_that(ids["kept"], equal_to([(published, ("old.jsonl", "", 0, "v000001-a"))]), label="Kept")
        assert_that(ids["removed"], equal_to([("v000001-a", vanished)]), label="Removed")
