"""The versioned output dataset: the manifest of a version, and the pointer to the current one.

Data files are immutable: a file is written once, under a name that starts with the version that wrote it, and a
later version either lists it again or not (`layout` has the paths). The pointer is written last, in one atomic
step, so readers that start from it always see a whole version (the layout Delta Lake and Iceberg use for the same
reason: listing a directory cannot tell a finished file set from a half-written one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from beam_pipelines.files import WrittenFile, exists, read_text, write_text
from beam_pipelines.layout import DATASET_KINDS, OutputLayout, manifest_path, part_order

FORMAT = 1
_VERSION = re.compile(r"^v(\d{6})$")
_REWRITE = re.compile(r"^v\d{6,}-rewrite-(v\d{6,}-.+)$")


def version_name(number: int) -> str:
    return f"v{number:06d}"


def version_number(name: str) -> int:
    match = _VERSION.match(name)
    if not match:
        raise ValueError(f"not a version name: {name!r}")
    return int(match.group(1))


def unit_origin(unit: str) -> str:
    """The unit a (possibly rewritten) unit descends from: `v000001-A-00000` for `v000003-rewrite-v000001-A-00000`.
    Origins are unique among a version's units (a rewrite replaces its source), so naming a rewrite after its
    origin never lets two rewrites in one version collide, while names do not grow with every rewrite."""
    match = _REWRITE.match(unit)
    return match.group(1) if match else unit


@dataclass(frozen=True)
class Unit:
    name: str
    samples: int
    files: tuple[WrittenFile, ...]

    def of_kind(self, kind: str) -> list[WrittenFile]:
        return sorted((f for f in self.files if f.kind == kind), key=lambda f: part_order(f.path))

    @property
    def bytes(self) -> int:
        """The largest file set of the unit (tar or samples Parquet): what compaction sizes by."""
        return max((sum(f.bytes for f in self.files if f.kind == k) for k in DATASET_KINDS), default=0)


@dataclass(frozen=True)
class Manifest:
    version: str
    parent: str | None
    command: str
    created_at: str
    source: str
    options: dict[str, Any]
    inputs: tuple[dict[str, Any], ...]
    units: tuple[Unit, ...]
    rejected: tuple[WrittenFile, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    report: str | None = None

    @property
    def samples(self) -> int:
        return sum(u.samples for u in self.units)

    def files(self, kind: str) -> list[WrittenFile]:
        return [f for u in self.units for f in u.of_kind(kind)]

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "version": self.version,
            "parent": self.parent,
            "command": self.command,
            "created_at": self.created_at,
            "source": self.source,
            "options": self.options,
            "inputs": list(self.inputs),
            "units": [
                {"name": u.name, "samples": u.samples, "files": [f.to_json() for f in u.files]} for u in self.units
            ],
            "rejected": [f.to_json() for f in self.rejected],
            "counts": self.counts,
            "report": self.report,
        }
        return json.dumps(body, indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        if body.pop("format", None) != FORMAT:
            raise ValueError("unsupported manifest format")
        body["inputs"] = tuple(body["inputs"])
        body["rejected"] = tuple(WrittenFile(**f) for f in body["rejected"])
        body["units"] = tuple(
            Unit(u["name"], u["samples"], tuple(WrittenFile(**f, unit=u["name"]) for f in u["files"]))
            for u in body["units"]
        )
        return cls(**body)


def units_of(infos: list[WrittenFile]) -> list[Unit]:
    """Group the files one run wrote into units (rejected files are the version's, not a unit's)."""
    grouped: dict[str, list[WrittenFile]] = {}
    for info in infos:
        if info.kind in DATASET_KINDS:
            grouped.setdefault(info.unit, []).append(info)
    units = []
    for name, files in sorted(grouped.items()):
        samples = sum(f.rows for f in files if f.kind == "index")
        units.append(Unit(name, samples, tuple(sorted(files, key=lambda f: (f.kind, f.path)))))
    return units


def read_pointer(output: str) -> dict[str, str] | None:
    path = OutputLayout(output).current
    if not exists(path):
        return None
    return json.loads(read_text(path))


def read_manifest(output: str, version: str) -> Manifest:
    return Manifest.from_json(read_text(OutputLayout(output).manifest(version)))


def read_current(output: str) -> Manifest | None:
    """The manifest the pointer names, or None for an output without a published version."""
    pointer = read_pointer(output)
    return None if pointer is None else read_manifest(output, pointer["version"])


def missing_files(output: str, manifest: Manifest) -> list[str]:
    """What storage says against the manifest: each listed file that is not there, or not of its recorded size
    (checked just before publishing, so that no published version points at files that are gone)."""
    from apache_beam.io.filesystems import FileSystems

    layout = OutputLayout(output)
    listed = [f for u in manifest.units for f in u.files]
    found = FileSystems.match([layout.path(f.path) for f in listed]) if listed else []
    problems = []
    for entry, result in zip(listed, found, strict=True):
        sizes = [m.size_in_bytes for m in result.metadata_list]
        if not sizes:
            problems.append(f"{entry.path} is missing")
        elif sizes[0] != entry.bytes:
            problems.append(f"{entry.path} holds {sizes[0]} bytes, not the {entry.bytes} written")
    return problems


def publish(output: str, manifest: Manifest) -> None:
    """Write the version's manifest, then switch the pointer to it: the last write of a run."""
    layout = OutputLayout(output)
    write_text(layout.manifest(manifest.version), manifest.to_json(), layout.scratch)
    pointer = {"version": manifest.version, "manifest": manifest_path(manifest.version)}
    write_text(layout.current, json.dumps(pointer) + "\n", layout.scratch)


def data_files(output: str, kind: str = "parquet_samples") -> list[str]:
    """Paths of the current version's files of one kind, in a stable order: what readers should load.

    `kind` is one of parquet_samples, parquet_regions, webdataset, index.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DATASET_KINDS)}")
    manifest = read_current(output)
    layout = OutputLayout(output)
    if manifest is None:
        raise FileNotFoundError(f"{layout.current}: no published version")
    return [layout.path(f.path) for f in manifest.files(kind)]
