"""What a run will do to the versioned output, decided on the launching machine before the job is built.

`plan_version` reads the current manifest, lists and fingerprints the inputs, and for a refresh works out which
files must be read again (new or changed), which are unchanged (not read at all) and which went away. It also
removes what a crashed earlier attempt at the same version left behind, so a re-run starts clean: files are
named after the version that writes them and the pointer still names the last published one, so these are exactly
the files named after the next version. Nothing else in the output folder is touched, and nothing at all when
the launch fails on its options or inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from beam_pipelines.files import remove_matching, remove_tree
from beam_pipelines.flags import as_compared, config_of, content_options
from beam_pipelines.layout import OutputLayout
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.sources.inputs import expand_pattern, skipped
from beam_pipelines.versioning import lease
from beam_pipelines.versioning.inputs import fingerprint, unchanged
from beam_pipelines.versioning.manifest import Manifest, read_current, version_name, version_number


@dataclass(frozen=True)
class VersionPlan:
    output: str
    version: str
    command: str
    parent: Manifest | None
    files: tuple[str, ...] | None  # input files to read; None: match the patterns in the job (dry runs, templates)
    inputs: tuple[dict[str, Any], ...] = ()
    stale_files: frozenset[str] = frozenset()
    input_files: dict[str, int] = field(default_factory=dict)
    on_removed: str = "keep"
    max_reject_fraction: float = 1.0
    created_at: str = ""
    skipped: tuple[str, ...] = ()
    """What the input patterns matched that is not read (other file types, subfolders): said at launch, reported."""
    lease: str = ""
    """The owner id of the output's lease this command holds (`versioning.lease`); empty for a build-only run."""

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(self.output)

    @property
    def known_index(self) -> list[tuple[str, str]]:
        """(unit, index file) of the current version, when this run must skip or detect published ids."""
        if self.command != "refresh" or self.parent is None:
            return []
        return [(u.name, f.path) for u in self.parent.units for f in u.of_kind("index")]

    @property
    def nothing_to_do(self) -> bool:
        return self.command == "refresh" and self.files == () and not self.stale_files

    @property
    def parent_samples(self) -> int:
        return self.parent.samples if self.parent is not None else 0


def clean_leftovers(output: str, version: str) -> None:
    """Remove what an unfinished attempt at `version` wrote: only files named after it (and the scratch folder),
    never anything else that lies in the output folder."""
    layout = OutputLayout(output)
    remove_matching([layout.path(f"{folder}/{version}-*") for folder in layout.data_folders])
    remove_tree(layout.version_dir(version))
    remove_tree(layout.scratch)


def incompatible_options(parent: Manifest, config: dict[str, Any]) -> list[str]:
    """`--option (current version: A, now: B)` for each option that shapes the rows and would change them."""
    return [
        f"--{o.name} (current version: {parent.options.get(o.name)!r}, now: {config.get(o.name)!r})"
        for o in content_options()
        if as_compared(o, parent.options) != as_compared(o, config)
    ]


def plan_version(
    options: VgrEtlOptions,
    command: str,
    list_inputs: bool = True,
    clean: bool = True,
    check_files: Callable[[list[str]], None] | None = None,
) -> VersionPlan:
    """The plan of a `run` (every input record, a full new version) or a `refresh` (only what changed).

    `list_inputs=False` (dry runs, template creation: the output may not be reachable) reads neither the output
    nor the inputs: the job matches the patterns, records no fingerprints, and publishes the first version (a
    classic template therefore suits one-shot runs; scheduled ones use the Flex Template, planned at launch).
    `clean=False` leaves the output untouched; otherwise the output's lease is taken first (`OutputLocked` if
    another command holds it), then what an unfinished attempt left is removed.
    """
    o = options.view_as(VgrEtlOptions)
    parent = read_current(o.output) if list_inputs else None
    version = version_name(version_number(parent.version) + 1 if parent else 1)
    common = {
        "output": o.output,
        "version": version,
        "command": command,
        "parent": parent,
        "on_removed": o.on_removed,
        "max_reject_fraction": o.max_reject_fraction,
        "created_at": datetime.now(UTC).isoformat(),
    }
    if command == "refresh" and parent is not None:
        bad = incompatible_options(parent, config_of(o))
        if bad:
            raise ValueError(
                f"{'; '.join(bad)} differ from the current version's ({parent.version}); "
                "a refresh must produce the same rows: use `vgr-etl run` for a full rebuild"
            )
    if list_inputs:  # a launch that fails on its inputs leaves the output untouched
        files = sorted({f for pattern in o.input for f in expand_pattern(pattern)})
        common["skipped"] = tuple(sorted({s for pattern in o.input for s in skipped(pattern)}))
        for pattern in o.label_reference or ():  # fail the launch, not the job
            expand_pattern(pattern, "--label_reference")
        if check_files is not None:
            check_files(files)
    else:
        files = None
    if not clean:
        return _planned(parent, files, common)
    held = lease.acquire(o.output, command, version)  # before any cleanup: one writer per output
    try:
        clean_leftovers(o.output, version)
        return _planned(parent, files, {**common, "lease": held.owner})
    except BaseException:
        lease.release(o.output, held.owner)
        raise


def _planned(parent: Manifest | None, files: list[str] | None, common: dict) -> VersionPlan:
    """The plan once the output is ours: the inputs fingerprinted, and for a refresh what changed."""
    command = common["command"]
    if files is None:
        return VersionPlan(files=None, **common)
    previous = {i["path"]: i for i in parent.inputs} if parent else {}
    inputs = tuple(fingerprint(f, previous.get(f)) for f in files)
    if command != "refresh" or parent is None:
        return VersionPlan(files=tuple(files), inputs=inputs, input_files={"read": len(files)}, **common)
    same = {i["path"] for i in inputs if unchanged(i, previous.get(i["path"]))}
    read = tuple(f for f in files if f not in same)
    gone = set(previous) - set(files)
    counts = {
        "read": len(read),
        "new": sum(f not in previous for f in read),
        "changed": sum(f in previous for f in read),
        "unchanged": len(same),
        "gone": len(gone),
    }
    stale = frozenset(gone | (set(read) & set(previous)))
    return VersionPlan(files=read, inputs=inputs, stale_files=stale, input_files=counts, **common)
