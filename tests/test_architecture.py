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


def module_name(path: Path) -> str:
    parts = ("beam_pipelines", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def dependencies() -> dict[str, set[str]]:
    """The package's modules and the package modules each imports, wherever the import statement is."""
    known = {module_name(p) for p in modules()}
    graph: dict[str, set[str]] = {}
    for path in modules():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
        name = module_name(path)
        parents = {
            name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)
        }  # importing a module runs its packages
        graph[name] = ({d for d in deps if d in known} | parents) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_at_module_level_or_inside_functions():
    graph = dependencies()
    assert len(graph) > 40 and "beam_pipelines.launcher" in graph["beam_pipelines.cli"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_body():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


BEAM_INTERNALS = re.compile(r"_BeamArgumentParser|_provision_info|worker_handlers|local_job_service|\._actions\b")


def test_beams_private_names_are_used_in_one_module_only():
    found = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in modules()
        if p.name != "beam_internals.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if BEAM_INTERNALS.search(line)
    ]
    assert not found, "go through beam_pipelines/beam_internals.py: " + ", ".join(found)
