"""Heavy libraries imported once per worker process, without paying for them again in the garbage collector.

Great Expectations builds a very large number of long-lived objects when it is imported (pydantic models,
expectation classes, scipy). While they are being created, Python's cyclic collector keeps walking the growing
heap; afterwards every full collection, and the interpreter's exit, walks them again. Importing with the collector
paused and then freezing the heap (`gc.freeze`, the standard remedy for a large, long-lived heap) removes those
costs. Objects alive at that moment are never collected as cycles; they are the process's imports, and it happens
once. The measured effect is in CHANGELOG.md.

Some of what such a library imports at module level is only used by features a run does not touch: `defer` makes
such a submodule load on first use instead (the standard library's `importlib.util.LazyLoader`).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
from functools import cache
from types import ModuleType


@cache
def import_long_lived(name: str) -> ModuleType:
    """`importlib.import_module(name)`, with the collector paused during the import and the heap frozen after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        module = importlib.import_module(name)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return module


def defer(name: str) -> None:
    """Make the submodule `name` (`package.module`) load on its first attribute access instead of at its import.

    The lazy module is also set as its package's attribute: `from package import module` then binds it without
    touching it (the import system's own lookup of a module in `sys.modules` would load it at once). A module that
    is imported already, or that cannot be found, is left alone."""
    if name in sys.modules:
        return
    parent_name, _, child = name.rpartition(".")
    try:
        spec = importlib.util.find_spec(name)  # imports the package
    except ModuleNotFoundError:  # the package is not installed
        return
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    setattr(sys.modules[parent_name], child, module)
