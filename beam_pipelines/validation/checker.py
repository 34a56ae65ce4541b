"""Row-level validation of a batch of samples with Great Expectations, no Beam inside.

A Great Expectations call costs tenths of a second whatever the row count, so samples are checked in
batches: each table of the phase becomes one pandas DataFrame for the whole batch, each suite is
validated once with `COMPLETE` results, and the unexpected rows' `_sample` ids decide the fate of each
sample. A failed `critical` expectation rejects the sample (one error per offending row, naming the
expectation, the column and the value); a failed `warning` one adds its name to the sample's warnings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

import pandas as pd

from beam_pipelines.imports import defer, import_long_lived
from beam_pipelines.records import ErrorInfo, Rejection, Sample
from beam_pipelines.sources.dataset import Dataset, Row
from beam_pipelines.validation.suites import ExpectationInfo, SuiteError, info_of
from beam_pipelines.validation.tables import ID_COLUMNS, tables_for

STAGE = "validate"
_RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": list(ID_COLUMNS)}


def plain(value: Any) -> Any:
    """A JSON-safe Python value (numpy scalars unwrapped; NaN and infinities as text)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value


def stat_key(info: ExpectationInfo, field: str) -> str:
    return f"expectation/{info.suite}/{info.name}/{field}"


DEFERRED = ("scipy.stats", "altair")
"""What GX imports at module level for expectations that only some suites use, loaded on first use
(`imports.defer`): `scipy.stats` for its distribution tests, and Altair, which only its distribution expectation's
chart renderer calls (with its own imports, about a sixth of what GX's import costs)."""


def great_expectations() -> ModuleType:
    """The GX package, imported once per process (`import_long_lived`) and quiet: its import alone logs hundreds
    of INFO lines, which a portable worker would ship to the runner one by one."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name in DEFERRED:
        defer(name)
    return import_long_lived("great_expectations")


_remembered = threading.local()


def _remembering(original: property) -> property:
    """`Expectation.configuration` that, inside `configurations_remembered` on this thread, builds each
    expectation's configuration once: GX rebuilds it (a pydantic `dict()` and a new object) on every access,
    about a thousand times per suite validation. The cache holds the expectation too, so its id stays its own."""

    def configuration(expectation: Any) -> Any:
        cache = getattr(_remembered, "cache", None)
        if cache is None:
            return original.fget(expectation)
        if id(expectation) not in cache:
            cache[id(expectation)] = (expectation, original.fget(expectation))
        return cache[id(expectation)][1]

    configuration.remembering = True
    return property(configuration, doc=original.__doc__)


@contextlib.contextmanager
def configurations_remembered() -> Iterator[None]:
    """Within the block, on this thread, an expectation's configuration is built once and then reused.

    Safe while the suites do not change inside the block: GX only mutates a configuration after copying it."""
    expectation = great_expectations().expectations.Expectation
    current = expectation.__dict__.get("configuration")
    if isinstance(current, property) and not getattr(current.fget, "remembering", False):
        expectation.configuration = _remembering(current)
    outer, _remembered.cache = getattr(_remembered, "cache", None), {}
    try:
        yield
    finally:
        _remembered.cache = outer


def ephemeral_context() -> Any:
    """An in-memory GX context: no temporary docs site, no progress bars."""
    gx = great_expectations()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


class SuiteChecker:
    """The dataset's suites of one phase, registered once in an ephemeral GX context (build it in `DoFn.setup`)."""

    def __init__(self, suites: dict[str, dict[str, Any]], phase: str, box_units: str, dataset: Dataset):
        suite_class = great_expectations().ExpectationSuite
        self.box_units = box_units
        self.tables = [t for t in tables_for(dataset, phase) if t.name in suites]
        self.context = ephemeral_context()
        datasource = self.context.data_sources.add_pandas("vgr_etl")
        self.order = {
            e["meta"]["name"]: i for i, e in enumerate(e for t in self.tables for e in suites[t.name]["expectations"])
        }
        self.suites = {}
        self.batches = {}
        for table in self.tables:
            spec = {k: v for k, v in suites[table.name].items() if k != "id"}
            spec["expectations"] = [{k: v for k, v in e.items() if k != "id"} for e in spec.get("expectations", [])]
            self.suites[table.name] = self.context.suites.add(suite_class(**spec))
            self.batches[table.name] = datasource.add_dataframe_asset(table.name).add_batch_definition_whole_dataframe(
                "batch"
            )

    def rows(self, samples: Sequence[Sample]) -> tuple[dict[str, list[Row]], dict[int, ErrorInfo]]:
        """Every table's rows for the batch; a sample whose rows cannot be built is an unexpected error."""
        out: dict[str, list[Row]] = {t.name: [] for t in self.tables}
        broken: dict[int, ErrorInfo] = {}
        for index, sample in enumerate(samples):
            built: dict[str, list[Row]] = {}
            try:
                for table in self.tables:
                    built[table.name] = [
                        {"_sample": index, "_item": 0, **r} for r in table.rows(sample, self.box_units)
                    ]
            except Exception as exc:  # one record's surprise must not fail the batch, let alone the job
                broken[index] = ErrorInfo(STAGE, "unexpected_error", f"{type(exc).__name__} building tables: {exc}")
                continue
            for name, rows in built.items():
                out[name].extend(rows)
        return out, broken

    def check(self, samples: Sequence[Sample]) -> tuple[list[Sample | Rejection], Counter]:
        """The batch's outcomes, in order, and the per-expectation counters."""
        tables, broken = self.rows(samples)
        errors: dict[int, list[ErrorInfo]] = {i: [e] for i, e in broken.items()}
        warned: dict[int, list[str]] = {}
        stats: Counter = Counter()
        with configurations_remembered():
            for table in self.tables:
                rows = tables[table.name]
                if not rows:
                    continue
                frame = pd.DataFrame.from_records(rows, columns=[*ID_COLUMNS, *table.columns])
                result = (
                    self.batches[table.name]
                    .get_batch(batch_parameters={"dataframe": frame})
                    .validate(self.suites[table.name], result_format=_RESULT_FORMAT)
                )
                for r in result.results:
                    self._route(r, table.name, table.item, stats, errors, warned)
        outcomes: list[Sample | Rejection] = []
        for index, sample in enumerate(samples):
            if index in errors:
                outcomes.append(sample.reject(*sorted(errors[index], key=lambda e: self.order.get(e.check, -1))))
            elif index in warned:
                names = tuple(sorted(set(warned[index]), key=self.order.__getitem__))
                outcomes.append(replace(sample, warnings=sample.warnings + names))
            else:
                outcomes.append(sample)
        return outcomes, stats

    @staticmethod
    def _route(r: Any, suite: str, item: str, stats: Counter, errors: dict, warned: dict) -> None:
        config = r.expectation_config.to_json_dict()
        config["severity"] = r.expectation_config.severity.value
        info = info_of(suite, config)
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise SuiteError(f"{suite}/{info.name} could not be evaluated: {r.exception_info.get('exception_message')}")
        result = r.result or {}
        stats[stat_key(info, "evaluated")] += int(result.get("element_count") or 0)
        unexpected = result.get("unexpected_index_list") or []
        stats[stat_key(info, "failed")] += len(unexpected)
        for row in unexpected:
            index = int(row["_sample"])
            if info.severity == "warning":
                warned.setdefault(index, []).append(info.name)
                continue
            values = {k: plain(v) for k, v in row.items() if k not in ID_COLUMNS}
            value = next(iter(values.values())) if len(values) == 1 else values
            where = f"{item} {int(row['_item'])}" if item != "sample" else "sample"
            message = f"{suite}: {info.description or info.type}; {where}: {info.column} = {value!r}"
            errors.setdefault(index, []).append(
                ErrorInfo(
                    STAGE, info.name, message, suite=suite, expectation=info.type, column=info.column, value=value
                )
            )
