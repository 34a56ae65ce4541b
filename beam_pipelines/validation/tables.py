"""The tables the validation suites check: one row per sample, region, step or image, built from samples.

Each suite in `expectations/` is named after a table. A dataset declares its own tables (`sources.dataset.Table`:
the columns a suite may refer to, checked when the suites are loaded so a typo fails the run at once, and a pure
function that turns one sample into its rows); the `images` table here applies to every dataset. Rows carry
`_sample` (the sample's position in its batch) and `_item` (region, step or image index), which is how Great
Expectations' unexpected rows lead back to samples.

Derived columns (`box_finite`, `after_unmeasured`, `score_count_residual`, ...) exist so that rules that are not a
single Great Expectations call stay plain, editable expectations over one column. Tables of the `records` phase are
checked right after parsing; `images` tables need the stored image size (read from the header, before any decode)
and are checked after the images are loaded.
"""

from __future__ import annotations

from beam_pipelines.records import Sample
from beam_pipelines.sources.dataset import IMAGES, Dataset, Row, Table, tables_of
from beam_pipelines.sources.registry import all_tables

ID_COLUMNS = ("_sample", "_item")


def image_rows(sample: Sample, _units: str) -> list[Row]:
    return [
        {
            "_item": i,
            "width": img.encoded.width,
            "height": img.encoded.height,
            "min_side": min(img.encoded.width, img.encoded.height),
            "aspect_ratio": max(img.encoded.width, img.encoded.height)
            / max(1, min(img.encoded.width, img.encoded.height)),
            "format": img.format,
            "file_bytes": len(img.encoded.data),
            "exif_rotated": img.orientation in range(2, 9),
        }
        for i, img in enumerate(sample.images)
    ]


IMAGES_TABLE = Table(
    "images",
    IMAGES,
    "image",
    ("width", "height", "min_side", "aspect_ratio", "format", "file_bytes", "exif_rotated"),
    image_rows,
)


def known_tables() -> dict[str, Table]:
    """Every table a suite may be named after: the registered datasets' and `images`."""
    return {**all_tables(), IMAGES_TABLE.name: IMAGES_TABLE}


def tables_for(dataset: Dataset, phase: str) -> list[Table]:
    """The tables checked for the dataset in one phase, sorted by name."""
    return tables_of(dataset, phase, (IMAGES_TABLE,))
