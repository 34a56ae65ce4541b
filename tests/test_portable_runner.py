"""The pipeline through Beam's portable Job API (what a Flink job server speaks), for real.

PortableRunner submits to Beam's Python job service, once with LOOPBACK workers (in this process) and once
with an external worker pool that starts SDK workers as separate processes; both give the local runner's files,
byte for byte. `--sdk_worker_parallelism=2` is what a Flink deployment uses to ask each task manager's pool for
two workers; Beam's Python job service runs the job on its FnApiRunner, which always asks the pool for exactly
one worker per environment (its worker count is only read on the non-portable path).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beam_pipelines import progress
from beam_pipelines.cli import main
from beam_pipelines.options import unknown_flags
from tests.conftest import assert_invariant
from tests.helpers.outputs import digest_tree, snapshot
from tests.helpers.portable import job_service, worker_pool

pytestmark = pytest.mark.slow  # runs pipelines end to end: `make test`, not `make test-fast`

SOURCE = "vgr"


@pytest.fixture(scope="module")
def local_run(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / SOURCE
    assert main(["run", *demo[SOURCE].argv(str(out)), "--max_reject_fraction=0.5", "--runner=FnApiRunner"]) == 0
    return out


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with open(tmp_path_factory.mktemp("logs") / "job_service.log", "w") as log, job_service(log) as address:
        yield address


def portable(demo, out: Path, endpoint: str, *environment: str) -> int:
    args = [*demo[SOURCE].argv(str(out)), "--max_reject_fraction=0.5", "--runner=PortableRunner"]
    return main(["run", *args, f"--job_endpoint={endpoint}", *environment])


def test_loopback_workers_give_the_local_files(demo, local_run, endpoint, tmp_path):
    out = tmp_path / "loopback"
    assert portable(demo, out, endpoint, "--environment_type=LOOPBACK") == 0
    assert_invariant(out)
    assert digest_tree(out) == digest_tree(local_run)
    assert snapshot(out) == snapshot(local_run)


def test_external_worker_pool_gives_the_local_files(demo, local_run, endpoint, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    out = tmp_path / "external"
    log_path = tmp_path / "pool.log"
    with open(log_path, "w") as log, worker_pool(log) as pool:
        status = portable(
            demo,
            out,
            endpoint,
            "--environment_type=EXTERNAL",
            f"--environment_config={pool}",
            "--sdk_worker_parallelism=2",
            "--progress=log",
        )
    assert status == 0, log_path.read_text()[-3000:]
    assert log_path.read_text().count("Starting worker with command") >= 1, "workers run in the pool's processes"
    # the pool's workers do not know the launcher's progress address: what the progress shows comes from the job's
    # metrics, read through the job service
    records = json.loads((out / "report.json").read_text())["input_records"]
    assert f"vgr-etl: run vgr: {records:,}/{records:,} records (100%)" in capfd.readouterr().err
    assert_invariant(out)
    assert digest_tree(out) == digest_tree(local_run)
    assert snapshot(out) == snapshot(local_run)


def test_flink_runner_flags_are_accepted_by_the_command_line():
    flags = ["--runner=FlinkRunner", "--flink_master=flink:8081", "--flink_version=1.20", "--parallelism=8"]
    assert unknown_flags([*flags, "--flink_job_server_jar=job-server.jar", "--environment_type=EXTERNAL"]) == []
