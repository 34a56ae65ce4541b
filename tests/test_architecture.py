"""The package's shape, checked: datasets named only in their own modules, validation free of materialisation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from beam_pipelines.sources import registry

PACKAGE = Path(__file__).resolve().parents[1] / "beam_pipelines"
DATASET_HOMES = ("sources", "demo")
SOURCE_NAME = re.compile(r"\b(" + "|".join(registry.names()) + r")\b(?!-etl)")


def modules(*under: str) -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not under or p.relative_to(PACKAGE).parts[0] in under)


def imported(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_outside_the_dataset_modules_names_a_source():
    found = [
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in modules()
        if p.relative_to(PACKAGE).parts[0] not in DATASET_HOMES
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if SOURCE_NAME.search(line)
    ]
    assert not found, "ask the dataset object instead:\n" + "\n".join(found)


def test_validation_does_not_import_materialisation():
    found = {p.name: sorted(m for m in imported(p) if ".materialisation" in m) for p in modules("validation")}
    assert not {k: v for k, v in found.items() if v}
