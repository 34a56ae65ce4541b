"""`python -m tests.helpers.worker_pool PORT`: Beam's external worker pool servicer, bound to 127.0.0.1 only."""

from __future__ import annotations

import signal
import sys

import grpc
from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
from apache_beam.utils import thread_pool_executor


def main(port: int) -> None:
    server = grpc.server(thread_pool_executor.shared_unbounded_instance())
    server.add_insecure_port(f"127.0.0.1:{port}")
    pool = BeamFnExternalWorkerPoolServicer(use_process=True)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the workers are stopped with the pool
    try:
        server.wait_for_termination()
    finally:
        for worker in pool._worker_processes.values():
            worker.terminate()
        server.stop(grace=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
