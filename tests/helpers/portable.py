"""Beam's portable Job API for real: the Python job service and an external worker pool, on 127.0.0.1.

`local_job_service_main` binds localhost itself. `worker_pool_main` binds every interface, so the pool is
started from `worker_pool` below, which serves Beam's own `BeamFnExternalWorkerPoolServicer` on 127.0.0.1;
with `use_process=True` each worker it is asked for is a separate `python` SDK harness process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.helpers.gcs import subprocess_env
from tests.helpers.net import free_port, wait_for_port


@contextmanager
def _server(args: list[str], port: int, log) -> Iterator[None]:
    env = subprocess_env()
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])  # workers run `python`
    proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, proc=proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def job_service(log) -> Iterator[str]:
    """A running `local_job_service_main`; yields its `--job_endpoint`."""
    port = free_port()
    with _server(["-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)], port, log):
        yield f"localhost:{port}"


@contextmanager
def worker_pool(log) -> Iterator[str]:
    """A running external worker pool that starts one process per worker; yields its `--environment_config`."""
    port = free_port()
    with _server(["-m", "tests.helpers.worker_pool", str(port)], port, log):
        yield f"127.0.0.1:{port}"
