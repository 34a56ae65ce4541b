"""The layout of an output directory: every path under `--output` is derived here.

    current.json                                 the pointer to the current version
    versions/<version>/manifest.json             every file of that version's dataset
    versions/<version>/report.json, validation/index.html, preview/index.html
    parquet/samples/, parquet/regions/, webdataset/, index/, rejected/   <unit>-<part>.<ext> data files
    report.json, validation/index.html, preview/index.html              the last command's report and pages
    _tmp/                                        scratch of a running command (files are renamed out of it)
    _lease.json                                  the lease of the command writing the output (versioning/lease.py)

A *unit* is what one input chunk (or one compaction group) produced in one version, named `<version>-<chunk>`; its
files are named `<unit>-<part>`, where the part is the row offset, within the chunk, of the part's first record:
two bundles holding records of one chunk can never produce the same name, and a rerun produces the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from beam_pipelines.files import join, relative

DATA_FOLDERS = {
    "parquet_samples": ("parquet/samples", "parquet"),
    "parquet_regions": ("parquet/regions", "parquet"),
    "index": ("index", "parquet"),
    "webdataset": ("webdataset", "tar"),
    "rejected": ("rejected", "jsonl"),
}
"""Folder (under the output) and extension of each kind of data file."""
DATASET_KINDS = ("parquet_samples", "parquet_regions", "webdataset", "index")
"""The kinds of file a version's units hold (dead letters are the version's, not a unit's)."""
CURRENT = "current.json"
VERSIONS = "versions"
MANIFEST = "manifest.json"
REPORT = "report.json"
VALIDATION_PAGE = "validation/index.html"
PREVIEW_PAGE = "preview/index.html"
PAGES = (VALIDATION_PAGE, PREVIEW_PAGE)
TMP = "_tmp"
PART_DIGITS = 6


def part_name(unit: str, first_offset: int) -> str:
    """`<unit>-<offset>`: a part named after the row offset, within its chunk, of its first record."""
    return f"{unit}-{first_offset:0{PART_DIGITS}d}"


def part_order(path: str) -> tuple[str, int]:
    """A sort key that keeps a unit's parts in row order whatever the width of their offsets."""
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
    prefix, _, offset = stem.rpartition("-")
    return (prefix, int(offset)) if offset.isdigit() else (stem, -1)


def version_dir(version: str) -> str:
    return f"{VERSIONS}/{version}"


def manifest_path(version: str) -> str:
    return f"{version_dir(version)}/{MANIFEST}"


@dataclass(frozen=True)
class OutputLayout:
    """The paths of one output root (local or gs://)."""

    root: str

    def path(self, rel: str) -> str:
        return join(self.root, *rel.split("/"))

    def relative(self, path: str) -> str:
        return relative(self.root, path)

    def data_file(self, kind: str, name: str) -> str:
        folder, ext = DATA_FOLDERS[kind]
        return self.path(f"{folder}/{name}.{ext}")

    def data_pattern(self, kind: str, pattern: str = "*") -> str:
        """A glob over one kind's folder (`pattern` without the extension's folder)."""
        folder, _ = DATA_FOLDERS[kind]
        return self.path(f"{folder}/{pattern}")

    @property
    def data_folders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(folder for folder, _ in DATA_FOLDERS.values()))

    @property
    def scratch(self) -> str:
        return self.path(TMP)

    @property
    def current(self) -> str:
        return self.path(CURRENT)

    @property
    def versions(self) -> str:
        return self.path(VERSIONS)

    def version_dir(self, version: str) -> str:
        return self.path(version_dir(version))

    def manifest(self, version: str) -> str:
        return self.path(manifest_path(version))

    def unpublished_manifest(self, version: str) -> str:
        return self.path(f"{version_dir(version)}/manifest.unpublished.json")

    def report(self, version: str | None = None) -> str:
        """The report at the root (the last command's), or the one kept with a version."""
        return self.path(REPORT if version is None else f"{version_dir(version)}/{REPORT}")

    def page(self, page: str, version: str | None = None) -> str:
        return self.path(page if version is None else f"{version_dir(version)}/{page}")
