"""The dataset card: `README.md` at the output root, rewritten at every publish, whose YAML `configs` name exactly
the current version's files, so `datasets.load_dataset(OUTPUT)` (and any reader that follows the card) loads the
current version, not every version the folders hold; its text says what the dataset is and how it was built."""

from __future__ import annotations

from typing import Any

from beam_pipelines.files import write_text
from beam_pipelines.layout import OutputLayout
from beam_pipelines.sources import registry
from beam_pipelines.versioning.manifest import Manifest

CARD = "README.md"
CONFIGS = (("samples", "parquet_samples"), ("regions", "parquet_regions"))


def _yaml_list(items: list[str], indent: str) -> str:
    return "".join(f"{indent}- {item}\n" for item in items)


def card_text(manifest: Manifest, counts: dict[str, Any]) -> str:
    """The card of a published version: YAML front matter (configs, licence, tags), then a description."""
    try:
        dataset = registry.dataset_named(manifest.source)
        described, upstream, licence = dataset.description, dataset.upstream, dataset.licence
    except ValueError:  # a dataset registered in another process
        described, upstream, licence = manifest.source, "", None
    yaml = ["---\nconfigs:\n"]
    for i, (name, kind) in enumerate(CONFIGS):
        files = [f.path for f in manifest.files(kind)]
        if files:
            default = "  default: true\n" if i == 0 else ""
            yaml.append(f"- config_name: {name}\n{default}  data_files:\n  - split: train\n    path:\n")
            yaml.append(_yaml_list(files, "    "))
    yaml.append(f"license: {licence or 'other'}\ntags:\n- vgr-etl\n- {manifest.source}\n---\n")
    samples = sum(u.samples for u in manifest.units)
    regions = sum(f.rows for f in manifest.files("parquet_regions"))
    lines = [
        f"# {manifest.source}: {samples} samples (version {manifest.version})",
        "",
        f"{described}, as processed by vgr-etl from the upstream layout `{manifest.source}`"
        f"{f' ({upstream})' if upstream else ''}.",
        "",
        f"- Samples: {samples} (config `samples`, the default: one row per sample, the image included)"
        + (
            f"; regions: {regions} (config `regions`: one row per grounded region, its crop included)"
            if regions
            else ""
        )
        + ".",
        f"- This version: {manifest.version}, made by `vgr-etl {manifest.command}` at {manifest.created_at}"
        + (f" from {manifest.parent}" if manifest.parent else "")
        + f"; new {counts.get('new', 0)}, unchanged {counts.get('unchanged', 0)}, removed {counts.get('removed', 0)}.",
        f"- Input files: {len(manifest.inputs)}; every file of the version, with its rows, bytes and SHA-256: "
        f"`versions/{manifest.version}/manifest.json`; the run's report: `{manifest.report}`.",
        f"- Licence: {licence or 'that of the upstream dataset (see its card)'}.",
        "",
        'Load it with `datasets.load_dataset("<this folder>")` (or `..., "regions")`): the configs above list the '
        "current version's files only. The folders also hold earlier versions' files until `vgr-etl gc`, so do "
        "not glob them; `vgr-etl files --output <this folder>` lists the current ones for other readers.",
        "",
    ]
    return "".join(yaml) + "\n".join(lines)


def write_card(output: str, manifest: Manifest, counts: dict[str, Any]) -> None:
    layout = OutputLayout(output)
    write_text(layout.path(CARD), card_text(manifest, counts), layout.scratch)
