"""Every private or internal name of Apache Beam the package uses, in this one module.

Beam's public API covers pipelines, transforms and options; three features here reach below it: the option parser
class that `PipelineOptions` subclasses register their flags on (the package declares its options once and
derives the Flex Template's parameters from them), the local runner's worker handling, which the forked local
workers (`local_workers`) plug into, and the inspection of a DoFn's state and timer parameters, which Beam repeats
and this module makes once per kind of DoFn (`remember_dofn_specs`). A Beam upgrade that moves or renames one of these
fails `check()` (and its test) with the name that changed, instead of failing somewhere in a run.
"""

from __future__ import annotations

import importlib
import types
import weakref
from typing import Any

from apache_beam.version import __version__ as BEAM_VERSION


class BeamInternalsChanged(ImportError):
    """An internal Beam name this package relies on is not where it was."""


def _internal(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise BeamInternalsChanged(
            f"Apache Beam {BEAM_VERSION} has no {module}.{name} ({exc}); adapt beam_pipelines/beam_internals.py"
        ) from exc


BeamArgumentParser = _internal("apache_beam.options.pipeline_options", "_BeamArgumentParser")
"""The parser `PipelineOptions._add_argparse_args` receives."""
FnApiRunner = _internal("apache_beam.runners.portability.fn_api_runner", "FnApiRunner")
WorkerHandler = _internal("apache_beam.runners.portability.fn_api_runner.worker_handlers", "WorkerHandler")
ExternalWorkerHandler = _internal(
    "apache_beam.runners.portability.fn_api_runner.worker_handlers", "ExternalWorkerHandler"
)
BeamFnLoggingServicer = _internal("apache_beam.runners.portability.local_job_service", "BeamFnLoggingServicer")
SUBPROCESS_SDK = _internal("apache_beam.portability.python_urns", "SUBPROCESS_SDK")
USERSTATE = importlib.import_module("apache_beam.transforms.userstate")
INSPECT_DOFN_SPECS = _internal("apache_beam.transforms.userstate", "get_dofn_specs")
"""Beam's own `get_dofn_specs(dofn)`: the state and timer specs among the defaults of every method of a DoFn."""
SDK_WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"
"""The module a Python SDK worker process runs (`main(argv)`)."""


def provision_pipeline_options(runner: Any) -> Any:
    """The pipeline options proto an `FnApiRunner` provisions its workers with (set when a run starts)."""
    return runner._provision_info.provision_info.pipeline_options


def job_counters(result: Any, namespace: str) -> dict[str, int]:
    """A running job's counters in `namespace`, summed over steps (committed where the runner has them, else
    attempted). A portable runner's result caches the metrics it read first (`_metrics`): it is cleared so that
    each call asks the job service again; Dataflow's asks the service on every query while the job runs."""
    from apache_beam.metrics.metric import MetricsFilter

    if hasattr(result, "_metrics") and hasattr(result, "_job_service"):
        result._metrics = None
    counters = result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]
    totals: dict[str, int] = {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def parser_actions(parser: Any) -> list[Any]:
    """The argparse actions registered on a parser (argparse keeps them in a private list)."""
    return list(parser._actions)


_specs: dict[int, tuple[weakref.ref, tuple[frozenset, frozenset]]] = {}
_class_specs: dict[tuple[type, frozenset[str]], tuple[frozenset, frozenset]] = {}


def _class_key(dofn: Any) -> tuple[type, frozenset[str]] | None:
    """What Beam's inspection of `dofn` depends on when no instance attribute is a bound method: its class, and
    which of the class's attributes the instance shadows (Beam inspects only the bound methods `getattr` finds, so
    a wrapped function stored as `process`, as `beam.Map` stores it, hides the class's `process`); None when an
    instance attribute is a bound method (it is inspected too) or the object has no `__dict__`."""
    attributes = getattr(dofn, "__dict__", None)
    if attributes is None or any(isinstance(v, types.MethodType) for v in attributes.values()):
        return None
    kind = type(dofn)
    return kind, frozenset(name for name in attributes if hasattr(kind, name))


def remembered_dofn_specs(dofn: Any) -> tuple[set, set]:
    """`get_dofn_specs`, inspected once per kind of DoFn. Beam takes the signature of every method of a DoFn each
    time it asks (several times per ParDo while a job is built and translated, twice more where a worker sets it
    up), and what it finds depends on the class alone unless the object holds bound methods of its own
    (`_class_key`). Those objects are remembered by identity and forgotten with the DoFn; a DoFn that can be
    neither is inspected every time, as before."""
    kind = _class_key(dofn)
    if kind is not None:
        if kind not in _class_specs:
            states, timers = INSPECT_DOFN_SPECS(dofn)
            _class_specs[kind] = (frozenset(states), frozenset(timers))
        states, timers = _class_specs[kind]
        return set(states), set(timers)
    key = id(dofn)
    entry = _specs.get(key)
    if entry is None or entry[0]() is not dofn:
        states, timers = INSPECT_DOFN_SPECS(dofn)
        try:
            ref = weakref.ref(dofn, lambda _, key=key: _specs.pop(key, None))
        except TypeError:
            return states, timers
        entry = _specs[key] = (ref, (frozenset(states), frozenset(timers)))
    states, timers = entry[1]
    return set(states), set(timers)


def remember_dofn_specs() -> None:
    """Make every caller of Beam's `get_dofn_specs` in this process use `remembered_dofn_specs` (they look it up
    in its module at each call). Idempotent."""
    USERSTATE.get_dofn_specs = remembered_dofn_specs


def check() -> list[str]:
    """What no longer holds of the internals above, one line each (empty when all is as this module expects)."""
    problems = []
    expected = {
        FnApiRunner: ("run_via_runner_api",),
        WorkerHandler: ("register_environment",),
        ExternalWorkerHandler: ("host_from_worker", "start_worker"),
        BeamArgumentParser: ("add_argument", "parse_known_args"),
    }
    for cls, attributes in expected.items():
        problems += [f"{cls.__qualname__}.{a} is gone" for a in attributes if not hasattr(cls, a)]
    if not issubclass(ExternalWorkerHandler, WorkerHandler):
        problems.append("ExternalWorkerHandler is no longer a WorkerHandler")
    runner = FnApiRunner()
    if not hasattr(runner, "_provision_info") or not hasattr(runner._provision_info, "provision_info"):
        problems.append("FnApiRunner()._provision_info.provision_info is gone")
    if getattr(USERSTATE, "get_dofn_specs", None) not in (INSPECT_DOFN_SPECS, remembered_dofn_specs):
        problems.append("userstate.get_dofn_specs is not the function this module wraps")
    parser = BeamArgumentParser()
    if not isinstance(getattr(parser, "_actions", None), list):
        problems.append("the option parser keeps no _actions list")
    try:
        importlib.import_module(SDK_WORKER_MAIN).main  # noqa: B018
    except (ImportError, AttributeError) as exc:
        problems.append(f"{SDK_WORKER_MAIN}.main is gone ({exc})")
    return problems
