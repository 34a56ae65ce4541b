"""Heavy imports: collector paused during the import, heap frozen after, once per process (fresh interpreters)."""

import os
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


def fresh(code: str, env: dict[str, str] | None = None) -> str:
    """What `code` prints in a fresh interpreter (nothing imported yet), which must exit cleanly."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def probe(before: str = "") -> str:
    return fresh(PROBE.format(before=before)).strip()


@pytest.mark.slow
def test_imports_once_freezes_the_heap_and_restores_the_collector():
    assert probe() == "fractions True True True True"


@pytest.mark.slow
def test_a_run_freezes_the_heap_of_imports_once_and_later_objects_stay_collectable():
    code = """
import gc
from beam_pipelines.imports import freeze_imports
before = gc.get_freeze_count()
freeze_imports()
frozen = gc.get_freeze_count()
later = [[] for _ in range(1000)]
freeze_imports()
print(before == 0, frozen > before, gc.get_freeze_count() == frozen)
"""
    assert fresh(code).split() == ["True", "True", "True"]


def test_a_collector_disabled_by_the_caller_stays_disabled():
    assert probe("gc.disable()") == "fractions True False True True"


DEFER_PROBE = """
import sys
from beam_pipelines.imports import defer
assert "xml.dom.pulldom" not in sys.modules
defer("xml.dom.pulldom")
from xml.dom import pulldom
lazy = type(sys.modules["xml.dom.pulldom"]).__name__ == "DeferredModule"
parse = pulldom.parseString
print(lazy, type(sys.modules["xml.dom.pulldom"]).__name__, callable(parse))
"""


@pytest.mark.slow
def test_a_deferred_module_loads_on_first_use_not_at_its_import():
    assert fresh(DEFER_PROBE).split() == ["True", "module", "True"]


WALK_PROBE = """
import inspect, sys
from apache_beam.runners.worker.statecache import get_deep_size
from beam_pipelines.imports import defer
defer("xml.dom.pulldom")
module = sys.modules["xml.dom.pulldom"]
get_deep_size({"a side input": [1, 2, 3]})  # Beam's state cache: objsize takes vars() of every module
inspect.getmodule(get_deep_size)  # reads every module's __file__
header = (module.__name__, module.__file__.endswith("pulldom.py"), "parseString" in vars(module))
print(*header, type(module).__name__, callable(module.parseString), type(module).__name__)
"""


@pytest.mark.slow
def test_walking_the_modules_does_not_load_a_deferred_one():
    assert fresh(WALK_PROBE).split() == ["xml.dom.pulldom", "True", "False", "DeferredModule", "True", "module"]


SUBMODULE_PROBE = """
import sys
from beam_pipelines.imports import defer
defer("outer.pkg")
before = type(sys.modules["outer.pkg"]).__name__
import outer.pkg.sub
print(before, type(sys.modules["outer.pkg"]).__name__, *sys.modules["outer"].ORDER)
"""


@pytest.mark.slow
def test_importing_a_submodule_of_a_deferred_package_loads_the_package_first(tmp_path):
    package = tmp_path / "outer" / "pkg"
    package.mkdir(parents=True)
    (tmp_path / "outer" / "__init__.py").write_text("ORDER = []\n")
    (package / "__init__.py").write_text("import outer\nouter.ORDER.append('pkg')\n")
    (package / "sub.py").write_text("import outer\nouter.ORDER.append('sub')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    printed = fresh(SUBMODULE_PROBE, env).split()
    assert printed == ["DeferredModule", "module", "pkg", "sub"], "the package ran, then its submodule"


TOP_LEVEL_PROBE = """
import sys
from beam_pipelines.imports import defer
assert "colorsys" not in sys.modules
defer("colorsys")
import colorsys
lazy = type(sys.modules["colorsys"]).__name__
print(lazy, colorsys.rgb_to_hsv(1.0, 0.0, 0.0), type(sys.modules["colorsys"]).__name__)
"""


@pytest.mark.slow
def test_a_top_level_module_can_be_deferred_too():
    assert fresh(TOP_LEVEL_PROBE).split() == ["DeferredModule", "(0.0,", "1.0,", "1.0)", "module"]


def test_deferring_what_is_not_installed_leaves_it_missing():
    from beam_pipelines.imports import defer

    defer("no_such_top_level_package_here")
    defer("no_such_package_here.module")
    defer("json.no_such_module_here")
    assert "no_such_top_level_package_here" not in sys.modules
    assert "no_such_package_here.module" not in sys.modules
    assert "json.no_such_module_here" not in sys.modules


GX_PROBE = """
import sys
from beam_pipelines.validation.checker import great_expectations
great_expectations()
from apache_beam.runners.worker.statecache import get_deep_size
get_deep_size(["a side input"])
print(sorted(m for m in sys.modules if m.startswith(("scipy.stats.", "altair."))))
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
print(round(float(kl.stats.entropy([0.5, 0.5], [0.9, 0.1])), 4))
print(kl.alt.Chart.__name__, "altair.vegalite" in sys.modules)
"""


@pytest.mark.slow
def test_great_expectations_imports_without_scipy_stats_or_altair_which_still_work_on_use():
    assert fresh(GX_PROBE).split("\n")[:3] == ["[]", "0.5108", "Chart True"]
