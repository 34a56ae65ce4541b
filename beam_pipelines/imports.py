"""Heavy libraries imported once per worker process, without paying for them again in the garbage collector.

Great Expectations builds a very large number of long-lived objects when it is imported (pydantic models,
expectation classes, scipy). While they are being created, Python's cyclic collector keeps walking the growing
heap; afterwards every full collection, and the interpreter's exit, walks them again. Importing with the collector
paused and then freezing the heap (`gc.freeze`, the standard remedy for a large, long-lived heap) removes those
costs. Objects alive at that moment are never collected as cycles; they are the process's imports, and it happens
once. The measured effect is in CHANGELOG.md.
"""

from __future__ import annotations

import gc
import importlib
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
