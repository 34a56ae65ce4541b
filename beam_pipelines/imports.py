"""Heavy libraries imported once per worker process, without paying for them again in the garbage collector.

Great Expectations builds about 250,000 long-lived objects when it is imported (pydantic models, expectation
classes, scipy). While they are being created, Python's cyclic collector keeps walking the growing heap: that is a
quarter of the import time. Afterwards, every full collection walks them again (about a tenth of a second each),
and so does the interpreter's exit (about a second per worker process, which the local runner waits for, one
worker after the other). Importing with the collector paused and then freezing the heap
(`gc.freeze`, the standard remedy for a large, long-lived heap) removes all three costs. Objects that are
alive at that moment are never collected as cycles; they are the process's imports, and it happens once.
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
