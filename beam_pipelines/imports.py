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


@cache
def freeze_imports() -> None:
    """Freeze the heap as it stands, once per process: called when a run starts, it holds the imports (Beam, pyarrow,
    pandas: about 200,000 objects in the launcher), which every full collection of the run would walk again
    (each 15-110 ms, several per run) and which live as long as the process anyway."""
    gc.freeze()


HEADER = frozenset({"__dict__", "__name__", "__file__", "__spec__", "__loader__", "__package__"})
"""What a deferred module answers without loading: what the import system set on it before running it. Code that
walks every module in `sys.modules` reads these (Beam's side-input cache sizes its entries with `objsize`, which
takes `vars()` of every module; `inspect.getmodule` reads every `__file__`): any other attribute would load it.
A package's `__path__` is not among them: importing a submodule of a deferred package loads the package first, as an
import of the submodule always does."""


@cache
def _answering_header(lazy: type) -> type:
    """A subclass of the standard library's lazy module type that leaves `HEADER` to the module as it stands (one
    class per lazy type, however many modules are deferred)."""

    def __getattribute__(self, attr: str):
        if attr in HEADER:
            return object.__getattribute__(self, attr)
        return lazy.__getattribute__(self, attr)

    return type("DeferredModule", (lazy,), {"__getattribute__": __getattribute__, "__slots__": ()})


def defer(name: str) -> None:
    """Make the module `name` (`module`, or `package.module`) load on its first use instead of at its import.

    A submodule's lazy module is also set as its package's attribute: `from package import module` then binds it
    without touching it (the import system's own lookup of a module in `sys.modules` would load it at once). Walking
    the modules does not load it either (`HEADER`). A module that is imported already, or that cannot be found, is
    left alone."""
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
    module.__class__ = _answering_header(type(module))
    if parent_name:
        setattr(sys.modules[parent_name], child, module)
