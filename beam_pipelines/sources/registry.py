"""The datasets a run can name with `--source`: the four upstream layouts, and any registered beside them."""

from __future__ import annotations

import re

from beam_pipelines.sources import vgr, visualprm, visualprm_raw, visualprocessbench
from beam_pipelines.sources.dataset import COMMON_TABLES, Dataset, Table

_DATASETS: dict[str, Dataset] = {
    d.name: d for d in (vgr.DATASET, visualprm.DATASET, visualprm_raw.DATASET, visualprocessbench.DATASET)
}


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register(dataset: Dataset) -> Dataset:
    """Make `dataset` a `--source` choice (in this process: register it before the options are parsed).

    Its name starts every sample id (WebDataset keys end at the first dot), so it is lower case letters, digits and
    underscores; its tables' names must be new, since a suite file is named after its table."""
    if not _NAME.match(dataset.name):
        raise ValueError(f"dataset name {dataset.name!r}: use lower case letters, digits and underscores")
    if dataset.name in _DATASETS and _DATASETS[dataset.name] is not dataset:
        raise ValueError(f"a dataset named {dataset.name!r} is already registered")
    taken = {t.name: d.name for d in _DATASETS.values() if d is not dataset for t in d.tables}
    taken.update({t.name: "every dataset" for t in COMMON_TABLES})
    clash = [f"{t.name} ({taken[t.name]})" for t in dataset.tables if t.name in taken]
    if clash:
        raise ValueError(f"dataset {dataset.name!r}: table names already taken: {', '.join(clash)}")
    _DATASETS[dataset.name] = dataset
    return dataset


def unregister(name: str) -> None:
    _DATASETS.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_DATASETS)


def dataset_named(name: str) -> Dataset:
    if name not in _DATASETS:
        raise ValueError(f"--source {name!r}: expected one of {', '.join(_DATASETS)}")
    return _DATASETS[name]


def all_tables() -> dict[str, Table]:
    """Every registered dataset's tables, by name (a suite file is named after one)."""
    return {t.name: t for d in _DATASETS.values() for t in d.tables}
