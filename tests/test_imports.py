"""Heavy imports: collector paused during the import, heap frozen after, once per process (fresh interpreters)."""

import subprocess
import sys

import pytest

PROBE = """
import gc, sys
from beam_pipelines.imports import import_long_lived
{before}
assert "fractions" not in sys.modules
module = import_long_lived("fractions")
frozen = gc.get_freeze_count()
again = import_long_lived("fractions")
print(module.__name__, module is again, gc.isenabled(), frozen > 0, gc.get_freeze_count() == frozen)
"""


def probe(before: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_imports_once_freezes_the_heap_and_restores_the_collector():
    assert probe() == "fractions True True True True"


@pytest.mark.slow
def test_a_collector_disabled_by_the_caller_stays_disabled():
    assert probe("gc.disable()") == "fractions True False True True"
