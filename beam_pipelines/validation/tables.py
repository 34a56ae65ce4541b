"""The tables the validation suites check: one row per sample, region, step or image, built from samples.

Each suite in `expectations/` is named after a table. A dataset declares its own tables (`sources.dataset.Table`:
the columns a suite may refer to, checked when the suites are loaded so a typo fails the run at once, and a pure
function that turns one sample into its rows); the `images` table (`sources.dataset.COMMON_TABLES`) applies to every
dataset. Rows carry
`_sample` (the sample's position in its batch) and `_item` (region, step or image index), which is how Great
Expectations' unexpected rows lead back to samples.

Derived columns (`box_finite`, `after_unmeasured`, `score_count_residual`, ...) exist so that rules that are not a
single Great Expectations call stay plain, editable expectations over one column. Tables of the `records` phase are
checked right after parsing; `images` tables need the stored image size (read from the header, before any decode)
and are checked after the images are loaded.
"""

from __future__ import annotations

from beam_pipelines.sources.dataset import COMMON_TABLES, Dataset, Table, tables_of
from beam_pipelines.sources.registry import all_tables

ID_COLUMNS = ("_sample", "_item")


def known_tables() -> dict[str, Table]:
    """Every table a suite may be named after: the registered datasets' and `images`."""
    return {**all_tables(), **{t.name: t for t in COMMON_TABLES}}


def tables_for(dataset: Dataset, phase: str) -> list[Table]:
    """The tables checked for the dataset in one phase, sorted by name."""
    return tables_of(dataset, phase, COMMON_TABLES)
