"""The datasets a run can name with `--source`: the four upstream layouts, and any registered beside them."""

from __future__ import annotations

from beam_pipelines.sources import vgr, visualprm, visualprm_raw, visualprocessbench
from beam_pipelines.sources.dataset import Dataset, Table

_DATASETS: dict[str, Dataset] = {
    d.name: d for d in (vgr.DATASET, visualprm.DATASET, visualprm_raw.DATASET, visualprocessbench.DATASET)
}


def register(dataset: Dataset) -> Dataset:
    """Make `dataset` a `--source` choice (in this process: register it before the options are parsed)."""
    if dataset.name in _DATASETS and _DATASETS[dataset.name] is not dataset:
        raise ValueError(f"a dataset named {dataset.name!r} is already registered")
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
