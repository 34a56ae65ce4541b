"""Forked local workers: the zygote's life cycle in a fresh process, and a 2-worker CLI run through it."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2

from beam_pipelines.local_workers import (
    FORKED_WORKERS_URN,
    SPAWNED_WORKER_COMMAND,
    _serve_spawned_environments,
    fork_unsafe_reason,
    forks_workers,
    local_runner,
)
from tests.conftest import assert_invariant
from tests.helpers.gcs import subprocess_env
from tests.helpers.outputs import digest_tree

ZYGOTE_SCRIPT = """
import json, os, sys, time
from beam_pipelines import local_workers
from beam_pipelines.local_workers import Zygote, fork_unsafe_reason

out, mode = sys.argv[1], sys.argv[2]
local_workers.EXIT_GRACE_S = 0.5 if mode != "killed" else 600

def work(env):
    partial = f"{out}-{env['WORKER_ID']}.partial"  # beside `out`, renamed in whole: counted only once written
    with open(partial, "w") as f:
        seen = {"pid": os.getpid(), "ppid": os.getppid(), "x": env["X"], "preloaded": os.environ.get("PRELOADED")}
        json.dump(seen, f)
    os.rename(partial, os.path.join(out, env["WORKER_ID"]))
    if mode in ("hang", "done"):
        time.sleep(600)

unsafe = fork_unsafe_reason()
zygote = Zygote(work, preload=lambda: os.environ.__setitem__("PRELOADED", "yes"))
pids = [zygote.start({"WORKER_ID": f"w{i}", "X": str(i)}) for i in range(3)]
while len(os.listdir(out)) < 3:
    time.sleep(0.01)
if mode == "killed":  # the launcher dies without closing: its zygote would wait EXIT_GRACE_S for the workers
    print(json.dumps({"zygote": zygote.pid, "pids": pids}), flush=True)
    os.kill(os.getpid(), 9)
started = time.monotonic()
status = zygote.close(0.0 if mode == "done" else None)
print(json.dumps({"unsafe": unsafe, "zygote": zygote.pid, "pids": pids, "status": status,
                  "close_s": time.monotonic() - started, "parent_env": os.environ.get("PRELOADED")}))
"""


def _zygote_run(tmp_path: Path, mode: str) -> dict:
    out = tmp_path / "workers"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", ZYGOTE_SCRIPT, str(out), mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["workers"] = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    return result


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_workers_are_children_of_the_preloaded_zygote(tmp_path):
    result = _zygote_run(tmp_path, "exit")
    assert result["unsafe"] is None and result["status"] == 0
    workers = result["workers"]
    assert sorted(workers) == ["w0", "w1", "w2"]
    assert sorted(w["pid"] for w in workers.values()) == sorted(result["pids"])
    assert {w["ppid"] for w in workers.values()} == {result["zygote"]}
    assert [workers[f"w{i}"]["x"] for i in range(3)] == ["0", "1", "2"]
    # the preload ran once, in the zygote: every worker inherits it, the launcher does not have it
    assert {w["preloaded"] for w in workers.values()} == {"yes"} and result["parent_env"] is None
    assert all(_gone(pid) for pid in [result["zygote"], *result["pids"]])


@pytest.mark.slow
def test_a_launcher_killed_with_sigkill_takes_its_zygote_and_workers_along(tmp_path):
    out = tmp_path / "workers"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", ZYGOTE_SCRIPT, str(out), "killed"], capture_output=True, text=True, timeout=60,
        env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == -9
    started = json.loads(done.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(_gone(p) for p in [started["zygote"], *started["pids"]]):
        time.sleep(0.05)
    assert all(_gone(p) for p in [started["zygote"], *started["pids"]]), "no orphan worker outlives its launcher"


@pytest.mark.slow
def test_closing_kills_workers_that_do_not_finish(tmp_path):
    result = _zygote_run(tmp_path, "hang")
    assert result["status"] == 0 and 0.5 <= result["close_s"] < 10
    assert all(_gone(pid) for pid in result["pids"])


@pytest.mark.slow
def test_after_the_job_the_workers_are_not_waited_for(tmp_path):
    result = _zygote_run(tmp_path, "done")
    assert result["status"] == 0 and result["close_s"] < 0.4, "grace 0: killed at once, not after EXIT_GRACE_S"
    assert all(_gone(pid) for pid in result["pids"])


@contextlib.contextmanager
def _another_thread():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


MULTI_PROCESSING = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def test_a_process_running_threads_does_not_fork():
    with _another_thread():
        assert "Python threads" in fork_unsafe_reason()


@pytest.mark.slow
def test_a_launcher_running_threads_spawns_its_workers(caplog):
    caplog.set_level(logging.INFO, logger="beam_pipelines.local_workers")
    with _another_thread(), local_runner(PipelineOptions(MULTI_PROCESSING), "fork") as runner:
        assert runner is None
    assert "spawned, not forked" in caplog.text


@pytest.mark.parametrize(
    ("flags", "start", "expected"),
    [
        (MULTI_PROCESSING, "fork", True),
        (["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"], "fork", True),
        (MULTI_PROCESSING, "spawn", False),
        (["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=1"], "fork", False),
        (["--runner=FnApiRunner", "--direct_num_workers=2"], "fork", False),
        (["--runner=DataflowRunner", "--direct_running_mode=multi_processing"], "fork", False),
        (["--runner=PortableRunner", "--direct_running_mode=multi_processing"], "fork", False),
    ],
)
def test_only_local_multi_processing_runs_fork(flags, start, expected):
    assert forks_workers(PipelineOptions(flags), start) is expected


def _cli(args: list[str], reject: str = "0.5") -> subprocess.CompletedProcess:
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "logging.getLogger('beam_pipelines.local_workers').setLevel(logging.INFO)\n"
        "from beam_pipelines.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "run", *args, "--runner=FnApiRunner", f"--max_reject_fraction={reject}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )


@pytest.mark.slow
def test_two_forked_workers_write_what_one_worker_writes(demo, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _cli(demo["vgr"].argv(str(one))).returncode == 0
    done = _cli([*demo["vgr"].argv(str(two)), "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "local workers are forked from a zygote" in done.stderr
    assert "spawned, not forked" not in done.stderr
    # the workers' own records reach the launcher's log once, through the runner, not also by inherited handlers
    assert not [line for line in done.stderr.splitlines() if line.startswith("INFO:apache_beam.runners.worker")]
    for noise in ("semi_persistent_directory", "Got goaway", "Logging client failed"):
        assert noise not in done.stderr, noise
    assert_invariant(two)
    assert digest_tree(two) == digest_tree(one)


@pytest.mark.slow
def test_a_two_worker_run_that_does_not_publish_says_why_in_one_line(demo, tmp_path):
    """The job fails on purpose (so schedulers see it); the workers' tracebacks of that failure stay off the
    terminal, where the launcher prints the report's reason."""
    out = tmp_path / "o"
    args = [*demo["vgr"].argv(str(out)), "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    done = _cli(args, reject="0.0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "NotPublished" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("vgr-etl: run failed: rejected ") and "above --max_reject_fraction=0.0" in last
    assert not (out / "current.json").exists()


def test_only_the_runners_own_spawned_environment_is_served_by_the_pool():
    proto = beam_runner_api_pb2.Pipeline()
    envs = proto.components.environments
    envs["ours"].CopyFrom(
        beam_runner_api_pb2.Environment(urn=python_urns.SUBPROCESS_SDK, payload=SPAWNED_WORKER_COMMAND.encode())
    )
    envs["custom"].CopyFrom(beam_runner_api_pb2.Environment(urn=python_urns.SUBPROCESS_SDK, payload=b"my-worker"))
    _serve_spawned_environments(proto, "127.0.0.1:5555")
    assert envs["ours"].urn == FORKED_WORKERS_URN
    assert beam_runner_api_pb2.ExternalPayload.FromString(envs["ours"].payload).endpoint.url == "127.0.0.1:5555"
    assert envs["custom"].urn == python_urns.SUBPROCESS_SDK and envs["custom"].payload == b"my-worker"
