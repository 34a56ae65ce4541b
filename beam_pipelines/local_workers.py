"""Local worker processes forked from a warm copy of the launching process (`--local_worker_start=fork`).

With `--direct_running_mode=multi_processing`, Beam's local runner starts every worker as a fresh interpreter
(`python -m apache_beam.runners.worker.sdk_worker_main`) that imports Beam, this package and Great Expectations
before its first element: seconds of CPU per worker and run, on the critical path, with the launcher waiting.
Here a zygote is forked from the launcher when the run starts (Beam and the pipeline's modules are imported
there already); it imports what the workers need beyond that, once, while the launcher plans and builds the
job, and every worker is a fork of it. The runner sees Beam's EXTERNAL kind of environment, served by a worker
pool on 127.0.0.1, so runner and workers speak Beam's own Fn API, exactly as with spawned workers.

Forking is only safe from a process with a single Python thread (a thread holding a lock at the fork would hold
it forever in the copy; an earlier pipeline's gRPC thread pools are the usual case): elsewhere, and off Linux,
workers are spawned as usual.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc, beam_runner_api_pb2, endpoints_pb2
from google.protobuf import json_format, text_format

from beam_pipelines.beam_internals import (
    SDK_WORKER_MAIN,
    SUBPROCESS_SDK,
    BeamFnLoggingServicer,
    ExternalWorkerHandler,
    FnApiRunner,
    WorkerHandler,
    provision_pipeline_options,
)
from beam_pipelines.imports import import_long_lived
from beam_pipelines.quiet import quiet_worker
from beam_pipelines.stages import take_stage_times

_LOGGER = logging.getLogger(__name__)
EXIT_GRACE_S = 10.0
"""How long a closing zygote waits for its workers to finish on their own (they stop when the runner closes their
control stream) before it kills them, unless told otherwise."""
GRACE = "vgr-etl:grace_s"
"""The key of the zygote's last request: how long to wait for its workers."""


def _preload() -> None:
    """What a worker imports beyond the launcher's modules: the SDK harness, and Great Expectations (validation)."""
    from beam_pipelines.validation.checker import great_expectations

    import_long_lived(SDK_WORKER_MAIN)
    great_expectations()
    take_stage_times()  # the launcher's tally so far is its own, not the workers'
    gc.freeze()


def run_sdk_worker(env: dict[str, str]) -> None:
    """A worker's body: the environment and logging of a spawned worker, then Beam's own worker main."""
    os.environ.update(env)
    _fresh_logging()
    quiet_worker()
    import_long_lived(SDK_WORKER_MAIN).main([])


def _fresh_logging() -> None:
    """The root logger as a fresh interpreter has it. The launcher's handlers would print every record of the worker
    (whose harness logs at INFO) a second time: the runner already logs what its workers ship to it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def fork_unsafe_reason() -> str | None:
    """Why this process must not fork a zygote now, or None when it may.

    Python threads are what counts: a thread pool left by an earlier pipeline in the same process (Beam's gRPC
    servers) may hold a lock at the fork. The native threads that imports start (OpenBLAS's pool, pyarrow's
    jemalloc purger) register their own fork handlers."""
    if not sys.platform.startswith("linux"):
        return f"forking is only used on Linux, not {sys.platform}"
    threads = threading.active_count()
    return f"the launching process runs {threads} Python threads" if threads > 1 else None


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux `PR_SET_PDEATHSIG`): a launcher killed with
    SIGKILL takes its zygote along, and a zygote its workers, instead of leaving them running unattended."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _in_child(body: Callable[[], None], parent: int) -> None:
    """Run `body` in a forked child, which dies with `parent`, and leave without running the parent's exit handlers
    or flushing its buffers."""
    code = 0
    try:
        _die_with_parent(parent)
        body()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


class Zygote:
    """A fork of the current process that preloads, then forks one child per `start(env)` running `work(env)`."""

    def __init__(
        self, work: Callable[[dict[str, str]], None] = run_sdk_worker, preload: Callable[[], None] = _preload
    ) -> None:
        requests_r, self._requests = os.pipe()
        replies, replies_w = os.pipe()
        launcher = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._requests)
            os.close(replies)
            _in_child(lambda: _serve(requests_r, replies_w, work, preload), launcher)
        os.close(requests_r)
        os.close(replies_w)
        self._replies = os.fdopen(replies, "rb")
        self._lock = threading.Lock()

    def start(self, env: dict[str, str]) -> int:
        """Fork a worker with `env`; its pid."""
        with self._lock:
            os.write(self._requests, json.dumps(env).encode() + b"\n")
            line = self._replies.readline()
        if not line:
            raise RuntimeError(f"the worker zygote (pid {self.pid}) is gone")
        return int(line)

    def close(self, grace: float | None = None) -> int:
        """Stop taking requests, let the zygote reap (or, after `grace`, by default `EXIT_GRACE_S`, kill) its
        workers; its exit status. A job that has ended leaves its workers nothing to do: grace 0."""
        if grace is not None:
            os.write(self._requests, json.dumps({GRACE: grace}).encode() + b"\n")
        os.close(self._requests)
        self._replies.close()
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def _serve(requests: int, replies: int, work: Callable[[dict[str, str]], None], preload: Callable[[], None]) -> None:
    """The zygote's loop: one JSON environment per line in, one forked child's pid per line out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle; it closes the pipe
    preload()
    children: set[int] = set()
    pending, grace = b"", EXIT_GRACE_S
    while True:
        ready, _, _ = select.select([requests], [], [], 1.0)
        _reap(children, None)
        if not ready:
            continue
        data = os.read(requests, 1 << 16)
        if not data:
            break
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            env = json.loads(line)
            if GRACE in env:
                grace = float(env[GRACE])
                continue
            zygote = os.getpid()
            pid = os.fork()
            if pid == 0:
                os.close(requests)
                os.close(replies)
                _in_child(functools.partial(work, env), zygote)
            children.add(pid)
            os.write(replies, f"{pid}\n".encode())
    _reap(children, grace)


def _reap(children: set[int], grace: float | None) -> None:
    """Collect the children that have finished; with a grace period, wait for all of them, killing the ones still
    running after it."""
    deadline = None if grace is None else time.monotonic() + grace
    while children:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid:
            children.discard(pid)
        elif deadline is None:
            return
        elif time.monotonic() < deadline:
            time.sleep(0.05)
        else:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            deadline = math.inf


class _WorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Beam's worker-pool service (the EXTERNAL environment's), starting each worker as a fork of the zygote.

    The workers ship their logs to `logging_url`, where Beam's subprocess-worker logging service writes each record
    on one line, as it does for spawned workers."""

    def __init__(self, zygote: Zygote, pipeline_options_json: str, logging_url: str) -> None:
        self.zygote = zygote
        self.pipeline_options_json = pipeline_options_json
        self.logging_url = logging_url

    def StartWorker(self, request, context):
        def descriptor(url: str) -> str:
            return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))

        env = {
            "CONTROL_API_SERVICE_DESCRIPTOR": descriptor(request.control_endpoint.url),
            "LOGGING_API_SERVICE_DESCRIPTOR": descriptor(self.logging_url),
            "PIPELINE_OPTIONS": self.pipeline_options_json,
            "WORKER_ID": request.worker_id,
        }
        try:
            self.zygote.start(env)
        except (OSError, RuntimeError) as exc:
            return beam_fn_api_pb2.StartWorkerResponse(error=f"could not fork a worker: {exc}")
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):
        """Nothing to do: a worker ends when the runner closes its control stream."""
        return beam_fn_api_pb2.StopWorkerResponse()


SPAWNED_WORKER_COMMAND = f"{sys.executable} -m {SDK_WORKER_MAIN}"
"""The command `FnApiRunner` gives its multi_processing environment: the environments this runner serves itself."""


class ForkingFnApiRunner(FnApiRunner):
    """`FnApiRunner` whose multi_processing workers are forks of a `Zygote` instead of fresh interpreters."""

    def __init__(self, zygote: Zygote) -> None:
        super().__init__()
        self.zygote = zygote

    def run_via_runner_api(self, pipeline_proto, options):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        url = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        options_json = json_format.MessageToJson(provision_pipeline_options(self))
        pool = _WorkerPool(self.zygote, options_json, logging_url=url)
        beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
        beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(BeamFnLoggingServicer(), server)
        server.start()
        try:
            _serve_spawned_environments(pipeline_proto, url)
            return super().run_via_runner_api(pipeline_proto, options)
        finally:
            server.stop(None)


FORKED_WORKERS_URN = "vgr-etl:env:forked_python_worker_pool:v1"
"""The environment of forked workers: Beam's EXTERNAL (an `ExternalPayload` naming the worker pool), on this host."""


@WorkerHandler.register_environment(FORKED_WORKERS_URN, beam_runner_api_pb2.ExternalPayload)
class _ForkedWorkerHandler(ExternalWorkerHandler):
    """Beam's EXTERNAL worker handler, with the workers reaching the runner at `localhost` as spawned workers do
    (EXTERNAL's own default is this host's fully qualified name, meant for workers on other machines)."""

    def host_from_worker(self) -> str:
        return "localhost"


def _serve_spawned_environments(pipeline_proto: beam_runner_api_pb2.Pipeline, url: str) -> None:
    """Point the runner's own subprocess environments at the worker pool at `url`."""
    payload = beam_runner_api_pb2.ExternalPayload(endpoint=endpoints_pb2.ApiServiceDescriptor(url=url))
    for env in pipeline_proto.components.environments.values():
        if env.urn != SUBPROCESS_SDK:
            continue
        if env.payload.decode("utf-8") != SPAWNED_WORKER_COMMAND:
            continue
        env.urn = FORKED_WORKERS_URN
        env.payload = payload.SerializeToString()


def forks_workers(options: PipelineOptions, start: str) -> bool:
    """Whether this run's workers would be local processes that `--local_worker_start=fork` can fork."""
    runner = options.view_as(StandardOptions).runner
    direct = options.view_as(DirectOptions)
    return (
        start == "fork"
        and isinstance(runner, str)
        and runner.rsplit(".", 1)[-1] == FnApiRunner.__name__
        and direct.direct_running_mode == "multi_processing"
        and direct.direct_num_workers != 1
    )


@contextlib.contextmanager
def local_runner(options: PipelineOptions, start: str) -> Iterator[FnApiRunner | None]:
    """The runner object for this run: a `ForkingFnApiRunner` when its workers are forked, else None (the one the
    options name). Enter it first thing in a run, so the zygote's imports overlap the planning and building."""
    if not forks_workers(options, start):
        yield None
        return
    reason = fork_unsafe_reason()
    if reason:
        _LOGGER.info("local workers are spawned, not forked: %s", reason)
        yield None
        return
    zygote = Zygote()
    _LOGGER.info("local workers are forked from a zygote (pid %d)", zygote.pid)
    try:
        yield ForkingFnApiRunner(zygote)
    except BaseException:
        zygote.close()
        raise
    zygote.close(grace=0.0)  # the job has ended: its workers' shutdown (half a second) is not waited for
