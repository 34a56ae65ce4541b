"""`Dataset`: everything specific to one upstream layout, in one object the rest of the pipeline asks.

A dataset parses its records into `Sample`s (and says which upstream fields define a sample's id), picks the
members of an annotation archive it reads, maps its image paths to files, declares the tables its validation
suites check, and says what its preview card shows. Outside `beam_pipelines/sources/` no module names a source:
stages hold the dataset object of the run (`registry.dataset_named(options.source)`). A new layout is a new
subclass registered with `registry.register`, with its suites in the expectations folder; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from beam_pipelines.records import Provenance, Sample

RECORDS, IMAGES = "records", "images"
"""Validation phases: right after parsing, or once the image headers are read (before any decode)."""
Row = dict[str, Any]
Segments = tuple[tuple[str, int | None], ...]
"""A text cut into pieces, each with the region it refers to (or None): what the preview marks up."""


@dataclass(frozen=True)
class Table:
    """A table a validation suite checks (`expectations/<name>.json`): the columns a suite may refer to and the pure
    function that turns one sample into its rows (`(sample, box_units) -> rows`)."""

    name: str
    phase: str
    item: str  # what a row is, for messages: "sample", "region", "step", "image"
    columns: tuple[str, ...]
    rows: Callable[[Sample, str], list[Row]]


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


COMMON_TABLES = (IMAGES_TABLE,)
"""Tables every dataset has, checked from the image headers: no dataset declares one of these names."""


@dataclass(frozen=True)
class LabelReference:
    """A second form of the same records whose labels are the official ones (`--label_reference`): the dataset the
    reference files are read as, the key both forms share, and the facts the suites check."""

    source: Dataset
    key: Callable[[Sample], str]
    labels: Callable[[Sample], tuple[str, list[str]]]  # a reference sample's key and labels
    facts: Callable[[Sample, dict[str, list[list[str]]]], dict[str, Any]]


class Dataset(ABC):
    """One upstream layout. Subclasses set the class attributes and implement `parse`."""

    name: str
    """The `--source` value; also the `source` column and the prefix of every sample id."""
    description: str
    """One line for `--help`."""
    id_fields: tuple[str, ...]
    """The upstream fields whose content defines `sample_id` (a change elsewhere keeps the id)."""
    tables: tuple[Table, ...] = ()
    """The tables its suites check, besides the `images` table every dataset has."""
    searches_source_folders: bool = False
    """Whether an image path that resolves nowhere is looked for under each folder of the image root."""
    reference: LabelReference | None = None
    annotated: tuple[str, ...] = ()
    """What `--annotation_model` scores of its samples: "steps" (`prm_turns`) and/or "regions" (crops)."""
    upstream: str = ""
    """Where the upstream dataset is published (for the dataset card)."""
    licence: str | None = None
    """Its licence as an SPDX-style identifier, where known (for the dataset card)."""
    image_root_hint: str = ""
    """Where `--image_root` should point, said when none of the first records' images is found under it."""

    @abstractmethod
    def parse(self, record: dict[str, Any], provenance: Provenance) -> Sample:
        """The sample of one record, raising `RejectedError` with the reason when it cannot be parsed."""

    def archive_members(self, names: list[str]) -> list[str]:
        """Which JSON Lines members of an annotation archive it reads (all, unless the archive mixes forms)."""
        return names

    def image_candidates(self, rel: str) -> list[tuple[str, str]]:
        """(rule, path) to try under the image root, in order, for a checked relative image path."""
        return [("as_written", rel)]

    def recognises(self, record: dict[str, Any]) -> bool | None:
        """Whether a record has this layout's shape (a cheap structural test, for the launch to tell a wrong
        `--source`); None: this dataset cannot tell."""
        return None

    def card_text(self, sample: Sample) -> Segments | None:
        """The text the preview card shows beside the image, if any."""
        return None

    def prm_turns(self, sample: Sample, template: Any) -> list[tuple[str, str]] | None:
        """The sample's solution as a process-reward conversation (system, user and assistant turns, each assistant
        turn holding `template.positive`), for the annotation model; None when it has no steps to score."""
        return None

    def __repr__(self) -> str:
        return f"<dataset {self.name}>"


def tables_of(dataset: Dataset, phase: str, extra: Sequence[Table] = ()) -> list[Table]:
    """The dataset's tables of one phase (and `extra` ones every dataset has), sorted by name."""
    return sorted((t for t in (*dataset.tables, *extra) if t.phase == phase), key=lambda t: t.name)
